/**
 * One cached block: the body chunks as they arrived from the socket, not copied into one buffer.
 * A 1 MiB block is ~16 chunks of 64 KiB. Copying chunks into a contiguous buffer on arrival cost a
 * second full copy of every byte and a 1 MiB allocation per block, and the churn of external
 * memory made V8 run a full GC every few MiB (measured: GC was 40% of the daemon's CPU in a
 * sequential read; see docs/benchmarks.md). Readers copy straight from the chunks into their
 * destination (the kernel's buffer, for FUSE), so each byte is copied once.
 */
export class Block {
  constructor(
    readonly parts: readonly Buffer[],
    readonly length: number,
  ) {}

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
