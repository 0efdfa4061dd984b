/**
 * Records of regions of a BAM file, streamed: the header and index are read through @gmod/bam
 * (over ObjectFilehandle, so through our reader and cache); the index's chunks for every region are
 * merged into one sorted list, their compressed bytes streamed through ./bgzf.ts, and each record
 * kept if it overlaps a region with htslib's rule: same reference, `pos < end` and
 * `endpos > start`, where endpos is pos + the reference length of the CIGAR (1 when that is 0, or
 * when the read is unmapped). Several regions give each record once, in file order
 * (`samtools view -M`). `*` gives the unplaced unmapped reads at the end of the file.
 */
import { BamFile } from '@gmod/bam';
import type { GenericFilehandle } from 'generic-filehandle2';
import { SlicefsError, messageOf } from '../errors.js';
import { printable } from '../util/printable.js';
import { ObjectFilehandle } from '../reader/object-filehandle.js';
import type { RangeReader } from '../reader/range-reader.js';
import { recordWanted, type WantedRange } from './bam-record.js';
import { bamPiecesBetween, chunkEndByte, readBamHeader, recordsBetween, type BamPiece, type ReadAt, type Trust, type VOffset } from './bgzf.js';
import type { Contig, ViewRegion } from './region.js';

export interface IndexInput {
  handle: GenericFilehandle;
  kind: 'bai' | 'csi';
  /** The index's name in messages. */
  label: string;
}

interface Extent {
  pos: number;
  len: number;
}

interface Span {
  minv: VOffset;
  maxv: VOffset;
}

/** Compressed bytes of a chunk kept in flight ahead of the record reader. */
const AHEAD = 16 * 1024 * 1024;

/** A BAI's binning (SAMv1 §5.3): 16 kb leaves, 5 levels above them. */
const BAI_MIN_SHIFT = 14;
const BAI_DEPTH = 5;

const cmp = (a: VOffset, b: VOffset) => a.blockPosition - b.blockPosition || a.dataPosition - b.dataPosition;

export class BamView {
  private constructor(
    private readonly bam: BamFile,
    private readonly reader: RangeReader,
    readonly headerText: string,
    readonly contigs: Contig[],
    private readonly label: string,
    private readonly indexLabel: string,
    /** Where the records begin: the end of the header. */
    private readonly headerEnd: VOffset,
  ) {}

  /**
   * `head`: the file's first bytes when already at hand (the header is read from them); `label`:
   * the file's name in messages.
   */
  static async open(data: RangeReader, index: IndexInput, head: Buffer | undefined, label: string): Promise<BamView> {
    const bam = new BamFile({
      bamFilehandle: new ObjectFilehandle(data, head),
      ...(index.kind === 'bai' ? { baiFilehandle: index.handle } : { csiFilehandle: index.handle }),
    });
    // The header is read here, not by @gmod/bam: it decompresses from the file's start to where
    // the index says the records begin, trusting every size field on the way (a corrupt file made
    // it allocate gigabytes); readBamHeader checks each and inflates block by block, capped.
    const readAt = (pos: number, len: number) => (head && pos < head.length ? Promise.resolve(head.subarray(pos, pos + len)) : data.read(pos, len));
    const header = await readBamHeader(readAt, data.size, label);
    return new BamView(bam, data, header.text, header.contigs, label, index.label, header.end);
  }

  /** The raw records (without their length prefix) of `regions`, each once, in file order, in batches. */
  async *records(regions: ViewRegion[], contained: boolean): AsyncGenerator<Buffer[]> {
    const size = this.reader.size;
    yield* this.perChunk(regions, contained, async function* (readAt, from, to, keep, label, _trust, stop) {
      for await (const batch of recordsBetween(readAt, size, from, to, label)) {
        const kept = batch.filter(keep);
        if (kept.length > 0) yield kept;
        // An indexed BAM is sorted by position: once a record starts past every region, no record
        // after it in the file overlaps one, and the chunks of larger bins that lie further on
        // are neither inflated nor parsed (htslib's iterator stops at the same record).
        if (batch.length > 0 && stop.pastEvery(batch[batch.length - 1])) {
          stop.stopped = true;
          return;
        }
      }
    });
  }

