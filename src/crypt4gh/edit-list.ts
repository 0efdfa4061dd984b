/**
 * A Crypt4GH data edit list: which bytes of the decrypted stream a reader sees.
 *
 * The header's edit-list packet holds lengths that alternate "skip this many bytes" and "keep
 * this many", starting with a skip, applied to the plaintext of the body as stored (from the
 * body's first block: `crypt4gh rearrange` drops the blocks a range does not touch, and its list
 * counts from the first block it kept). As the reference (`lib.body_decrypt_parts`) does:
 *   - an odd count ends with a skip, and everything after that last skip is kept;
 *   - an even count ends with a keep, and nothing after it is shown;
 *   - the plaintext may end inside any run: what is past its end simply is not there.
 * "Visible" coordinates are offsets in what the reader sees; "plain" ones are offsets in the
 * decrypted body. A file without an edit list is the identity, which callers handle themselves.
 *
 * Lengths are u64 in the file; lengths and their running sums must stay within 2^53 (JS numbers),
 * which any real file does by far.
 */
import { SlicefsError } from '../errors.js';

export interface EditRun {
  plainStart: number;
  plainEnd: number;
  /** Visible offset of plainStart. */
  visibleStart: number;
}

export class EditList {
  readonly lengths: readonly number[];
  // The kept runs in plaintext coordinates (start, end; end Infinity for the open tail of an odd
  // list) and where each begins in visible coordinates, ascending in both.
  private readonly keepStart: number[] = [];
  private readonly keepEnd: number[] = [];
  private readonly keepVisible: number[] = [];

  constructor(lengths: number[]) {
    if (lengths.length === 0) throw new SlicefsError('DECRYPT', 'malformed Crypt4GH edit list: it is empty');
    let plain = 0;
    let visible = 0;
    for (let i = 0; i < lengths.length; i++) {
      const n = lengths[i]!;
      if (!Number.isSafeInteger(n) || n < 0) throw new SlicefsError('DECRYPT', `malformed Crypt4GH edit list: length ${n}`);
      if (plain + n > Number.MAX_SAFE_INTEGER) throw new SlicefsError('DECRYPT', 'malformed Crypt4GH edit list: its lengths add up to more than 2^53');
      if (i % 2 === 1 && n > 0) {
        this.keepStart.push(plain);
        this.keepEnd.push(plain + n);
        this.keepVisible.push(visible);
        visible += n;
      }
      plain += n;
    }
    if (lengths.length % 2 === 1) {
      this.keepStart.push(plain);
      this.keepEnd.push(Infinity);
      this.keepVisible.push(visible);
    }
    this.lengths = [...lengths];
  }

  /** How many bytes a reader sees of a body whose plaintext is `plainSize` bytes. */
  visibleSize(plainSize: number): number {
    let size = 0;
    for (let i = 0; i < this.keepStart.length; i++) {
      const start = this.keepStart[i]!;
      if (start >= plainSize) break;
      size += Math.min(this.keepEnd[i]!, plainSize) - start;
    }
    return size;
  }

  /**
   * The plaintext runs that make up visible bytes [visibleStart, visibleEnd), in order, each
   * clipped to the range and to the plaintext's end. Empty when the range is empty or past the end.
   */
  runs(visibleStart: number, visibleEnd: number, plainSize: number): EditRun[] {
    const out: EditRun[] = [];
    if (visibleEnd <= visibleStart) return out;
    // The last run that begins at or before visibleStart (runs are contiguous in visible space).
    let lo = 0;
    let hi = this.keepVisible.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.keepVisible[mid]! <= visibleStart) lo = mid;
      else hi = mid - 1;
    }
    for (let i = lo; i < this.keepStart.length; i++) {
      const runVisible = this.keepVisible[i]!;
      if (runVisible >= visibleEnd) break;
      const start = this.keepStart[i]!;
      const end = Math.min(this.keepEnd[i]!, plainSize);
      if (start >= end) break; // the plaintext ends before this run
      const from = Math.max(visibleStart, runVisible);
      const to = Math.min(visibleEnd, runVisible + (end - start));
      if (from >= to) continue;
      out.push({ plainStart: start + (from - runVisible), plainEnd: start + (to - runVisible), visibleStart: from });
    }
    return out;
  }
}
