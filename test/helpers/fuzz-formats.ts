/**
 * The format fuzzers' material (test/unit/fuzz-bam.test.ts, fuzz-cram.test.ts): small real files made
 * by samtools from the sample data, the view engine run in this process on bytes in memory, and a
 * CRAM's CRCs made right again after an in-place mutation. The mutations and the contract are
 * ./fuzz.ts's.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Writable } from 'node:stream';
import { DEFAULT_CACHE, DEFAULT_READER } from '../../src/config.js';
import type { ObjectSource } from '../../src/source/object-source.js';
import { Stats } from '../../src/stats.js';
import type { ObjectVersion } from '../../src/transport/version.js';
import { Cursor } from '../../src/view/cram/cram-check.js';
import { parseRegion } from '../../src/view/region.js';
import { formatPlan } from '../../src/view/sam-format-pool.js';
import { runView, type ReferenceInput } from '../../src/view/view-session.js';
import { ensureSampleData, samtools, type SampleData } from './sample-data.js';

/** An object in memory, as the view reads it. */
export class BytesSource implements ObjectSource {
  private static next = 0;
  readonly identity: string;
  readonly pinned: ObjectVersion;
  constructor(
    readonly data: Buffer,
    readonly label: string,
  ) {
    // Every instance its own identity: the index cache, if any, must never mix two cases.
    this.identity = `mem://${BytesSource.next++}/${label}`;
    this.pinned = { size: data.length, etag: '"fuzz"' };
  }
  async version(): Promise<ObjectVersion> {
    return this.pinned;
  }
  async read(start: number, end: number, onData: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    await onData(this.data.subarray(start, Math.min(end, this.data.length)));
  }
}

/** What the fuzzers read: a small BAM (+ BAI, CSI, a level-0 copy with its BAI), a CRAM + CRAI. */
export interface FuzzFiles {
  sample: SampleData;
  bam: Buffer;
  bai: Buffer;
  csi: Buffer;
  stored: Buffer;
  storedBai: Buffer;
  cram: Buffer;
  crai: Buffer;
  /** The same CRAM written at level 0 (blocks stored), for mutations that reach the decoder. */
  rawCram: Buffer;
  rawCrai: Buffer;
  /** The reference of the CRAM, and its .fai text. */
  reference: { fasta: string; fai: string };
  /** Regions with records in them. */
  regions: string[];
}

async function samtoolsOk(args: string[]): Promise<void> {
  const r = await samtools(args);
  if (r.code !== 0) throw new Error(`samtools ${args.join(' ')}: ${r.stderr.trim()}`);
}

/** Makes the fuzzers' files in `dir` from the sample data (a few hundred KB in all). */
export async function fuzzFiles(dir: string): Promise<FuzzFiles> {
  const sample = await ensureSampleData();
  const regions = ['chr1:1-20000', 'chr2:1-20000', 'chrM:1-1500'];
  const p = (n: string) => join(dir, n);
  await samtoolsOk(['view', '--no-PG', '-M', '-b', '-o', p('small.bam'), sample.bam, ...regions, '*']);
  await samtoolsOk(['index', p('small.bam')]);
  await fs.copyFile(p('small.bam'), p('csi.bam'));
  await samtoolsOk(['index', '-c', p('csi.bam')]);
  await samtoolsOk(['view', '--no-PG', '-u', '-o', p('stored.bam'), p('small.bam')]);
  await samtoolsOk(['index', p('stored.bam')]);
  // Slices of 100 records: a mutation's damage stays in a slice the region query decodes.
  await samtoolsOk(['view', '--no-PG', '-C', '-T', sample.ref, '--output-fmt-option', 'seqs_per_slice=100', '-o', p('small.cram'), p('small.bam')]);
  await samtoolsOk(['index', p('small.cram')]);
  await samtoolsOk(['view', '--no-PG', '-C', '-T', sample.ref, '--output-fmt-option', 'level=0', '--output-fmt-option', 'seqs_per_slice=100', '-o', p('raw.cram'), p('small.bam')]);
  await samtoolsOk(['index', p('raw.cram')]);
  const read = (n: string) => fs.readFile(p(n));
  return {
    sample,
    bam: await read('small.bam'),
    bai: await read('small.bam.bai'),
    csi: await read('csi.bam.csi'),
    stored: await read('stored.bam'),
    storedBai: await read('stored.bam.bai'),
    cram: await read('small.cram'),
    crai: await read('small.cram.crai'),
    rawCram: await read('raw.cram'),
    rawCrai: await read('raw.cram.crai'),
    reference: { fasta: sample.ref, fai: await fs.readFile(sample.fai, 'utf8') },
    regions: [...regions, 'chr1:5000-6000', '*'],
  };
}

/** `slicefs view` of `regions` in this process, on bytes in memory; resolves with the SAM text. */
export async function viewBytes(o: { data: Buffer; index: Buffer; regions: string[]; reference?: { fasta: string; fai: string }; label?: string }): Promise<string> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  const { LocalSource } = await import('../../src/source/local-source.js');
  const reference: ReferenceInput | undefined = o.reference ? { fasta: new LocalSource(o.reference.fasta), fai: { text: o.reference.fai } } : undefined;
  await runView({
    data: new BytesSource(o.data, o.label ?? 'fuzz.bam'),
    indexCandidates: () => [new BytesSource(o.index, `${o.label ?? 'fuzz.bam'}.index`)],
    reference,
    regions: (contigs) => o.regions.map((r) => parseRegion(r, contigs)),
    contained: false,
    format: 'sam',
    formatting: formatPlan(0),
    header: 'with',
    cache: DEFAULT_CACHE,
    reader: DEFAULT_READER,
    stats: new Stats(),
    out,
  });
  return Buffer.concat(chunks).toString('latin1');
}

/** Peak resident memory of this process so far, in MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * A CRAM 3 with every container header's and block's CRC32 recomputed (after its bytes were
 * mutated in place), so the mutation reaches the decoder instead of stopping at a CRC check. Walks
 * the containers from the file definition on and stops quietly where the structure no longer
 * holds (a mutated length).
 */
export function fixCramCrcs(file: Buffer): Buffer {
  const b = Buffer.from(file);
  let pos = 26;
  while (pos + 4 <= b.length) {
    const length = b.readInt32LE(pos);
    const c = new Cursor(b, pos + 4);
    const ok = [c.itf8(), c.itf8(), c.itf8(), c.itf8()].every((v) => v !== undefined) && c.skipLtf8() && c.skipLtf8();
    const blocks = c.itf8();
    const nLandmarks = c.itf8();
    if (!ok || blocks === undefined || nLandmarks === undefined || length < 0 || nLandmarks > 10_000) return b;
    for (let i = 0; i < nLandmarks; i++) if (c.itf8() === undefined) return b;
    if (c.pos + 4 > b.length) return b;
    b.writeUInt32LE(crc32(b.subarray(pos, c.pos)) >>> 0, c.pos);
    const dataStart = c.pos + 4;
    let p = dataStart;
    for (let i = 0; i < blocks && p < b.length; i++) {
      const h = new Cursor(b, p + 2);
      const sizes = [h.itf8(), h.itf8(), h.itf8()];
      const compressed = sizes[1];
      if (sizes.includes(undefined) || compressed === undefined || compressed < 0 || h.pos + compressed + 4 > b.length) return b;
      b.writeUInt32LE(crc32(b.subarray(p, h.pos + compressed)) >>> 0, h.pos + compressed);
      p = h.pos + compressed + 4;
    }
    pos = dataStart + length;
  }
  return b;
}