  /**
   * The same records as BAM output (./bgzf.ts, bamPiecesBetween): input blocks that hold only
   * wanted records come whole, to be copied; the rest as bytes, to be compressed anew. Inside a
   * region's run of overlapping records (see `trustFor`; not with `contained`) blocks are copied
   * unread, and inflated only when `payloads` asks for their bytes (uncompressed BAM).
   */
  async *bamPieces(regions: ViewRegion[], contained: boolean, payloads: boolean): AsyncGenerator<{ pieces: BamPiece[]; records: number; unread: number }> {
    const size = this.reader.size;
    yield* this.perChunk(regions, contained, (readAt, from, to, keep, label, trust) => bamPiecesBetween(readAt, size, from, to, label, keep, contained ? undefined : trust, payloads));
  }

  /**
   * Runs `read` over the merged index chunks of `regions` (keeping the records htslib's overlap
   * rule keeps), then, for `*`, from where the unplaced reads begin to the end of the file
   * (keeping those with refID -1), and yields what it yields.
   */
  private async *perChunk<T>(
    regions: ViewRegion[],
    contained: boolean,
    read: (readAt: ReadAt, from: VOffset, to: VOffset | undefined, keep: (rec: Buffer) => boolean, label: string, trust: Trust | undefined, stop: Stop) => AsyncGenerator<T>,
  ): AsyncGenerator<T> {
    const index = this.bam.index;
    if (!index) throw new SlicefsError('USAGE', 'no index');
    const tidOf = new Map(this.contigs.map((c, i) => [c.name, i]));
    const wanted: WantedRange[] = [];
    let spans: Span[] = [];
    /** Each region's chunks' extent, for trustFor. */
    const runs: { tid: number; start: number; end: number; minv: VOffset; maxv: VOffset }[] = [];
    let unmapped = false;
    for (const r of regions) {
      if (r.kind === 'unmapped') {
        unmapped = true;
        continue;
      }
      const tid = tidOf.get(r.contig)!;
      wanted.push({ tid, start: r.start, end: r.end });
      // The index is asked up to the end of its binning, as htslib's hts_itr_query clamps it: a
      // region's end may be open (past LN, where records may lie), and no record is indexed past it.
      const end = Math.min(r.end, await this.indexedEnd());
      if (end <= r.start) continue;
      const chunks = await index.blocksForRange(tid, r.start, end).catch((err: unknown) => {
        throw this.unreadableIndex(err);
      });
      spans.push(...chunks.map((c) => ({ minv: c.minv, maxv: c.maxv })));
      if (chunks.length > 0) {
        const minv = chunks.map((c) => c.minv).reduce((a, b) => (cmp(a, b) <= 0 ? a : b));
        const maxv = chunks.map((c) => c.maxv).reduce((a, b) => (cmp(a, b) >= 0 ? a : b));
        runs.push({ tid, start: r.start, end: r.end, minv, maxv });
      }
    }
    spans = mergeSpans(spans);
    const size = this.reader.size;
    // Start the first AHEAD bytes of all chunks at once: a region's chunks are often far apart in
    // the file (large bins), and fetching them one after the other costs a round trip each.
    let budget = AHEAD;
    const started: Extent[] = [];
    for (const s of spans) {
      if (budget <= 0) break;
      const extent = chunkEndByte(s.maxv, size) - s.minv.blockPosition;
      started.push({ pos: s.minv.blockPosition, len: Math.min(extent, budget) });
      this.reader.prefetch(s.minv.blockPosition, Math.min(extent, budget));
      budget -= extent;
    }

    const keep = (rec: Buffer) => recordWanted(rec, wanted, contained);
    const stop: Stop = { stopped: false, pastEvery: (rec) => pastEvery(rec, wanted) };
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i];
      // The chunk's compressed extent is known: keep up to AHEAD of it in flight ahead of the
      // reader (a bounded number of requests ahead of the writer), and nothing beyond it.
      // Trust needs one region of the span (any: see trustFor); its records are read one by one meanwhile.
      const run = runs.find((r) => cmp(r.minv, s.maxv) < 0 && cmp(r.maxv, s.minv) > 0);
      const trust = run ? await this.trustFor(run, s) : undefined;
      const window: Extent = { pos: 0, len: 0 };
      yield* read(this.aheadReader(chunkEndByte(s.maxv, size), window), s.minv, s.maxv, keep, this.label, trust, stop);
      if (stop.stopped) {
        // The bytes already asked for are still taken in (not inflated), so that closing the
        // connections does not cut them off: the disk tier keeps them and the next view fetches nothing.
        for (const e of [window, ...started.slice(i + 1)]) if (e.len > 0) await this.reader.read(e.pos, e.len).catch(() => {});
        break;
      }
    }
    if (unmapped) {
      const from = await this.unplacedStart();
      const all: Stop = { stopped: false, pastEvery: () => false };
      if (from) yield* read(this.aheadReader(size), from, undefined, (rec) => rec.readInt32LE(0) === -1, this.label, undefined, all);
    }
  }

  /**
   * What the sort order and the index vouch for in span `s`, which holds chunks of region `run`
   * (reference `tid`, [start, end)): once a record of `tid` at or after `start` has been read,
   * every later record of `tid` starts at or after `start` (sorted by position), so it overlaps the
   * region unless it starts at or past `end` (its end is past its start). A record that starts at
   * or past `end` lies, in any index, in a chunk of its bin or of an ancestor of it (htslib moves
   * small bins' chunks up), and that bin reaches past `end`: the chunks of every bin that reaches
   * past `end` are the suspect ranges, read record by record; outside them every record overlaps.
   * The records of the next references come after the region's last chunk, so trust stops at the
   * end of it (or of the span). The linear index is not used: htslib before 1.15 (its PR 1352)
   * left unmapped placed reads out of it.
   */
  private async trustFor(run: { tid: number; start: number; end: number; maxv: VOffset }, s: Span): Promise<Trust | undefined> {
    const parsed = await this.bam.index!.parse().catch((err: unknown) => {
      throw this.unreadableIndex(err);
    });
    const bins = (parsed.indices(run.tid) as { binIndex?: Record<string, Span[]> } | undefined)?.binIndex;
    if (!bins) return undefined;
    const binning = this.bam.index as unknown as { minShift?: number; depth?: number };
    const minShift = binning.minShift ?? BAI_MIN_SHIFT;
    const depth = binning.depth ?? BAI_DEPTH;
    const until = cmp(run.maxv, s.maxv) <= 0 ? run.maxv : s.maxv;
    const chunks: Span[] = [];
    for (const [bin, list] of Object.entries(bins)) {
      if (binEnd(Number(bin), minShift, depth) <= run.end) continue;
      for (const c of list) if (cmp(c.maxv, s.minv) > 0 && cmp(c.minv, until) < 0) chunks.push(c);
    }
    chunks.sort((a, b) => cmp(a.minv, b.minv));
    const suspect: Trust['suspect'] = [];
    for (const c of chunks) {
      const last = suspect.at(-1);
      if (last && c.minv.blockPosition <= last.lastBlock) last.lastBlock = Math.max(last.lastBlock, c.maxv.blockPosition);
      else suspect.push({ minv: c.minv, lastBlock: c.maxv.blockPosition });
    }
    return { tid: run.tid, start: run.start, until, suspect };
  }

  /**
   * A reader of [.., end) that keeps up to AHEAD bytes requested ahead of the position read,
   * refilled by halves so requests stay large (as RangeReader's readahead does).
   */
  private aheadReader(end: number, window: Extent = { pos: 0, len: 0 }): (pos: number, len: number) => Promise<Buffer> {
    let requestedTo = 0;
    return (pos, len) => {
      if (requestedTo - pos < AHEAD / 2) {
        const from = Math.max(pos, requestedTo);
        requestedTo = Math.min(end, pos + AHEAD);
        this.reader.prefetch(from, requestedTo - from);
        // The bytes from the position read to the last one asked for (`window`, for the caller).
        window.pos = pos;
        window.len = requestedTo - pos;
      }
      return this.reader.read(pos, len);
    };
  }

  /** An error of @gmod/bam's index parser (a RangeError, a TypeError, ...) as one clear line. */
  private unreadableIndex(err: unknown): SlicefsError {
    return err instanceof SlicefsError ? err : new SlicefsError('BAD_RESPONSE', `${this.indexLabel}: unreadable index: ${printable(messageOf(err))}`);
  }

  /**
   * The first position past what the index can bin: 2^(min_shift + 3·depth), 2^29 for a BAI
   * (min_shift 14, depth 5), what the CSI's header says for a CSI.
   */
  private async indexedEnd(): Promise<number> {
    await this.bam.index!.parse().catch((err: unknown) => {
      throw this.unreadableIndex(err);
    });
    const binning = this.bam.index as unknown as { minShift?: number; depth?: number };
    return 2 ** ((binning.minShift ?? BAI_MIN_SHIFT) + 3 * (binning.depth ?? BAI_DEPTH));
  }

  /**
   * Where the unplaced unmapped reads begin: after the last chunk of any reference or, when the
   * index names no chunks (no placed reads), where the header ends, as htslib does.
   */
  private async unplacedStart(): Promise<VOffset | undefined> {
    const parsed = await this.bam.index!.parse().catch((err: unknown) => {
      throw this.unreadableIndex(err);
    });
    let max: VOffset | undefined;
    for (let tid = 0; tid < parsed.refCount; tid++) {
      const ix = parsed.indices(tid);
      if (!ix) continue;
      for (const chunks of Object.values(ix.binIndex) as { maxv: VOffset }[][]) {
        for (const c of chunks) if (!max || cmp(c.maxv, max) > 0) max = c.maxv;
      }
    }
    return max ?? parsed.firstDataLine ?? this.headerEnd;
  }
}

