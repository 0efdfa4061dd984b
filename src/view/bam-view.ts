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
import { bamPiecesBetween, chunkEndByte, readBamHeader, recordsBetween, type BamPiece, type ReadAt, type VOffset } from './bgzf.js';
import type { Contig, ViewRegion } from './region.js';

export interface IndexInput {
  handle: GenericFilehandle;
  kind: 'bai' | 'csi';
  /** The index's name in messages. */
  label: string;
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
    yield* this.perChunk(regions, contained, async function* (readAt, from, to, keep, label) {
      for await (const batch of recordsBetween(readAt, size, from, to, label)) {
        const kept = batch.filter(keep);
        if (kept.length > 0) yield kept;
      }
    });
  }

  /**
   * The same records as BAM output (./bgzf.ts, bamPiecesBetween): input blocks that hold only
   * wanted records come whole, to be copied; the rest as bytes, to be compressed anew.
   */
  async *bamPieces(regions: ViewRegion[], contained: boolean): AsyncGenerator<{ pieces: BamPiece[]; records: number }> {
    const size = this.reader.size;
    yield* this.perChunk(regions, contained, (readAt, from, to, keep, label) => bamPiecesBetween(readAt, size, from, to, label, keep));
  }

  /**
   * Runs `read` over the merged index chunks of `regions` (keeping the records htslib's overlap
   * rule keeps), then, for `*`, from where the unplaced reads begin to the end of the file
   * (keeping those with refID -1), and yields what it yields.
   */
  private async *perChunk<T>(
    regions: ViewRegion[],
    contained: boolean,
    read: (readAt: ReadAt, from: VOffset, to: VOffset | undefined, keep: (rec: Buffer) => boolean, label: string) => AsyncGenerator<T>,
  ): AsyncGenerator<T> {
    const index = this.bam.index;
    if (!index) throw new SlicefsError('USAGE', 'no index');
    const tidOf = new Map(this.contigs.map((c, i) => [c.name, i]));
    const wanted: WantedRange[] = [];
    let spans: Span[] = [];
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
    }
    spans = mergeSpans(spans);
    const size = this.reader.size;
    // Start the first AHEAD bytes of all chunks at once: a region's chunks are often far apart in
    // the file (large bins), and fetching them one after the other costs a round trip each.
    let budget = AHEAD;
    for (const s of spans) {
      if (budget <= 0) break;
      const extent = chunkEndByte(s.maxv, size) - s.minv.blockPosition;
      this.reader.prefetch(s.minv.blockPosition, Math.min(extent, budget));
      budget -= extent;
    }

    const keep = (rec: Buffer) => recordWanted(rec, wanted, contained);
    for (const s of spans) {
      // The chunk's compressed extent is known: keep up to AHEAD of it in flight ahead of the
      // reader (a bounded number of requests ahead of the writer), and nothing beyond it.
      yield* read(this.aheadReader(chunkEndByte(s.maxv, size)), s.minv, s.maxv, keep, this.label);
    }
    if (unmapped) {
      const from = await this.unplacedStart();
      if (from) yield* read(this.aheadReader(size), from, undefined, (rec) => rec.readInt32LE(0) === -1, this.label);
    }
  }

  /**
   * A reader of [.., end) that keeps up to AHEAD bytes requested ahead of the position read,
   * refilled by halves so requests stay large (as RangeReader's readahead does).
   */
  private aheadReader(end: number): (pos: number, len: number) => Promise<Buffer> {
    let requestedTo = 0;
    return (pos, len) => {
      if (requestedTo - pos < AHEAD / 2) {
        const from = Math.max(pos, requestedTo);
        requestedTo = Math.min(end, pos + AHEAD);
        this.reader.prefetch(from, requestedTo - from);
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
