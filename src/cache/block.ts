/**
 * One cached block: the body chunks as they arrived, not copied into one buffer. Copying on
 * arrival cost a second full copy of every byte and an allocation per block, and that churn of
 * external memory made V8 run a full GC every few MiB (measured: GC was 40% of the daemon's CPU in
 * a sequential read; docs/benchmarks.md). Readers copy straight from the chunks into their
 * destination (the kernel's buffer, for FUSE), so each byte is copied once.
 *
 * Lifetime: a block's memory can be handed back for reuse (`onFree`, e.g. to the fetch worker, so
 * it fills the buffer again instead of allocating a new one). That is only safe once nobody reads
 * it: readers hold a reference (`refs`) from the moment the cache hands the block out until their
 * copy is done; eviction from the cache frees the block when the last reference goes.
 */
export class Block {
  private parts: readonly Buffer[];
  /** Readers between "handed out" and "copy done". */
  private refs: number;
  private evicted = false;

  constructor(
    parts: readonly Buffer[],
    readonly length: number,
    refs = 0,
    private readonly onFree?: (parts: readonly Buffer[]) => void,
  ) {
    this.parts = parts;
    this.refs = refs;
  }

  acquire(): this {
    if (this.evicted && this.refs === 0) throw new Error('internal: a freed block was handed out');
    this.refs++;
    return this;
  }

  release(): void {
    this.refs--;
    if (this.evicted && this.refs === 0) this.free();
  }

  /** Called by the cache when it drops the block. */
  evict(): void {
    this.evicted = true;
    if (this.refs === 0) this.free();
  }

  private free(): void {
    const parts = this.parts;
    this.parts = [];
    this.onFree?.(parts);
  }

  /** Copies bytes [from, to) of the block into `dest` at `destPos`; returns the bytes copied. */
  copyTo(dest: Buffer, destPos: number, from: number, to: number): number {
    let partStart = 0;
    let copied = 0;
    for (const part of this.parts) {
      const partEnd = partStart + part.length;
      if (partEnd > from) {
        const a = Math.max(from, partStart) - partStart;
        const b = Math.min(to, partEnd) - partStart;
        copied += part.copy(dest, destPos + copied, a, b);
      }
      partStart = partEnd;
      if (partStart >= to) break;
    }
    return copied;
  }
}
