/**
 * `slicefs view` without argv: resolves the data and index sources, opens the BAM or CRAM, resolves
 * regions and streams records as SAM text or BAM to a writable, with backpressure. Index discovery
 * follows the order users know from htslib: an explicit index, then `X.bai`, `X.csi` (BAM) or
 * `X.crai` (CRAM), then X with `.bam`→`.bai` (`.cram`→`.crai`); an absent index is an error (no
 * silent whole-file scan). BAM or CRAM is read from the file's first bytes; the name only lets the
 * index search start before they arrive.
 */
import { BlockCache } from '../cache/block-cache.js';
import type { FileCache } from '../cache/file-cache.js';
import { BufferFilehandle } from '../reader/object-filehandle.js';
import { cacheKey } from '../source/object-source.js';
import type { CacheConfig, ReaderConfig } from '../config.js';
import { SlicefsError } from '../errors.js';
import { RangeReader } from '../reader/range-reader.js';
import { PlannedReader } from '../reader/planned-reader.js';
import type { ObjectSource } from '../source/object-source.js';
import type { Stats } from '../stats.js';
import type { BamView } from './bam-view.js';
import { BgzfWriter, MAX_PAYLOAD, storedBgzfBlock } from './bgzf.js';
import type { CramView } from './cram/cram-view.js';
import { checkBai, checkCsi } from './index-check.js';
import { MAX_FAI_BYTES, MAX_INDEX_BYTES, tooLarge } from './limits.js';
import { FastaReference, parseFai } from './reference.js';
import { expandRegions, type Region } from './region.js';
import { refNameBytes, samHeaderText } from './sam-format.js';
import { OrderedFormatter, type FormatPlan } from './sam-format-pool.js';

export type DataFormat = 'bam' | 'cram';

/** A FASTA reference for CRAM, and its .fai (a source to read, or text already at hand). */
export interface ReferenceInput {
  fasta: ObjectSource;
  fai: ObjectSource | { text: string };
}

export interface ViewOptions {
  data: ObjectSource;
  /**
   * The data's file name as samtools would know it (`x.cram`: see `fileNameOf`); a lossy_names
   * CRAM's records stored without a name are named after it. Default: from the data's label.
   */
  fileName?: string;
  /** What the data's name says it is (undefined: unknown until its first bytes are read). */
  formatHint?: DataFormat;
  /** Tried in order; the first that exists is used. Its kind (BAI, CSI, CRAI) is read from its bytes. */
  indexCandidates: (format: DataFormat) => ObjectSource[];
  /** The reference for CRAM input (undefined: none given). */
  reference?: ReferenceInput;
  /** What to tell a user whose CRAM needs a reference that was not given. */
  referenceHint?: string;
  /** Where a warning goes (a line without prefix, `warning: …`); undefined: nowhere. */
  warn?: (line: string) => void;
  regions: (contigs: { name: string; length: number }[]) => Region[];
  contained: boolean;
  /** SAM text, BAM, or uncompressed BAM (stored deflate blocks, `samtools view -u`). */
  format: 'sam' | 'bam' | 'ubam';
  /** SAM output: the threads formatting it besides the main thread and their batches (./sam-format-pool.ts). */
  formatting: FormatPlan;
  header: 'with' | 'without' | 'only';
  /** A @PG line to append to the header (without ID/PP: they are chosen here), or undefined. */
  pg?: { name: string; version: string; commandLine: string };
  cache: CacheConfig;
  reader: ReaderConfig;
  stats: Stats;
  out: NodeJS.WritableStream;
  /** Where whole index files are kept between runs (undefined: not kept). */
  indexCache?: FileCache;
}

export interface ViewResult {
  /** Records read one by one and written (those in blocks copied unread are not counted). */
  records: number;
  /** BAM output from a BAM: input blocks copied without their records being read, and for BAM (not uncompressed) without being inflated (./bgzf.ts, bamPiecesBetween's trust). */
  unread: number;
}

/**
 * Candidate index names for a data file name or URL path: `X.bai`, `X.csi`, `X`-with-`.bam`→`.bai`
 * for BAM; `X.crai`, `X`-with-`.cram`→`.crai` for CRAM.
 */
export function indexNames(name: string, format: DataFormat = 'bam'): string[] {
  if (format === 'cram') {
    const out = [`${name}.crai`];
    if (/\.cram$/i.test(name)) out.push(name.replace(/\.cram$/i, '.crai'));
    return out;
  }
  const out = [`${name}.bai`, `${name}.csi`];
  if (/\.bam$/i.test(name)) out.push(name.replace(/\.bam$/i, '.bai'));
  return out;
}

