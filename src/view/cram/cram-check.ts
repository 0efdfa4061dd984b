/**
 * A check of the CRAM bytes @gmod/cram is about to parse: a container's header and the blocks of
 * one slice (or of the header container). @gmod/cram trusts every count: a container header's
 * landmark count of millions loops as long (found by test/unit/fuzz-cram.test.ts: a CRAI that
 * points a few bytes off made `view` hang, growing past 1 GB), and it decompresses a block into
 * its stated uncompressed size before it checks the block's CRC32. Here every length must fit in
 * the bytes that are there, and in CRAM 3 the container header's and each block's CRC32 must
 * match (zlib's crc32), before @gmod/cram reads them; so corrupt bytes are one clear error.
 * Layouts: CRAM specification 3.1, §7 (containers), §8 (blocks), §2.3 (ITF8, LTF8).
 */
import { crc32 } from 'node:zlib';
import { SlicefsError } from '../../errors.js';

/** Reads [pos, pos + len) of the file, fewer bytes at its end. */
export type ReadAt = (pos: number, len: number) => Promise<Buffer>;

/**
 * The largest uncompressed block accepted. htslib writes slices of at most 10,000 reads or
 * 500 Mbases (bases_per_slice), so one data series of a slice can approach 500 MB; a larger stated
 * size is what a corrupt or hostile block says, and @gmod/cram would allocate it before its CRC.
 */
const MAX_BLOCK_BYTES = 1024 * 1024 * 1024;
/** A container header without its landmarks: int32 + 4 ITF8 + 2 LTF8 + 2 ITF8 (at most). */
const HEADER1_MAX = 4 + 5 * 4 + 9 * 2 + 5 * 2;
/** A block header: method, content type, three ITF8. */
const BLOCK_HEADER_MAX = 2 + 5 * 3;

/** Reads ITF8 and LTF8 numbers from bytes (exported for the tests' CRC fixer). */
export class Cursor {
  constructor(
    readonly bytes: Buffer,
    public pos: number,
  ) {}

