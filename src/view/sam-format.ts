/**
 * One BAM record (its binary form, from `block_size` on excluded) as a SAM text line, exactly as
 * `samtools view` prints it (htslib's `sam_format1`): the same `*`/`=` placeholders, integer tags
 * printed as `i` whatever their width, floats as C's `%g`, `B` arrays with their subtype.
 *
 * Written by hand because no JS library formats SAM byte-for-byte like htslib (@gmod/bam decodes
 * records into objects; its tag values lose the BAM type needed for the text form).
 */

import { SlicefsError } from '../errors.js';
import { printable } from '../util/printable.js';
import { i32, recordProblem, u16 } from './bam-record.js';

const CIGAR_OPS = 'MIDNSHP=X';
const SEQ_CODES = '=ACMGRSVTWYHKDBN';

/** C's `printf("%g", x)`: 6 significant digits, exponent form below 1e-4 or from 1e6, no trailing zeros. */
export function formatG(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const exp = Number(x.toExponential(5).split('e')[1]);
  if (exp < -4 || exp >= 6) {
    const [mant, e] = x.toExponential(5).split('e');
    const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
    const n = Number(e);
    return `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const fixed = x.toFixed(Math.max(0, 5 - exp));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/**
 * A growable byte buffer SAM text is written into: records are formatted as bytes, not strings
 * (building a JS string per field was 40% of a large region's time).
 */
export class ByteSink {
  /** Its own ArrayBuffer (offset 0), so that `u32` sees it whole and aligned. */
  buf = Buffer.from(new ArrayBuffer(1 << 20));
  /** The same bytes, four at a time (formatSamInto adds 33 to qualities so). */
  u32 = new Uint32Array(this.buf.buffer);
  len = 0;

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    // A multiple of 4, for u32.
    const next = Buffer.from(new ArrayBuffer((Math.max(this.buf.length * 2, this.len + n) + 3) & ~3));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
    this.u32 = new Uint32Array(next.buffer);
  }

  /** Appends `src` (e.g. the header text). */
  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.len);
    this.len += src.length;
  }

  /** Takes the bytes written so far (a copy) and empties the sink. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    return out;
  }

  /**
   * Takes the bytes written so far as a fresh ArrayBuffer of exactly their size, and empties the
   * sink: a worker transfers it (no copy on the way back), where `take`'s Buffer may be a view of
   * Node's shared pool.
   */
  takeArrayBuffer(): ArrayBuffer {
    const out = new Uint8Array(this.len);
    out.set(this.buf.subarray(0, this.len));
    this.len = 0;
    return out.buffer;
  }
}

/**
 * Writes the decimal digits of integer `n` (|n| < 2^53) at `o` in `b`; returns the offset after
 * them. Within int32 the digits are cut off with integer division (`(x / 10) | 0`), which V8 keeps
 * in small integers; beyond it (uint32 tags, 2^53) with floating-point division.
 */
function putInt(b: Uint8Array, o: number, n: number): number {
  if (n < 0) {
    b[o++] = 45; // '-'
    n = -n;
  }
  if (n < 10) {
    b[o] = 48 + n;
    return o + 1;
  }
  if (n <= 0x7fffffff) {
    const digits = n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10;
    let e = o + digits;
    let x = n | 0;
    while (x >= 10) {
      const q = (x / 10) | 0;
      b[--e] = 48 + x - q * 10;
      x = q;
    }
    b[--e] = 48 + x;
    return o + digits;
  }
  let digits = 0;
  for (let x = n; x >= 1; x = Math.floor(x / 10)) digits++;
  let e = o + digits;
  for (let x = n; x >= 1; x = Math.floor(x / 10)) b[--e] = 48 + (x % 10);
  return o + digits;
}

const TAB = 9;
const NL = 10;
const STAR = 42;
const SEQ_BYTES = Buffer.from(SEQ_CODES, 'latin1');
/** The two bases packed in one byte, looked up at once. */
const SEQ_HI = Uint8Array.from({ length: 256 }, (_, x) => SEQ_BYTES[x >> 4]);
const SEQ_LO = Uint8Array.from({ length: 256 }, (_, x) => SEQ_BYTES[x & 0xf]);
/** Below this many qualities, a record's are written a byte at a time (putQualities has set-up costs). */
const WIDE_MIN = 16;
const CIGAR_BYTES = Buffer.from(CIGAR_OPS, 'latin1');

/**
 * The header text as `samtools view -h` prints it (htslib's sam_hdr_write without a rebuilt header):
 * the BAM's text, ended by a newline if it lacks one (sam_hdr_sanitise), and, when no line of it
 * starts with `@SQ<TAB>`, one `@SQ SN: LN:` line for each reference of the binary list, after it.
 */
export function samHeaderText(text: string, contigs: readonly { name: string; length: number }[]): string {
  const ended = text.length === 0 || text.endsWith('\n') ? text : `${text}\n`;
  if (/^@SQ\t/m.test(ended)) return ended;
  return ended + contigs.map((c) => `@SQ\tSN:${c.name}\tLN:${c.length}\n`).join('');
}

/** Reference names as bytes, for formatSamInto. */
export function refNameBytes(refNames: readonly string[]): Buffer[] {
  return refNames.map((n) => Buffer.from(n, 'latin1'));
}

/** The record as one SAM line (string), e.g. for tests. */
export function formatSamRecord(rec: Uint8Array, refNames: readonly string[]): string {
  const sink = new ByteSink();
  formatSamInto(rec, refNameBytes(refNames), sink);
  return sink.buf.toString('latin1', 0, sink.len - 1);
}

/**
 * Appends the record in `rec` (the bytes after its 4-byte `block_size`) as a SAM line, newline
 * included. `refs[i]` is the name of reference i. A record that does not hold together (fields
 * past its end, a reference the header lacks, a tag of unknown type) is a BAD_RESPONSE naming the
 * record, as htslib refuses it (part of its line may have been appended).
 */
export function formatSamInto(rec: Uint8Array, refs: readonly Buffer[], out: ByteSink): void {
  const problem = recordProblem(rec);
  if (problem) throw new SlicefsError('BAD_RESPONSE', `corrupt BAM record: ${problem}`);
  const refId = i32(rec, 0);
  const pos = i32(rec, 4);
  const lReadName = rec[8];
  const mapq = rec[9];
  const nCigar = u16(rec, 12);
  const flag = u16(rec, 14);
  const lSeq = i32(rec, 16);
  const nextRefId = i32(rec, 20);
  const nextPos = i32(rec, 24);
  const tlen = i32(rec, 28);
  if (refId < -1 || refId >= refs.length) throw badRecord(rec, `reference id ${refId}, but the header has ${refs.length} references`);
  if (nextRefId < -1 || nextRefId >= refs.length) throw badRecord(rec, `mate reference id ${nextRefId}, but the header has ${refs.length} references`);
  const len = rec.length;
  const tagsAt = 32 + lReadName + nCigar * 4 + ((lSeq + 1) >> 1) + lSeq;
  // One reservation for the whole line: 11 fixed fields of at most 11 characters and their tabs,
  // the names, a CIGAR operation as at most 9 digits and its letter, two characters per base, and
  // at most 5 characters per byte of tags (`,-128` for a B:c value; `\tXX:i:-128` is 10 for 4).
  out.ensure(160 + (refId >= 0 ? refs[refId].length : 0) + (nextRefId >= 0 ? refs[nextRefId].length : 0) + lReadName + nCigar * 10 + lSeq * 2 + (len - tagsAt) * 5);
  const b = out.buf;
  let o = out.len;
  let p = 32;
  for (let e = p + lReadName - 1; p < e; ) b[o++] = rec[p++];
  p = 32 + lReadName;
  b[o++] = TAB;
  o = putInt(b, o, flag);
  b[o++] = TAB;
  if (refId < 0) b[o++] = STAR;
  else o = putBytes(b, o, refs[refId]);
  b[o++] = TAB;
  o = putInt(b, o, pos + 1);
  b[o++] = TAB;
  o = putInt(b, o, mapq);
  b[o++] = TAB;
  if (nCigar === 0) b[o++] = STAR;
  for (let i = 0; i < nCigar; i++, p += 4) {
    const v = i32(rec, p) >>> 0;
    o = putInt(b, o, v >>> 4);
    b[o++] = CIGAR_BYTES[v & 0xf];
  }
  b[o++] = TAB;
  if (nextRefId < 0) b[o++] = STAR;
  else if (nextRefId === refId) b[o++] = 61; // '='
  else o = putBytes(b, o, refs[nextRefId]);
  b[o++] = TAB;
  o = putInt(b, o, nextPos + 1);
  b[o++] = TAB;
  o = putInt(b, o, tlen);
  b[o++] = TAB;
  if (lSeq === 0) b[o++] = STAR;
  else {
    const pairs = lSeq >> 1;
    for (let i = 0; i < pairs; i++) {
      const x = rec[p + i];
      b[o++] = SEQ_HI[x];
      b[o++] = SEQ_LO[x];
    }
    if (lSeq & 1) b[o++] = SEQ_HI[rec[p + pairs]];
  }
  p += (lSeq + 1) >> 1;
  b[o++] = TAB;
  if (lSeq === 0 || rec[p] === 0xff) b[o++] = STAR;
  else if (lSeq < WIDE_MIN) for (let i = 0; i < lSeq; i++) b[o++] = rec[p + i] + 33;
  else o = putQualities(out.u32, b, o, rec, p, lSeq);
  p += lSeq;

  while (p < len) {
    if (len - p < 4) throw badRecord(rec, `a tag at byte ${p} runs past the record's end`);
    b[o++] = TAB;
    b[o++] = rec[p];
    b[o++] = rec[p + 1];
    b[o++] = 58; // ':'
    const type = rec[p + 2];
    const tagAt = p;
    p += 3;
    switch (type) {
      case 65: // A
        b[o++] = 65;
        b[o++] = 58;
        b[o++] = rec[p];
        p += 1;
        break;
      case 99: // c, C, s, S, i, I: every integer width prints as `i`
      case 67:
      case 115:
      case 83:
      case 105:
      case 73:
        if (len - p < WIDTH[type]) throw tagPastEnd(rec, tagAt);
        b[o++] = 105; // 'i'
        b[o++] = 58;
        o = putInt(b, o, numberAt(rec, p, type));
        p += WIDTH[type];
        break;
      case 102: // f
        if (len - p < 4) throw tagPastEnd(rec, tagAt);
        b[o++] = 102;
        b[o++] = 58;
        o = putAscii(b, o, formatG(numberAt(rec, p, type)));
        p += 4;
        break;
      case 90: // Z
      case 72: {
        // H
        b[o++] = type;
        b[o++] = 58;
        let e = p;
        while (e < len && rec[e] !== 0) e++;
        if (e === len) throw badRecord(rec, `tag ${latin1(rec, tagAt, tagAt + 2)} has no terminating NUL`);
        while (p < e) b[o++] = rec[p++];
        p = e + 1;
        break;
      }
      case 66: {
        // B: a subtype, a count, the values
        if (len - p < 5) throw tagPastEnd(rec, tagAt);
        const sub = rec[p];
        const n = i32(rec, p + 1) >>> 0;
        p += 5;
        const width = WIDTH[sub];
        if (!width) throw badRecord(rec, `tag ${latin1(rec, tagAt, tagAt + 2)} has unknown B subtype '${String.fromCharCode(sub)}'`);
        if (len - p < n * width) throw tagPastEnd(rec, tagAt);
        b[o++] = 66;
        b[o++] = 58;
        b[o++] = sub;
        for (let i = 0; i < n; i++, p += width) {
          b[o++] = 44; // ','
          if (sub === 102) o = putAscii(b, o, formatG(numberAt(rec, p, sub)));
          else o = putInt(b, o, numberAt(rec, p, sub));
        }
        break;
      }
      default:
        throw badRecord(rec, `tag ${latin1(rec, tagAt, tagAt + 2)} has unknown type '${String.fromCharCode(type)}'`);
    }
  }
  b[o++] = NL;
  out.len = o;
}

