/**
 * The byte ranges of a file that are on disk: sorted, disjoint, touching ranges merged. A download
 * adds the range a stream has written once its bytes are synced (a whole part, or its prefix at a
 * checkpoint); the journal stores the list.
 */
export type ByteRange = [start: number, end: number];

export class RangeSet {
  private list: ByteRange[] = [];

  constructor(ranges: readonly ByteRange[] = []) {
    for (const [a, b] of ranges) this.add(a, b);
  }

  /** Adds [start, end), merging with the ranges it overlaps or touches. */
  add(start: number, end: number): void {
    if (end <= start) return;
    const out: ByteRange[] = [];
    let s = start;
    let e = end;
    let placed = false;
    for (const [a, b] of this.list) {
      if (b < s) {
        out.push([a, b]);
      } else if (a > e) {
        if (!placed) {
          out.push([s, e]);
          placed = true;
        }
        out.push([a, b]);
      } else {
        s = Math.min(s, a);
        e = Math.max(e, b);
      }
    }
    if (!placed) out.push([s, e]);
    this.list = out;
  }

  /** Whether every byte of [start, end) is in the set. */
  covers(start: number, end: number): boolean {
    if (end <= start) return true;
    return this.list.some(([a, b]) => a <= start && b >= end);
  }

  /** End of the range that starts at 0 (0 when byte 0 is missing): the contiguous prefix. */
  prefixEnd(): number {
    const first = this.list[0];
    return first && first[0] === 0 ? first[1] : 0;
  }

  /** Bytes in the set. */
  bytes(): number {
    return this.list.reduce((n, [a, b]) => n + (b - a), 0);
  }

  /** The ranges of [0, size) not in the set, in order. */
  missing(size: number): ByteRange[] {
    const out: ByteRange[] = [];
    let pos = 0;
    for (const [a, b] of this.list) {
      if (a >= size) break;
      if (a > pos) out.push([pos, a]);
      pos = Math.max(pos, b);
    }
    if (pos < size) out.push([pos, size]);
    return out;
  }

  toJSON(): ByteRange[] {
    return this.list.map(([a, b]) => [a, b]);
  }
}
