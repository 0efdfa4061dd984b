/**
 * A remote source read through the disk tier (./disk-tier.ts): the same object, identity and
 * version, with its bytes kept on disk in aligned chunks.
 *
 * `read(start, end)` covers chunks ⌊start/C⌋ … ⌊(end−1)/C⌋. Chunks on disk (checked) are delivered
 * from disk; a chunk another read of this process is fetching is awaited; every run of contiguous
 * missing chunks is fetched with one ranged read of the inner source, widened to whole chunks, and
 * its bytes inside [start, end) are delivered as they arrive. Each missing chunk is collected
 * (copied: the transport's buffers go back to it once the block cache drops them) and written to
 * disk whole once complete. Delivery is in order, awaiting what `onData` returns.
 *
 * The inner callback works synchronously: the worker transport does not wait for a returned
 * promise, so chunks are taken as they come and delivery goes through a queue per run.
 */
import { SlicefsError } from '../errors.js';
import type { ObjectSource } from '../source/object-source.js';
import type { ObjectVersion } from '../transport/version.js';
import { allocChunk, CHUNK_HEADER_BYTES, payloadOf } from './chunk-file.js';
import type { DiskTier, TierObject } from './disk-tier.js';

/** A run's undelivered bytes above this make a transport that waits (HttpTransport) wait. */
const QUEUE_HIGH_BYTES = 4 * 1024 * 1024;