/**
 * Writes the `n` qualities at `p` of `rec` plus 33 (modulo 256, as htslib's char arithmetic) at
 * `o` of `b` (whose 32-bit view is `u32`); returns the offset after them. They are copied, then
 * 33 is added four bytes at a time where aligned: the low 7 bits of each byte plus 0x21 cannot
 * carry into the next byte, and XOR puts each byte's top bit back (a SWAR add).
 */
function putQualities(u32: Uint32Array, b: Uint8Array, o: number, rec: Uint8Array, p: number, n: number): number {
  b.set(new Uint8Array(rec.buffer, rec.byteOffset + p, n), o);
  const end = o + n;
  let i = o;
  for (; i & 3; i++) b[i] += 33;
  for (; i + 4 <= end; i += 4) {
    const w = u32[i >> 2];
    u32[i >> 2] = ((w & 0x7f7f7f7f) + 0x21212121) ^ (w & 0x80808080);
  }
  for (; i < end; i++) b[i] += 33;
  return end;
}

/** Copies `src` to `b` at `o`; returns the offset after it. */
function putBytes(b: Uint8Array, o: number, src: Uint8Array): number {
  for (let i = 0; i < src.length; i++) b[o++] = src[i];
  return o;
}

/** Writes the characters of an ASCII string (a formatted float) at `o`; returns the offset after them. */
function putAscii(b: Uint8Array, o: number, s: string): number {
  for (let i = 0; i < s.length; i++) b[o++] = s.charCodeAt(i);
  return o;
}

