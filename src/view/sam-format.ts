/**
 * One BAM record (its binary form, from `block_size` on excluded) as a SAM text line, exactly as
 * `samtools view` prints it (htslib's `sam_format1`): the same `*`/`=` placeholders, integer tags
 * printed as `i` whatever their width, floats as C's `%g`, `B` arrays with their subtype.
 *
 * Written by hand because no JS library formats SAM byte-for-byte like htslib (@gmod/bam decodes
 * records into objects; its tag values lose the BAM type needed for the text form).
 */

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
 * Formats the record in `rec` (the bytes after its 4-byte `block_size`). `refNames[i]` is the name
 * of reference i.
 */
export function formatSamRecord(rec: Uint8Array, refNames: readonly string[]): string {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
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
  let p = 32;
  const name = latin1(rec, p, p + lReadName - 1);
  p += lReadName;

  let cigar = '';
  for (let i = 0; i < nCigar; i++, p += 4) {
    const v = dv.getUint32(p, true);
    cigar += `${v >>> 4}${CIGAR_OPS[v & 0xf]}`;
  }
  let seq = '';
  for (let i = 0; i < lSeq; i++) {
    const b = rec[p + (i >> 1)];
    seq += SEQ_CODES[i & 1 ? b & 0xf : b >> 4];
  }
  p += (lSeq + 1) >> 1;
  let qual: string;
  if (lSeq === 0 || rec[p] === 0xff) {
    qual = '*';
  } else {
    const q = new Array<string>(lSeq);
    for (let i = 0; i < lSeq; i++) q[i] = String.fromCharCode(rec[p + i] + 33);
    qual = q.join('');
  }
  p += lSeq;

  const fields = [
    name,
    String(flag),
    refId < 0 ? '*' : refNames[refId],
    String(pos + 1),
    String(mapq),
    nCigar === 0 ? '*' : cigar,
    nextRefId < 0 ? '*' : nextRefId === refId ? '=' : refNames[nextRefId],
    String(nextPos + 1),
    String(tlen),
    lSeq === 0 ? '*' : seq,
    qual,
  ];
  while (p < rec.length) {
    const tag = latin1(rec, p, p + 2);
    const type = String.fromCharCode(rec[p + 2]);
    p += 3;
    let text: string;
    switch (type) {
      case 'A':
        text = `A:${String.fromCharCode(rec[p])}`;
        p += 1;
        break;
      case 'c':
        text = `i:${dv.getInt8(p)}`;
        p += 1;
        break;
      case 'C':
        text = `i:${dv.getUint8(p)}`;
        p += 1;
        break;
      case 's':
        text = `i:${dv.getInt16(p, true)}`;
        p += 2;
        break;
      case 'S':
        text = `i:${dv.getUint16(p, true)}`;
        p += 2;
        break;
      case 'i':
        text = `i:${dv.getInt32(p, true)}`;
        p += 4;
        break;
      case 'I':
        text = `i:${dv.getUint32(p, true)}`;
        p += 4;
        break;
      case 'f':
        text = `f:${formatG(dv.getFloat32(p, true))}`;
        p += 4;
        break;
      case 'Z':
      case 'H': {
        let e = p;
        while (e < rec.length && rec[e] !== 0) e++;
        text = `${type}:${latin1(rec, p, e)}`;
        p = e + 1;
        break;
      }
      case 'B': {
        const sub = String.fromCharCode(rec[p]);
        const n = dv.getUint32(p + 1, true);
        p += 5;
        const width = { c: 1, C: 1, s: 2, S: 2, i: 4, I: 4, f: 4 }[sub];
        if (width === undefined) throw new Error(`record ${name}: tag ${tag} has unknown B subtype '${sub}'`);
        const vals: string[] = [];
        for (let i = 0; i < n; i++, p += width) vals.push(arrayValue(dv, p, sub));
        text = `B:${sub}${n > 0 ? ',' : ''}${vals.join(',')}`;
        break;
      }
      default:
        throw new Error(`record ${name}: tag ${tag} has unknown type '${type}'`);
    }
    fields.push(`${tag}:${text}`);
  }
  return fields.join('\t');
}

function arrayValue(dv: DataView, p: number, sub: string): string {
  switch (sub) {
    case 'c':
      return String(dv.getInt8(p));
    case 'C':
      return String(dv.getUint8(p));
    case 's':
      return String(dv.getInt16(p, true));
    case 'S':
      return String(dv.getUint16(p, true));
    case 'i':
      return String(dv.getInt32(p, true));
    case 'I':
      return String(dv.getUint32(p, true));
    default:
      return formatG(dv.getFloat32(p, true));
  }
}

function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}