interface Deferred {
  promise: Promise<Buffer>;
  resolve: (b: Buffer) => void;
  reject: (e: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: (b: Buffer) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Awaited by sharers if any; nobody else must see its failure as unhandled.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** The bytes of one network read, queued for delivery in order. */
class Run {
  readonly queue: Buffer[] = [];
  queued = 0;
  done = false;
  error: unknown;
  private wake?: () => void;
  private drained?: Deferred;
  private released = false;

  push(b: Buffer): Promise<void> | undefined {
    this.queue.push(b);
    this.queued += b.length;
    this.notify();
    if (this.queued <= QUEUE_HIGH_BYTES || this.released) return undefined;
    this.drained ??= deferred();
    return this.drained.promise.then(() => {});
  }

  shift(): Buffer | undefined {
    const b = this.queue.shift();
    if (b) this.queued -= b.length;
    if (this.queue.length === 0 && this.drained) {
      this.drained.resolve(Buffer.alloc(0));
      this.drained = undefined;
    }
    return b;
  }

  /** Nobody will take the queued bytes (the read failed): a transport waiting to send more goes on, to its abort. */
  release(): void {
    this.released = true;
    this.drained?.resolve(Buffer.alloc(0));
    this.drained = undefined;
  }

  notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  waitForMore(): Promise<void> {
    return new Promise((res) => (this.wake = res));
  }
}

type Part = { kind: 'have'; index: number; payload: Promise<Buffer> } | { kind: 'run'; run: Run };

export class DiskCachedSource implements ObjectSource {
  readonly identity: string;
  readonly label: string;
  readonly knownSize?: number;

  constructor(
    readonly inner: ObjectSource,
    private readonly tier: DiskTier,
  ) {
    this.identity = inner.identity;
    this.label = inner.label;
    this.knownSize = inner.knownSize;
  }

  get pinned(): ObjectVersion | undefined {
    return this.inner.pinned;
  }

  version(): Promise<ObjectVersion> {
    return this.inner.version();
  }

  async read(start: number, end: number, onData: (chunk: Buffer) => void | Promise<void>, signal?: AbortSignal): Promise<void> {
    const v = await this.inner.version();
    const stop = Math.min(end, v.size);
    if (stop <= start) return;
    const tier = this.tier;
    const C = tier.chunkBytes;
    const obj = tier.object(this.inner, v);
    const first = Math.floor(start / C);
    const last = Math.floor((stop - 1) / C);
    const keyOf = (i: number) => `${obj.key}#${i}`;

    // What each chunk comes from: a fetch under way in this process, else the disk, else the network.
    const found = new Map<number, Promise<Buffer>>();
    const lookups: Promise<void>[] = [];
    for (let i = first; i <= last; i++) {
      const shared = tier.inflight.get(keyOf(i));
      if (shared) found.set(i, this.orFetchAlone(shared, obj, i, signal));
      else lookups.push(tier.readChunk(obj, i).then((b) => void (b && found.set(i, Promise.resolve(b)))));
    }
    await Promise.all(lookups);

    // The missing ones: registered as in flight in one synchronous step, so readers arriving meanwhile share them.
    const own = new Map<number, Deferred>();
    for (let i = first; i <= last; i++) {
      if (found.has(i)) continue;
      const shared = tier.inflight.get(keyOf(i));
      if (shared) {
        found.set(i, this.orFetchAlone(shared, obj, i, signal));
        continue;
      }
      const d = deferred();
      own.set(i, d);
      tier.inflight.set(keyOf(i), d.promise);
    }

    const abort = new AbortController();
    const onAbort = () => abort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const parts: Part[] = [];
    for (let i = first; i <= last; ) {
      const have = found.get(i);
      if (have) {
        parts.push({ kind: 'have', index: i, payload: have });
        i++;
        continue;
      }
      let j = i;
      while (j + 1 <= last && own.has(j + 1)) j++;
      parts.push({ kind: 'run', run: this.fetchRun(obj, i, j, start, stop, own, abort.signal) });
      i = j + 1;
    }

    try {
      for (const part of parts) {
        if (part.kind === 'have') {
          const payload = await part.payload;
          const base = part.index * C;
          const a = Math.max(start, base) - base;
          const b = Math.min(stop, base + payload.length) - base;
          let slice = payload.subarray(a, b);
          // A small piece of a chunk is copied, so that it does not keep the whole chunk in memory.
          if (slice.length < payload.length / 2) slice = Buffer.from(slice);
          await onData(slice);
          continue;
        }
        const run = part.run;
        for (;;) {
          const piece = run.shift();
          if (piece) {
            await onData(piece);
            continue;
          }
          if (run.error !== undefined) throw run.error;
          if (run.done) break;
          await run.waitForMore();
        }
      }
    } catch (err) {
      // The other runs stop; readers sharing their chunks fetch them on their own.
      abort.abort(err);
      for (const p of parts) if (p.kind === 'run') p.run.release();
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** A chunk another read is fetching; if that read fails, this one fetches the chunk itself. */
  private orFetchAlone(shared: Promise<Buffer>, obj: TierObject, index: number, signal?: AbortSignal): Promise<Buffer> {
    return shared.catch(async () => {
      const C = this.tier.chunkBytes;
      const record = allocChunk(this.tier.chunkLength(obj, index));
      let filled = 0;
      await this.inner.read(index * C, index * C + record.length - CHUNK_HEADER_BYTES, (c) => {
        c.copy(record, CHUNK_HEADER_BYTES + filled);
        filled += c.length;
      }, signal);
      if (filled !== record.length - CHUNK_HEADER_BYTES) throw new SlicefsError('BAD_RESPONSE', `${this.label}: ${filled} bytes of ${record.length - CHUNK_HEADER_BYTES} arrived`);
      this.tier.countMiss(filled);
      void this.tier.storeChunk(obj, index, record);
      return payloadOf(record);
    });
  }

  /**
   * Fetches chunks [firstChunk, lastChunk] (all registered in `own`) with one read of the inner
   * source; queues the bytes inside [start, stop) for delivery, and completes and stores each chunk.
   */
  private fetchRun(obj: TierObject, firstChunk: number, lastChunk: number, start: number, stop: number, own: Map<number, Deferred>, signal: AbortSignal): Run {
    const tier = this.tier;
    const C = tier.chunkBytes;
    const from = firstChunk * C;
    const to = Math.min((lastChunk + 1) * C, obj.size);
    const run = new Run();
    let pos = from;
    let chunk = firstChunk;
    let length = tier.chunkLength(obj, chunk);
    let record = allocChunk(length);
    let filled = 0;
    const complete = (index: number, rec: Buffer) => {
      const key = `${obj.key}#${index}`;
      tier.countMiss(rec.length - CHUNK_HEADER_BYTES);
      own.get(index)!.resolve(payloadOf(rec));
      own.delete(index);
      // Shared until it is on disk, so that nobody fetches it again meanwhile.
      const written = tier.storeChunk(obj, index, rec);
      if (written) void written.finally(() => tier.inflight.delete(key));
      else tier.inflight.delete(key);
    };
    const fail = (err: unknown) => {
      for (const [index, d] of own) {
        if (index < firstChunk || index > lastChunk) continue;
        d.reject(err);
        own.delete(index);
        tier.inflight.delete(`${obj.key}#${index}`);
      }
    };
    const onPiece = (piece: Buffer): Promise<void> | undefined => {
      const a = Math.max(pos, start);
      const b = Math.min(pos + piece.length, stop);
      let wait: Promise<void> | undefined;
      if (b > a) wait = run.push(a === pos && b === pos + piece.length ? piece : piece.subarray(a - pos, b - pos));
      let off = 0;
      while (off < piece.length && chunk <= lastChunk) {
        const take = Math.min(length - filled, piece.length - off);
        piece.copy(record, CHUNK_HEADER_BYTES + filled, off, off + take);
        filled += take;
        off += take;
        if (filled === length) {
          complete(chunk, record);
          chunk++;
          if (chunk <= lastChunk) {
            length = tier.chunkLength(obj, chunk);
            record = allocChunk(length);
            filled = 0;
          }
        }
      }
      pos += piece.length;
      return wait;
    };
    this.inner.read(from, to, onPiece, signal).then(
      () => {
        if (pos !== to) {
          const err = new SlicefsError('BAD_RESPONSE', `${this.label}: ${pos - from} bytes of ${to - from} arrived`);
          fail(err);
          run.error = err;
        }
        run.done = true;
        run.notify();
      },
      (err: unknown) => {
        fail(err);
        run.error = err ?? new Error('read failed');
        run.notify();
      },
    );
    return run;
  }
}