/** A record that does not hold together, named by its read name. */
function badRecord(rec: Uint8Array, why: string): SlicefsError {
  return new SlicefsError('BAD_RESPONSE', printable(`corrupt BAM record '${latin1(rec, 32, 32 + rec[8] - 1)}': ${why}`));
}

function tagPastEnd(rec: Uint8Array, tagAt: number): SlicefsError {
  return badRecord(rec, `tag ${latin1(rec, tagAt, tagAt + 2)} runs past the record's end`);
}

/** Bytes of a numeric tag or B-array value, by its type byte (c C s S i I f); 0 for any other byte. */
const WIDTH = new Uint8Array(256);
WIDTH[99] = WIDTH[67] = 1;
WIDTH[115] = WIDTH[83] = 2;
WIDTH[105] = WIDTH[73] = WIDTH[102] = 4;

/** Scratch for reading a float32's bits. */
const F32 = new Float32Array(1);
const F32_BITS = new Int32Array(F32.buffer);

/** The numeric value of type `type` (a type byte) at `p`. */
function numberAt(b: Uint8Array, p: number, type: number): number {
  switch (type) {
    case 99:
      return (b[p] << 24) >> 24;
    case 67:
      return b[p];
    case 115:
      return (u16(b, p) << 16) >> 16;
    case 83:
      return u16(b, p);
    case 105:
      return i32(b, p);
    case 73:
      return i32(b, p) >>> 0;
    default:
      F32_BITS[0] = i32(b, p);
      return F32[0];
  }
}

function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}
