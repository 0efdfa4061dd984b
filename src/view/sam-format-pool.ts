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
import { SlicefsError, type ErrorCode } from '../errors.js';
import { WorkerPool } from '../util/worker-pool.js';
import { packRecords } from './bam-record.js';
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
  private readonly pool: WorkerPool<Buffer>;

  constructor(threads: number, refNames: string[]) {
    this.pool = new WorkerPool<Buffer>({
      threads,
      script: new URL('./sam-format-worker.js', import.meta.url),
      workerData: { refNames } satisfies FormatWorkerInit,
      name: 'a SAM formatting thread',
      outcome: (m) => {
        const r = m as FormatResult;
        if ('text' in r) return { id: r.id, value: Buffer.from(r.text) };
        return { id: r.id, error: new SlicefsError((r.error.code as ErrorCode | undefined) ?? 'BAD_RESPONSE', r.error.message) };
      },
    });
  }

  /** The SAM text of `records` (each a BAM record without its length), newline-ended lines. */
  format(records: readonly Uint8Array[]): Promise<Buffer> {
    const packed = packRecords(records);
    return this.pool.submit((id) => ({ message: { id, records: packed } satisfies FormatJob, transfer: [packed] }));
  }

  close(): Promise<void> {
    return this.pool.close();
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
