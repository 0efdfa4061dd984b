/**
 * What the format fuzzers (test/unit/fuzz-*.test.ts) share: small real files made by samtools from
 * the sample data, mutations of their bytes (bit flips, truncation, insertion, deletion, 32-bit
 * fields set to huge, negative or boundary values), the view engine run in this process on bytes
 * in memory, and the contract every case is held to.
 *
 * The contract: a parser given any bytes either answers, or throws a SlicefsError whose message
 * is one non-empty line (what the CLI prints as `slicefs: error: …`). Any other exception (a
 * TypeError or RangeError from a library, an allocation refused) would reach the user as a stack
 * trace or a meaningless line, and fails the case. A hang fails the test by its timeout; memory is
 * bounded by the files' size and checked after each property (peak RSS).
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { DEFAULT_CACHE, DEFAULT_READER } from '../../src/config.js';
import { SlicefsError, type ErrorCode } from '../../src/errors.js';
import type { ObjectSource } from '../../src/source/object-source.js';
import { Stats } from '../../src/stats.js';
import type { ObjectVersion } from '../../src/transport/version.js';
import { Cursor } from '../../src/view/cram/cram-check.js';
import { parseRegion } from '../../src/view/region.js';
import { runView, type ReferenceInput } from '../../src/view/view-session.js';
import { ensureSampleData, samtools, type SampleData } from './sample-data.js';

/** The seed of every property: a failure names its path, and re-running gives the same cases. */
export const FUZZ_SEED = 1515;
/** Runs per property, and the wall-clock budget after which a property stops early (not a failure). */
export const FUZZ_RUNS = 150;
export const FUZZ_TIME_MS = 4000;
export const fuzzOptions = { seed: FUZZ_SEED, numRuns: FUZZ_RUNS, interruptAfterTimeLimit: FUZZ_TIME_MS, endOnFailure: true, includeErrorInReport: true } as const;

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

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set32'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number };

/** Values a length or offset field lies with. */
const HOSTILE_INT32 = [-1, -4, 0, 1, 31, 32, 0x7fffffff, -0x80000000, 0xffff, 0x10000, 0x1000000];

/**
 * Mutations of a buffer of `size` bytes. `inPlace`: only those that keep every byte where it is
 * (flips and 32-bit stores), for bytes whose offsets an index points into.
 */
export function mutations(size: number, inPlace = false, maxCount = 4): fc.Arbitrary<Mutation[]> {
  const at = fc.integer({ min: 0, max: Math.max(0, size - 1) });
  const inPlaceOnes: fc.Arbitrary<Mutation>[] = [
    fc.record({ kind: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set32' as const), at, value: fc.oneof(fc.constantFrom(...HOSTILE_INT32), fc.integer({ min: -0x80000000, max: 0x7fffffff })) }),
  ];
  const shifting: fc.Arbitrary<Mutation>[] = [
    fc.record({ kind: fc.constant('truncate' as const), at }),
    fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ kind: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 64 }) }),
  ];
  return fc.array(fc.oneof(...inPlaceOnes, ...(inPlace ? [] : shifting)), { minLength: 1, maxLength: maxCount });
}

/** `buf` with the mutations applied, in order (a copy). */
export function mutate(buf: Buffer, muts: readonly Mutation[]): Buffer {
  let b = Buffer.from(buf);
  for (const m of muts) {
    const at = Math.min(m.at, Math.max(0, b.length - 1));
    switch (m.kind) {
      case 'flip':
        if (b.length > 0) b[at] ^= 1 << m.bit;
        break;
      case 'set32':
        if (b.length >= 4) b.writeInt32LE(m.value | 0, Math.min(at, b.length - 4));
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
    }
  }
  return b;
}

/** Fails unless `err` keeps the contract: a SlicefsError (of one of `codes`) with a one-line message. */
export function assertCleanError(err: unknown, codes: readonly ErrorCode[], what: string): void {
  if (!(err instanceof SlicefsError)) {
    const e = err as Error;
    assert.fail(`${what}: threw ${e?.constructor?.name ?? typeof err} instead of a SlicefsError: ${e?.message}\n${e?.stack ?? ''}`);
  }
  assert.ok(codes.includes(err.code), `${what}: code ${err.code} (${err.message})`);
  assert.ok(err.message.length > 0 && !err.message.includes('\n'), `${what}: the message must be one line: ${JSON.stringify(err.message)}`);
}

/** Runs `fn`; returns 'ok' or 'refused' (a clean error), and fails the case on anything else. */
export async function outcome(fn: () => unknown, codes: readonly ErrorCode[], what: string): Promise<'ok' | 'refused'> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    assertCleanError(err, codes, what);
    return 'refused';
  }
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
