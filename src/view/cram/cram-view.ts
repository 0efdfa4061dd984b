/**
 * Records of regions of a CRAM file, streamed as BAM records: the CRAI index names the slices that
 * overlap each region; their bytes are prefetched (a bounded window ahead of the decoder, nearby
 * ranges merged into one request), each slice is decoded once by ./slice-decoder.ts (the reference
 * fetched for just that slice), and each record kept if it overlaps a region with htslib's rule
 * (../bam-record.ts, shared with ../bam-view.ts), tested by the decoder before it builds a record.
 * Several regions give each record once, in file order; `*` gives the unplaced unmapped reads.
 *
 * Containers, blocks and codecs come from @gmod/cram, reading through ObjectFilehandle (so through
 * our reader, block cache and transport).
 *
 * A reference whose contig is not as long as @SQ LN says (htslib 1.16's rule, sanitise_SQ_lines and
 * cram_decode_slice): the reference's length takes LN's place (in regions, a BAM header's reference
 * list, a rebuilt header's LN, where bases run out); the @SQ M5 is not compared. What proves the
 * reference is a single-reference slice's MD5 of the span it covers, clipped to the reference's end,
 * checked as for any reference: a longer reference whose first bases are the file's decodes, a
 * shorter one fails where a slice runs past its end. A multi-reference slice has no MD5: htslib
 * decodes it from whatever it was given, and a reference of another length surely is not the file's
 * (a shorter one turns bases into N), so slicefs decodes such a slice only when the reference's whole
 * contig matches the @SQ M5, and refuses otherwise. An embedded reference is the slice's own: its
 * bases are printed whatever reference is given (htslib prints N past a shorter one's end).
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { CramFile } from '@gmod/cram';
import { SlicefsError } from '../../errors.js';
import { printable } from '../../util/printable.js';
import { checkBlocks, checkContainer, type ContainerInfo } from './cram-check.js';
import { ObjectFilehandle } from '../../reader/object-filehandle.js';
import { MAX_INDEX_BYTES } from '../limits.js';
import type { RangeReader } from '../../reader/range-reader.js';
import { overlapsAny, unpackRecords, type WantedRange } from '../bam-record.js';
import type { Contig, ViewRegion } from '../region.js';
import type { DecodeContext, RecordFilter, ReferenceFetch } from './slice-decoder.js';
import { decodeSliceAt, openContainer, type OpenContainer } from './slice-parts.js';
import { CramSlicePool } from './slice-pool.js';
import type { SliceResult } from './cram-slice-worker.js';

/** One line of a .crai: a slice (or, for a multi-reference slice, its part on one reference). */
export interface CraiEntry {
  refId: number;
  /** 1-based first position, and the span; 0 for unmapped. */
  start: number;
  span: number;
  containerStart: number;
  /** Offset of the slice from the end of the container header. */
  sliceStart: number;
  sliceBytes: number;
}

/** Parses a .crai (gzip-compressed, or plain, tab-separated text: six integers per line). */
export function parseCrai(bytes: Buffer, label: string): CraiEntry[] {
  let text: string;
  try {
    // Inflated at most to the index ceiling (../limits.ts): a few hundred KB of gzip can claim GBs.
    text = (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes, { maxOutputLength: MAX_INDEX_BYTES }) : bytes).toString('latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new SlicefsError('BAD_RESPONSE', `${label}: inflates to more than ${MAX_INDEX_BYTES / (1024 * 1024)} MiB, more than slicefs reads whole; a CRAI of real data is well under 100 MB`);
    }
    throw new SlicefsError('BAD_RESPONSE', `${label} is not a readable CRAM index: ${(err as Error).message}`);
  }
  const out: CraiEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const f = line.split('\t');
    const n = f.map(Number);
    if (f.length < 6 || n.slice(0, 6).some((v) => !Number.isInteger(v))) {
      throw new SlicefsError('BAD_RESPONSE', `${label}:${i + 1}: not a CRAM index line (six integers expected)`);
    }
    out.push({ refId: n[0], start: n[1], span: n[2], containerStart: n[3], sliceStart: n[4], sliceBytes: n[5] });
  }
  return out;
}