/**
 * The file name htslib gives a CRAM's generated read names (its fd->prefix): what follows the last
 * `/` of the path it opened. For a URL that is the last segment of its path, without the query
 * string: htslib would keep the query (`x.cram?X-Amz-Signature=…`), which would print a
 * presigned URL's signature in every generated name.
 */
export function fileNameOf(pathOrUrl: string): string {
  let path = pathOrUrl;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pathOrUrl)) {
    try {
      path = new URL(pathOrUrl).pathname;
    } catch {
      path = pathOrUrl.replace(/[?#].*$/, '');
    }
  }
  return path.slice(path.lastIndexOf('/') + 1);
}

/** What a name says about its format, from its extension. */
export function formatOfName(name: string): DataFormat | undefined {
  if (/\.cram$/i.test(name)) return 'cram';
  if (/\.bam$/i.test(name)) return 'bam';
  return undefined;
}

/** BAI or CSI, from the index's first bytes (a BAI starts with `BAI\1`, a CSI file is BGZF). */
function indexKind(bytes: Buffer, label: string): 'bai' | 'csi' {
  if (bytes.subarray(0, 4).toString('latin1') === 'BAI\x01') return 'bai';
  // A CSI is BGZF (gzip with the FEXTRA flag); a CRAI is plain gzip.
  if (bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[3] & 4) return 'csi';
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) throw new SlicefsError('BAD_RESPONSE', `${label} looks like a CRAM index (.crai), not a BAI or CSI: the data is BAM`);
  throw new SlicefsError('BAD_RESPONSE', `${label} is not a BAI or CSI index`);
}

async function firstIndex(cands: ObjectSource[]): Promise<ObjectSource> {
  let denied = 0;
  for (const c of cands) {
    try {
      await c.version();
      return c;
    } catch (err) {
      if (err instanceof SlicefsError && err.code === 'NOT_FOUND') continue;
      // A guessed name can be refused rather than missing: a presigned URL signs one object only.
      if (cands.length > 1 && err instanceof SlicefsError && err.code === 'ACCESS_DENIED') {
        denied++;
        continue;
      }
      throw err;
    }
  }
  const why = denied > 0 ? ` (${denied} refused with 401/403: a presigned URL signs one object, so its index needs its own URL)` : '';
  throw new SlicefsError('NOT_FOUND', `no index found (tried ${cands.map((c) => c.label).join(', ')})${why}; give one with --index-url`);
}

/** Adds a @PG line with a unique ID chained (PP) to the last @PG, as samtools does. */
export function withPg(header: string, pg: { name: string; version: string; commandLine: string }): string {
  const ids = [...header.matchAll(/^@PG\t(?:.*\t)?ID:([^\t\n]+)/gm)].map((m) => m[1]);
  let id = pg.name;
  for (let i = 1; ids.includes(id); i++) id = `${pg.name}.${i}`;
  const pp = ids.length > 0 ? `\tPP:${ids.at(-1)}` : '';
  const text = header.length === 0 || header.endsWith('\n') ? header : `${header}\n`;
  return `${text}@PG\tID:${id}\tPN:${pg.name}${pp}\tVN:${pg.version}\tCL:${pg.commandLine}\n`;
}

/** `text` with the LN of each @SQ line set to the length of its contig in `contigs`, where they differ. */
export function withSqLengths(text: string, contigs: readonly { name: string; length: number }[]): string {
  const lengths = new Map(contigs.map((c) => [c.name, c.length]));
  return text.replace(/^@SQ\t.*$/gm, (line) => {
    const len = lengths.get(/\tSN:([^\t]*)/.exec(line)?.[1] ?? '');
    return len === undefined ? line : line.replace(/\tLN:\d+/, `\tLN:${len}`);
  });
}

/** Writes to `out`, waiting for 'drain' when it is full; rejects on an error (EPIPE included). */
function writer(out: NodeJS.WritableStream): { write(b: Buffer | string): Promise<void> | undefined } {
  let failed: Error | undefined;
  out.on('error', (e: Error) => (failed = e));
  return {
    write(b) {
      if (failed) throw failed;
      if (out.write(b)) return undefined;
      return new Promise((res, rej) => {
        const onDrain = () => {
          out.off('error', onErr);
          res();
        };
        const onErr = (e: Error) => {
          out.off('drain', onDrain);
          rej(e);
        };
        out.once('drain', onDrain);
        out.once('error', onErr);
      });
    },
  };
}

