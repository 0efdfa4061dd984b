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
import { expandPath } from './config-file.js';
import { cliEnv } from './daemon-protocol.js';
import { refuseOpenToOthers } from './private-file.js';
import { firstSet, fromEnv, fromFlag, fromProfile, profileLoader, type ProfileLoader, type Setting } from './settings.js';

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

export type { Setting } from './settings.js';

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

/** The Score options as given on the command line (no precedence applied yet). */
export interface ScoreFlags {
  storageUrl?: string;
  metadataUrl?: string;
  token?: string;
  tokenFile?: string;
  verifyConnection: boolean;
}

export function scoreFlagsOf(args: ScoreArgs): ScoreFlags {
  return { storageUrl: args['storage-url'], metadataUrl: args['metadata-url'], token: args.token, tokenFile: args['token-file'], verifyConnection: args['verify-connection'] === true };
}

/**
 * Every Score setting with its origin, by the precedence flag > environment > profile > default.
 * Reads the config file and any token file (refused when others may read it); checks nothing else
 * (a missing storage URL or token is for the caller to report: `info` shows it, `scoreEndpoint` fails).
 */
export async function resolvedSettings(args: ScoreArgs, env: NodeJS.ProcessEnv = cliEnv()): Promise<ResolvedSettings> {
  return resolveScoreSettings(scoreFlagsOf(args), env, profileLoader(args, env));
}

async function resolveScoreSettings(flags: ScoreFlags, env: NodeJS.ProcessEnv, loadProfile: ProfileLoader): Promise<ResolvedSettings> {
  const profile = await loadProfile();
  const { file, chosen } = profile;
  const storageUrl = firstSet([fromFlag(flags.storageUrl, 'storage-url'), fromEnv(env, 'STORAGE_URL'), fromProfile(profile, 'storageUrl')], { origin: 'default', from: 'not set' });
  // On ICGC ARGO both services are the same host path: the storage URL is the metadata URL's default.
  const metadataUrl = firstSet([fromFlag(flags.metadataUrl, 'metadata-url'), fromEnv(env, 'METADATA_URL'), fromProfile(profile, 'metadataUrl')], {
    value: storageUrl.value,
    origin: 'default',
    from: storageUrl.value === undefined ? 'not set' : 'default: the storage URL',
  });

  let token: ResolvedSettings['token'];
  const tokenFromEnv = fromEnv(env, 'ACCESSTOKEN') ?? fromEnv(env, 'SLICEFS_TOKEN');
  if (flags.token !== undefined) token = { value: flags.token, origin: 'flag', from: '--token' };
  else if (flags.tokenFile !== undefined) {
    const path = flags.tokenFile;
    token = { value: await readTokenFile(path, `--token-file ${path}`), origin: 'flag', from: '--token-file', file: path };
  } else if (tokenFromEnv !== undefined) token = tokenFromEnv;
  else if (chosen.settings.token !== undefined) token = { value: chosen.settings.token, origin: 'profile', from: profile.label };
  else if (chosen.settings.tokenFile !== undefined) {
    const path = expandPath(chosen.settings.tokenFile, dirname(file.path));
    token = { value: await readTokenFile(path, `tokenFile ${path} (${profile.label} in ${file.path})`), origin: 'profile', from: `${profile.label}, tokenFile`, file: path };
  } else token = { origin: 'default', from: 'not set' };

  return {
    config: { value: file.path, exists: file.exists, origin: file.origin, from: file.origin === 'flag' ? '--config' : file.origin === 'env' ? 'SLICEFS_CONFIG' : 'the default location' },
    profile: { value: chosen.name, origin: chosen.origin, from: chosen.from },
    storageUrl,
    metadataUrl,
    token,
  };
}

/**
 * A command's access to Score objects: the settings, resolved (the config file and a token file
 * read, the connection checked with `--verify-connection`) only when a Score object is first named,
 * so a command on plain URLs never reads a token.
 */
export interface ScoreAccess {
  endpoint(warn: (line: string) => void): Promise<ScoreEndpoint>;
}

export function scoreAccess(flags: ScoreFlags, env: NodeJS.ProcessEnv, profile: ProfileLoader): ScoreAccess {
  return {
    async endpoint(warn) {
      const endpoint = endpointOf(await resolveScoreSettings(flags, env, profile), warn);
      if (flags.verifyConnection) await checkConnection(endpoint);
      return endpoint;
    },
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
  return scoreAccessOf(args).endpoint(warn);
}

/** The Score access of a command that reads no other setting from the config file. */
export function scoreAccessOf(args: ScoreArgs): ScoreAccess {
  const env = cliEnv();
  return scoreAccess(scoreFlagsOf(args), env, profileLoader(args, env));
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
