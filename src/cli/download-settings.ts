/**
 * `download`'s settings (and `download --ghga`'s), resolved once from the parsed flags, the
 * environment and the config file's profile (precedence: ./settings.ts) into one
 * `DownloadSettings`: the runs (./download-run.ts, ./ghga-run.ts) and the plumbing they share
 * (./download-plumbing.ts) take that object, never `args`. Every check of the options alone is made
 * here, before anything is contacted or written.
 */
import type { DiskCacheConfig, TransportConfig } from '../config.js';
import type { OutputLayout } from '../download/layout.js';
import { SlicefsError } from '../errors.js';
import type { Modes } from '../util/safe-fs.js';
import { parseByteSize } from '../util/size.js';
import { checkTimeout, say, transportConfig } from './common.js';
import { diskCacheConfig } from './disk-cache-options.js';
import type { DownloadArgs } from './download.js';
import { modesOf } from './mode-options.js';
import { cacheProxySetting, type ProfileLoader } from './settings.js';
import { sourceSettingsOf, type SourceSettings } from './source-registry.js';

/** Downloads are not bound by the FUSE operation timeout: the data transport's budget is --timeout, 3 s more than the API's. */
const DATA_TIMEOUT_EXTRA_S = 3;

/** What to download: exactly one of these. */
export type DownloadInput =
  | { kind: 'manifest'; manifest: string; paths: string[] }
  | { kind: 'url'; url: string }
  | { kind: 'score'; objectIds: string[] }
  | { kind: 'ghga' };

export interface DownloadSettings {
  input: DownloadInput;
  outputDir: string;
  /** `bundle` (a score manifest's tree, written as paths) or an output layout. */
  layout: OutputLayout | 'bundle';
  index: boolean;
  decrypt: boolean;
  partSize: number;
  /** Bytes per second, when limited. */
  rate?: number;
  /** --file-mode, --dir-mode. */
  modes: Modes;
  parallel: number;
  force: boolean;
  /** `--verify`: check the files present, download nothing. */
  verify: boolean;
  quiet: boolean;
  json: boolean;
  /** The API's transport (--timeout), its `--verbose` lines as messages. */
  apiTransport: TransportConfig;
  /** The data's transport (--timeout + 3 s); the plumbing sends its `--verbose` lines through the progress display. */
  dataTransport: TransportConfig;
  /** The disk tier (index files only); undefined: off, or `--ghga`. */
  disk?: DiskCacheConfig;
  sources: SourceSettings;
}

/** `download`'s settings from its flags (as yargs parsed them), the environment and the profile (read only if a setting needs it). */
export async function resolveDownloadSettings(args: DownloadArgs, env: NodeJS.ProcessEnv, profile: ProfileLoader): Promise<DownloadSettings> {
  const cacheProxy = (await cacheProxySetting(args['cache-proxy'], env, profile)).value;
  const sources = sourceSettingsOf(args, env, profile);
  if (args.ghga) {
    if (args.manifest || args.url || args['object-id']) throw new SlicefsError('USAGE', '--ghga downloads a work package: no --manifest, --url or --object-id with it');
  } else {
    const given = [args.manifest, args.url, args['object-id']].filter((x) => x !== undefined).length;
    if (given !== 1) throw new SlicefsError('USAGE', 'give one of --manifest FILE, --url URL or --object-id ID');
  }
  if (!Number.isInteger(args.parallel) || args.parallel < 1 || args.parallel > 256) throw new SlicefsError('USAGE', '--parallel must be an integer from 1 to 256');
  // Checked here: the data transport is given --timeout + 3 s, which would hide a negative one.
  checkTimeout(args.timeout);
  const partSize = parseByteSize(args['part-size'], '--part-size');
  if (partSize < 64 * 1024) throw new SlicefsError('USAGE', '--part-size must be at least 64K');
  const rate = args['limit-rate'] !== undefined ? parseByteSize(args['limit-rate'], '--limit-rate') : undefined;
  if (rate !== undefined && rate < 1024) throw new SlicefsError('USAGE', '--limit-rate must be at least 1K (bytes per second)');
  const modes = modesOf(args);
  // --ghga keeps no index files: it has no disk tier (and does not check its options).
  const disk = args.ghga ? undefined : diskCacheConfig(args, env);
  const transportArgs = { ...args, 'cache-proxy': cacheProxy };
  const dataTransport = transportConfig({ ...transportArgs, timeout: args.timeout + DATA_TIMEOUT_EXTRA_S }, say);
  const apiTransport = args.ghga ? transportConfig(transportArgs, say) : dataTransport;
  const layout = args['output-layout'] as OutputLayout | 'bundle';
  let input: DownloadInput;
  if (args.ghga) input = { kind: 'ghga' };
  else if (args.manifest) input = { kind: 'manifest', manifest: args.manifest, paths: args.path ?? [] };
  else if (args['object-id']) {
    if (layout === 'bundle') throw new SlicefsError('USAGE', '--output-layout bundle needs a score manifest');
    input = { kind: 'score', objectIds: args['object-id'] };
  } else {
    if (!/^https?:\/\//i.test(args.url!)) throw new SlicefsError('USAGE', '--url must be an http(s) URL');
    input = { kind: 'url', url: args.url! };
  }
  return {
    input,
    outputDir: args['output-dir'],
    layout,
    index: args.index,
    decrypt: args.decrypt,
    partSize,
    rate,
    modes,
    parallel: args.parallel,
    force: args.force,
    verify: args.verify,
    quiet: args.quiet,
    json: args.json,
    apiTransport,
    dataTransport,
    disk,
    sources,
  };
}
