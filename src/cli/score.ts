/**
 * Where Score objects come from, from the command line, the environment and the config file's
 * profile (./config-file.ts); with the config file, the only layer that reads any of them.
 *
 * Every setting is taken from the first of: its flag, its environment variable, the chosen
 * profile, its default.
 *
 *   storage URL   --storage-url    STORAGE_URL                   storageUrl
 *   metadata URL  --metadata-url   METADATA_URL                  metadataUrl    (default: the storage URL)
 *   token         --token,         ACCESSTOKEN, SLICEFS_TOKEN    token,
 *                 --token-file                                  tokenFile
 *
 * `--token` is accepted with a warning (it shows in the process list); a token file, `--token-file`
 * or a profile's `tokenFile`, is refused when others may read it. The token is never printed,
 * logged or put in an error: `slicefs info` shows it masked (./info.ts). `--verify-connection`
 * (its default is the command's) is carried out by `scoreEndpoint`.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Argv } from 'yargs';
import { DEFAULT_TRANSPORT } from '../config.js';
import { SlicefsError } from '../errors.js';
import type { ScoreEndpoint } from '../source/score-source.js';
import { chooseProfile, envValue, expandPath, readConfigFile, type Origin } from './config-file.js';
import { cliEnv } from './daemon-protocol.js';
import { refuseOpenToOthers } from './private-file.js';

export type { Origin } from './config-file.js';

export interface ScoreArgs {
  'object-id'?: string[];
  'storage-url'?: string;
  'metadata-url'?: string;
  token?: string;
  'token-file'?: string;
  config?: string;
  profile?: string;
  'verify-connection'?: boolean;
}

/** The Score endpoint options without `--object-id` (for commands that name no object, or one their own way). */
export function withScoreEndpointOptions<T>(y: Argv<T>, defaults: { verifyConnection?: boolean } = {}): Argv<T> {
  return y
    .option('storage-url', { type: 'string', describe: 'the Score storage service (default: $STORAGE_URL, else the profile\'s storageUrl)' })
    .option('metadata-url', { type: 'string', describe: 'the Score metadata service (default: $METADATA_URL, else the profile\'s metadataUrl, else the storage URL)' })
    .option('token-file', { type: 'string', describe: 'file holding the access token (default: $ACCESSTOKEN or $SLICEFS_TOKEN, else the profile\'s); must not be readable by others' })
    .option('token', { type: 'string', describe: 'the access token itself (visible in the process list: prefer --token-file or $ACCESSTOKEN)' })
    .option('config', { type: 'string', describe: 'the config file of profiles (default: $SLICEFS_CONFIG, else $XDG_CONFIG_HOME/slicefs/config.json)' })
    .option('profile', { type: 'string', describe: 'the config file\'s profile to use (default: $SLICEFS_PROFILE, else the file\'s "profile")' })
    .option('verify-connection', {
      type: 'boolean',
      default: defaults.verifyConnection,
      describe: 'check the token and that the object storage answers before starting (--no-verify-connection: do not)',
    }) as Argv<T>;
}

export function withScoreOptions<T>(y: Argv<T>, defaults: { verifyConnection?: boolean } = {}): Argv<T> {
  return withScoreEndpointOptions(y, defaults).option('object-id', {
    type: 'string',
    array: true,
    describe: 'a Score object id (ICGC ARGO and other Score storage services)',
  }) as Argv<T>;
}

/** One resolved setting: its value (undefined: not set anywhere) and where it came from. */
export interface Setting {
  value?: string;
  origin: Origin;
  /** Human-readable: `--storage-url`, `STORAGE_URL`, `profile argo`; for a default, what it is (`not set`, `default: the storage URL`). */
  from: string;
}

export interface ResolvedSettings {
  /** The config file read (or looked for) and whether it exists. */
  config: Setting & { value: string; exists: boolean };
  /** The profile; value undefined: the config file's top-level settings (or none). */
  profile: Setting;
  storageUrl: Setting;
  metadataUrl: Setting;
  /** The token itself (callers show it masked, never whole); `file`: the file it was read from. */
  token: Setting & { file?: string };
}

/**
 * Every Score setting with its origin, by the precedence flag > environment > profile > default.
 * Reads the config file and any token file (refused when others may read it); checks nothing else
 * (a missing storage URL or token is for the caller to report: `info` shows it, `scoreEndpoint` fails).
 */