/**
 * Largest Range request of a view: half the 16 MiB the views keep ahead, so each refill is one
 * request. Larger than the mount's 4 MiB because a view knows it will read all of it; a 10 Mb
 * region then takes about as many requests as htslib's open-ended streams (docs/benchmarks.md).
 */
const VIEW_MAX_REQUEST = 8 * 1024 * 1024;

/**
 * Planned CRAM slice bytes fetched ahead of the reads: two requests of VIEW_MAX_REQUEST, so one is
 * in flight while the other is read; the views' AHEAD. PlannedReader caps it at a quarter of the
 * cache's budget (default 64 MiB: 16 MiB), so that it and the reference's fit in the cache.
 */
const PLAN_WINDOW = 2 * VIEW_MAX_REQUEST;

/** Bytes at the start of a BAM fetched early, in parallel with the index: most headers fit. */
const HEADER_GUESS = 128 * 1024;

/** Bytes of SAM text collected before one write to the output. */
const SAM_BATCH = 256 * 1024;

/** Bytes of BGZF blocks collected before one write to the output: as SAM_BATCH, a pipe's worth of writes. */
const BAM_BATCH = 256 * 1024;

/** BAM or CRAM, from a file's first bytes (a BAM is BGZF: gzip magic). */
function formatOfBytes(head: Buffer, label: string): DataFormat {
  if (head.subarray(0, 4).toString('latin1') === 'CRAM') return 'cram';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'bam';
  throw new SlicefsError('BAD_RESPONSE', `${label} is neither BAM nor CRAM (it starts with neither BGZF nor "CRAM")`);
}

/** How big a file read whole may be, and what to say past that (./limits.ts). */
interface WholeLimit {
  max: number;
  what: string;
  why: string;
}

const INDEX_LIMIT: WholeLimit = { max: MAX_INDEX_BYTES, what: 'an index', why: 'a BAI, CSI or CRAI of real data is well under 100 MB' };
const FAI_LIMIT: WholeLimit = { max: MAX_FAI_BYTES, what: 'a .fai', why: 'that is millions of sequences more than the largest assemblies have' };

/**
 * An index (or .fai) read whole: from the disk cache when this version of it was read before. Its
 * size is the server's word, so it is checked against `limit` before a byte is fetched.
 */
async function readWhole(source: ObjectSource, cache: BlockCache, o: ViewOptions, limit: WholeLimit): Promise<Buffer> {
  const version = await source.version();
  if (version.size > limit.max) throw tooLarge(source.label, limit.what, version.size, limit.max, limit.why);
  const reader = new RangeReader(cache, { source, version }, o.reader);
  const fetch = () => reader.read(0, version.size);
  return o.indexCache ? (await o.indexCache.getOrFetch(cacheKey(source, version), fetch, limit.max)).bytes : fetch();
}

async function openReference(input: ReferenceInput, cache: BlockCache, o: ViewOptions): Promise<FastaReference> {
  const faiText = 'text' in input.fai ? input.fai.text : (await readWhole(input.fai, cache, o, FAI_LIMIT)).toString('latin1');
  const fai = parseFai(faiText, 'text' in input.fai ? `${input.fasta.label}.fai` : input.fai.label);
  const version = await input.fasta.version();
  // Reference reads are exact (a slice's span), so no readahead: the CRAM view plans the spans
  // its slices need, fetched ahead of them in large requests (reader/planned-reader.ts). 3/4 of the
  // data's window: a slice's reference span is ~0.6 of its bytes (bench CRAM), so a reference
  // window as large as the data's reached further ahead in time than the shared LRU cache keeps
  // blocks (whole chr1: 1.2 MiB of it evicted before use and fetched again, in 4 more requests);
  // half of it (4 MiB requests) cost a 10 Mb region a fourth request. 12 MiB: neither.
  const reader = new PlannedReader(cache, { source: input.fasta, version }, { ...o.reader, readaheadMaxBytes: 0, maxRequestBytes: VIEW_MAX_REQUEST }, (PLAN_WINDOW * 3) / 4);
  return new FastaReference(reader, fai, input.fasta.label);
}

