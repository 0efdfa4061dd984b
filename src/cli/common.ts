/**
 * What every command shares: turning options into layer Configs, the one-line error and exit code,
 * and stderr messages. The only place (with the command modules) that reads argv and env.
 *
 * The one error path: every failure ends as one line `slicefs: error: …` (`reportError`), exit 2 for
 * bad input (`USAGE`, `MANIFEST`: options, paths the user gave, an unusable output directory) and 1
 * for a run that failed. A failed file-system call is told in words, naming the part of the path at
 * fault (util/fs-problem.ts). What escapes a command's own handling (an exception thrown from a
 * callback, a rejection nobody awaited, an 'error' event on stdout) reaches `installFatalHandlers`,
 * which reports it the same way: no stack trace reaches the user unless SLICEFS_DEBUG=1 asks.
 */
import { access, constants } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { DEFAULT_CACHE, DEFAULT_READER, DEFAULT_TRANSPORT, type CacheConfig, type ReaderConfig, type TransportConfig } from '../config.js';
import { SlicefsError, isFsError, messageOf } from '../errors.js';
import { parseCacheProxy } from '../transport/cache-proxy.js';
import { describeFsError, fsProblem, removeMadeDirs } from '../util/fs-problem.js';
import { makeDirsWithMode, PRIVATE_MODES } from '../util/safe-fs.js';
import { printable } from '../util/printable.js';
import { safeUrl } from '../util/redact.js';
import { parseByteSize } from '../util/size.js';
import { CACHE_PROXY_ENV, cacheProxySetting, profileLoader, type ProfileLoader } from './settings.js';

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

/** Set (to `1`) to see the stack trace of every error after its one line. */
export const DEBUG_ENV = 'SLICEFS_DEBUG';

/** The one line an error is told in (without `error: `). */
export function errorLine(err: unknown): string {
  const msg = isFsError(err) ? describeFsError(err) : messageOf(err);
  // The first line, and no control character in it: a name from a file or a server (a contig, a
  // profile, a page's title) must neither break the line nor send escape sequences to a terminal.
  return printable(msg.split('\n')[0]!);
}

/** Prints the one-line error and sets the exit code. */
export function reportError(err: unknown): void {
  say(`error: ${errorLine(err)}`);
  if (process.env[DEBUG_ENV] === '1') process.stderr.write(`${traceOf(err)}\n`);
  process.exitCode = err instanceof SlicefsError && (err.code === 'USAGE' || err.code === 'MANIFEST') ? EXIT_USAGE : EXIT_FAILURE;
}

