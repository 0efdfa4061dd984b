/**
 * CRAM slices decoded on worker threads (`view --threads N` for a CRAM): the main thread keeps
 * what must be sequential or shared (reading and checking the file's bytes, the reference and its
 * checks, choosing the records a region wants, writing), and hands each slice's bytes to the
 * least busy of N workers (./cram-slice-worker.ts), which return its output finished: SAM text or
 * packed BAM records. The caller (./cram-view.ts) awaits the jobs in the order it submitted them.
 *
 * A worker asks the main thread for reference bases and lengths while it decodes (SliceAsk): the
 * main thread's `answer` serves them from the view's reference reader.
 *
 * A worker that dies (out of memory, a bug outside the decoder) fails every job not yet back: the
 * output would have a hole, so the run stops with that reason instead of waiting.
 */
import type { Worker } from 'node:worker_threads';
import { SlicefsError, messageOf } from '../../errors.js';
import { WorkerPool } from '../../util/worker-pool.js';
import type { SliceAnswer, SliceAsk, SliceJob, SliceResult, SliceWorkerInit } from './cram-slice-worker.js';

/**
 * Each worker's young generation, in MB: V8's default (tens of MB per isolate) made two workers
 * cost ~90 MB of RSS each; capped at 12 MB, ~45 MB, for no more CPU (docs/benchmarks.md, CRAM → SAM).
 */
const WORKER_YOUNG_GENERATION_MB = 12;

export type SliceJobInput = Omit<SliceJob, 'type' | 'id'>;

/** What a worker asks, answered on the main thread: bases (a fresh buffer, transferred) or a length. */
export type AnswerAsk = (q: SliceAsk) => Promise<{ bases?: Buffer; length?: number }>;

export class CramSlicePool {
  private readonly pool: WorkerPool<SliceResult>;

  constructor(
    threads: number,
    init: SliceWorkerInit,
    private readonly answer: AnswerAsk,
    /** The worker's script: the real one but in the tests that make a worker die. */
    script: URL = new URL('./cram-slice-worker.js', import.meta.url),
  ) {
    this.pool = new WorkerPool<SliceResult>({
      threads,
      script,
      workerData: init,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      name: 'a CRAM decoding thread',
      outcome: (m) => {
        const r = m as SliceResult | SliceAsk;
        return r.type === 'ask' ? undefined : { id: r.id, value: r };
      },
      other: (worker, m) => this.reply(worker, m as SliceAsk),
    });
  }

  /** Decodes one slice; `pieces`' buffers are transferred (the caller must not use them after). */
  run(input: SliceJobInput): Promise<SliceResult> {
    return this.pool.submit((id) => ({ message: { type: 'slice', id, ...input } satisfies SliceJob, transfer: input.pieces.map((p) => p.bytes) }));
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private reply(worker: Worker, q: SliceAsk): void {
    this.answer(q).then(
      (a) => {
        // A copy the worker can own: the reference reader's buffers may be views of its cache.
        const bases = a.bases ? new Uint8Array(a.bases).buffer : undefined;
        const m: SliceAnswer = { type: 'answer', ask: q.ask, bases, length: a.length };
        worker.postMessage(m, bases ? [bases] : []);
      },
      (err: unknown) => {
        const code = err instanceof SlicefsError ? err.code : undefined;
        worker.postMessage({ type: 'answer', ask: q.ask, error: { code, message: messageOf(err) } } satisfies SliceAnswer);
      },
    );
  }
}
