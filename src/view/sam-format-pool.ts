/**
 * SAM text formatting on worker threads (`view --threads N`), in order.
 *
 * Formatting is the largest piece of `view`'s own CPU time for SAM output (a 10 Mb region: ~0.45 s
 * of ~1.3 s on the main thread, the rest being reading, inflating on libuv's pool and walking
 * records). The main thread keeps what must be sequential: reading, inflating and cutting the
 * stream into records, and choosing the records a region wants. It packs the records of a batch
 * into one buffer (as BAM lays them out: length, then bytes) and hands the batch to the least busy
 * of N workers; transferred, not copied, both ways.
 *
 * Order: `format` returns a promise per batch; the caller awaits them in the order it submitted
 * them (OrderedFormatter below does so), whatever order the workers finish in.
 * Memory: OrderedFormatter keeps at most `maxInFlight` batches of about `batchBytes` in flight, so
 * the text waiting for a slow reader of stdout is bounded (backpressure reaches the record reader).
 * Start-up: workers are started on the first batch, and OrderedFormatter formats the first
 * `inlineBytes` on the main thread, so a small region never pays for starting a thread.
 */
import { Worker } from 'node:worker_threads';
import { SlicefsError, type ErrorCode } from '../errors.js';
import { deferred, type Deferred } from '../util/deferred.js';
import { ByteSink, formatSamInto } from './sam-format.js';
import type { FormatJob, FormatResult, FormatWorkerInit } from './sam-format-worker.js';

/**
 * Threads `view` formats with when not told: none. Measured on the 2-core machine (docs/benchmarks.md,
 * "view --threads"), one thread cost ~25% more CPU (a second isolate warming up and collecting its
 * own garbage) and gave no steady gain in wall time while other work shared the cores; `-@ N`
 * asks for it where cores are free (samtools users give the cores but one).
 */
export function defaultFormatThreads(): number {
  return 0;
}

export class SamFormatPool {
  private readonly workers: { worker: Worker; busy: number }[] = [];
  private readonly jobs = new Map<number, Deferred<Buffer>>();
  private nextId = 0;
  private failed: SlicefsError | undefined;

  constructor(
    private readonly threads: number,
    private readonly refNames: string[],
  ) {
    if (!(threads >= 1)) throw new RangeError(`SamFormatPool needs at least one thread, not ${threads}`);
  }

  /** The SAM text of `records` (each a BAM record without its length), newline-ended lines. */
  format(records: readonly Uint8Array[]): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    let total = 0;
    for (const r of records) total += 4 + r.length;
    const packed = new ArrayBuffer(total);
    const bytes = new Uint8Array(packed);
    const dv = new DataView(packed);
    let p = 0;
    for (const r of records) {
      dv.setInt32(p, r.length, true);
      bytes.set(r, p + 4);
      p += 4 + r.length;
    }
    const slot = this.leastBusy();
    const id = this.nextId++;
    const d = deferred<Buffer>();
    this.jobs.set(id, d);
    slot.busy++;
    slot.worker.ref();
    slot.worker.postMessage({ id, records: packed } satisfies FormatJob, [packed]);
    return d.promise;
  }

  async close(): Promise<void> {
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
    const init: FormatWorkerInit = { refNames: this.refNames };
    const worker = new Worker(new URL('./sam-format-worker.js', import.meta.url), { workerData: init });
    const slot = { worker, busy: 0 };
    worker.on('message', (m: FormatResult) => {
      const d = this.jobs.get(m.id);
      this.jobs.delete(m.id);
      if (--slot.busy === 0) worker.unref();
      if (!d) return;
      if ('text' in m) d.resolve(Buffer.from(m.text));
      else d.reject(new SlicefsError((m.error.code as ErrorCode | undefined) ?? 'BAD_RESPONSE', m.error.message));
    });
    // A worker that dies (out of memory, a bug) fails every batch not yet back: the output would
    // have a hole, so the run stops with the reason instead.
    const die = (why: string) => {
      if (this.failed) return;
      this.failed = new SlicefsError('BAD_RESPONSE', `a SAM formatting thread stopped (${why})`);
      for (const d of this.jobs.values()) d.reject(this.failed);
      this.jobs.clear();
    };
    worker.on('error', (e) => die(e.message));
    worker.on('exit', (code) => {
      if (this.workers.includes(slot)) die(`exit ${code}`);
    });
    this.workers.push(slot);
    return slot;
  }
}

