/**
 * The slicefs config file: named profiles of Score settings, so that a user of two Score services
 * (ICGC ARGO and a Collaboratory, say) switches with `--profile NAME` instead of re-exporting
 * STORAGE_URL and ACCESSTOKEN.
 *
 *   { "profile": "argo",
 *     "profiles": { "argo":   { "storageUrl": "…", "metadataUrl": "…", "tokenFile": "~/.argo-token" },
 *                   "collab": { "storageUrl": "…", "token": "…" } } }
 *
 * Settings may also sit at the top level: they are the profile used when none is chosen (`--profile
 * default` names them too, unless a profile is called "default"). A chosen profile does not inherit
 * the top-level settings: a token meant for one service is never sent to another's URL by accident.
 *
 * The file is `--config FILE`, else `$SLICEFS_CONFIG`, else `$XDG_CONFIG_HOME/slicefs/config.json`
 * (`~/.config/slicefs/config.json`). Only the default may be missing. Mistakes are one line each,
 * naming the file and where: bad JSON (line and column, never the text around it, which may be a
 * token), an unknown key, an unknown profile. A file that holds a token must not be readable by
 * group or others, like a `--token-file`. This module reads files only; the precedence of flags,
 * environment and profile is ./settings.ts's (used by ./score.ts, ./view-settings.ts).
 *
 * A profile may also name the shared cache tier (`cacheProxy`, as `--cache-proxy`): set once here, it
 * need not be exported in every job script.
 */
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { SlicefsError } from '../errors.js';
import { parseCacheProxy } from '../transport/cache-proxy.js';
import { fsProblem } from '../util/fs-problem.js';

/** Where a setting's value came from, strongest first. */
export type Origin = 'flag' | 'env' | 'profile' | 'default';

/** What a profile (or the top level) may set. */
export interface ProfileSettings {
  storageUrl?: string;
  metadataUrl?: string;
  /** The token itself (the file must then be private). */
  token?: string;
  /** A file holding the token: `~` is the home directory, a relative path is from the config file's directory. */
  tokenFile?: string;
  /** The shared cache tier, as `--cache-proxy` (normalised: no trailing slash). */
  cacheProxy?: string;
}

const SETTING_KEYS = ['storageUrl', 'metadataUrl', 'token', 'tokenFile', 'cacheProxy'] as const;
const TOP_KEYS = ['profile', 'profiles', ...SETTING_KEYS] as const;

export interface ConfigFile {
  /** The file read, or that would have been read. */
  path: string;
  /** How the path was chosen: `--config` (flag), `SLICEFS_CONFIG` (env) or the default location. */
  origin: Origin;
  exists: boolean;
  /** The file's own choice of profile (`"profile"`). */
  defaultProfile?: string;
  /** Settings at the top level: the profile used when none is chosen. */
  topLevel: ProfileSettings;
  profiles: Record<string, ProfileSettings>;
}

/** A chosen profile: its name (undefined: the top-level settings), how it was chosen, and its settings. */
export interface ChosenProfile {
  name?: string;
  origin: Origin;
  /** Human-readable: `--profile`, `SLICEFS_PROFILE`, `"profile" in FILE`; without a profile, `none…`. */
  from: string;
  settings: ProfileSettings;
  /** The settings are the file's top level (no profile chosen, or "default" naming them). */
  topLevel: boolean;
}

/** `$XDG_CONFIG_HOME/slicefs/config.json`, else `~/.config/slicefs/config.json`. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  // The XDG spec: a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config'), 'slicefs', 'config.json');
}

/** `~` and `~/…` as the home directory; a relative path from `base`. */
export function expandPath(path: string, base: string): string {
  if (path === '~' || path.startsWith('~/')) return join(homedir(), path.slice(1));
  return resolve(base, path);
}

/** A non-empty environment variable (an empty one counts as unset, as in most shells' tools). */
export function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Reads the config file named by `--config`, `SLICEFS_CONFIG` or the default location. A missing
 * default file is an empty config; a missing named one is an error.
 */