/**
 * The CRAI entries of the slices htslib decodes for the range [start, end) (0-based, exclusive end)
 * of contig `tid`, its cram_index_query and cram_next_slice: it starts at the first slice of the
 * contig (by start) whose span reaches the range's first base, or at the contig's last slice when
 * none does, and reads on until a slice starts past the range. On the way it skips a
 * single-reference slice whose span ends before the range, but decodes every multi-reference slice
 * (its records are filtered one by one). A plain overlap test differs from this on spans that end
 * early: htsjdk's CRAI ends a span one base short (a read ending on its slice's last base is found
 * only through the last-slice fallback, in a multi-reference slice), and both htsjdk and htslib end
 * a slice's span before an all-insertion read placed after its other reads (htslib skips that
 * single-reference slice for a region starting at the read).
 */
export function craiEntriesFor(crai: readonly CraiEntry[], tid: number, start: number, end: number): CraiEntry[] {
  // CRAI positions are 1-based: an entry covers e.start .. e.start + e.span - 1.
  const beg1 = start + 1;
  const own = crai.filter((e) => e.refId === tid).sort((a, b) => a.start - b.start);
  if (own.length === 0) return [];
  const sliceKey = (e: CraiEntry) => `${e.containerStart}:${e.sliceStart}`;
  // A slice with entries for several references is a multi-reference slice.
  const refsOf = new Map<string, Set<number>>();
  for (const e of crai) {
    const set = refsOf.get(sliceKey(e)) ?? new Set<number>();
    set.add(e.refId);
    refsOf.set(sliceKey(e), set);
  }
  let first = own.findIndex((e) => e.start + e.span - 1 >= beg1);
  if (first < 0) first = own.length - 1;
  const out: CraiEntry[] = [];
  for (let i = first; i < own.length && own[i].start <= end; i++) {
    const e = own[i];
    if (e.start + e.span - 1 < beg1 && refsOf.get(sliceKey(e))!.size < 2) continue;
    out.push(e);
  }
  return out;
}

/** A CRAM file starts with its 26-byte file definition; the header container follows. */
const CRAM_DEFINITION_BYTES = 26;

/** Compressed bytes of slices kept in flight ahead of the decoder (as bam-view's AHEAD). */
const AHEAD = 16 * 1024 * 1024;
/**
 * Bytes beyond a slice's known offsets fetched with it: the container header (a few dozen bytes
 * plus four per slice) sits between the container start and the slice offsets the CRAI gives.
 */
const HEADER_SLACK = 4096;
/** Prefetch ranges closer than this are merged into one request: a gap costs less than a round trip. */
const MERGE_GAP = 64 * 1024;

interface SliceRef {
  containerStart: number;
  sliceStart: number;
  sliceBytes: number;
}

/** The slices of a view's regions and how their records are chosen (CramView.plan). */
interface SlicePlan {
  order: SliceRef[];
  /** Starts fetching what the slices from `pos` on need, a window ahead. */
  prefetchTo: (pos: number) => void;
  /** The records' filter: state kept across slices, in file order (see CramView.plan). */
  wantedRecord: RecordFilter;
  /** Replays a worker's calls of the stateless filter through `wantedRecord`; false (state unchanged) where they differ. */
  replay: (calls: Int32Array) => boolean;
  wanted: WantedRange[];
  unmapped: boolean;
  contained: boolean;
}

/**
 * Slices a region must have before `output` starts workers: starting one costs ~50-100 ms (loading
 * @gmod/cram and its WebAssembly codecs), about what decoding one slice of 10,000 reads costs here.
 */
const POOL_MIN_SLICES = 4;

