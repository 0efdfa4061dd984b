/**
 * BlockCache: fixed-size, aligned blocks of remote objects in memory, with a byte budget (lru-cache
 * with `maxSize`), shared in-flight fetches, and coalescing of contiguous misses into one request.
 *
 * Key: `cacheKey#blockIndex` (source/object-source `cacheKey`: the object's identity and pinned
 * version), so a block of one object or version can never answer for another.
 *
 * `getBlocks(first, last)` looks every block up; a block already being fetched is awaited, not
 * fetched again (eight readers of one cold block make one request); the remaining misses are grouped
 * into runs of contiguous blocks, each run (split at `maxRunBlocks`) becomes one closed Range
 * request, and each block of a run resolves as soon as its last byte arrives, so a reader waiting
 * for the first block of an 8 MiB readahead does not wait for the other seven.
 *
 * A block whose fetch failed is remembered as failed for `failureTtlMs`: the kernel retries a
 * failed readahead page at once with a second FUSE read, and without this memory a server that
 * stalls would make one read(2) wait twice the retry budget instead of once.
 *
 * Memory: the budget (`--cache-size`) covers the cached blocks and the blocks being fetched (their
 * buffers fill as the bytes arrive): a fetch that starts evicts least recently used blocks to make
 * room for it (`makeRoom`), so cached + in flight ≤ budget, apart from blocks a reader still copies
 * from. `maxInflightBytes` (half the budget) bounds readahead in flight: readahead is skipped when
 * the bound is reached, so it cannot evict more than half the cache. Demand reads are never refused.
 *
 * Readahead has an owner (a file handle's RangeReader): `cancelPrefetch(owner)` (at close) aborts
 * its requests whose blocks still to come no reader waits for. Their blocks leave the in-flight set
 * at once (a reader arriving later fetches anew), and each request settles only the blocks it still
 * owns, so a late byte of an aborted request never resolves or fails another request's block.
 */
import { LRUCache } from 'lru-cache';
import { Block } from './block.js';
import type { CacheConfig } from '../config.js';
import { SlicefsError } from '../errors.js';
import type { Stats } from '../stats.js';
import { cacheKey, type ObjectSource } from '../source/object-source.js';
import type { ObjectVersion } from '../transport/version.js';
import { deferred, type Deferred } from '../util/deferred.js';

export interface PinnedObject {
  source: ObjectSource;
  version: ObjectVersion;
}

interface Pending extends Deferred<Block> {
  /** Demand readers waiting for this block: it is born with this many references. */
  waiters: number;
  /** The request fetching it (set when the request starts). */
  fetch?: Fetch;
}

/** One Range request under way: its blocks' keys, the readahead owner that asked, its abort. */
interface Fetch {
  keys: string[];
  owner?: object;
  abort: AbortController;
}

export class BlockCache {
  readonly blockSize: number;
  private readonly lru: LRUCache<string, Block>;
  private readonly inflight = new Map<string, Pending>();
  /** Keys of in-flight blocks started by readahead, and their bytes (bounded by maxInflightBytes). */
  private readonly prefetching = new Set<string>();
  private inflightBytes = 0;
  /** Bytes of every block being fetched, demand reads included (counted against the budget). */
  private fetchingBytes = 0;
  private readonly budgetBytes: number;
  private readonly failures = new Map<string, { error: unknown; at: number }>();
  /** Readahead requests under way, by owner (`cancelPrefetch`). */
  private readonly prefetchesOf = new Map<object, Set<Fetch>>();
  readonly maxInflightBytes: number;
  private readonly failureTtlMs: number;

  /**
   * `onBlockFreed` receives the chunks of a block nobody can read any more (evicted, no reader
   * copying from it), so their memory can be reused.
   */
  constructor(
    config: CacheConfig,
    private readonly stats: Stats,
    private readonly onBlockFreed?: (parts: readonly Buffer[]) => void,
  ) {
    this.blockSize = config.blockSize;
    this.failureTtlMs = config.failureTtlMs;
    this.budgetBytes = Math.max(config.budgetBytes, config.blockSize);
    this.lru = new LRUCache<string, Block>({
      // lru-cache needs a positive maxSize; a zero budget still keeps one block so reads work.
      maxSize: Math.max(config.budgetBytes, config.blockSize),
      sizeCalculation: (b) => Math.max(1, b.length),
      dispose: (b) => b.evict(),
    });
    // Readahead in flight may take up to half the budget (evicting cached blocks for it).
    this.maxInflightBytes = Math.max(config.budgetBytes / 2, 4 * config.blockSize);
  }

  get cachedBytes(): number {
    return this.lru.calculatedSize;
  }

