/**
 * What the BAM and CRAM `view` tests share: the view engine run in this process on a URL (fast
 * enough for hundreds of regions), and the regions they compare with samtools.
 */
import { Writable } from 'node:stream';
import { DEFAULT_CACHE, DEFAULT_READER, DEFAULT_TRANSPORT } from '../../src/config.js';
import { HttpSource, type ObjectSource } from '../../src/source/object-source.js';
import { Stats } from '../../src/stats.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import { parseRegion } from '../../src/view/region.js';
import { formatPlan, type FormatPlan } from '../../src/view/sam-format-pool.js';
import { runView, type DataFormat, type ReferenceInput, type ViewResult } from '../../src/view/view-session.js';
import type { SeededRandom } from './random.js';

export interface ViewTextOptions {
  contained?: boolean;
  header?: 'with' | 'without';
  /** Index candidates for the data's format; default: `URL.bai`, `URL.csi`, `URL.crai`. */
  index?: (source: (url: string) => ObjectSource, format: DataFormat) => ObjectSource[];
  /** URL of a FASTA (its .fai beside it), for CRAM. */
  referenceUrl?: string;
  /** Cache block size; default: the mount's. */
  blockSize?: number;
  /** The block cache's byte budget; default: the mount's. */
  cacheBytes?: number;
  /** How SAM is formatted; default: on the main thread only. */
  formatting?: FormatPlan;
  /** Told what the view counted (records read, blocks copied without inflating). */
  onResult?: (result: ViewResult) => void;
}

/** SAM text of `regions` of the file at `url`, as `slicefs view` writes it. */
export async function viewText(url: string, regions: string[], opts: ViewTextOptions = {}): Promise<string> {
  return (await viewOutput(url, regions, 'sam', opts)).toString('latin1');
}

/** The output of `regions` of the file at `url` in `format`, as `slicefs view` writes it. */
export async function viewOutput(url: string, regions: string[], format: 'sam' | 'bam' | 'ubam', opts: ViewTextOptions = {}): Promise<Buffer> {
  const stats = new Stats();
  const transport = new HttpTransport(DEFAULT_TRANSPORT, stats);
  const source = (u: string) => new HttpSource(transport, u);
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  const reference: ReferenceInput | undefined = opts.referenceUrl ? { fasta: source(opts.referenceUrl), fai: source(`${opts.referenceUrl}.fai`) } : undefined;
  try {
    const result = await runView({
      data: source(url),
      indexCandidates: (format) => (opts.index ? opts.index(source, format) : format === 'cram' ? [source(`${url}.crai`)] : [source(`${url}.bai`), source(`${url}.csi`)]),
      reference,
      regions: (c) => regions.map((r) => parseRegion(r, c)),
      contained: opts.contained ?? false,
      format,
      formatting: opts.formatting ?? formatPlan(0),
      header: opts.header ?? 'without',
      cache: { ...DEFAULT_CACHE, ...(opts.blockSize ? { blockSize: opts.blockSize } : {}), ...(opts.cacheBytes ? { budgetBytes: opts.cacheBytes } : {}) },
      reader: DEFAULT_READER,
      stats,
      out,
    });
    opts.onResult?.(result);
  } finally {
    await transport.close();
  }
  return Buffer.concat(chunks);
}

/** A contig name as a region names it: in braces when it has colons. */
export const regionName = (name: string) => (name.includes(':') ? `{${name}}` : name);

/** `*`, and for every contig: whole, first and last base, near and past its end; then `extra`. */
export function edgeRegions(contigs: readonly { name: string; length: number }[], extra: readonly string[]): string[] {
  const out = ['*'];
  for (const c of contigs) {
    const n = regionName(c.name);
    out.push(n, `${n}:1-1`, `${n}:${c.length}-${c.length}`, `${n}:${c.length - 200}`, `${n}:1-150`, `${n}:${c.length + 10}`, `${n}:${c.length - 5}-${c.length + 100}`);
  }
  return out.concat(extra);
}

/** `n` seeded regions of 1 b to 100 kb on random contigs. */
export function randomRegions(rnd: SeededRandom, contigs: readonly { name: string; length: number }[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = rnd.pick(contigs.filter((x) => x.length > 0));
    const beg = rnd.int(1, c.length);
    const len = rnd.pick([1, 10, 150, 1000, 20000, 100000]);
    out.push(`${regionName(c.name)}:${beg}-${Math.min(c.length, beg + len)}`);
  }
  return out;
}