/** The stack trace of `err` and of its causes, for SLICEFS_DEBUG=1. */
function traceOf(err: unknown): string {
  const lines: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    lines.push(`${depth > 0 ? 'caused by: ' : ''}${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  return lines.join('\n');
}

/**
 * A failed fs call on a path the user gave (`--output-dir`, `-o`, a mount point) as bad input: one
 * line naming the option and the real cause, exit 2. Anything else is passed on as it is.
 */
export function userPathError(err: unknown, option: string, path: string): unknown {
  if (!isFsError(err)) return err;
  return new SlicefsError('USAGE', `${option} ${path}: ${fsProblem(err)}`, { cause: err });
}

/**
 * An output directory the user named (`--output-dir`; the directory of keygen's `--out`, `given`), made ready: created with
 * its parents and writable, else bad input (exit 2) naming the real cause (a read-only file system,
 * a file in the way, a pseudo file system). Returns the first directory it created, for
 * `removeMadeDirs` after a run that failed before writing anything (nothing is left behind).
 */
export async function prepareOutputDir(dir: string, option: string, given = dir, dirMode = PRIVATE_MODES.dir): Promise<string | undefined> {
  let created: string | undefined;
  try {
    created = await makeDirsWithMode(dir, dirMode);
    await access(dir, constants.W_OK);
    return created;
  } catch (err) {
    await removeMadeDirs(dir, created).catch(() => {});
    throw userPathError(err, option, given);
  }
}

/** Where an unhandled rejection goes instead of ending the process (a mount keeps serving). */
let onStrayRejection: ((reason: unknown) => void) | undefined;

/** A long-running command (the mount) keeps running after a stray rejection: `handler` counts and logs it. */
export function keepRunningOnRejection(handler: (reason: unknown) => void): void {
  onStrayRejection = handler;
}

/**
 * The last line of defence, installed once by main.ts: an exception or rejection that no command
 * handled, and an 'error' event on stdout, become the one-line error and an exit (1), never Node's
 * trace. A closed stdout (EPIPE: `slicefs manifest … | head`) ends quietly with the exit code so far.
 */
export function installFatalHandlers(): void {
  const fatal = (err: unknown) => {
    try {
      reportError(err);
    } finally {
      process.exit(process.exitCode === undefined || process.exitCode === 0 ? EXIT_FAILURE : process.exitCode);
    }
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', (reason) => (onStrayRejection ? onStrayRejection(reason) : fatal(reason)));
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    fatal(err);
  });
  // Nothing useful is left to say when stderr itself is gone.
  process.stderr.on('error', () => process.exit(process.exitCode ?? EXIT_FAILURE));
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

/** The longest `--timeout`: a day without progress is a hang, not a slow server. */
const MAX_TIMEOUT_S = 86_400;

/** `--timeout` checked: a positive number of seconds (yargs gives NaN for `--timeout abc`). */
export function checkTimeout(seconds: number): void {
  if (!(seconds > 0 && seconds <= MAX_TIMEOUT_S)) throw new SlicefsError('USAGE', `--timeout must be a number of seconds, more than 0 and at most ${MAX_TIMEOUT_S}`);
}

export function transportConfig(a: TransportArgs, log: (l: string) => void): TransportConfig {
  if (!Number.isInteger(a.connections) || a.connections < 1) throw new SlicefsError('USAGE', '--connections must be a positive integer');
  checkTimeout(a.timeout);
  return {
    ...DEFAULT_TRANSPORT,
    connectionsPerOrigin: a.connections,
    // The retry budget stays 3 s inside the per-operation timeout.
    retry: { ...DEFAULT_TRANSPORT.retry, budgetMs: Math.max(1000, a.timeout * 1000 - 3000) },
    log: a.verbose ? log : undefined,
    cacheProxy: cacheProxyOf(a['cache-proxy']),
  };
}

export { CACHE_PROXY_ENV } from './settings.js';

/**
 * `--cache-proxy URL`, declared once for mount, view and download. Its environment variable and the
 * profile's `cacheProxy` are below it, applied by the resolver (./settings.ts, `cacheProxySetting`).
 */
export function withCacheProxyOption<T>(y: Argv<T>): Argv<T> {
  return y.option('cache-proxy', {
    type: 'string',
    defaultDescription: `$${CACHE_PROXY_ENV}`,
    describe: 'read object bytes through this shared cache tier (http(s)://HOST:PORT, docs/deploy/cluster.md); API calls go direct',
  }) as unknown as Argv<T>;
}

/**
 * `--cache-proxy` as resolved (./settings.ts): flag > $SLICEFS_CACHE_PROXY > the config file's
 * profile > none; `--no-cache-proxy` (false or '') keeps it off. For mount and download, before
 * transportConfig (`view` resolves all its settings at once: ./view-settings.ts).
 */
export async function applyConfigCacheProxy(
  args: TransportArgs & { config?: string; profile?: string },
  env: NodeJS.ProcessEnv = process.env,
  profile: ProfileLoader = profileLoader(args, env),
): Promise<void> {
  if (args['cache-proxy'] !== undefined) return;
  args['cache-proxy'] = (await cacheProxySetting(undefined, env, profile)).value;
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
  return { ...DEFAULT_READER, readaheadMaxBytes: max };
}