/**
 * Lets a chunk reader end the whole view early: `pastEvery` says whether a record starts past
 * every region; the reader sets `stopped` when it stops there.
 */
interface Stop {
  stopped: boolean;
  pastEvery: (rec: Buffer) => boolean;
}

/** Whether a record starts past the end of every wanted range (on a later reference, or at or after its end). */
function pastEvery(rec: Buffer, wanted: readonly WantedRange[]): boolean {
  const tid = rec.readInt32LE(0);
  const pos = rec.readInt32LE(4);
  return wanted.every((w) => tid > w.tid || (tid === w.tid && pos >= w.end));
}

/**
 * Where bin `bin` of a binning index ends (exclusive): level l (0 at the top) has 8^l bins from
 * ((8^l − 1) / 7) on, each 2^(minShift + 3·(depth − l)) positions long (SAMv1 §5.3, CSIv1).
 */
export function binEnd(bin: number, minShift: number, depth: number): number {
  let level = 0;
  while (level < depth && bin >= (8 ** (level + 1) - 1) / 7) level++;
  const first = (8 ** level - 1) / 7;
  const size = 2 ** (minShift + 3 * (depth - level));
  return (bin - first + 1) * size;
}

/** Sorts spans and merges those that overlap or touch. */
export function mergeSpans(spans: Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => cmp(a.minv, b.minv));
  const out: Span[] = [];
  for (const s of sorted) {
    const last = out.at(-1);
    if (last && cmp(s.minv, last.maxv) <= 0) {
      if (cmp(s.maxv, last.maxv) > 0) last.maxv = s.maxv;
    } else {
      out.push({ minv: s.minv, maxv: s.maxv });
    }
  }
  return out;
}