  /** An ITF8 (1..5 bytes), or undefined where the bytes end. */
  itf8(): number | undefined {
    const b = this.bytes;
    const p = this.pos;
    const b0 = b[p];
    const n = b0 < 0x80 ? 1 : b0 < 0xc0 ? 2 : b0 < 0xe0 ? 3 : b0 < 0xf0 ? 4 : 5;
    if (b0 === undefined || p + n > b.length) return undefined;
    this.pos += n;
    switch (n) {
      case 1:
        return b0;
      case 2:
        return ((b0 & 0x3f) << 8) | b[p + 1];
      case 3:
        return ((b0 & 0x1f) << 16) | (b[p + 1] << 8) | b[p + 2];
      case 4:
        return ((b0 & 0x0f) << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
      default:
        return ((b0 & 0x0f) << 28) | (b[p + 1] << 20) | (b[p + 2] << 12) | (b[p + 3] << 4) | (b[p + 4] & 0x0f);
    }
  }

  /** Skips an LTF8 (1..9 bytes: as many as the leading one bits + 1); false where the bytes end. */
  skipLtf8(): boolean {
    const b0 = this.bytes[this.pos];
    if (b0 === undefined) return false;
    let n = 1;
    while (n < 9 && b0 & (0x80 >> (n - 1))) n++;
    if (this.pos + n > this.bytes.length) return false;
    this.pos += n;
    return true;
  }
}

export interface ContainerInfo {
  /** Where its blocks begin (after its header), and their total length. */
  dataStart: number;
  length: number;
  blocks: number;
}

function corrupt(label: string, what: string): SlicefsError {
  return new SlicefsError('BAD_RESPONSE', `${label}: corrupt CRAM ${what}`);
}

/** Checks the container header at `pos` (see the module header) and returns where its blocks are. */
export async function checkContainer(readAt: ReadAt, fileSize: number, pos: number, majorVersion: number, label: string): Promise<ContainerInfo> {
  const bad = (why: string) => corrupt(label, `container at byte ${pos}: ${why}`);
  if (pos < 0 || pos >= fileSize) throw bad(`it is outside the file (${fileSize} bytes)`);
  const head = await readAt(pos, HEADER1_MAX);
  const c = new Cursor(head, 4);
  if (head.length < 4) throw bad('the file ends inside its header');
  const length = head.readInt32LE(0);
  const fields = [c.itf8(), c.itf8(), c.itf8(), c.itf8()]; // reference, start, span, records
  const counter = majorVersion >= 3 ? c.skipLtf8() : c.itf8() !== undefined;
  const bases = majorVersion >= 2 ? c.skipLtf8() : true;
  const blocks = c.itf8();
  const nLandmarks = c.itf8();
  if (fields.includes(undefined) || !counter || !bases || blocks === undefined || nLandmarks === undefined) throw bad('the file ends inside its header');
  if (length < 0 || blocks < 0 || nLandmarks < 0) throw bad(`a length of ${length}, ${blocks} blocks, ${nLandmarks} landmarks`);
  // Each landmark is one ITF8 (at least a byte) of the header, and each slice at least a block.
  if (nLandmarks > length || blocks > length) throw bad(`${nLandmarks} landmarks and ${blocks} blocks in ${length} bytes`);
  const rest = await readAt(pos + c.pos, 5 * nLandmarks + 4);
  const all = Buffer.concat([head.subarray(0, c.pos), rest]);
  const l = new Cursor(all, c.pos);
  for (let i = 0; i < nLandmarks; i++) {
    if (l.itf8() === undefined) throw bad('the file ends inside its landmarks');
  }
  if (majorVersion >= 3) {
    if (all.length < l.pos + 4) throw bad('the file ends before its CRC32');
    const stated = all.readUInt32LE(l.pos);
    const actual = crc32(all.subarray(0, l.pos)) >>> 0;
    if (stated !== actual) throw bad(`its header's CRC32 is ${actual.toString(16)}, it states ${stated.toString(16)}`);
    l.pos += 4;
  }
  const dataStart = pos + l.pos;
  if (dataStart + length > fileSize) throw bad(`its ${length} bytes run past the end of the file`);
  return { dataStart, length, blocks };
}

/**
 * Checks the blocks from `from` on: `count` of them, or (count undefined) as many as fill
 * [from, to) exactly. Each must fit before `to`, state an uncompressed size of at most
 * MAX_BLOCK_BYTES, and (CRAM 3) match its CRC32. Returns where the last one ends.
 */
export async function checkBlocks(readAt: ReadAt, from: number, to: number, count: number | undefined, majorVersion: number, label: string): Promise<number> {
  let pos = from;
  for (let i = 0; count === undefined ? pos < to : i < count; i++) {
    const bad = (why: string) => corrupt(label, `block at byte ${pos}: ${why}`);
    const head = await readAt(pos, BLOCK_HEADER_MAX);
    const c = new Cursor(head, 2);
    const contentId = c.itf8();
    const compressed = c.itf8();
    const uncompressed = c.itf8();
    if (head.length < 2 || contentId === undefined || compressed === undefined || uncompressed === undefined) throw bad('the file ends inside its header');
    if (compressed < 0 || uncompressed < 0 || uncompressed > MAX_BLOCK_BYTES) throw bad(`sizes ${compressed} (compressed) and ${uncompressed}`);
    if (head[0] === 0 && compressed !== uncompressed) throw bad(`a raw block of ${compressed} bytes that says ${uncompressed}`);
    const end = pos + c.pos + compressed + (majorVersion >= 3 ? 4 : 0);
    if (end > to) throw bad(`its ${compressed} bytes run past the end of ${count === undefined ? 'the slice the index gives' : 'the container'} (byte ${to})`);
    if (majorVersion >= 3) {
      const whole = await readAt(pos, end - pos);
      if (whole.length < end - pos) throw bad('the file ends inside it');
      const stated = whole.readUInt32LE(whole.length - 4);
      const actual = crc32(whole.subarray(0, whole.length - 4)) >>> 0;
      if (stated !== actual) throw bad(`its CRC32 is ${actual.toString(16)}, it states ${stated.toString(16)}`);
    }
    pos = end;
  }
  if (count === undefined && pos !== to) throw corrupt(label, `slice: its blocks end at byte ${pos}, not at ${to} where the index says it ends`);
  return pos;
}