/** @SQ names and lengths (and M5 checksums, lowercase, where given), and @RG IDs, in header order. */
export function parseCramHeader(text: string): { contigs: Contig[]; md5s: (string | undefined)[]; readGroups: string[] } {
  const contigs: Contig[] = [];
  const md5s: (string | undefined)[] = [];
  const readGroups: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('@SQ\t')) {
      const sn = /\tSN:([^\t]*)/.exec(line)?.[1];
      const ln = /\tLN:(\d+)/.exec(line)?.[1];
      if (sn === undefined || ln === undefined) throw new SlicefsError('BAD_RESPONSE', printable(`CRAM header @SQ line without SN or LN: ${line.slice(0, 80)}`));
      contigs.push({ name: sn, length: Number(ln) });
      md5s.push(/\tM5:([^\t]*)/.exec(line)?.[1]?.toLowerCase());
    } else if (line.startsWith('@RG\t')) {
      const id = /\tID:([^\t]*)/.exec(line)?.[1];
      if (id !== undefined) readGroups.push(id);
    }
  }
  return { contigs, md5s, readGroups };
}

export interface CramOptions {
  /** Reference bases of a contig by name; undefined when no reference was given. */
  reference?: (name: string, start: number, end: number) => Promise<Buffer>;
  /** Length of a contig in the reference: it takes the place of @SQ LN (see the module header). */
  referenceLength?: (name: string) => number | undefined;
  /** Starts fetching reference bases [start, end) of a contig that a coming slice will need. */
  referencePrefetch?: (name: string, start: number, end: number) => void;
  referenceHint: string;
  /** Tells the user something worth knowing that does not stop the view (one line, no prefix). */
  warn?: (line: string) => void;
  /** The file's name (`x.cram`, no directory, no query): names of records stored without one start with it. */
  fileName: string;
}

export class CramView {
  private readonly containers = new Map<number, OpenContainer>();
  /** Containers whose header and compression header block were checked (cram-check.ts). */
  private readonly checked = new Map<number, Promise<ContainerInfo & { headerEnd: number }>>();

  private constructor(
    private readonly file: CramFile,
    private readonly reader: RangeReader,
    private readonly crai: CraiEntry[],
    private readonly majorVersion: number,
    readonly headerText: string,
    /** @SQ names and lengths; the reference's length where it has the contig (see above). */
    readonly contigs: Contig[],
    private readonly ctx: DecodeContext,
    private readonly referencePrefetch: ((name: string, start: number, end: number) => void) | undefined,
    private readonly label: string,
  ) {}