export async function readConfigFile(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<ConfigFile> {
  const named = flag ?? envValue(env, 'SLICEFS_CONFIG');
  const origin: Origin = flag !== undefined ? 'flag' : named !== undefined ? 'env' : 'default';
  const path = named !== undefined ? expandPath(named, process.cwd()) : defaultConfigPath(env);
  const which = origin === 'flag' ? '--config ' : origin === 'env' ? 'SLICEFS_CONFIG=' : 'config file ';
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw new SlicefsError('USAGE', `${which}${path}: cannot read (${fsProblem(e)})`);
  });
  if (!st) {
    if (origin !== 'default') throw new SlicefsError('USAGE', `${which}${path}: no such file`);
    return { path, origin, exists: false, topLevel: {}, profiles: {} };
  }
  if (!st.isFile()) throw new SlicefsError('USAGE', `${which}${path}: not a file`);
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new SlicefsError('USAGE', `${which}${path}: cannot read (${fsProblem(e)})`);
  });
  const parsed = parseConfig(text, path);
  const holdsToken = parsed.topLevel.token !== undefined || Object.values(parsed.profiles).some((p) => p.token !== undefined);
  if (holdsToken && st.mode & 0o077) {
    throw new SlicefsError('USAGE', `${path}: holds a token and is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  return { path, origin, exists: true, ...parsed };
}

/** The settings of a config file's text; `path` only names the file in errors. */
export function parseConfig(text: string, path: string): Pick<ConfigFile, 'defaultProfile' | 'topLevel' | 'profiles'> {
  const body = text.replace(/^\uFEFF/, '');
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    // JSON.parse's message quotes the text near the error (maybe a token) and often has no position.
    const at = jsonErrorAt(body) ?? { offset: 0, reason: 'not JSON' };
    const { line, column } = lineColumn(body, at.offset);
    throw new SlicefsError('USAGE', `${path}: not valid JSON at line ${line}, column ${column}: ${at.reason}`);
  }
  if (!isObject(raw)) throw new SlicefsError('USAGE', `${path}: must be a JSON object ({ "profiles": { … } })`);
  checkKeys(raw, TOP_KEYS, `${path}:`);
  if (raw.profile !== undefined && typeof raw.profile !== 'string') throw new SlicefsError('USAGE', `${path}: "profile" must be a string (a profile's name)`);
  const profiles: Record<string, ProfileSettings> = {};
  if (raw.profiles !== undefined) {
    if (!isObject(raw.profiles)) throw new SlicefsError('USAGE', `${path}: "profiles" must be an object of profiles by name`);
    for (const [name, p] of Object.entries(raw.profiles)) {
      if (!isObject(p)) throw new SlicefsError('USAGE', `${path}: profile ${shown(name)} must be an object`);
      profiles[name] = settingsOf(p, `${path}: profile ${shown(name)}:`);
    }
  }
  return { defaultProfile: raw.profile, topLevel: settingsOf(raw, `${path}:`, true), profiles };
}

/**
 * The profile to use: `--profile`, else `SLICEFS_PROFILE`, else the file's `"profile"`, else the
 * top-level settings. A profile the file does not have is an error (a typo must not silently fall
 * back to another service's settings); "default" names the top level when no profile has that name.
 */
export function chooseProfile(file: ConfigFile, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): ChosenProfile {
  const fromEnv = envValue(env, 'SLICEFS_PROFILE');
  const [name, origin, from]: [string | undefined, Origin, string] =
    flag !== undefined
      ? [flag, 'flag', '--profile']
      : fromEnv !== undefined
        ? [fromEnv, 'env', 'SLICEFS_PROFILE']
        : file.defaultProfile !== undefined
          ? [file.defaultProfile, 'profile', `"profile" in ${file.path}`]
          : [undefined, 'default', Object.keys(file.topLevel).length > 0 ? 'none: the top-level settings' : 'none'];
  if (name === undefined) return { origin, from, settings: file.topLevel, topLevel: true };
  const topLevel = !Object.hasOwn(file.profiles, name) && name === 'default';
  const settings = topLevel ? file.topLevel : Object.hasOwn(file.profiles, name) ? file.profiles[name] : undefined;
  if (!settings) {
    const known = Object.keys(file.profiles);
    const where = !file.exists ? `there is no config file (${file.path})` : known.length ? `${file.path} has ${known.join(', ')}` : `${file.path} has no profiles`;
    throw new SlicefsError('USAGE', `unknown profile ${shown(name)} (from ${from}): ${where}`);
  }
  return { name, origin, from, settings, topLevel };
}

function settingsOf(o: Record<string, unknown>, where: string, topLevel = false): ProfileSettings {
  if (!topLevel) checkKeys(o, SETTING_KEYS, where);
  const s: ProfileSettings = {};
  for (const k of SETTING_KEYS) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '') throw new SlicefsError('USAGE', `${where} ${shown(k)} must be a non-empty string`);
    s[k] = v;
  }
  if (s.cacheProxy !== undefined) {
    // The rules of --cache-proxy, checked when the file is read; the value is not shown: a URL with
    // user:password or a query may hold a secret.
    const url = parseCacheProxy(s.cacheProxy);
    if (url === undefined) throw new SlicefsError('USAGE', `${where} "cacheProxy" must be an http(s) URL without query or credentials (http(s)://HOST:PORT)`);
    s.cacheProxy = url;
  }
  if (s.token !== undefined && s.tokenFile !== undefined) throw new SlicefsError('USAGE', `${where} give one of "token" or "tokenFile", not both`);
  return s;
}

