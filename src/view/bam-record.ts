/**
 * Facts about one binary BAM record (from `block_size` on excluded) that both the BAM and the CRAM
 * views need, kept apart from ./bam-view.ts so the CRAM path does not load @gmod/bam.
 */

/** 0-based end of a record on the reference (htslib's bam_endpos). */
export function recordEnd(rec: Uint8Array, dv: DataView): number {
  const pos = dv.getInt32(4, true);
  const flag = dv.getUint16(14, true);
  const nCigar = dv.getUint16(12, true);
  let rlen = 0;
  if (!(flag & 4)) {
    let p = 32 + rec[8];
    for (let i = 0; i < nCigar; i++, p += 4) {
      const v = dv.getUint32(p, true);
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

/** Whether a BAM record is wanted; its CIGAR is only read when its start could be. */
export function recordWanted(rec: Buffer, wanted: readonly WantedRange[], contained: boolean): boolean {
  const tid = rec.readInt32LE(0);
  const pos = rec.readInt32LE(4);
  if (!overlapsAny(wanted, contained, tid, pos, Infinity)) return false;
  return overlapsAny(wanted, contained, tid, pos, recordEnd(rec, new DataView(rec.buffer, rec.byteOffset, rec.byteLength)));
}