  /** Number of blocks of an object of `size` bytes. */
  blockCount(size: number): number {
    return Math.ceil(size / this.blockSize);
  }

  /**
   * Blocks [first, last] of the object, fetched where missing. Every block is handed out with a
   * reference (Block.acquire): the caller must `release()` each one when its copy is done, whether
   * the copy succeeded or not. When some block cannot be had, the ones already acquired are released
   * here before the error is thrown.
   */
  async getBlocks(obj: PinnedObject, first: number, last: number, maxRunBlocks: number): Promise<Block[]> {
    const prefix = cacheKey(obj.source, obj.version);
    const waits: Promise<Block>[] = [];
    let runStart = -1;
    const flush = (endExclusive: number) => {
      if (runStart >= 0) this.fetchRun(obj, prefix, runStart, endExclusive, maxRunBlocks);
      runStart = -1;
    };
    for (let i = first; i <= last; i++) {
      const key = `${prefix}#${i}`;
      const hit = this.lru.get(key);
      if (hit) {
        this.stats.cacheHits++;
        flush(i);
        waits.push(Promise.resolve(hit.acquire()));
        continue;
      }
      const pending = this.inflight.get(key);
      if (pending) {
        this.stats.cacheHits++;
        flush(i);
        pending.waiters++;
        waits.push(pending.promise);
        continue;
      }
      const failed = this.recentFailure(key);
      if (failed) {
        flush(i);
        waits.push(Promise.reject(failed.error));
        continue;
      }
      this.stats.cacheMisses++;
      // Register now so the blocks of this run are shared by readers that arrive meanwhile.
      waits.push(this.register(key, 1).promise);
      if (runStart < 0) runStart = i;
    }
    flush(last + 1);
    const settled = await Promise.allSettled(waits);
    const blocks = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) {
      for (const b of blocks) b.release();
      throw failed.reason;
    }
    return blocks;
  }

  /** Bytes of readahead that may still start before `prefetch` refuses (the in-flight bound). */
  get readaheadRoom(): number {
    return Math.max(0, this.maxInflightBytes - this.inflightBytes);
  }

  /**
   * Starts fetching the missing blocks of [first, last] (readahead) unless the in-flight bound is
   * reached. Returns without waiting; failures are left for a later demand read to see. `owner`:
   * who may cancel it (`cancelPrefetch`).
   */
  prefetch(obj: PinnedObject, first: number, last: number, maxRunBlocks: number, owner?: object): void {
    const prefix = cacheKey(obj.source, obj.version);
    let runStart = -1;
    for (let i = first; i <= last; i++) {
      const key = `${prefix}#${i}`;
      const present = this.lru.has(key) || this.inflight.has(key) || this.recentFailure(key) !== undefined;
      const full = this.inflightBytes + this.blockSize > this.maxInflightBytes;
      if (present || full) {
        if (runStart >= 0) this.fetchRun(obj, prefix, runStart, i, maxRunBlocks, owner);
        runStart = -1;
        if (full) return;
        continue;
      }
      this.register(key, 0);
      this.prefetching.add(key);
      this.inflightBytes += this.blockSize;
      if (runStart < 0) runStart = i;
    }
    if (runStart >= 0) this.fetchRun(obj, prefix, runStart, last + 1, maxRunBlocks, owner);
  }

  /**
   * Aborts the readahead requests of `owner` whose blocks still to come no reader waits for (a
   * request a reader joined goes on). Blocks already received stay cached.
   */
  cancelPrefetch(owner: object): void {
    const fetches = this.prefetchesOf.get(owner);
    if (!fetches) return;
    this.prefetchesOf.delete(owner);
    for (const f of fetches) {
      const mine = f.keys.flatMap((k) => {
        const p = this.inflight.get(k);
        return p?.fetch === f ? [[k, p] as const] : [];
      });
      if (mine.some(([, p]) => p.waiters > 0)) continue;
      const err = new SlicefsError('NETWORK', 'readahead cancelled: the file was closed');
      // Out of the in-flight set first: nobody can join a block whose request is being aborted.
      for (const [k, p] of mine) {
        this.settle(k, f);
        p.reject(err);
      }
      f.abort.abort(err);
    }
  }

  private register(key: string, waiters: number): Pending {
    // A prefetched block nobody awaits must not become an unhandled rejection (deferred marks it handled).
    const pending = { waiters, ...deferred<Block>() };
    this.inflight.set(key, pending);
    this.fetchingBytes += this.blockSize;
    this.makeRoom();
    return pending;
  }

  /** Evicts least recently used blocks until cached + in flight fit the budget. */
  private makeRoom(): void {
    while (this.lru.size > 0 && this.lru.calculatedSize + this.fetchingBytes > this.budgetBytes) this.lru.pop();
  }

  /** Bytes cached and being fetched: at most the budget (one block at least), by `makeRoom`. */
  get accountedBytes(): number {
    return this.lru.calculatedSize + this.fetchingBytes;
  }

  /** Fetches blocks [from, to) (already registered in `inflight`) in requests of ≤ maxRunBlocks. */
  private fetchRun(obj: PinnedObject, prefix: string, from: number, to: number, maxRunBlocks: number, owner?: object): void {
    for (let s = from; s < to; s += maxRunBlocks) {
      const e = Math.min(to, s + maxRunBlocks);
      const fetch: Fetch = { keys: [], owner, abort: new AbortController() };
      for (let i = s; i < e; i++) {
        const key = `${prefix}#${i}`;
        fetch.keys.push(key);
        this.inflight.get(key)!.fetch = fetch;
      }
      if (owner) {
        let set = this.prefetchesOf.get(owner);
        if (!set) this.prefetchesOf.set(owner, (set = new Set()));
        set.add(fetch);
      }
      void this.fetchBlocks(obj, prefix, s, e, fetch).finally(() => {
        if (!owner) return;
        const set = this.prefetchesOf.get(owner);
        set?.delete(fetch);
        if (set?.size === 0) this.prefetchesOf.delete(owner);
      });
    }
  }

  private async fetchBlocks(obj: PinnedObject, prefix: string, from: number, to: number, fetch: Fetch): Promise<void> {
    const bs = this.blockSize;
    const size = obj.version.size;
    const start = from * bs;
    const end = Math.min(size, to * bs);
    let block = from;
    let want = Math.min(bs, end - block * bs);
    let parts: Buffer[] = [];
    let filled = 0;
    const complete = (index: number, parts: Buffer[], length: number) => {
      const key = `${prefix}#${index}`;
      const pending = this.settle(key, fetch);
      // Cancelled (and perhaps fetched again by another request since): its bytes came in vain.
      if (!pending && fetch.abort.signal.aborted) return;
      // Born with one reference per waiting reader, before the cache may evict it.
      const data = new Block(parts, length, pending?.waiters ?? 0, this.onBlockFreed);
      this.lru.set(key, data);
      pending?.resolve(data);
    };
    try {
      await obj.source.read(start, end, (chunk) => {
        if (fetch.abort.signal.aborted) return;
        let off = 0;
        while (off < chunk.length) {
          const n = Math.min(chunk.length - off, want - filled);
          // No copy: the block keeps a view of the chunk (see ./block.ts).
          parts.push(off === 0 && n === chunk.length ? chunk : chunk.subarray(off, off + n));
          filled += n;
          off += n;
          if (filled === want) {
            complete(block, parts, want);
            block++;
            filled = 0;
            parts = [];
            want = Math.min(bs, end - block * bs);
          }
        }
      }, fetch.abort.signal);
      if (block < to) throw new SlicefsError('BAD_RESPONSE', `${obj.source.label}: body ended early`);
    } catch (err) {
      const at = Date.now();
      if (this.failures.size > 10_000) this.failures.clear();
      for (let i = block; i < to; i++) {
        const key = `${prefix}#${i}`;
        // Not a block this request no longer owns (cancelled, and perhaps another request's now).
        if (this.inflight.get(key)?.fetch !== fetch) continue;
        // Only a failed demand read is remembered (a reader waited for it, so the kernel will ask
        // again at once): our own readahead failing unseen must not turn the reader's first real
        // read of that block into an error without a try.
        if (!this.prefetching.has(key) || (this.inflight.get(key)?.waiters ?? 0) > 0) {
          this.failures.set(key, { error: err, at });
        }
        this.settle(key, fetch)?.reject(err);
      }
    }
  }

  private recentFailure(key: string): { error: unknown; at: number } | undefined {
    const f = this.failures.get(key);
    if (!f) return undefined;
    if (Date.now() - f.at < this.failureTtlMs) return f;
    this.failures.delete(key);
    return undefined;
  }

  /**
   * Removes a block from the in-flight set (and from the readahead account) and returns its
   * waiters, if request `fetch` still owns it.
   */
  private settle(key: string, fetch: Fetch): Pending | undefined {
    const pending = this.inflight.get(key);
    if (!pending || pending.fetch !== fetch) return undefined;
    this.inflight.delete(key);
    this.fetchingBytes -= this.blockSize;
    if (this.prefetching.delete(key)) this.inflightBytes -= this.blockSize;
    return pending;
  }
}