export async function resolvedSettings(args: ScoreArgs, env: NodeJS.ProcessEnv = cliEnv()): Promise<ResolvedSettings> {
  const file = await readConfigFile(args.config, env);
  const chosen = chooseProfile(file, args.profile, env);
  const profileName = chosen.topLevel ? 'config file' : `profile ${chosen.name}`;
  const fromProfile = (key: 'storageUrl' | 'metadataUrl'): Setting | undefined =>
    chosen.settings[key] === undefined ? undefined : { value: chosen.settings[key], origin: 'profile', from: profileName };
  const pick = (flag: string, envName: string, key: 'storageUrl' | 'metadataUrl'): Setting | undefined => {
    const f = args[flag as 'storage-url' | 'metadata-url'];
    if (f !== undefined) return { value: f, origin: 'flag', from: `--${flag}` };
    const e = envValue(env, envName);
    if (e !== undefined) return { value: e, origin: 'env', from: envName };
    return fromProfile(key);
  };
  const storageUrl = pick('storage-url', 'STORAGE_URL', 'storageUrl') ?? { origin: 'default', from: 'not set' };
  // On ICGC ARGO both services are the same host path: the storage URL is the metadata URL's default.
  const metadataUrl = pick('metadata-url', 'METADATA_URL', 'metadataUrl') ?? { value: storageUrl.value, origin: 'default', from: storageUrl.value === undefined ? 'not set' : 'default: the storage URL' };

  let token: ResolvedSettings['token'];
  if (args.token !== undefined) token = { value: args.token, origin: 'flag', from: '--token' };
  else if (args['token-file'] !== undefined) {
    const path = args['token-file'];
    token = { value: await readTokenFile(path, `--token-file ${path}`), origin: 'flag', from: '--token-file', file: path };
  } else if (envValue(env, 'ACCESSTOKEN') !== undefined) token = { value: envValue(env, 'ACCESSTOKEN'), origin: 'env', from: 'ACCESSTOKEN' };
  else if (envValue(env, 'SLICEFS_TOKEN') !== undefined) token = { value: envValue(env, 'SLICEFS_TOKEN'), origin: 'env', from: 'SLICEFS_TOKEN' };
  else if (chosen.settings.token !== undefined) token = { value: chosen.settings.token, origin: 'profile', from: profileName };
  else if (chosen.settings.tokenFile !== undefined) {
    const path = expandPath(chosen.settings.tokenFile, dirname(file.path));
    token = { value: await readTokenFile(path, `tokenFile ${path} (${profileName} in ${file.path})`), origin: 'profile', from: `${profileName}, tokenFile`, file: path };
  } else token = { origin: 'default', from: 'not set' };

  return {
    config: { value: file.path, exists: file.exists, origin: file.origin, from: file.origin === 'flag' ? '--config' : file.origin === 'env' ? 'SLICEFS_CONFIG' : 'the default location' },
    profile: { value: chosen.name, origin: chosen.origin, from: chosen.from },
    storageUrl,
    metadataUrl,
    token,
  };
}

/** A token from a file no one else may read; `what` names it in errors. */
async function readTokenFile(path: string, what: string): Promise<string> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new SlicefsError('USAGE', `${what}: no such file`);
  refuseOpenToOthers(st, what);
  const token = (await readFile(path, 'utf8')).trim();
  if (!token) throw new SlicefsError('USAGE', `${what}: empty`);
  return token;
}

const isHttpUrl = (u: string) => /^https?:\/\//i.test(u);

/**
 * The storage service, metadata service and token for Score objects; errors say what to set. With
 * `--verify-connection`, the connection is checked too (../source/score-connection.ts), so every
 * command that takes the option honours it through this one call.
 */
export async function scoreEndpoint(args: ScoreArgs, warn: (line: string) => void): Promise<ScoreEndpoint> {
  const endpoint = endpointOf(await resolvedSettings(args), warn);
  if (args['verify-connection']) await checkConnection(endpoint);
  return endpoint;
}

/** verifyScoreConnection over a transport of its own (loaded only now: undici costs start-up). */
async function checkConnection(endpoint: ScoreEndpoint): Promise<void> {
  const [{ HttpTransport }, { verifyScoreConnection }, { Stats }] = await Promise.all([
    import('../transport/http-transport.js'),
    import('../source/score-connection.js'),
    import('../stats.js'),
  ]);
  const api = new HttpTransport({ ...DEFAULT_TRANSPORT, connectionsPerOrigin: 2 }, new Stats());
  try {
    await verifyScoreConnection(api, endpoint);
  } finally {
    await api.close();
  }
}

/** The endpoint of resolved settings (for a caller that also shows them: `info`); errors say what to set. */
export function endpointOf(s: ResolvedSettings, warn: (line: string) => void): ScoreEndpoint {
  const storageUrl = s.storageUrl.value;
  if (!storageUrl) throw new SlicefsError('USAGE', 'Score objects need the storage service: --storage-url URL or STORAGE_URL (or storageUrl in a config profile)');
  if (!isHttpUrl(storageUrl)) throw new SlicefsError('USAGE', `the storage URL (from ${s.storageUrl.from}) must be an http(s) URL`);
  const metadataUrl = s.metadataUrl.value ?? storageUrl;
  if (!isHttpUrl(metadataUrl)) throw new SlicefsError('USAGE', `the metadata URL (from ${s.metadataUrl.from}) must be an http(s) URL`);
  if (s.token.from === '--token') warn('warning: --token shows the token in the process list; use --token-file or ACCESSTOKEN');
  const token = s.token.value;
  if (!token) throw new SlicefsError('USAGE', 'no access token: set ACCESSTOKEN (or SLICEFS_TOKEN), or give --token-file FILE');
  return { storageUrl, metadataUrl, token };
}
