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