  /**
   * `head`: the file's first bytes when already at hand (the header is read from them); `label`:
   * the file's name in messages.
   */
  static async open(data: RangeReader, indexBytes: Buffer, indexLabel: string, opts: CramOptions, head: Buffer | undefined, label: string): Promise<CramView> {
    const crai = parseCrai(indexBytes, indexLabel);
    const file = new CramFile({ filehandle: new ObjectFilehandle(data, head), checkSequenceMD5: false });
    let text: string;
    let majorVersion: number;
    try {
      majorVersion = (await file.getDefinition()).majorVersion;
      // The header container (right after the 26-byte file definition) and its blocks are checked
      // first; @gmod/cram walks its blocks to the file's end, not its stated length (an htslib bug).
      const readAt = (pos: number, len: number) => data.read(pos, len);
      const first = await checkContainer(readAt, data.size, CRAM_DEFINITION_BYTES, majorVersion, label);
      await checkBlocks(readAt, first.dataStart, data.size, first.blocks, majorVersion, label);
      text = (await file.getHeaderText()) ?? '';
    } catch (err) {
      if (err instanceof SlicefsError) throw err;
      throw new SlicefsError('BAD_RESPONSE', printable(`${label}: not a readable CRAM file: ${(err as Error).message}`));
    }
    // htslib drops the NUL padding some writers leave after the header text.
    text = text.replace(/\0+$/, '');
    const { contigs, md5s, readGroups } = parseCramHeader(text);
    let reference: ReferenceFetch | undefined;
    let referenceLength: ((tid: number, proven: boolean) => Promise<number>) | undefined;
    if (opts.reference) {
      const get = opts.reference;
      const lengthOf = (tid: number): number => {
        const c = contigs[tid];
        const len = opts.referenceLength?.(c.name);
        if (len === undefined) throw new SlicefsError('USAGE', `the reference has no sequence named ${c.name} (the CRAM's @SQ ${c.name} LN:${c.length}); ${opts.referenceHint}`);
        return len;
      };
      reference = async (tid, start, end) => {
        lengthOf(tid);
        return get(contigs[tid].name, start, end);
      };
      const m5Checks = new Map<number, Promise<void>>();
      const warned = new Set<number>();
      referenceLength = async (tid, proven) => {
        const c = contigs[tid];
        const len = lengthOf(tid);
        if (len === c.length) return len;
        // The slice's MD5 proved the reference; otherwise the @SQ M5 must (see the module header).
        if (!proven) {
          let check = m5Checks.get(tid);
          if (!check) m5Checks.set(tid, (check = checkContigMd5(get, c, len, md5s[tid])));
          await check;
        }
        if (!warned.has(tid)) {
          warned.add(tid);
          opts.warn?.(`warning: the reference's ${c.name} is ${len} bases long, the CRAM's @SQ says ${c.length}; its bases match the CRAM's checksums, so it is decoded with the reference's length (as samtools does)`);
        }
        return len;
      };
    }
    // Outside the decoder (regions, a BAM header's reference list) a contig is as long as the
    // reference says, as htslib makes it when it opens the reference.
    const viewContigs = contigs.map((c) => {
      const len = opts.reference ? opts.referenceLength?.(c.name) : undefined;
      return len === undefined || len === c.length ? c : { name: c.name, length: len };
    });
    const openedLength = (tid: number) => viewContigs[tid].length;
    const ctx: DecodeContext = { contigs, readGroups, reference, referenceLength, openedLength, referenceHint: opts.referenceHint, fileName: opts.fileName };
    return new CramView(file, data, crai, majorVersion, text, viewContigs, ctx, opts.reference ? opts.referencePrefetch : undefined, label);
  }

  /** The BAM-encoded records of `regions`, each once, in file order, in batches (one per slice). */
  async *records(regions: ViewRegion[], contained: boolean): AsyncGenerator<Buffer[]> {
    yield* this.decodedOnThisThread(this.plan(regions, contained));
  }

  /** The BAM-encoded records of `plan`'s slices, decoded on this thread, in batches (one per slice). */
  private async *decodedOnThisThread(plan: SlicePlan): AsyncGenerator<Buffer[]> {
    for (const s of plan.order) {
      plan.prefetchTo(s.containerStart + s.sliceStart);
      const recs = await this.decode(s, plan.wantedRecord);
      if (recs.length > 0) yield recs;
    }
  }

