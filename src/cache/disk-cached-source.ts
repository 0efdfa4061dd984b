/**
 * A remote source read through the disk tier (./disk-tier.ts): the same object, identity and
 * version, with its bytes kept on disk in extents of aligned slots.
 *
 * `read(start, end)` covers slots ⌊start/C⌋ … ⌊(end−1)/C⌋ and needs, in each, the read's bytes
 * widened to whole pages (P). Per slot, in this order: an extent another read of this process is
 * fetching that covers the need is awaited; an extent on disk (checked) that covers it is
 * delivered; else what the disk lacks of the need is fetched: a piece on either side of the disk's
 * extent, widened over a gap between the two, so that the slot keeps one contiguous extent (the
 * disk's bytes in between are delivered from disk). Pieces that abut (a read over several missing slots) are fetched with one ranged read of
 * the inner source, and their bytes inside [start, end) are delivered as they arrive. Each piece is
 * collected as views of the transport's buffers (no copy: the tier holds them until written, and
 * the transport does not fill a held buffer again, `DiskTier.holds`) and written to disk once
 * complete, behind the read (./slot-writer.ts), merged there with the slot's extent. Another read
 * that shares a piece gets a copy of its bytes. Delivery is in order, awaiting what `onData` returns.
 *
 * The inner callback works synchronously: the worker transport does not wait for a returned
 * promise, so pieces are taken as they come and delivery goes through a queue per run.
 */
import { SlicefsError } from '../errors.js';
import type { ObjectSource } from '../source/object-source.js';
import { deferred, type Deferred } from '../util/deferred.js';
import type { ObjectVersion } from '../transport/version.js';
import { allocChunk, CHUNK_HEADER_BYTES, payloadOf } from './chunk-file.js';
import type { DiskTier, Extent, InflightExtent, TierObject } from './disk-tier.js';

/** A run's undelivered bytes above this make a transport that waits (HttpTransport) wait. */
const QUEUE_HIGH_BYTES = 4 * 1024 * 1024;

/** The bytes of one network read, queued for delivery in order. */
class Run {
  readonly queue: Buffer[] = [];
  queued = 0;
  done = false;
  error: unknown;
  private wake?: () => void;
  private drained?: Deferred<void>;
  private released = false;

  push(b: Buffer): Promise<void> | undefined {
    this.queue.push(b);
    this.queued += b.length;
    this.notify();
    if (this.queued <= QUEUE_HIGH_BYTES || this.released) return undefined;
    this.drained ??= deferred<void>();
    return this.drained.promise;
  }

  shift(): Buffer | undefined {
    const b = this.queue.shift();
    if (b) this.queued -= b.length;
    if (this.queue.length === 0 && this.drained) {
      this.drained.resolve();
      this.drained = undefined;
    }
    return b;
  }

