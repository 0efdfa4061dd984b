/**
 * What every command shares: turning options into layer Configs, the one-line error and exit code,
 * and stderr messages. The only place (with the command modules) that reads argv and env.
 */
import type { Argv } from 'yargs';
import { DEFAULT_CACHE, DEFAULT_READER, DEFAULT_TRANSPORT, type CacheConfig, type ReaderConfig, type TransportConfig } from '../config.js';
import { SlicefsError, messageOf } from '../errors.js';
import { parseCacheProxy } from '../transport/cache-proxy.js';
import { safeUrl } from '../util/redact.js';
import { parseByteSize } from '../util/size.js';
import { chooseProfile, readConfigFile } from './config-file.js';

export const EXIT_FAILURE = 1;
/** Bad input (usage, manifest): like most Unix tools, 2. */
export const EXIT_USAGE = 2;

/** Where messages go instead of stderr (a mount's --log-file), with their level. */
let logSink: ((level: 'ERROR' | 'WARN' | 'INFO' | 'DEBUG', msg: string) => void) | undefined;
let levelOf: (msg: string) => 'ERROR' | 'WARN' | 'INFO' = () => 'INFO';

export function setLogSink(sink: typeof logSink, classify?: typeof levelOf): void {
  logSink = sink;
  if (classify) levelOf = classify;
}

export function say(msg: string): void {
  if (logSink) logSink(levelOf(msg), msg);
  else process.stderr.write(`slicefs: ${msg}\n`);
}

/** A `--verbose` line: timestamped on stderr, DEBUG in a log file. */
export function timestamped(msg: string): void {
  if (logSink) logSink('DEBUG', msg);
  else process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
}

/** A line printed as it is (the stats line), or INFO in a log file. */
export function emit(line: string): void {
  if (logSink) logSink('INFO', line);
  else process.stderr.write(`${line}\n`);
}

/** Prints the one-line error and sets the exit code. */
export function reportError(err: unknown): void {
  const msg = messageOf(err).split('\n')[0];
  say(`error: ${msg}`);
  process.exitCode = err instanceof SlicefsError && (err.code === 'USAGE' || err.code === 'MANIFEST') ? EXIT_USAGE : EXIT_FAILURE;
}

export interface TransportArgs {
  connections: number;
  verbose: boolean;
  timeout: number;
  /** `--cache-proxy` (mount, view, download); false or '' (`--no-cache-proxy`): none. */
  'cache-proxy'?: string | false;
}

export interface CacheArgs {
  'cache-size': string;
  'block-size': string;
  'readahead-max': string;
}

export function transportConfig(a: TransportArgs, log: (l: string) => void): TransportConfig {
  if (!Number.isInteger(a.connections) || a.connections < 1) throw new SlicefsError('USAGE', '--connections must be a positive integer');
  return {
    ...DEFAULT_TRANSPORT,
    connectionsPerOrigin: a.connections,
    // The retry budget stays 3 s inside the per-operation timeout.
    retry: { ...DEFAULT_TRANSPORT.retry, budgetMs: Math.max(1000, a.timeout * 1000 - 3000) },
    log: a.verbose ? log : undefined,
    cacheProxy: cacheProxyOf(a['cache-proxy']),
  };
}

/** The environment variable that sets `--cache-proxy` for every mount, view and download. */
export const CACHE_PROXY_ENV = 'SLICEFS_CACHE_PROXY';

/** `--cache-proxy URL`, declared once for mount, view and download (default: $SLICEFS_CACHE_PROXY). */
export function withCacheProxyOption<T>(y: Argv<T>): Argv<T> {
  const fromEnv = process.env[CACHE_PROXY_ENV];
  return y.option('cache-proxy', {
    type: 'string',
    default: fromEnv === '' ? undefined : fromEnv,
    defaultDescription: `$${CACHE_PROXY_ENV}`,
    describe: 'read object bytes through this shared cache tier (http(s)://HOST:PORT, docs/deploy/cluster.md); API calls go direct',
  }) as unknown as Argv<T>;
}

/**
 * The config file's `cacheProxy` (the chosen profile's) as `--cache-proxy` when neither the flag nor
 * $SLICEFS_CACHE_PROXY set one: flag > environment > profile > none. `--no-cache-proxy` (false or
 * '') is a choice too, and keeps the file's tier off. For mount, view and download, before
 * transportConfig.
 */
export async function applyConfigCacheProxy(args: TransportArgs & { config?: string; profile?: string }, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (args['cache-proxy'] !== undefined) return;
  const chosen = chooseProfile(await readConfigFile(args.config, env), args.profile, env);
  if (chosen.settings.cacheProxy !== undefined) args['cache-proxy'] = chosen.settings.cacheProxy;
}

function cacheProxyOf(v: string | false | undefined): string | undefined {
  if (v === undefined || v === false || v === '') return undefined;
  const url = parseCacheProxy(v);
  // Shown as given, unless it holds what may be a secret (user:password, a query).
  if (url === undefined) throw new SlicefsError('USAGE', `--cache-proxy: not an http(s) URL without query or credentials: '${/[@?#]/.test(v) ? safeUrl(v) : v}'`);
  return url;
}

export function cacheConfig(a: Pick<CacheArgs, 'cache-size' | 'block-size'>): CacheConfig {
  const blockSize = parseByteSize(a['block-size'], '--block-size');
  if (blockSize < 4096 || blockSize > 64 * 1024 * 1024 || (blockSize & (blockSize - 1)) !== 0) {
    throw new SlicefsError('USAGE', '--block-size must be a power of two between 4K and 64M');
  }
  return { ...DEFAULT_CACHE, blockSize, budgetBytes: parseByteSize(a['cache-size'], '--cache-size') };
}

export function readerConfig(a: CacheArgs): ReaderConfig {
  const max = parseByteSize(a['readahead-max'], '--readahead-max');
  if (max > 1024 * 1024 * 1024) throw new SlicefsError('USAGE', '--readahead-max must be at most 1G');
  return { ...DEFAULT_READER, readaheadMaxBytes: max, readaheadInitialBytes: Math.min(DEFAULT_READER.readaheadInitialBytes, max) };
}