function checkKeys(o: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      // A near miss (storageURL, token_file) is the usual mistake: name the key it was meant to be.
      const near = allowed.find((a) => a.toLowerCase().replace(/_/g, '') === k.toLowerCase().replace(/[_-]/g, ''));
      throw new SlicefsError('USAGE', `${where} unknown key ${shown(k)}${near ? ` (did you mean "${near}"?)` : ''}; known: ${allowed.join(', ')}`);
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lastBreak = before.lastIndexOf('\n');
  return { line: before.split('\n').length, column: offset - lastBreak };
}

class JsonStop {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {}
}

/**
 * Where `text` stops being JSON, and why, in words that quote nothing of the text; undefined when
 * it is valid. A small scanner of RFC 8259 (it checks, it does not build values).
 */
export function jsonErrorAt(text: string): { offset: number; reason: string } | undefined {
  let i = 0;
  const stop = (reason: string): never => {
    throw new JsonStop(i, i >= text.length ? 'unexpected end of the file' : reason);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const string = () => {
    i++; // the opening quote
    for (;;) {
      const c = text[i];
      if (c === undefined) stop('unterminated string');
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) stop('bad \\u escape in a string');
          i += 5;
        } else if (text[i] !== undefined && '"\\/bfnrt'.includes(text[i])) i++;
        else stop('bad escape in a string');
        continue;
      }
      if (c < ' ') stop(c === '\n' ? 'line break inside a string' : 'control character inside a string');
      i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') stop(text[i] === '}' ? 'trailing comma' : 'expected a key in double quotes');
        string();
        ws();
        if (text[i] !== ':') stop("expected ':' after a key");
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        stop("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] === ']') stop('trailing comma');
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        stop("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    number.lastIndex = i;
    if (c === '-' || (c >= '0' && c <= '9')) {
      if (!number.exec(text)) stop('bad number');
      i = number.lastIndex;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    stop(c === "'" ? 'strings need double quotes' : 'expected a value');
  };
  try {
    if (text.trim() === '') return { offset: 0, reason: 'the file is empty' };
    value();
    ws();
    if (i < text.length) stop('unexpected text after the end');
    return undefined;
  } catch (e) {
    if (e instanceof JsonStop) return { offset: e.offset, reason: e.reason };
    throw e;
  }
}

/**
 * A name from the file or the command line as a message may show it: quoted, with control
 * characters escaped (a newline in a profile name must not break the one-line error) and cut short.
 */
function shown(name: string): string {
  return JSON.stringify(name.length > 60 ? `${name.slice(0, 60)}…` : name);
}
