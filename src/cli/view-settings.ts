/**
 * `view`'s settings, resolved once from the parsed flags, the environment and the config file's
 * profile (precedence flag > env > profile > default: ./settings.ts) into one `ViewSettings`; the
 * run (./view-run.ts) takes that object and never sees `args`. Every check of the options alone
 * (their combinations, numbers, sizes, modes, URLs) is made here, before anything is opened or
 * fetched: a bad option is one line, exit 2, and costs nothing.
 *
 * The credentials of a source are not read here but on its first use (a token file when a Score
 * object is named, a key when an encrypted file is opened): a view of a plain URL reads none.
 */
import type { CacheConfig, DiskCacheConfig, TransportConfig } from '../config.js';
import { SlicefsError } from '../errors.js';
import { safeUrl } from '../util/redact.js';
import type { Modes } from '../util/safe-fs.js';
import { safeCommandLine } from './command-line.js';
import { cacheConfig, timestamped, transportConfig } from './common.js';
import { cacheRoot, diskCacheConfig } from './disk-cache-options.js';
import { modesOf } from './mode-options.js';
import { cacheProxySetting, type ProfileLoader, type Setting } from './settings.js';
import { sourceSettingsOf, type SourceSettings } from './source-registry.js';
import { VIEW_COMMAND_LINE, type ViewArgs } from './view.js';

/** More formatting threads than this only cost memory: one core formats ~0.5 GB of SAM a second. */
export const MAX_THREADS = 64;

/** What to read: exactly one of these. */
export type ViewInputChoice =
  | { kind: 'url'; url: string }
  | { kind: 'file'; path: string }
  | { kind: 'manifest'; manifest: string; path: string }
  | { kind: 'score'; objectId: string; indexObjectId?: string }
  | { kind: 'ghga' };

export interface ViewSettings {
  input: ViewInputChoice;
  /** `--index-url`: the index's URL or file, when given. */
  indexUrl?: string;
  reference?: { file: string } | { url: string };
  query: string[];
  bedFile?: string;
  contained: boolean;
  output: {
    /** `-o FILE`; undefined: stdout. */
    file?: string;
    format: 'sam' | 'bam' | 'ubam';
    header: 'with' | 'without' | 'only';
    /** The @PG line's `CL:` (allow-listed options, URLs redacted), or undefined for `--no-PG`. */
    pgCommandLine?: string;
    /** Formatting threads; undefined: the view's default. */
    threads?: number;
    modes: Modes;
  };
  stats: boolean;
  transport: TransportConfig;
  /** Where `transport.cacheProxy` came from. */
  cacheProxy: Setting<string | false>;
  cache: CacheConfig;
  /** The disk tier; undefined: off (`--disk-cache-size 0`). */
  disk?: DiskCacheConfig;
  /** The cache root (`--cache-dir` > $XDG_CACHE_HOME/slicefs > ~/.cache/slicefs): the index cache is under it. */
  cacheRoot: string;
  indexCache: boolean;
  sources: SourceSettings;
}

/**
 * The output format from --output-format, -b and -u, as samtools reads -b and -u (-u implies -b);
 * a contradiction (`--output-format sam -b`) is bad input.
 */
function outputFormat(args: ViewArgs): 'sam' | 'bam' | 'ubam' {
  const named = args['output-format'] as 'sam' | 'bam' | 'ubam' | undefined;
  const flagged = args.uncompressed ? 'ubam' : args.bam ? 'bam' : undefined;
  if (named && flagged && named !== flagged) throw new SlicefsError('USAGE', `--output-format ${named} contradicts ${args.uncompressed ? '-u' : '-b'}`);
  return named ?? flagged ?? 'sam';
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

function inputOf(args: ViewArgs): ViewInputChoice {
  if (args['input-file']) return { kind: 'file', path: args['input-file'] };
  if (args['object-id']) {
    if (args['object-id'].length !== 1) throw new SlicefsError('USAGE', 'view reads one --object-id');
    return { kind: 'score', objectId: args['object-id'][0], indexObjectId: args['index-object-id'] };
  }
  if (args.manifest) {
    if (!args.path) throw new SlicefsError('USAGE', '--manifest needs --path NAME (an entry of the manifest, or its object id)');
    return { kind: 'manifest', manifest: args.manifest, path: args.path };
  }
  if (args.ghga) return { kind: 'ghga' };
  const url = args.url;
  if (!url || !isUrl(url)) throw new SlicefsError('USAGE', `--url: not an http(s) URL: '${safeUrl(url ?? '')}'`);
  return { kind: 'url', url };
}

/**
 * `view`'s settings from its flags (as yargs parsed them), the environment and the profile (read
 * only if a setting needs it). `argv` is the command line the @PG line shows (allow-listed).
 */
export async function resolveViewSettings(args: ViewArgs, env: NodeJS.ProcessEnv, profile: ProfileLoader, argv: string[] = process.argv.slice(2)): Promise<ViewSettings> {
  const cacheProxy = await cacheProxySetting(args['cache-proxy'], env, profile);
  const given = [args.url, args['input-file'], args.manifest, args['object-id'], args.ghga ? true : undefined].filter((x) => x !== undefined).length;
  if (given !== 1) throw new SlicefsError('USAGE', 'give exactly one of --url, --input-file, --manifest (with --path), --object-id or --ghga (with --accession)');
  if (args.threads !== undefined && !(Number.isInteger(args.threads) && args.threads >= 0 && args.threads <= MAX_THREADS)) {
    throw new SlicefsError('USAGE', `--threads must be a whole number from 0 to ${MAX_THREADS}`);
  }
  if (args['header-only'] && !args.header) throw new SlicefsError('USAGE', '--header-only and --no-header contradict each other');
  const disk = diskCacheConfig(args, env);
  const modes = modesOf(args);
  const transport = transportConfig({ ...args, 'cache-proxy': cacheProxy.value }, timestamped);
  const sources = sourceSettingsOf(args, env, profile);
  const input = inputOf(args);
  if (args['reference-file'] && args['reference-url']) throw new SlicefsError('USAGE', 'give one of --reference-file or --reference-url');
  const referenceUrl = args['reference-url'];
  if (referenceUrl !== undefined && !args['reference-file'] && !isUrl(referenceUrl)) throw new SlicefsError('USAGE', `--reference-url: not an http(s) URL: '${safeUrl(referenceUrl)}'`);
  return {
    input,
    indexUrl: args['index-url'],
    reference: args['reference-file'] ? { file: args['reference-file'] } : referenceUrl ? { url: referenceUrl } : undefined,
    query: args.query ?? [],
    bedFile: args['bed-query'],
    contained: args.contained,
    output: {
      file: args.output,
      format: outputFormat(args),
      header: args['header-only'] ? 'only' : args.header ? 'with' : 'without',
      // Allow-listed options only, every URL redacted: the file may be shared (./command-line.ts).
      pgCommandLine: args.pg ? safeCommandLine('slicefs', argv, VIEW_COMMAND_LINE) : undefined,
      threads: args.threads,
      modes,
    },
    stats: args.stats,
    transport,
    cacheProxy,
    cache: cacheConfig(args),
    disk,
    cacheRoot: cacheRoot(args['cache-dir'], env),
    indexCache: args['index-cache'],
    sources,
  };
}
