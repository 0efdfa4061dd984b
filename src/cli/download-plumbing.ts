/**
 * What `download` and `download --ghga` share around their runs (their settings:
 * ./download-settings.ts): the progress display (every message goes through it, so bars are not garbled), the
 * data transport (downloads are not bound by the FUSE operation timeout: the retry budget is
 * --timeout, with more and longer retries), and Ctrl-C/SIGTERM turned into an abort that keeps
 * what was fetched. `close()` undoes all of it.
 */
import type { DownloadOptions } from '../download/download-session.js';
import { createProgress } from '../download/progress.js';
import { RateLimiter } from '../download/rate-limiter.js';
import { Stats } from '../stats.js';
import { HttpTransport } from '../transport/http-transport.js';
import type { DownloadSettings } from './download-settings.js';

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

export function downloadPlumbing(settings: DownloadSettings, plan: { files: number; bytes: number }, stats = new Stats()): DownloadPlumbing {
  const mode = settings.quiet ? 'quiet' : process.stderr.isTTY && process.env.TERM !== 'dumb' ? 'tty' : 'plain';
  const progress = createProgress({ mode, totalFiles: plan.files, totalBytes: plan.bytes, out: process.stderr });
  const line = (msg: string) => progress.message(`slicefs: ${msg}`);
  const tc = settings.dataTransport;
  // --verbose lines through the progress display, so they do not garble the bars.
  const log = tc.log ? (l: string) => progress.message(`${new Date().toISOString()} ${l}`) : undefined;
  const transport = new HttpTransport({ ...tc, log, connectionsPerOrigin: Math.max(tc.connectionsPerOrigin, settings.parallel), retry: { ...tc.retry, maxAttempts: 10, maxDelayMs: 10_000 } }, stats, line);
  const interrupt = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupt.signal.aborted) return;
    progress.message(`${sig}: stopping; what was fetched is kept`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const limiter = settings.rate !== undefined ? new RateLimiter(settings.rate) : undefined;
  return {
    stats,
    line,
    transport,
    signal: interrupt.signal,
    session: {
      config: { partSize: settings.partSize, parallel: settings.parallel },
      force: settings.force,
      verifyOnly: settings.verify,
      limiter,
      progress,
      signal: interrupt.signal,
      warn: (l) => progress.message(l),
      modes: settings.modes,
    },
    async close() {
      progress.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await transport.close().catch(() => {});
    },
  };
}
