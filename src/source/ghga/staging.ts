/**
 * Staging a batch of GHGA files (ghga-protocol.md §3 step 3, §8): the DCS answers 202 with a
 * `Retry-After` for a file not yet in its download bucket, and that very request starts copying it
 * there.
 *
 * The connector asks for one file at a time and stops its scan at the first staged file, so later
 * files are not even requested (not staged) until it is downloaded; with nothing staged it polls
 * every second. Here every file is requested up front, so the DCS stages them all in parallel; each
 * is polled again after its own Retry-After (at least 1 s, and once more at the deadline), and each
 * is handed to the caller as soon as it is staged, while the others are still staging: in the
 * order they become ready, through `onReady` and/or by iterating the run.
 *
 * `maxWaitS` bounds the whole batch (the connector's `max_wait_time`, 3600 s by default): a file
 * still staging then is `TIMEOUT: file X was still being staged after N s`. The first error (that
 * one, a refusal, an unknown file unless `skipMissing`, or an error of `onReady`) ends the run and
 * stops the other files' polling.
 */
import { SlicefsError } from '../../errors.js';
import type { DrsClient, DrsObject } from './dcs.js';

export interface StagedFile {
  accession: string;
  object: DrsObject;
}

export type StagingEvent =
  /** `first`: the first 202 (the DCS started staging), else "still being staged". */
  | { type: 'staging'; accession: string; retryAfterS: number; first: boolean }
  | { type: 'ready'; accession: string; waitedS: number }
  /** The DCS does not know the file (404), with `skipMissing`. */
  | { type: 'missing'; accession: string };

export interface StageOptions {
  /** Give up on files still staging this long after the start. */
  maxWaitS: number;
  onEvent?: (event: StagingEvent) => void;
  /** Called once per file as soon as it is staged; the run's `done` waits for these. */
  onReady?: (file: StagedFile) => void | Promise<void>;
  /** Report unknown files as `missing` and go on with the others, instead of failing the run. */
  skipMissing?: boolean;
  signal?: AbortSignal;
  now?: () => number;
}

/** Shortest wait between two polls of one file, whatever Retry-After says (no busy loop on `0`). */
const MIN_POLL_MS = 1000;

/**
 * A staging batch in progress: iterate it (`for await`) to get files as they become ready, and/or
 * await `done` (every staged file, in ready order). Polling goes on whether or not the iterator is
 * pulled, so a caller may download one file inside the loop while the others keep staging.
 */
export class StagingRun implements AsyncIterable<StagedFile> {
  /** Resolves when every file is staged (and its onReady finished); rejects with the first error. */
  readonly done: Promise<StagedFile[]>;
  private readonly ready: StagedFile[] = [];
  private delivered = 0;
  private finished = false;
  private error?: unknown;
  private wake?: () => void;
  private readonly stop = new AbortController();

  constructor(
    accessions: readonly string[],
    private readonly drs: Pick<DrsClient, 'object'>,
    private readonly opts: StageOptions,
  ) {
    const now = opts.now ?? Date.now;
    const started = now();
    const deadline = started + opts.maxWaitS * 1000;
    const signal = opts.signal ? AbortSignal.any([this.stop.signal, opts.signal]) : this.stop.signal;
    const unique = [...new Set(accessions)];
    this.done = Promise.all(unique.map((a) => this.stageOne(a, started, deadline, now, signal))).then(
      () => {
        this.finished = true;
        this.wake?.();
        return [...this.ready];
      },
      (err: unknown) => {
        this.error ??= err;
        this.finished = true;
        this.stop.abort(err);
        this.wake?.();
        throw this.error;
      },
    );
    // A caller that only iterates learns of a failure from the iterator: no unhandled rejection.
    this.done.catch(() => {});
  }

  /** Stops polling; files not yet staged are not delivered, and `done` rejects. */
  cancel(): void {
    this.stop.abort(new SlicefsError('USAGE', 'staging cancelled'));
  }

  private async stageOne(accession: string, started: number, deadline: number, now: () => number, signal: AbortSignal): Promise<void> {
    let first = true;
    while (true) {
      signal.throwIfAborted();
      const answer = await this.drs.object(accession).catch((err: unknown) => {
        if (this.opts.skipMissing && err instanceof SlicefsError && err.code === 'NOT_FOUND' && err.status === 404) return undefined;
        throw err;
      });
      signal.throwIfAborted();
      if (answer === undefined) {
        this.opts.onEvent?.({ type: 'missing', accession });
        return;
      }
      if (answer.state === 'ready') {
        const file = { accession, object: answer.object };
        this.opts.onEvent?.({ type: 'ready', accession, waitedS: (now() - started) / 1000 });
        this.ready.push(file);
        this.wake?.();
        await this.opts.onReady?.(file);
        return;
      }
      this.opts.onEvent?.({ type: 'staging', accession, retryAfterS: answer.retryAfterS, first });
      first = false;
      const left = deadline - now();
      if (left <= 0) {
        throw new SlicefsError('TIMEOUT', `file ${accession} was still being staged after ${this.opts.maxWaitS} s`);
      }
      // The last poll is at the deadline: a file staged just in time still counts.
      await sleep(Math.min(Math.max(MIN_POLL_MS, answer.retryAfterS * 1000), left), signal);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<StagedFile> {
    return {
      next: async (): Promise<IteratorResult<StagedFile>> => {
        while (true) {
          if (this.delivered < this.ready.length) return { value: this.ready[this.delivered++]!, done: false };
          if (this.error !== undefined) throw this.error;
          if (this.finished) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (this.wake = resolve));
        }
      },
      return: async (): Promise<IteratorResult<StagedFile>> => {
        // Leaving the loop early (break, throw) stops the polling of files not yet staged.
        if (!this.finished) this.cancel();
        return { value: undefined, done: true };
      },
    };
  }
}

/** Requests every file from the DCS now and polls each until it is staged: see StagingRun. */
export function stageAll(accessions: readonly string[], drs: Pick<DrsClient, 'object'>, opts: StageOptions): StagingRun {
  return new StagingRun(accessions, drs, opts);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
