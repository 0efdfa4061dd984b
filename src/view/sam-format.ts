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
import { recordProblem } from './bam-record.js';

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
  buf = Buffer.allocUnsafe(1 << 20);
  len = 0;

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  bytes(src: Uint8Array, start = 0, end = src.length): void {
    this.ensure(end - start);
    // Fields are short: a loop beats creating a subarray view for each.
    const b = this.buf;
    let o = this.len;
    for (let i = start; i < end; i++) b[o++] = src[i];
    this.len = o;
  }

  ascii(s: string): void {
    this.ensure(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }

  /** A decimal integer (|n| < 2^53), digits written directly. */
  int(n: number): void {
    this.ensure(22);
    const b = this.buf;
    if (n < 0) {
      b[this.len++] = 45; // '-'
      n = -n;
    }
    if (n < 10) {
      b[this.len++] = 48 + n;
      return;
    }
    let digits = 0;
    for (let x = n; x >= 1; x = Math.floor(x / 10)) digits++;
    let o = this.len + digits;
    this.len = o;
    for (let x = n; x >= 1; x = Math.floor(x / 10)) b[--o] = 48 + (x % 10);
  }

  /** Takes the bytes written so far (a copy) and empties the sink. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    return out;
  }
}

const TAB = 9;
const NL = 10;
const STAR = 42;
const SEQ_BYTES = Buffer.from(SEQ_CODES, 'latin1');
/** The two bases packed in one byte, looked up at once. */
const SEQ_HI = Uint8Array.from({ length: 256 }, (_, x) => SEQ_BYTES[x >> 4]);
const SEQ_LO = Uint8Array.from({ length: 256 }, (_, x) => SEQ_BYTES[x & 0xf]);
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
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const problem = recordProblem(rec, dv);
  if (problem) throw new SlicefsError('BAD_RESPONSE', `corrupt BAM record: ${problem}`);
  const refId = dv.getInt32(0, true);
  const pos = dv.getInt32(4, true);
  const lReadName = rec[8];
  const mapq = rec[9];
  const nCigar = dv.getUint16(12, true);
  const flag = dv.getUint16(14, true);
  const lSeq = dv.getInt32(16, true);
  const nextRefId = dv.getInt32(20, true);
  const nextPos = dv.getInt32(24, true);
  const tlen = dv.getInt32(28, true);
  if (refId < -1 || refId >= refs.length) throw badRecord(rec, `reference id ${refId}, but the header has ${refs.length} references`);
  if (nextRefId < -1 || nextRefId >= refs.length) throw badRecord(rec, `mate reference id ${nextRefId}, but the header has ${refs.length} references`);
  out.ensure(64 + lReadName + nCigar * 11 + lSeq * 2 + (rec.length - 32) * 4);
  let p = 32;
  out.bytes(rec, p, p + lReadName - 1);
  p += lReadName;
  out.byte(TAB);
  out.int(flag);
  out.byte(TAB);
  if (refId < 0) out.byte(STAR);
  else out.bytes(refs[refId]);
  out.byte(TAB);
  out.int(pos + 1);
  out.byte(TAB);
  out.int(mapq);
  out.byte(TAB);
  if (nCigar === 0) out.byte(STAR);
  for (let i = 0; i < nCigar; i++, p += 4) {
    const v = dv.getUint32(p, true);
    out.int(v >>> 4);
    out.byte(CIGAR_BYTES[v & 0xf]);
  }
  out.byte(TAB);
  if (nextRefId < 0) out.byte(STAR);
  else if (nextRefId === refId) out.byte(61); // '='
  else out.bytes(refs[nextRefId]);
  out.byte(TAB);
  out.int(nextPos + 1);
  out.byte(TAB);
  out.int(tlen);
  out.byte(TAB);
  if (lSeq === 0) out.byte(STAR);
  else {
    const b = out.buf;
    let o = out.len;
    const pairs = lSeq >> 1;
    for (let i = 0; i < pairs; i++) {
      const x = rec[p + i];
      b[o++] = SEQ_HI[x];
      b[o++] = SEQ_LO[x];
    }
    if (lSeq & 1) b[o++] = SEQ_HI[rec[p + pairs]];
    out.len = o;
  }
  p += (lSeq + 1) >> 1;
  out.byte(TAB);
  if (lSeq === 0 || rec[p] === 0xff) out.byte(STAR);
  else {
    const b = out.buf;
    let o = out.len;
    for (let i = 0; i < lSeq; i++) b[o++] = rec[p + i] + 33;
    out.len = o;
  }
  p += lSeq;

  while (p < rec.length) {
    if (rec.length - p < 4) throw badRecord(rec, `a tag at byte ${p} runs past the record's end`);
    out.byte(TAB);
    out.bytes(rec, p, p + 2);
    out.byte(58); // ':'
    const type = rec[p + 2];
    const tagAt = p;
    p += 3;
    switch (type) {
      case 65: // A
        if (rec.length - p < 1) throw tagPastEnd(rec, tagAt);
        out.ascii('A:');
        out.byte(rec[p]);
        p += 1;
        break;
      case 99: // c, C, s, S, i, I: every integer width prints as `i`
      case 67:
      case 115:
      case 83:
      case 105:
      case 73:
        if (rec.length - p < WIDTH[type]) throw tagPastEnd(rec, tagAt);
        out.ascii('i:');
        out.int(numberAt(dv, p, type));
        p += WIDTH[type];
        break;
      case 102: // f
        if (rec.length - p < 4) throw tagPastEnd(rec, tagAt);
        out.ascii('f:');
        out.ascii(formatG(numberAt(dv, p, type)));
        p += 4;
        break;
      case 90: // Z
      case 72: {
        // H
        out.byte(type);
        out.byte(58);
        let e = p;
        while (e < rec.length && rec[e] !== 0) e++;
        if (e === rec.length) throw badRecord(rec, `tag ${latin1(rec, tagAt, tagAt + 2)} has no terminating NUL`);
        out.bytes(rec, p, e);
        p = e + 1;
        break;
      }
      case 66: {
        // B: a subtype, a count, the values
        if (rec.length - p < 5) throw tagPastEnd(rec, tagAt);
        const sub = rec[p];
        const n = dv.getUint32(p + 1, true);
        p += 5;
        const width = WIDTH[sub];
        if (!width) throw badRecord(rec, `tag ${latin1(rec, tagAt, tagAt + 2)} has unknown B subtype '${String.fromCharCode(sub)}'`);
        if (rec.length - p < n * width) throw tagPastEnd(rec, tagAt);
        out.ascii('B:');
        out.byte(sub);
        for (let i = 0; i < n; i++, p += width) {
          out.byte(44); // ','
          if (sub === 102) out.ascii(formatG(numberAt(dv, p, sub)));
          else out.int(numberAt(dv, p, sub));
        }
        break;
      }
      default:
        throw badRecord(rec, `tag ${latin1(rec, tagAt, tagAt + 2)} has unknown type '${String.fromCharCode(type)}'`);
    }
  }
  out.byte(NL);
}

/** A record that does not hold together, named by its read name. */
function badRecord(rec: Uint8Array, why: string): SlicefsError {
  return new SlicefsError('BAD_RESPONSE', printable(`corrupt BAM record '${latin1(rec, 32, 32 + rec[8] - 1)}': ${why}`));
}

function tagPastEnd(rec: Uint8Array, tagAt: number): SlicefsError {
  return badRecord(rec, `tag ${latin1(rec, tagAt, tagAt + 2)} runs past the record's end`);
}

/** Bytes of a numeric tag or B-array value, by its type byte (c C s S i I f). */
const WIDTH: Record<number, number> = { 99: 1, 67: 1, 115: 2, 83: 2, 105: 4, 73: 4, 102: 4 };

/** The numeric value of type `type` (a type byte) at `p`. */
function numberAt(dv: DataView, p: number, type: number): number {
  switch (type) {
    case 99:
      return dv.getInt8(p);
    case 67:
      return dv.getUint8(p);
    case 115:
      return dv.getInt16(p, true);
    case 83:
      return dv.getUint16(p, true);
    case 105:
      return dv.getInt32(p, true);
    case 73:
      return dv.getUint32(p, true);
    default:
      return dv.getFloat32(p, true);
  }
}

function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}