  /**
   * The output of `regions` in file order, one piece per slice: SAM text or BAM records made by
   * `threads` workers (./slice-pool.ts), or BAM records decoded here (with no threads, for a region
   * of few slices, and for a slice a worker could not do as this thread would: see
   * ./cram-slice-worker.ts). Slices in flight are bounded by AHEAD bytes and two per worker.
   */
  async *output(
    regions: ViewRegion[],
    contained: boolean,
    threads: number,
    format: 'sam' | 'bam',
    /** Told of each slice whose output a worker made. */
    onWorkerSlice?: () => void,
  ): AsyncGenerator<{ records: Buffer[] } | { text: Buffer; count: number }> {
    const plan = this.plan(regions, contained);
    if (threads < 1 || plan.order.length < POOL_MIN_SLICES) {
      for await (const records of this.decodedOnThisThread(plan)) yield { records };
      return;
    }
    const pool = this.pool(threads);
    const inFlight: { s: SliceRef; bytes: number; result: Promise<SliceResult | undefined> }[] = [];
    let flightBytes = 0;
    let next = 0;
    try {
      while (next < plan.order.length || inFlight.length > 0) {
        while (next < plan.order.length && inFlight.length < 2 * threads && (inFlight.length === 0 || flightBytes + plan.order[next].sliceBytes <= AHEAD)) {
          const s = plan.order[next++];
          plan.prefetchTo(s.containerStart + s.sliceStart);
          flightBytes += s.sliceBytes;
          const result = this.submit(pool, s, plan, format);
          // Jobs still in flight when the run stops are never awaited.
          result.catch(() => {});
          inFlight.push({ s, bytes: s.sliceBytes, result });
        }
        const head = inFlight.shift()!;
        flightBytes -= head.bytes;
        const res = await head.result;
        if (res?.type === 'done' && plan.replay(new Int32Array(res.calls))) {
          onWorkerSlice?.();
          if (res.count === 0) continue;
          yield format === 'sam' ? { text: Buffer.from(res.out), count: res.count } : { records: unpackRecords(res.out) };
          continue;
        }
        // Checked, read, or decoded differently than here would (an error, a region's filter that
        // stopped early): this thread decodes it, and gives its error, in order.
        const recs = await this.decode(head.s, plan.wantedRecord);
        if (recs.length > 0) yield { records: recs };
      }
    } finally {
      await pool.close();
    }
  }

  /**
   * Sends slice `s` to a worker: its checked bytes and the regions. Undefined when the bytes fail
   * their checks here (the slice is then decoded in order on this thread, which gives the error).
   * A worker that dies rejects.
   */
  private async submit(pool: CramSlicePool, s: SliceRef, plan: SlicePlan, format: 'sam' | 'bam'): Promise<SliceResult | undefined> {
    let pieces: { pos: number; bytes: ArrayBuffer }[];
    try {
      await this.checkSlice(s);
      const c = await this.checked.get(s.containerStart)!;
      // The file definition, the container header and compression header, the slice: all that
      // @gmod/cram reads for it, copied into buffers the worker owns.
      const spans: [number, number][] = [
        [0, CRAM_DEFINITION_BYTES],
        [s.containerStart, c.headerEnd],
        [c.dataStart + s.sliceStart, c.dataStart + s.sliceStart + s.sliceBytes],
      ];
      pieces = await Promise.all(spans.map(async ([a, b]) => ({ pos: a, bytes: new Uint8Array(await this.reader.read(a, b - a)).buffer })));
    } catch {
      return undefined;
    }
    return pool.run({ pieces, containerStart: s.containerStart, sliceStart: s.sliceStart, sliceBytes: s.sliceBytes, wanted: plan.wanted, unmapped: plan.unmapped, contained: plan.contained, output: format });
  }

  private pool(threads: number): CramSlicePool {
    const ctx = this.ctx;
    return new CramSlicePool(
      threads,
      {
        majorVersion: this.majorVersion,
        contigs: ctx.contigs.map((c) => ({ name: c.name, length: c.length })),
        openedLengths: ctx.contigs.map((c, tid) => ctx.openedLength?.(tid) ?? c.length),
        readGroups: [...ctx.readGroups],
        referenceHint: ctx.referenceHint,
        fileName: ctx.fileName,
        hasReference: ctx.reference !== undefined,
        fileSize: this.reader.size,
        label: this.label,
      },
      async (q) => {
        if (q.what === 'bases') return { bases: await ctx.reference!(q.tid, q.start, q.end) };
        return { length: await ctx.referenceLength!(q.tid, q.proven) };
      },
    );
  }

