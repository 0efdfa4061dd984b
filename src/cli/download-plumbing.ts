/**
 * What `download` and `download --ghga` share around their runs: the checks of the download
 * options, the progress display (every message goes through it, so bars are not garbled), the
 * data transport (downloads are not bound by the FUSE operation timeout: the retry budget is
 * --timeout, with more and longer retries), and Ctrl-C/SIGTERM turned into an abort that keeps
 * what was fetched. `close()` undoes all of it.
 */
import type { ArgumentsCamelCase } from 'yargs';
import type { DownloadOptions } from '../download/download-session.js';
import { createProgress } from '../download/progress.js';
import { RateLimiter } from '../download/rate-limiter.js';
import { SlicefsError } from '../errors.js';
import { Stats } from '../stats.js';
import { HttpTransport } from '../transport/http-transport.js';
import type { Modes } from '../util/safe-fs.js';
import { parseByteSize } from '../util/size.js';
import { checkTimeout, transportConfig } from './common.js';
import type { DownloadArgs } from './download.js';
import { modesOf } from './mode-options.js';

export interface DownloadOptionsChecked {
  partSize: number;
  /** Bytes per second, when limited. */
  rate?: number;
  /** --file-mode, --dir-mode. */
  modes: Modes;
}

/** The download options, checked before anything is contacted. */
export function checkDownloadOptions(args: ArgumentsCamelCase<DownloadArgs>): DownloadOptionsChecked {
  if (!Number.isInteger(args.parallel) || args.parallel < 1 || args.parallel > 256) throw new SlicefsError('USAGE', '--parallel must be an integer from 1 to 256');
  // Checked here: the transport is given --timeout + 3 s, which would hide a negative one.
  checkTimeout(args.timeout);
  const partSize = parseByteSize(args['part-size'], '--part-size');
  if (partSize < 64 * 1024) throw new SlicefsError('USAGE', '--part-size must be at least 64K');
  const rate = args['limit-rate'] !== undefined ? parseByteSize(args['limit-rate'], '--limit-rate') : undefined;
  if (rate !== undefined && rate < 1024) throw new SlicefsError('USAGE', '--limit-rate must be at least 1K (bytes per second)');
  return { partSize, rate, modes: modesOf(args) };
}

export interface DownloadPlumbing {
  stats: Stats;
  /** A `slicefs: …` message through the progress display. */
  line: (msg: string) => void;
  transport: HttpTransport;
  /** Aborted by SIGINT/SIGTERM. */
  signal: AbortSignal;
  /** The options of every runDownload call, from the arguments and the above. */
  session: Pick<DownloadOptions, 'config' | 'force' | 'verifyOnly' | 'limiter' | 'progress' | 'signal' | 'warn' | 'modes'>;
  close(): Promise<void>;
}

export function downloadPlumbing(args: ArgumentsCamelCase<DownloadArgs>, checked: DownloadOptionsChecked, plan: { files: number; bytes: number }, stats = new Stats()): DownloadPlumbing {
  const mode = args.quiet ? 'quiet' : process.stderr.isTTY && process.env.TERM !== 'dumb' ? 'tty' : 'plain';
  const progress = createProgress({ mode, totalFiles: plan.files, totalBytes: plan.bytes, out: process.stderr });
  const line = (msg: string) => progress.message(`slicefs: ${msg}`);
  const tc = transportConfig({ ...args, timeout: args.timeout + 3 }, (l) => progress.message(`${new Date().toISOString()} ${l}`));
  const transport = new HttpTransport({ ...tc, connectionsPerOrigin: Math.max(tc.connectionsPerOrigin, args.parallel), retry: { ...tc.retry, maxAttempts: 10, maxDelayMs: 10_000 } }, stats, line);
  const interrupt = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupt.signal.aborted) return;
    progress.message(`${sig}: stopping; what was fetched is kept`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const limiter = checked.rate !== undefined ? new RateLimiter(checked.rate) : undefined;
  return {
    stats,
    line,
    transport,
    signal: interrupt.signal,
    session: {
      config: { partSize: checked.partSize, parallel: args.parallel },
      force: args.force,
      verifyOnly: args.verify,
      limiter,
      progress,
      signal: interrupt.signal,
      warn: (l) => progress.message(l),
      modes: checked.modes,
    },
    async close() {
      progress.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await transport.close().catch(() => {});
    },
  };
}
