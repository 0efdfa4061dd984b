/**
 * SegmentDecrypter: the data blocks of a Crypt4GH body (./segments.ts), arriving as ciphertext in
 * chunks of any size and alignment, turned into their plaintext clipped to a range.
 *
 * A block that lies wholly inside one chunk is opened where it is (nonce, ciphertext and MAC are
 * views into the chunk); only a block cut by a chunk edge is copied, into one staging buffer of
 * BLOCK_SIZE allocated once per stream. So each block costs one decipher set-up and one plaintext
 * buffer (the one node:crypto's update() returns; Node has no API to decrypt into a given buffer),
 * and nothing else: no concatenation, no per-chunk garbage. No view of a pushed chunk is kept after
 * push() returns, so the caller may reuse or transfer the chunk's memory at once.
 *
 * Synchronous and self-contained, so the same code runs on the calling thread (`view`,
 * `download --decrypt`) and in the decrypt worker (./decrypt-worker.ts, for the mount).
 */
import { BLOCK_SIZE, decryptBlock, SEGMENT_SIZE } from './segments.js';

export interface SegmentRange {
  /** Index of the segment whose block is the first byte pushed. */
  firstSegment: number;
  /** Plaintext offsets [plainFrom, plainTo) of the body to pass on; the rest of each block is dropped. */
  plainFrom: number;
  plainTo: number;
}

export class SegmentDecrypter {
  private segment: number;
  private stage?: Buffer;
  private staged = 0;

  constructor(
    private readonly dataKeys: Buffer[],
    private readonly range: SegmentRange,
    /** Receives the plaintext in order; each buffer is the callee's (a view of a fresh block). */
    private readonly onPlain: (plain: Buffer) => void,
    /** Names the file in errors. */
    private readonly label?: string,
  ) {
    this.segment = range.firstSegment;
  }

  /** Takes the next ciphertext bytes; throws the DECRYPT error of the first block that fails. */
  push(chunk: Buffer): void {
    let off = 0;
    if (this.staged > 0) {
      const stage = this.stage!;
      const take = Math.min(BLOCK_SIZE - this.staged, chunk.length);
      chunk.copy(stage, this.staged, 0, take);
      this.staged += take;
      off = take;
      if (this.staged < BLOCK_SIZE) return;
      this.staged = 0;
      this.open(stage);
    }
    while (chunk.length - off >= BLOCK_SIZE) {
      this.open(chunk.subarray(off, off + BLOCK_SIZE));
      off += BLOCK_SIZE;
    }
    if (off < chunk.length) {
      this.stage ??= Buffer.allocUnsafeSlow(BLOCK_SIZE);
      this.staged = chunk.copy(this.stage, 0, off);
    }
  }

  /** The body's bytes have all been pushed: opens its last, shorter block. */
  end(): void {
    if (this.staged === 0) return;
    const last = this.stage!.subarray(0, this.staged);
    this.staged = 0;
    this.open(last);
  }

  private open(block: Buffer): void {
    const plain = decryptBlock(block, this.dataKeys, this.segment, this.label);
    const segStart = this.segment * SEGMENT_SIZE;
    this.segment++;
    const a = Math.max(this.range.plainFrom, segStart) - segStart;
    const b = Math.min(this.range.plainTo, segStart + plain.length) - segStart;
    if (b > a) this.onPlain(a === 0 && b === plain.length ? plain : plain.subarray(a, b));
  }
}