  /** The slices `regions` need, in file order, with their prefetching and the records' filter. */
  private plan(regions: ViewRegion[], contained: boolean): SlicePlan {
    const tidOf = new Map(this.contigs.map((c, i) => [c.name, i]));
    const wanted: WantedRange[] = [];
    let unmapped = false;
    const slices = new Map<string, SliceRef>();
    const add = (e: CraiEntry) => slices.set(`${e.containerStart}:${e.sliceStart}`, e);
    for (const r of regions) {
      if (r.kind === 'unmapped') {
        unmapped = true;
        for (const e of this.crai) if (e.refId === -1) add(e);
        continue;
      }
      const tid = tidOf.get(r.contig)!;
      wanted.push({ tid, start: r.start, end: r.end });
      if (r.end <= r.start) continue;
      for (const e of craiEntriesFor(this.crai, tid, r.start, r.end)) add(e);
    }
    const order = [...slices.values()].sort((a, b) => a.containerStart - b.containerStart || a.sliceStart - b.sliceStart);
    const ranges = order.map((s) => [s.containerStart + s.sliceStart, s.containerStart + s.sliceStart + s.sliceBytes + HEADER_SLACK] as [number, number]);
    // The container header and compression header come before the container's first slice.
    const firstSlice = new Map<number, number>();
    for (const s of order) firstSlice.set(s.containerStart, Math.min(firstSlice.get(s.containerStart) ?? Infinity, s.sliceStart));
    for (const [cs, first] of firstSlice) ranges.push([cs, cs + first + HEADER_SLACK]);
    const merged = mergeRanges(ranges, this.reader.size);

    let next = 0; // merged ranges prefetched so far
    let aheadTo = 0;
    // The reference spans the slices will need (the CRAI gives each slice's span on each
    // reference), fetched along with the slices' bytes.
    const refSpans = new Map<string, { refId: number; start: number; end: number }[]>();
    for (const e of this.crai) {
      const key = `${e.containerStart}:${e.sliceStart}`;
      if (e.refId < 0 || !slices.has(key)) continue;
      const list = refSpans.get(key) ?? [];
      list.push({ refId: e.refId, start: e.start - 1, end: e.start - 1 + e.span });
      refSpans.set(key, list);
    }
    let nextRef = 0; // slices (in `order`) whose reference was prefetched
    const prefetchTo = (pos: number) => {
      while (next < merged.length && (merged[next][0] < pos + AHEAD || aheadTo === 0)) {
        const [a, b] = merged[next++];
        this.reader.prefetch(a, b - a);
        aheadTo = b;
      }
      // Spans of consecutive slices touch or overlap: merged, they go out as few large requests.
      const spans: { refId: number; start: number; end: number }[] = [];
      for (; nextRef < order.length && order[nextRef].containerStart + order[nextRef].sliceStart < Math.max(aheadTo, pos + 1); nextRef++) {
        const s = order[nextRef];
        spans.push(...(refSpans.get(`${s.containerStart}:${s.sliceStart}`) ?? []));
      }
      spans.sort((a, b) => a.refId - b.refId || a.start - b.start);
      const joined: typeof spans = [];
      for (const r of spans) {
        const last = joined.at(-1);
        if (last && last.refId === r.refId && r.start <= last.end) last.end = Math.max(last.end, r.end);
        else joined.push({ ...r });
      }
      for (const r of joined) this.referencePrefetch?.(this.contigs[r.refId].name, r.start, r.end);
    };

    // The overlap rule on positions (the decoder knows each record's end from its read features,
    // before building it), so only the records that are wanted are built: nothing to filter after.
    // htslib reads a region's records in file order and stops at the first one past it (a start
    // after its end, a later contig, an unplaced read: cram_get_seq), so in a CRAM not sorted by
    // position the records after that one are not read even where they overlap. In a sorted file
    // nothing follows it that overlaps, and this changes nothing.
    let open = wanted;
    const wantedRecord = (tid: number, pos: number, end: number) => {
      const want = tid === -1 ? unmapped : overlapsAny(open, contained, tid, pos, end);
      // The decoder's second call, with the end known, comes once per record in file order.
      const past = (w: WantedRange) => tid === -1 || tid > w.tid || (tid === w.tid && pos >= w.end);
      if (end !== Infinity && open.some(past)) open = open.filter((w) => !past(w));
      return want;
    };
    // A worker's answers (cram-slice-worker.ts) replayed through this filter: whether they agree.
    const replay = (calls: Int32Array): boolean => {
      const before = open;
      for (let i = 0; i < calls.length; i += 4) {
        if (wantedRecord(calls[i], calls[i + 1], calls[i + 2]) !== (calls[i + 3] === 1)) {
          open = before;
          return false;
        }
      }
      return true;
    };
    return { order, prefetchTo, wantedRecord, replay, wanted, unmapped, contained };
  }

