/**
 * Up to N worker threads running one kind of job, shared by view's pools (SAM formatting:
 * ../view/sam-format-pool.ts; CRAM slice decoding: ../view/cram/slice-pool.ts). Workers start on
 * demand (an idle one is reused before another starts), each job goes to the least busy, and a
 * worker with nothing to do is unref'd so it never keeps the process alive. A job is a message
 * with an id; the worker's answer carrying that id settles it.
 *
 * A worker that dies (out of memory, a bug outside the job's code) fails every job not yet back,
 * and every job after: the caller's output would have a hole, so the run stops with that reason
 * instead of waiting for an answer that will not come.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { SlicefsError } from '../errors.js';
import { deferred, type Deferred } from './deferred.js';

/** How a message from a worker settles a job, or `undefined` when it answers no job. */
export type JobOutcome<R> = { id: number; value: R } | { id: number; error: Error } | undefined;

export interface WorkerPoolOptions<R> {
  threads: number;
  /** The worker's script (a URL made beside the caller's module, so that it resolves in the bundle too). */
  script: URL;
  workerData: unknown;
  resourceLimits?: ResourceLimits;
  /** The threads as an error names them when one dies, e.g. "a SAM formatting thread". */
  name: string;
  /** Which job a message settles, and how. */
  outcome(m: unknown): JobOutcome<R>;
  /** A message that settles no job (e.g. a worker's question to the main thread). */
  other?(worker: Worker, m: unknown): void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

export class WorkerPool<R> {
  private readonly workers: Slot[] = [];
  private readonly jobs = new Map<number, Deferred<R>>();
  private nextId = 0;
  private failed: SlicefsError | undefined;
  private closed = false;

  constructor(private readonly o: WorkerPoolOptions<R>) {
    if (!(o.threads >= 1)) throw new RangeError(`a pool of ${o.name}s needs at least one thread, not ${o.threads}`);
  }

  /** Sends the job `make(id)` builds to the least busy worker; resolves with its outcome. */
  submit(make: (id: number) => { message: unknown; transfer?: readonly ArrayBuffer[] }): Promise<R> {
    if (this.failed) return Promise.reject(this.failed);
    // A job submitted after the run stopped (e.g. input read while the output failed) starts no worker.
    if (this.closed) return Promise.reject(new Error(`the pool of ${this.o.name}s is closed`));
    const slot = this.leastBusy();
    const id = this.nextId++;
    const d = deferred<R>();
    this.jobs.set(id, d);
    slot.busy++;
    slot.worker.ref();
    const { message, transfer } = make(id);
    slot.worker.postMessage(message, transfer as ArrayBuffer[] | undefined);
    return d.promise;
  }

  async close(): Promise<void> {
    this.closed = true;
    const ws = this.workers.splice(0);
    await Promise.all(ws.map((w) => w.worker.terminate()));
  }

  private leastBusy(): Slot {
    if (this.workers.length < this.o.threads) {
      const idle = this.workers.find((w) => w.busy === 0);
      if (idle) return idle;
      return this.start();
    }
    return this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  private start(): Slot {
    const worker = new Worker(this.o.script, { workerData: this.o.workerData, resourceLimits: this.o.resourceLimits });
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (m: unknown) => {
      const out = this.o.outcome(m);
      if (!out) {
        this.o.other?.(worker, m);
        return;
      }
      const d = this.jobs.get(out.id);
      this.jobs.delete(out.id);
      if (--slot.busy === 0) worker.unref();
      if (!d) return;
      if ('error' in out) d.reject(out.error);
      else d.resolve(out.value);
    });
    const die = (why: string) => {
      if (this.failed) return;
      this.failed = new SlicefsError('BAD_RESPONSE', `${this.o.name} stopped (${why})`);
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
}
