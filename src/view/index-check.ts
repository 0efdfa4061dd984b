/**
 * A structural check of a BAI or CSI index before @gmod/bam parses it. @gmod/bam trusts every count
 * in an index: a linear-index count of 2^31 − 1 makes it fill an array of two billion entries
 * (2 GB and half a minute, found by test/unit/fuzz-bam.test.ts), a chunk count of 2^31 loops as
 * long, and a CSI depth in the millions loops in its bin arithmetic. This walk reads every count and
 * requires what it counts to fit in the bytes that are left, so it does O(size / 8) work and
 * allocates nothing; an index that passes can be parsed in time and memory bounded by its size.
 * The layouts are those of the SAM specification (§5.2 BAI, and the CSI specification).
 */
import { gunzipSync } from 'node:zlib';
import { SlicefsError } from '../errors.js';
import { printable } from '../util/printable.js';

/** htslib's BAI bin count: bins 0..37448 plus the pseudo-bin 37450 (BAI spec). */
const BAI_PSEUDO_BIN = 37450;
/**
 * An inflated CSI may be this many times its compressed size (real ones are 2–4 times): beyond
 * that it is a decompression bomb, not an index.
 */
const CSI_MAX_RATIO = 64;
/** ...plus this, for small files whose ratio says little. */
const CSI_MIN_ALLOWANCE = 16 * 1024 * 1024;
/** The deepest CSI read (see checkCsi). */
const CSI_MAX_DEPTH = 9;

class IndexReader {
  pos = 0;
  constructor(
    private readonly bytes: Buffer,
    private readonly label: string,
    private readonly kind: string,
  ) {}

  fail(why: string): SlicefsError {
    return new SlicefsError('BAD_RESPONSE', printable(`${this.label}: corrupt ${this.kind} index at byte ${this.pos}: ${why}`));
  }

  /** Skips `n` bytes that must be there (`what`, for the message). */
  skip(n: number, what: string): void {
    if (n > this.bytes.length - this.pos) throw this.fail(`${what} runs past the end of the index`);
    this.pos += n;
  }

  int32(what: string): number {
    if (this.bytes.length - this.pos < 4) throw this.fail(`${what} runs past the end of the index`);
    const v = this.bytes.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(what: string): number {
    const v = this.int32(what);
    return v >>> 0;
  }

  /** A count of items of `itemBytes` each: not negative, and they must fit in what is left. */
  count(what: string, itemBytes: number): number {
    const n = this.int32(what);
    if (n < 0) throw this.fail(`${what} is ${n}`);
    if (n * itemBytes > this.bytes.length - this.pos) throw this.fail(`${what} is ${n}, more than the ${this.bytes.length - this.pos} bytes left can hold`);
    return n;
  }

  get left(): number {
    return this.bytes.length - this.pos;
  }
}

/** Throws a BAD_RESPONSE naming the byte where a BAI stops holding together. */
export function checkBai(bytes: Buffer, label: string): void {
  const r = new IndexReader(bytes, label, 'BAI');
  if (bytes.subarray(0, 4).toString('latin1') !== 'BAI\x01') throw r.fail('no BAI magic');
  r.skip(4, 'magic');
  // Each reference takes at least its two counts.
  const nRef = r.count('the reference count', 8);
  for (let i = 0; i < nRef; i++) {
    // A bin takes at least its number and its chunk count.
    const nBin = r.count(`reference ${i}'s bin count`, 8);
    for (let j = 0; j < nBin; j++) {
      const bin = r.uint32('a bin number');
      if (bin > BAI_PSEUDO_BIN) throw r.fail(`bin number ${bin} (at most ${BAI_PSEUDO_BIN})`);
      const nChunk = r.count(`bin ${bin}'s chunk count`, 16);
      if (bin === BAI_PSEUDO_BIN && nChunk !== 2) throw r.fail(`the pseudo-bin has ${nChunk} chunks, not 2`);
      r.skip(16 * nChunk, 'the chunks');
    }
    r.skip(8 * r.count(`reference ${i}'s interval count`, 8), 'the linear index');
  }
  // Optionally, the count of unplaced unmapped reads (8 bytes); anything else is not a BAI.
  if (r.left !== 0 && r.left !== 8) throw r.fail(`${r.left} bytes after the last reference`);
}

/**
 * Inflates a CSI (BGZF) with its size bounded, checks it, and throws a BAD_RESPONSE where it stops
 * holding together. `bytes`: the file as stored.
 */
export function checkCsi(bytes: Buffer, label: string): void {
  let data: Buffer;
  try {
    data = gunzipSync(bytes, { maxOutputLength: CSI_MIN_ALLOWANCE + CSI_MAX_RATIO * bytes.length });
  } catch (err) {
    throw new SlicefsError('BAD_RESPONSE', printable(`${label}: corrupt CSI index: ${(err as Error).message}`));
  }
  const r = new IndexReader(data, label, 'CSI');
  const magic = data.subarray(0, 4).toString('latin1');
  if (magic !== 'CSI\x01' && magic !== 'CSI\x02') throw r.fail('no CSI magic');
  r.skip(4, 'magic');
  const minShift = r.int32('min_shift');
  const depth = r.int32('depth');
  // htslib's bound is min_shift + 3·depth ≤ 63; @gmod/bam computes bin numbers with 32-bit shifts,
  // right only up to depth 9 (positions up to 2^(min_shift + 27), 2^41 with the usual 14).
  if (minShift < 0 || minShift > 32 || depth < 0 || depth > CSI_MAX_DEPTH) throw r.fail(`min_shift ${minShift} and depth ${depth} (0..32 and 0..${CSI_MAX_DEPTH} are read)`);
  const maxBin = (8 ** (depth + 1) - 1) / 7;
  r.skip(r.count('the auxiliary data length', 1), 'the auxiliary data');
  // Each reference takes at least its bin count.
  const nRef = r.count('the reference count', 4);
  for (let i = 0; i < nRef; i++) {
    // A bin takes at least its number, loffset and chunk count.
    const nBin = r.count(`reference ${i}'s bin count`, 16);
    for (let j = 0; j < nBin; j++) {
      const bin = r.uint32('a bin number');
      r.skip(8, 'a loffset');
      const nChunk = r.count(`bin ${bin}'s chunk count`, 16);
      // The pseudo-bin (max_bin + 1) holds 2 chunks of statistics; @gmod/bam skips it as such.
      if (bin > maxBin && nChunk !== 2) throw r.fail(`bin ${bin} (past the last, ${maxBin}) has ${nChunk} chunks, not 2`);
      r.skip(16 * nChunk, 'the chunks');
    }
  }
  if (r.left !== 0 && r.left !== 8) throw r.fail(`${r.left} bytes after the last reference`);
}