  /**
   * Checks the bytes @gmod/cram will parse for slice `s`: its container's header and compression
   * header block (once per container), then the slice's blocks, which must fill exactly the bytes
   * the CRAI gives it.
   */
  private async checkSlice(s: SliceRef): Promise<void> {
    const readAt = (pos: number, len: number) => this.reader.read(pos, len);
    let info = this.checked.get(s.containerStart);
    if (!info) {
      info = checkContainer(readAt, this.reader.size, s.containerStart, this.majorVersion, this.label).then(async (c) => {
        // The compression header is the container's first block.
        const headerEnd = await checkBlocks(readAt, c.dataStart, c.dataStart + c.length, 1, this.majorVersion, this.label);
        return { ...c, headerEnd };
      });
      this.checked.set(s.containerStart, info);
    }
    const c = await info;
    const from = c.dataStart + s.sliceStart;
    const to = from + s.sliceBytes;
    if (s.sliceStart < 0 || s.sliceBytes < 0 || to > c.dataStart + c.length) {
      throw new SlicefsError('BAD_RESPONSE', `${this.label}: the index puts a slice at ${s.sliceStart} (${s.sliceBytes} bytes) in the container at byte ${s.containerStart}, which has ${c.length}`);
    }
    await checkBlocks(readAt, from, to, undefined, this.majorVersion, this.label);
  }

  private container(pos: number): OpenContainer {
    let c = this.containers.get(pos);
    if (!c) this.containers.set(pos, (c = openContainer(this.file, pos)));
    return c;
  }

  private async decode(s: SliceRef, wanted: RecordFilter): Promise<Buffer[]> {
    await this.checkSlice(s);
    return decodeSliceAt(this.container(s.containerStart), s, this.majorVersion, this.ctx, wanted, this.label);
  }
}

/** Bases hashed per read when checking a whole contig: a bounded buffer, whatever the contig's size. */
const MD5_CHUNK = 16 * 1024 * 1024;

/**
 * Checks that the reference's sequence of contig `c` (of `len` bases, not @SQ LN) is the one the
 * @SQ line's M5 names: the one proof left for a slice without an MD5 of its own (multi-reference
 * slices) when the lengths differ. Without an M5 the reference is refused.
 */
async function checkContigMd5(get: NonNullable<CramOptions['reference']>, c: Contig, len: number, m5: string | undefined): Promise<void> {
  const differs = `wrong reference: its ${c.name} is ${len} bases long, the CRAM's @SQ says ${c.length}`;
  if (m5 === undefined) {
    throw new SlicefsError('USAGE', `${differs}, and neither the slice nor the @SQ line has an MD5 that would show it is the file's reference; give the reference the file was written with`);
  }
  const hash = createHash('md5');
  for (let at = 0; at < len; at += MD5_CHUNK) hash.update(await get(c.name, at, Math.min(len, at + MD5_CHUNK)));
  const got = hash.digest('hex');
  if (got !== m5) throw new SlicefsError('USAGE', `${differs}, and its MD5 is ${got}, the @SQ line's M5 ${m5}; give the reference the file was written with`);
}

/** Sorts [start, end) ranges, clamps them to the file, merges those closer than MERGE_GAP. */
function mergeRanges(ranges: [number, number][], size: number): [number, number][] {
  const sorted = ranges.map(([a, b]) => [a, Math.min(b, size)] as [number, number]).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r[0] <= last[1] + MERGE_GAP) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}