  /** Nobody will take the queued bytes (the read failed): a transport waiting to send more goes on, to its abort. */
  release(): void {
    this.released = true;
    this.drained?.resolve();
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

/**
 * Bytes [from, to) delivered (as far as they are in the read) from an extent at hand, `base` the
 * object offset of its first byte; or from a run.
 */
type Part = { kind: 'have'; base: number; from: number; to: number; payload: Promise<Buffer> } | { kind: 'run'; run: Run };

/**
 * A piece of a slot to fetch: object offsets [from, to), slot-relative [lo, hi). It is its own
 * announcement to the other reads of this process (tier.announce): a read it is handed to
 * (`share`) gets its bytes joined into a buffer of their own, once they are all in.
 */
class Piece implements InflightExtent {
  /** The bytes so far: views of the transport's buffers. */
  readonly parts: Buffer[] = [];
  private complete = false;
  private copy?: Deferred<Buffer>;
  private readonly done = deferred<void>();

  constructor(
    readonly slot: number,
    readonly lo: number,
    readonly hi: number,
    readonly from: number,
    readonly to: number,
  ) {}

  get landed(): Promise<void> {
    return this.done.promise;
  }

  /** Handed to another read: its bytes are joined for it (now, or when they are all in). */
  share(): void {
    if (this.copy) return;
    this.copy = deferred<Buffer>();
    if (this.complete) this.copy.resolve(Buffer.concat(this.parts));
  }

  get payload(): Promise<Buffer> {
    this.share();
    return this.copy!.promise;
  }

  finish(): void {
    this.complete = true;
    this.copy?.resolve(Buffer.concat(this.parts));
    this.done.resolve();
  }

  fail(err: unknown): void {
    this.complete = true;
    this.copy?.reject(err);
    this.done.reject(err);
  }
}

/** A slot's plan: bytes at hand (before or after a piece to fetch), or a piece. */
type Step = Extract<Part, { kind: 'have' }> | { kind: 'fetch'; piece: Piece };

const covers = (e: { lo: number; hi: number }, lo: number, hi: number) => e.lo <= lo && e.hi >= hi;


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
    const P = tier.pageBytes;
    const obj = tier.object(this.inner, v);
    const first = Math.floor(start / C);
    const last = Math.floor((stop - 1) / C);
    const keyOf = (i: number) => `${obj.key}#${i}`;
    /** What slot `i` needs: the read's bytes in it, widened to whole pages (slot-relative). */
    const needOf = (i: number) => {
      const base = i * C;
      const length = tier.slotLength(obj, i);
      const a = Math.max(start, base) - base;
      const b = Math.min(stop, base + length) - base;
      return { lo: Math.floor(a / P) * P, hi: Math.min(length, Math.ceil(b / P) * P) };
    };
    const sharedOf = (i: number) => {
      const n = needOf(i);
      return tier.fetching(keyOf(i), n.lo, n.hi);
    };

    // What each slot comes from: a fetch under way in this process, else the disk, else the network.
    const shared = new Map<number, InflightExtent>();
    const onDisk = new Map<number, Extent>();
    const lookups: Promise<void>[] = [];
    for (let i = first; i <= last; i++) {
      const e = sharedOf(i);
      if (e) shared.set(i, e);
      else lookups.push(tier.readChunk(obj, i).then((x) => void (x && onDisk.set(i, x))));
    }
    await Promise.all(lookups);

    // The pieces to fetch: announced in one synchronous step, so readers arriving meanwhile share them.
    const steps: Step[] = [];
    for (let i = first; i <= last; i++) {
      const base = i * C;
      const n = needOf(i);
      const disk = onDisk.get(i);
      let e = shared.get(i);
      if (!e && disk && covers({ lo: disk.lo, hi: disk.lo + disk.payload.length }, n.lo, n.hi)) {
        steps.push({ kind: 'have', base: base + disk.lo, from: base + n.lo, to: base + n.hi, payload: Promise.resolve(disk.payload) });
        continue;
      }
      e ??= sharedOf(i);
      if (e) {
        steps.push({ kind: 'have', base: base + e.lo, from: base + n.lo, to: base + n.hi, payload: this.orFetchAlone(e, obj, i, signal) });
        continue;
      }
      // What is at hand for this slot: its extent on disk and the extents being fetched. The need
      // is walked from left to right: a stretch at hand is taken from the extent that reaches
      // furthest, a stretch nowhere at hand is fetched. The walk is widened over a gap between the
      // need and what is at hand, so that the slot's extent on disk stays one run.
      const atHand: { lo: number; hi: number; payload: () => Promise<Buffer> }[] = tier.fetchingIn(keyOf(i)).map((x) => ({
        lo: x.lo,
        hi: x.hi,
        payload: () => this.orFetchAlone(x, obj, i, signal),
      }));
      if (disk) atHand.push({ lo: disk.lo, hi: disk.lo + disk.payload.length, payload: () => Promise.resolve(disk.payload) });
      let x = n.lo;
      let end = n.hi;
      // A write of this slot may have landed since the lookup: its bounds widen the walk too.
      const bounds: { lo: number; hi: number }[] = [...atHand, tier.seenExtent(keyOf(i))].filter((b) => b !== undefined);
      if (bounds.length > 0) {
        const hullLo = Math.min(...bounds.map((h) => h.lo));
        const hullHi = Math.max(...bounds.map((h) => h.hi));
        if (hullHi < x) x = hullHi;
        if (hullLo > end) end = hullLo;
      }
      while (x < end) {
        let best: (typeof atHand)[number] | undefined;
        for (const h of atHand) if (h.lo <= x && h.hi > x && (!best || h.hi > best.hi)) best = h;
        if (best) {
          const to = Math.min(best.hi, end);
          steps.push({ kind: 'have', base: base + best.lo, from: base + x, to: base + to, payload: best.payload() });
          x = to;
          continue;
        }
        const to = Math.min(end, ...atHand.filter((h) => h.lo > x).map((h) => h.lo));
        const piece = new Piece(i, x, to, base + x, base + to);
        tier.announce(keyOf(i), piece);
        steps.push({ kind: 'fetch', piece });
        x = to;
      }
    }

    const abort = new AbortController();
    const onAbort = () => abort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const parts: Part[] = [];
    for (let k = 0; k < steps.length; ) {
      const step = steps[k];
      if (step.kind === 'have') {
        // Only bytes of the read: an extent at hand may lie wholly outside it (a gap was fetched).
        parts.push(step);
        k++;
        continue;
      }
      const group = [step.piece];
      k++;
      for (let nx = steps[k]; nx?.kind === 'fetch' && nx.piece.from === group[group.length - 1].to; nx = steps[++k]) group.push(nx.piece);
      parts.push({ kind: 'run', run: this.fetchRun(obj, group, start, stop, abort.signal) });
    }

    try {
      for (const part of parts) {
        if (part.kind === 'have') {
          const payload = await part.payload;
          const a = Math.max(start, part.from) - part.base;
          const b = Math.min(stop, part.to) - part.base;
          if (b <= a) continue;
          let slice = payload.subarray(a, b);
          // A small piece of an extent is copied, so that it does not keep the whole extent in memory.
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
      // The other runs stop; readers sharing their pieces fetch them on their own.
      abort.abort(err);
      for (const p of parts) if (p.kind === 'run') p.run.release();
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** An extent another read is fetching; if that read fails, this one fetches the extent itself. */
  private orFetchAlone(shared: InflightExtent, obj: TierObject, slot: number, signal?: AbortSignal): Promise<Buffer> {
    return shared.payload.catch(async () => {
      const from = slot * this.tier.chunkBytes + shared.lo;
      const record = allocChunk(shared.hi - shared.lo);
      let filled = 0;
      await this.inner.read(from, from + record.length - CHUNK_HEADER_BYTES, (c) => {
        c.copy(record, CHUNK_HEADER_BYTES + filled);
        filled += c.length;
      }, signal);
      if (filled !== record.length - CHUNK_HEADER_BYTES) throw new SlicefsError('BAD_RESPONSE', `${this.label}: ${filled} bytes of ${record.length - CHUNK_HEADER_BYTES} arrived`);
      this.tier.countMiss(filled);
      void this.tier.storeChunk(obj, slot, shared.lo, record);
      return payloadOf(record);
    });
  }

  /**
   * Fetches `pieces` (abutting, each registered in `tier.inflight` or owned alone) with one read of
   * the inner source; queues the bytes inside [start, stop) for delivery, and completes and stores
   * each piece.
   */
  private fetchRun(obj: TierObject, pieces: Piece[], start: number, stop: number, signal: AbortSignal): Run {
    const tier = this.tier;
    const from = pieces[0].from;
    const to = pieces[pieces.length - 1].to;
    const run = new Run();
    let pos = from;
    let k = 0;
    let filled = 0;
    const release = (p: Piece) => tier.unannounce(`${obj.key}#${p.slot}`, p);
    const complete = (p: Piece) => {
      tier.countMiss(p.to - p.from);
      p.finish();
      // Shared until it is on disk, so that nobody fetches it again meanwhile; the hold passes to the tier.
      const written = tier.storePiece(obj, p.slot, p.lo, p.parts);
      if (written) void written.finally(() => release(p));
      else release(p);
    };
    const fail = (err: unknown) => {
      for (let j = k; j < pieces.length; j++) {
        pieces[j].fail(err);
        tier.hold(pieces[j].parts, -1);
        release(pieces[j]);
      }
      k = pieces.length;
    };
    const onPiece = (bytes: Buffer): Promise<void> | undefined => {
      const a = Math.max(pos, start);
      const b = Math.min(pos + bytes.length, stop);
      let wait: Promise<void> | undefined;
      if (b > a) wait = run.push(a === pos && b === pos + bytes.length ? bytes : bytes.subarray(a - pos, b - pos));
      let off = 0;
      while (off < bytes.length && k < pieces.length) {
        const p = pieces[k];
        const take = Math.min(p.to - p.from - filled, bytes.length - off);
        // A view, not a copy (see the module header), held from now on.
        const part = off === 0 && take === bytes.length ? bytes : bytes.subarray(off, off + take);
        p.parts.push(part);
        tier.hold([part], 1);
        filled += take;
        off += take;
        if (filled === p.to - p.from) {
          complete(p);
          k++;
          filled = 0;
        }
      }
      pos += bytes.length;
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
