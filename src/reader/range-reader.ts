/**
 * RangeReader: reads of arbitrary (offset, length) of one pinned object, served from BlockCache
 * blocks, with readahead for sequential access. One per open file handle (readahead state is
 * per reader, as in mountpoint-s3's prefetcher), all sharing one BlockCache.
 *
 * Sequential detection: a read starting within [previous end - one block, previous end + tolerance]
 * continues a stream (small forward jumps, as samtools makes over a BGZF file, and re-reads of the
 * tail of the last block still count). Each sequential read doubles the readahead window from
 * `readaheadInitialBytes` up to `readaheadMaxBytes`; the window beyond the current read is handed to
 * `BlockCache.prefetch`, which fetches only what is neither cached nor in flight, in requests of
 * `maxRequestBytes` that run in parallel. A read elsewhere resets the window: random reads fetch only
 * the blocks they touch (one 1 MiB block for a typical samtools seek).
 */
import type { BlockCache, PinnedObject } from '../cache/block-cache.js';
import type { ReaderConfig } from '../config.js';

export class RangeReader {
  private nextOffset = -1;
  private window = 0;

  constructor(
    private readonly cache: BlockCache,
    private readonly obj: PinnedObject,
    private readonly config: ReaderConfig,
  ) {}

  get size(): number {
    return this.obj.version.size;
  }

  /**
   * Bytes [offset, offset + length) clamped to the object's end. The result may share memory with
   * the cache: callers copy it out and do not keep it.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    const size = this.obj.version.size;
    const end = Math.min(size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const bs = this.cache.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((end - 1) / bs);
    const maxRun = Math.max(1, Math.floor(this.config.maxRequestBytes / bs));

    this.updateWindow(offset, end);
    const lastBlock = this.cache.blockCount(size) - 1;
    const blocksPromise = this.cache.getBlocks(this.obj, first, last, maxRun);
    if (this.window > 0 && last < lastBlock) {
      const aheadLast = Math.min(lastBlock, Math.floor((end - 1 + this.window) / bs));
      this.cache.prefetch(this.obj, last + 1, aheadLast, maxRun);
    }
    const blocks = await blocksPromise;

    const startIn = offset - first * bs;
    if (blocks.length === 1) return blocks[0].subarray(startIn, startIn + (end - offset));
    const out = Buffer.allocUnsafe(end - offset);
    let pos = 0;
    for (let i = 0; i < blocks.length; i++) {
      const from = i === 0 ? startIn : 0;
      const to = Math.min(blocks[i].length, from + (out.length - pos));
      pos += blocks[i].copy(out, pos, from, to);
    }
    return out;
  }

  private updateWindow(offset: number, end: number): void {
    const bs = this.cache.blockSize;
    const sequential =
      this.nextOffset >= 0 &&
      offset >= this.nextOffset - bs &&
      offset <= this.nextOffset + this.config.sequentialToleranceBytes;
    if (sequential) {
      this.window =
        this.window === 0
          ? this.config.readaheadInitialBytes
          : Math.min(this.config.readaheadMaxBytes, this.window * 2);
    } else {
      this.window = 0;
    }
    this.nextOffset = Math.max(end, sequential ? this.nextOffset : 0);
  }
}
