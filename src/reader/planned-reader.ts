/**
 * PlannedReader: a RangeReader for a reader that knows, long before it reads them, the byte ranges
 * it will read (a CRAM view: its index gives every slice's bytes and every slice's reference span).
 * `prefetch` does not start fetching at once: it adds the range to a plan, and the plan is fetched
 * ahead of the reads, a window at a time, in whole requests.
 *
 * Why: asked to fetch a whole chromosome at once (76 MiB of slices, 47 MiB of reference), the block
 * cache starts what its readahead bound allows (half its budget) and drops the rest, which was then
 * read on demand, one small request per slice: a whole-chr1 CRAM view of the bench data made 180
 * data and 145 reference requests. Fetched from the plan instead, it makes one request per
 * `maxRequestBytes` of either.
 *
 * Window: planned bytes fetched ahead of the read front (the furthest offset read so far) are at
 * most `windowBytes`, and at most half the cache's readahead bound, so that the data and the
 * reference decoded against it (two PlannedReaders on one cache) both fit in it and memory stays
 * within the cache's budget. Planned ranges the front has passed are dropped.
 * Requests: the plan is issued once a whole request fits in the window (or the rest of a planned
 * range is shorter), ending on a block boundary, so requests are `maxRequestBytes` long and the
 * next one starts where the last one ended. Issuing happens in `prefetch` and before every read:
 * a read of a planned byte not yet issued issues the request holding it, which the read then joins.
 */
import type { BlockCache, PinnedObject } from '../cache/block-cache.js';
import type { ReaderConfig } from '../config.js';
import { RangeReader } from './range-reader.js';

export class PlannedReader extends RangeReader {
  /** Planned ranges [start, end) not yet issued, sorted and disjoint. */
  private plan: [number, number][] = [];
  /** Issued ranges the front has not passed, in issue order. */
  private issued: [number, number][] = [];
  /** The furthest offset read so far. */
  private front = 0;
  private readonly windowBytes: number;

  constructor(cache: BlockCache, obj: PinnedObject, config: ReaderConfig, windowBytes: number) {
    super(cache, obj, config);
    this.windowBytes = Math.max(cache.blockSize, Math.min(windowBytes, Math.floor(cache.maxInflightBytes / 2)));
  }

  override prefetch(offset: number, length: number): void {
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return;
    this.addToPlan(Math.max(0, offset), end);
    this.pump();
  }

  override readInto(dest: Buffer, offset: number, length: number, cancelled?: () => boolean): Promise<number> {
    if (offset > this.front) this.front = offset;
    this.pump(offset);
    return super.readInto(dest, offset, length, cancelled);
  }

  override close(): void {
    this.plan = [];
    this.issued = [];
    super.close();
  }

  private addToPlan(start: number, end: number): void {
    const out: [number, number][] = [];
    let placed = false;
    for (const r of this.plan) {
      if (r[1] < start || placed) {
        out.push(r);
      } else if (r[0] > end) {
        out.push([start, end], r);
        placed = true;
      } else {
        start = Math.min(start, r[0]);
        end = Math.max(end, r[1]);
      }
    }
    if (!placed) out.push([start, end]);
    this.plan = out;
  }

  /** Issues planned requests while the window has room; `readAt`: a read about to start there. */
  private pump(readAt = -1): void {
    const bs = this.cache.blockSize;
    const front = this.front;
    while (this.plan.length > 0 && this.plan[0][1] <= front) this.plan.shift();
    this.issued = this.issued.filter((r) => r[1] > front);
    let ahead = 0;
    for (const [a, b] of this.issued) ahead += b - Math.max(a, front);
    const unit = Math.max(bs, Math.min(this.config.maxRequestBytes, Math.floor(this.windowBytes / 2)));
    while (this.plan.length > 0) {
      const r = this.plan[0];
      const start = Math.max(r[0], front);
      const end = Math.min(r[1], Math.max(start + bs, Math.floor((start + unit) / bs) * bs));
      const bytes = end - start;
      // The read needs this request's first bytes: it goes out whatever the window (the read
      // would fetch them anyway), as one request the read joins.
      const mustIssue = readAt >= start && readAt < end;
      if (!mustIssue && (ahead + bytes > this.windowBytes || this.cache.readaheadRoom < bytes + bs)) return;
      super.prefetch(start, bytes);
      this.issued.push([start, end]);
      ahead += bytes;
      if (end >= r[1]) this.plan.shift();
      else r[0] = end;
    }
  }
}
