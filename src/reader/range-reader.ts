/**
 * RangeReader: reads of arbitrary (offset, length) of one pinned object, served from BlockCache
 * blocks, with readahead for sequential access. One per open file handle (readahead state is
 * per reader, as in mountpoint-s3's prefetcher), all sharing one BlockCache.
 *
 * Sequential detection: a read starting within [previous end - one block, previous end + tolerance]
 * continues a stream (small forward jumps, as samtools makes over a BGZF file, and re-reads of the
 * tail of the last block still count); any other read starts a new stream.
 *
 * Window: a quarter of the bytes the stream has consumed so far (READAHEAD_SHARE), up to
 * `readaheadMaxBytes`. A stream that ends (a random reader's 1-8 MiB read, then `close`) has then
 * fetched at most a quarter more than it read, beyond the block it ends in (which it fetches
 * anyway); with 2 × (as before) random 1-8 MiB readers fetched 1.4-2.7× what they read. A `cat`
 * reaches the full 16 MiB window after 64 MiB; the window still grows by a quarter per round trip.
 * At `close` the readahead of the handle that nobody else waits for is cancelled (`close`).
 *
 * Refill in whole requests: readahead is issued once at least `maxRequestBytes` of the window has
 * been consumed (half the window while the window is smaller), and then up to a full window. Refilling on every 128 KiB kernel read would turn a
 * sliding window into one 1 MiB request per block (measured: 4× the requests, and slower); this
 * keeps requests `maxRequestBytes` long with several in flight, and connections busy (a connection
 * left idle between bursts restarts TCP slow start on a long link).
 * `BlockCache.prefetch` fetches only what is neither cached nor in flight. Random reads fetch only
 * the blocks they touch (one 1 MiB block for a typical samtools seek).
 */
import type { BlockCache, PinnedObject } from '../cache/block-cache.js';
import type { ReaderConfig } from '../config.js';

/**
 * The window as a share of the bytes the stream has consumed: what a stream that stops fetches in
 * vain, at most. 1/4 keeps random readers under 1.2× (block edges included: benchmarks.md).
 */
const READAHEAD_SHARE = 1 / 4;

export class RangeReader {
  /** End of the previous read (-1: none yet). */
  private nextOffset = -1;
  /** Bytes consumed by the current sequential stream. */
  private streak = 0;
  /** Readahead has been requested up to this byte offset (exclusive). */
  private aheadEnd = 0;
  /** Blocks in one Range request at most (maxRequestBytes in blocks). */
  private readonly maxRun: number;

  constructor(
    protected readonly cache: BlockCache,
    protected readonly obj: PinnedObject,
    protected readonly config: ReaderConfig,
  ) {
    this.maxRun = Math.max(1, Math.floor(config.maxRequestBytes / cache.blockSize));
  }

  get size(): number {
    return this.obj.version.size;
  }

  /** Bytes [offset, offset + length) clamped to the object's end, in a new buffer. */
  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(Math.max(0, Math.min(this.size, offset + length) - offset));
    const n = await this.readInto(out, offset, length);
    return out.subarray(0, n);
  }

  /**
   * Copies bytes [offset, offset + length), clamped to the object's end, into `dest` (from its
   * start) and returns how many. The copy happens in one synchronous step after the blocks are
   * there, and not at all when `cancelled()` says the caller has given up (a FUSE read that already
   * answered with ETIMEDOUT must not have its buffer written afterwards).
   */
  async readInto(dest: Buffer, offset: number, length: number, cancelled: () => boolean = () => false): Promise<number> {
    const size = this.obj.version.size;
    const end = Math.min(size, offset + length, offset + dest.length);
    if (offset >= end) return 0;
    const bs = this.cache.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((end - 1) / bs);

    const window = this.updateWindow(offset, end);
    const blocksPromise = this.cache.getBlocks(this.obj, first, last, this.maxRun);
    if (window > 0) {
      const ahead = Math.max(this.aheadEnd, (last + 1) * bs);
      // Refill once a whole request's worth of the window has been consumed (half the window while
      // it is smaller than two requests): requests stay `maxRequestBytes` long and several stay in
      // flight, so connections never go idle.
      const unit = Math.min(this.config.maxRequestBytes, window / 2);
      if (ahead < size && ahead - end <= window - unit) {
        const aheadTo = Math.min(size, end + window);
        if (aheadTo > ahead) {
          this.prefetch(ahead, aheadTo - ahead);
          this.aheadEnd = aheadTo;
        }
      }
    }
    const blocks = await blocksPromise;
    try {
      if (cancelled()) return 0;
      let pos = 0;
      for (let i = 0; i < blocks.length; i++) {
        const blockStart = (first + i) * bs;
        const from = Math.max(offset, blockStart) - blockStart;
        const to = Math.min(end, blockStart + blocks[i].length) - blockStart;
        pos += blocks[i].copyTo(dest, pos, from, to);
      }
      return pos;
    } finally {
      for (const b of blocks) b.release();
    }
  }

  /**
   * Starts fetching [offset, offset + length) without waiting (for readers that know what they
   * will read next, like `view`, which knows each index chunk's extent).
   */
  prefetch(offset: number, length: number): void {
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return;
    const bs = this.cache.blockSize;
    this.cache.prefetch(this.obj, Math.floor(offset / bs), Math.floor((end - 1) / bs), this.maxRun, this);
  }

  /**
   * The handle is closed: its readahead that no reader waits for is cancelled (blocks already
   * received stay cached), so a closed handle stops fetching and stops counting against the
   * readahead bound.
   */
  close(): void {
    this.cache.cancelPrefetch(this);
  }

  /** Updates the stream state for a read of [offset, end) and returns the readahead window. */
  private updateWindow(offset: number, end: number): number {
    const bs = this.cache.blockSize;
    const sequential =
      this.nextOffset >= 0 &&
      offset >= this.nextOffset - bs &&
      offset <= this.nextOffset + this.config.sequentialToleranceBytes;
    if (sequential) {
      this.streak += Math.max(0, end - this.nextOffset);
      this.nextOffset = Math.max(end, this.nextOffset);
    } else {
      this.streak = 0;
      this.aheadEnd = 0;
      this.nextOffset = end;
      return 0;
    }
    if (this.config.readaheadMaxBytes <= 0) return 0;
    return Math.min(this.config.readaheadMaxBytes, Math.floor(this.streak * READAHEAD_SHARE));
  }
}
