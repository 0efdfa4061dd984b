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
import { Worker } from 'node:worker_threads';
import { SlicefsError, messageOf } from '../../errors.js';
import { deferred, type Deferred } from '../../util/deferred.js';
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
  private readonly workers: { worker: Worker; busy: number }[] = [];
  private readonly jobs = new Map<number, Deferred<SliceResult>>();
  private nextId = 0;
  private failed: SlicefsError | undefined;
  private closed = false;

  constructor(
    private readonly threads: number,
    private readonly init: SliceWorkerInit,
    private readonly answer: AnswerAsk,
    /** The worker's script: the real one but in the tests that make a worker die. */
    private readonly script: URL = new URL('./cram-slice-worker.js', import.meta.url),
  ) {
    if (!(threads >= 1)) throw new RangeError(`CramSlicePool needs at least one thread, not ${threads}`);
  }

  /** Decodes one slice; `pieces`' buffers are transferred (the caller must not use them after). */
  run(input: SliceJobInput): Promise<SliceResult> {
    if (this.failed) return Promise.reject(this.failed);
    // A job submitted after the run stopped (a slice read while the output failed) starts no worker.
    if (this.closed) return Promise.reject(new Error('CramSlicePool: closed'));
    const slot = this.leastBusy();
    const id = this.nextId++;
    const d = deferred<SliceResult>();
    this.jobs.set(id, d);
    slot.busy++;
    slot.worker.ref();
    const job: SliceJob = { type: 'slice', id, ...input };
    slot.worker.postMessage(job, input.pieces.map((p) => p.bytes));
    return d.promise;
  }

  async close(): Promise<void> {
    this.closed = true;
    const ws = this.workers.splice(0);
    await Promise.all(ws.map((w) => w.worker.terminate()));
  }

  private leastBusy(): { worker: Worker; busy: number } {
    if (this.workers.length < this.threads) {
      const idle = this.workers.find((w) => w.busy === 0);
      if (idle) return idle;
      return this.start();
    }
    return this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  private start(): { worker: Worker; busy: number } {
    const worker = new Worker(this.script, { workerData: this.init, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
    const slot = { worker, busy: 0 };
    worker.on('message', (m: SliceResult | SliceAsk) => {
      if (m.type === 'ask') {
        this.reply(worker, m);
        return;
      }
      const d = this.jobs.get(m.id);
      this.jobs.delete(m.id);
      if (--slot.busy === 0) worker.unref();
      d?.resolve(m);
    });
    const die = (why: string) => {
      if (this.failed) return;
      this.failed = new SlicefsError('BAD_RESPONSE', `a CRAM decoding thread stopped (${why})`);
      for (const d of this.jobs.values()) d.reject(this.failed);
      this.jobs.clear();
    };
    worker.on('error', (e) => die(e.message));
    worker.on('messageerror', (e) => die(e.message));
    worker.on('exit', (code) => {
      if (this.workers.includes(slot)) die(`exit ${code}`);
    });
    this.workers.push(slot);
    return slot;
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