/** What OrderedFormatter formats where and how much it keeps in flight. */
export interface FormatPlan {
  /** Worker threads (0: everything on the main thread). */
  threads: number;
  /**
   * BAM bytes formatted on the main thread before any worker starts. 2 MiB (~7,000 records of
   * 150 bases, more than a 100 kb region holds at 30×): starting a worker costs ~30-50 ms of
   * loading, more than formatting that much costs inline.
   */
  inlineBytes: number;
  /**
   * BAM bytes per batch sent to a worker. 256 KiB: each message costs tens of microseconds, so
   * batches this size keep that under 1% of the formatting; small enough that several workers
   * get work from one 16 MiB read-ahead.
   */
  batchBytes: number;
  /** Batches in flight at most (the memory bound: about maxInFlight × batchBytes × 3). */
  maxInFlight: number;
}

export function formatPlan(threads: number): FormatPlan {
  return { threads, inlineBytes: 2 << 20, batchBytes: 256 << 10, maxInFlight: Math.max(2, threads * 3) };
}

/**
 * Formats records as SAM in the order they are added and hands the text to `write` in that order,
 * on the main thread until `inlineBytes`, then through a SamFormatPool. `write` is awaited
 * (backpressure): at most `maxInFlight` batches wait for it.
 */
export class OrderedFormatter {
  private readonly sink = new ByteSink();
  private inlineLeft: number;
  private pool: SamFormatPool | undefined;
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private readonly inFlight: Promise<Buffer>[] = [];

  constructor(
    private readonly plan: FormatPlan,
    private readonly refNames: string[],
    private readonly refs: readonly Buffer[],
    private readonly write: (text: Buffer) => Promise<void> | undefined,
    /** Bytes of text gathered on the main thread before they are written. */
    private readonly writeBytes: number,
    /** The file's name, put before the message of a record that cannot be formatted. */
    private readonly label: string,
  ) {
    this.inlineLeft = plan.threads > 0 ? plan.inlineBytes : Infinity;
  }

  /** Text that goes out before the records (the header), in order with them. */
  prefix(text: Buffer): void {
    this.sink.bytes(text);
  }

  async add(records: readonly Uint8Array[]): Promise<void> {
    for (const rec of records) {
      if (this.inlineLeft > 0) {
        try {
          formatSamInto(rec, this.refs, this.sink);
        } catch (err) {
          throw this.named(err);
        }
        this.inlineLeft -= rec.length + 4;
        continue;
      }
      this.batch.push(rec);
      this.batchBytes += rec.length + 4;
      if (this.batchBytes >= this.plan.batchBytes) await this.submit();
    }
    if (this.sink.len >= this.writeBytes) await this.write(this.sink.take());
  }

  /** Text formatted elsewhere (a CRAM slice worker's: ./cram/slice-pool.ts), written in order with the records added. */
  async text(text: Buffer): Promise<void> {
    if (this.batch.length > 0) await this.submit();
    while (this.inFlight.length > 0) await this.write(await this.next());
    if (this.sink.len > 0) await this.write(this.sink.take());
    await this.write(text);
  }

  /** Formats and writes what is left; the caller then `close`s. */
  async end(): Promise<void> {
    if (this.batch.length > 0) await this.submit();
    while (this.inFlight.length > 0) await this.write(await this.next());
    if (this.sink.len > 0) await this.write(this.sink.take());
  }

  /** Stops the workers: after `end`, or after an error (nothing more is written). */
  async close(): Promise<void> {
    await this.pool?.close();
  }

  private async submit(): Promise<void> {
    // Text formatted inline goes out before the first batch's.
    if (this.sink.len > 0) await this.write(this.sink.take());
    this.pool ??= new SamFormatPool(this.plan.threads, this.refNames);
    this.inFlight.push(this.pool.format(this.batch));
    this.batch = [];
    this.batchBytes = 0;
    while (this.inFlight.length >= this.plan.maxInFlight) await this.write(await this.next());
  }

  /** The oldest batch's text. */
  private next(): Promise<Buffer> {
    return this.inFlight.shift()!.catch((err: unknown) => {
      throw this.named(err);
    });
  }

  private named(err: unknown): unknown {
    return err instanceof SlicefsError ? new SlicefsError(err.code, `${this.label}: ${err.message}`) : err;
  }
}