export async function runView(o: ViewOptions): Promise<ViewResult> {
  const cache = new BlockCache(o.cache, o.stats);
  // Round trips overlap: the data's version is pinned while the index is looked for (for the
  // format the name suggests), and the start of the file (the header) is fetched while the index
  // is read.
  const dataVersionP = o.data.version();
  dataVersionP.catch(() => {});
  const indexFor = (format: DataFormat) => {
    const p = firstIndex(o.indexCandidates(format));
    p.catch(() => {});
    return p;
  };
  let indexP = o.formatHint ? indexFor(o.formatHint) : undefined;
  // The BAM reader's code (@gmod/bam, ~0.2 MB) is loaded and compiled while those round trips are
  // under way, not after them.
  const bamViewP = o.formatHint === 'bam' ? import('./bam-view.js') : undefined;
  bamViewP?.catch(() => {});
  const dataVersion = await dataVersionP;
  // No generic readahead on the data: the views prefetch exactly what they will read.
  const data = new RangeReader(cache, { source: o.data, version: dataVersion }, { ...o.reader, readaheadMaxBytes: 0, maxRequestBytes: VIEW_MAX_REQUEST });
  // The file's first bytes (its header, as a rule) are kept on disk beside the index, keyed by the
  // data's version: a second view of the same file fetches neither.
  const fetchHead = () => data.read(0, HEADER_GUESS);
  const head = o.indexCache ? (await o.indexCache.getOrFetch(`${cacheKey(o.data, dataVersion)}#head`, fetchHead, HEADER_GUESS)).bytes : await fetchHead();
  const format = formatOfBytes(head, o.data.label);
  if (!indexP || format !== o.formatHint) indexP = indexFor(format);
  const index = await indexP;
  const indexBytes = await readWhole(index, cache, o, INDEX_LIMIT);

  // Each format's reader is imported when needed: compiling @gmod/cram (and its WebAssembly codecs)
  // for a BAM, or @gmod/bam for a CRAM, would only add to the start-up time.
  let view: BamView | CramView;
  /** The BAM view, for BAM input: its BAM output can copy input blocks. */
  let bamInput: BamView | undefined;
  /** The CRAM view, for CRAM input: with threads, its slices are decoded on workers (./cram/slice-pool.ts). */
  let cramInput: CramView | undefined;
  if (format === 'cram') {
    const { CramView } = await import('./cram/cram-view.js');
    const ref = o.reference ? await openReference(o.reference, cache, o) : undefined;
    // The CRAM view plans every slice's bytes at once: they are fetched ahead of the decoder a
    // window at a time (reader/planned-reader.ts), on the same cache as the header read above.
    const cramData = new PlannedReader(cache, { source: o.data, version: dataVersion }, { ...o.reader, readaheadMaxBytes: 0, maxRequestBytes: VIEW_MAX_REQUEST }, PLAN_WINDOW);
    view = cramInput = await CramView.open(cramData, indexBytes, index.label, {
      reference: ref ? (name, start, end) => ref.fetch(name, start, end) : undefined,
      referenceLength: ref ? (name) => ref.length(name) : undefined,
      referencePrefetch: ref ? (name, start, end) => ref.prefetch(name, start, end) : undefined,
      referenceHint: o.referenceHint ?? 'give --reference-file ref.fa or --reference-url URL',
      warn: o.warn,
      fileName: o.fileName ?? fileNameOf(o.data.label),
    }, head, o.data.label);
  } else {
    // The kind comes from the bytes, so an index under any name (a manifest's index_url) is read right.
    const kind = indexKind(indexBytes, index.label);
    // Its counts are checked before @gmod/bam, which trusts them, parses it.
    if (kind === 'bai') checkBai(indexBytes, index.label);
    else checkCsi(indexBytes, index.label);
    const { BamView } = await (bamViewP ?? import('./bam-view.js'));
    view = bamInput = await BamView.open(data, { handle: new BufferFilehandle(indexBytes), kind, label: index.label }, head, o.data.label);
  }
  const bam = view;
  const regions = expandRegions(o.regions(bam.contigs), bam.contigs);
  // The text samtools prints: @SQ lines from the binary reference list when the text has none.
  // With a @PG line samtools rebuilds the header, so the BAM output gets them too; without, a BAM
  // keeps its text as it was.
  const samText = samHeaderText(bam.headerText, bam.contigs);
  // A CRAM's contigs are as long as the reference says (./cram/cram-view.ts): samtools's rebuilt
  // header says so too.
  const header = o.pg ? withPg(format === 'cram' ? withSqLengths(samText, bam.contigs) : samText, o.pg) : o.format === 'sam' ? samText : bam.headerText;
  const w = writer(o.out);
  let records = 0;
  let unread = 0;

  if (o.format === 'sam') {
    if (o.header === 'only') {
      await w.write(Buffer.from(header, 'utf8'));
      return { records, unread };
    }
    const names = bam.contigs.map((c) => c.name);
    // A record that cannot be formatted names itself; the formatter adds the file's name.
    // A CRAM's threads decode slices and format their text; what this thread decodes it formats.
    const formatter = new OrderedFormatter(cramInput ? { ...o.formatting, threads: 0 } : o.formatting, names, refNameBytes(names), (text) => w.write(text), SAM_BATCH, o.data.label);
    // The header goes out with the first records, so an error decoding the first blocks (a CRAM
    // without its reference, a wrong reference) leaves the output empty rather than header-only.
    if (o.header === 'with') formatter.prefix(Buffer.from(header, 'utf8'));
    try {
      if (cramInput) {
        for await (const piece of cramInput.output(regions, o.contained, o.formatting.threads, 'sam', () => o.stats.cramSlicesOnWorkers++)) {
          if ('text' in piece) {
            await formatter.text(piece.text);
            records += piece.count;
          } else {
            await formatter.add(piece.records);
            records += piece.records.length;
          }
        }
      } else {
        for await (const batch of bam.records(regions, o.contained)) {
          await formatter.add(batch);
          records += batch.length;
        }
      }
      await formatter.end();
    } finally {
      await formatter.close();
    }
    return { records, unread };
  }

  // BAM: the header block, then the records' bytes unchanged, in BGZF blocks, then the EOF block.
  // From a BAM, input blocks that hold only wanted records are copied as they are (BAM output) or
  // their payload is written as it is (uncompressed BAM): see bgzf.ts, bamPiecesBetween.
  const blocks: Buffer[] = [];
  let blockBytes = 0;
  const bgzf = new BgzfWriter(
    (b) => {
      blocks.push(b);
      blockBytes += b.length;
    },
    o.format === 'ubam' ? 0 : 1,
  );
  const flush = async () => {
    if (blocks.length === 0) return;
    blockBytes = 0;
    await w.write(Buffer.concat(blocks.splice(0)));
  };
  bgzf.write(bamHeader(o.header === 'without' ? '' : header, bam.contigs));
  if (o.header !== 'only' && bamInput) {
    const copy = o.format === 'bam';
    for await (const batch of bamInput.bamPieces(regions, o.contained, !copy)) {
      for (const p of batch.pieces) {
        if ('bytes' in p) {
          bgzf.write(p.bytes);
        } else if (copy) {
          // What the writer holds comes first: it is the record stream up to this block.
          bgzf.flush();
          blocks.push(p.block);
          blockBytes += p.block.length;
        } else if (p.payload && p.payload.length <= MAX_PAYLOAD) {
          // Uncompressed BAM: the payload as one stored block, with the input's CRC32 (checked).
          bgzf.flush();
          const stored = storedBgzfBlock(p.payload, p.block.readUInt32LE(p.block.length - 8));
          blocks.push(stored);
          blockBytes += stored.length;
        } else if (p.payload) {
          bgzf.write(p.payload);
        } else {
          throw new Error('view: a block copied unread has no payload to write uncompressed');
        }
      }
      records += batch.records;
      unread += batch.unread;
      if (blockBytes >= BAM_BATCH) await flush();
    }
  } else if (o.header !== 'only') {
    const len = Buffer.alloc(4);
    const batches = async function* (): AsyncGenerator<Buffer[]> {
      if (!cramInput) return yield* bam.records(regions, o.contained);
      for await (const piece of cramInput.output(regions, o.contained, o.formatting.threads, 'bam', () => o.stats.cramSlicesOnWorkers++)) if ('records' in piece) yield piece.records;
    };
    for await (const batch of batches()) {
      for (const rec of batch) {
        len.writeInt32LE(rec.length);
        bgzf.write(len);
        bgzf.write(rec);
      }
      records += batch.length;
      if (blockBytes >= BAM_BATCH) await flush();
    }
  }
  bgzf.end();
  await flush();
  return { records, unread };
}

function bamHeader(text: string, contigs: { name: string; length: number }[]): Buffer {
  const parts: Buffer[] = [];
  const t = Buffer.from(text, 'utf8');
  const head = Buffer.alloc(8);
  head.write('BAM\x01', 0, 'latin1');
  head.writeInt32LE(t.length, 4);
  parts.push(head, t);
  const n = Buffer.alloc(4);
  n.writeInt32LE(contigs.length);
  parts.push(n);
  for (const c of contigs) {
    const name = Buffer.from(`${c.name}\0`, 'latin1');
    const l = Buffer.alloc(4);
    l.writeInt32LE(name.length);
    const len = Buffer.alloc(4);
    len.writeInt32LE(c.length);
    parts.push(l, name, len);
  }
  return Buffer.concat(parts);
}
