/**
 * Facts about one binary BAM record (from `block_size` on excluded) that both the BAM and the CRAM
 * views need, kept apart from ./bam-view.ts so the CRAM path does not load @gmod/bam.
 */

/**
 * Little-endian integers at byte `p` of `b`, read byte by byte: a DataView per record (or
 * Buffer's checked readers) costs more than the four loads (a large region reads ~10^6 records).
 */
export const u16 = (b: Uint8Array, p: number): number => b[p] | (b[p + 1] << 8);
export const i32 = (b: Uint8Array, p: number): number => b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);

/**
 * Records packed as BAM lays them out (each after its 4-byte little-endian length) into one
 * ArrayBuffer of exactly their size: how a batch of records crosses to or from a worker thread
 * (transferred, not copied).
 */
export function packRecords(records: readonly Uint8Array[]): ArrayBuffer {
  let total = 0;
  for (const r of records) total += 4 + r.length;
  const packed = new ArrayBuffer(total);
  const bytes = new Uint8Array(packed);
  const dv = new DataView(packed);
  let p = 0;
  for (const r of records) {
    dv.setInt32(p, r.length, true);
    bytes.set(r, p + 4);
    p += 4 + r.length;
  }
  return packed;
}

/** The records of a packRecords buffer, in order, as views of it. */
export function unpackRecords(packed: ArrayBuffer): Buffer[] {
  const dv = new DataView(packed);
  const records: Buffer[] = [];
  for (let p = 0; p < packed.byteLength; ) {
    const len = dv.getInt32(p, true);
    records.push(Buffer.from(packed, p + 4, len));
    p += 4 + len;
  }
  return records;
}

/** A record's fixed fields (refID through tlen): htslib refuses a block_size below this. */
export const RECORD_CORE_BYTES = 32;

/**
 * The largest record `view` accepts (its block_size). htslib has no limit short of 2 GiB, but a
 * length field is what a corrupt or hostile file lies with, and memory for a record is taken as
 * its bytes arrive up to this. A 4 Mb nanopore read with qualities, a long CIGAR and base
 * modification tags is under 16 MiB: this leaves four times that.
 */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/**
 * What is wrong with a record's fixed fields given its length (`rec`: the bytes after
 * block_size), or undefined: the read name (with its NUL), CIGAR, sequence and qualities must fit
 * in it, as htslib's bam_read1 checks. Everything after them is tags, checked as they are read.
 */
export function recordProblem(rec: Uint8Array): string | undefined {
  if (rec.length < RECORD_CORE_BYTES) return `length ${rec.length} (under the ${RECORD_CORE_BYTES} bytes of its fixed fields)`;
  const lReadName = rec[8];
  const nCigar = u16(rec, 12);
  const lSeq = i32(rec, 16);
  if (lReadName === 0) return 'a read name length of 0';
  if (lSeq < 0) return `a sequence length of ${lSeq}`;
  const need = RECORD_CORE_BYTES + lReadName + 4 * nCigar + Math.ceil(lSeq / 2) + lSeq;
  if (need > rec.length) return `length ${rec.length}, but its name, ${nCigar} CIGAR operations and ${lSeq} bases need ${need}`;
  return undefined;
}

/** 0-based end of a record on the reference (htslib's bam_endpos). */
export function recordEnd(rec: Uint8Array): number {
  const pos = i32(rec, 4);
  const flag = u16(rec, 14);
  const nCigar = u16(rec, 12);
  let rlen = 0;
  if (!(flag & 4)) {
    let p = 32 + rec[8];
    for (let i = 0; i < nCigar; i++, p += 4) {
      const v = i32(rec, p) >>> 0;
      const op = v & 0xf;
      // M, D, N, =, X consume the reference.
      if (op === 0 || op === 2 || op === 3 || op === 7 || op === 8) rlen += v >>> 4;
    }
  }
  return pos + (rlen === 0 ? 1 : rlen);
}

/** A region as the views test records against it: reference id and 0-based half-open positions. */
export interface WantedRange {
  tid: number;
  start: number;
  end: number;
}

/**
 * htslib's overlap rule for a record at `pos` (0-based) ending at `end` (exclusive, bam_endpos) on
 * reference `tid`: some region on that reference with `pos < region.end` and `end > region.start`;
 * with `contained`, the record must also lie inside it. An `end` of Infinity means "not known yet":
 * whether a record starting there could be wanted (the containment test waits for the real end).
 */
export function overlapsAny(wanted: readonly WantedRange[], contained: boolean, tid: number, pos: number, end: number): boolean {
  for (const w of wanted) {
    if (w.tid !== tid || pos >= w.end || end <= w.start) continue;
    if (!contained || end === Infinity || (pos >= w.start && end <= w.end)) return true;
  }
  return false;
}

/**
 * Whether a BAM record is wanted; its CIGAR is only read when its start could be and does not
 * already decide it (without `contained`, a record that starts inside a region overlaps it: its
 * end is past its start).
 */
export function recordWanted(rec: Uint8Array, wanted: readonly WantedRange[], contained: boolean): boolean {
  const tid = i32(rec, 0);
  const pos = i32(rec, 4);
  if (!contained) {
    for (const w of wanted) if (w.tid === tid && pos >= w.start && pos < w.end) return true;
  }
  if (!overlapsAny(wanted, contained, tid, pos, Infinity)) return false;
  return overlapsAny(wanted, contained, tid, pos, recordEnd(rec));
}
