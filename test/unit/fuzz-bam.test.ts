/**
 * Fuzzing the BAM side of `view` (issue 15): BGZF blocks, BAM records and their SAM text, the BAI
 * and CSI indexes (parsed by @gmod/bam, reached through slicefs's view), starting from real files
 * made by samtools and mutating them (test/helpers/fuzz.ts has the mutations and the contract:
 * correct output or one clean SlicefsError line, never another exception, a hang or an allocation
 * beyond the input). Seeded and bounded in runs and time per property.
 */
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { BgzfWriter, inflateBlock, recordsBetween } from '../../src/view/bgzf.js';
import { ByteSink, formatSamInto, refNameBytes } from '../../src/view/sam-format.js';
import { cleanup, tempDir } from '../helpers/daemon.js';
import { fuzzOptions, mutate, mutations, outcome } from '../helpers/fuzz.js';
import { fuzzFiles, peakRssMiB, viewBytes, type FuzzFiles } from '../helpers/fuzz-formats.js';
import { withInflated } from '../helpers/hostile-bam.js';
import { samtools } from '../helpers/sample-data.js';

const DATA_ERRORS = ['BAD_RESPONSE', 'USAGE'] as const;
/** Peak memory of this test process: the files are a few hundred KB, so no case may need much. */
const MAX_PEAK_MIB = 600;

let work: string;
let files: FuzzFiles;

before(async () => {
  work = await tempDir('slicefs-fuzz-bam-');
  files = await fuzzFiles(work);
});
after(() => cleanup(work));

const regionSets = () => fc.subarray(files.regions, { minLength: 1, maxLength: 3 });

/** The BGZF blocks of a file: [position, bytes] of each. */
function bgzfBlocks(file: Buffer): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  for (let p = 0; p + 18 <= file.length; ) {
    const size = file.readUInt16LE(p + 16) + 1;
    out.push([p, file.subarray(p, p + size)]);
    p += size;
  }
  return out;
}

/** Whole records (without block_size) of a BAM's inflated stream, and its reference names. */
function recordsOfBam(file: Buffer): { records: Buffer[]; refs: Buffer[] } {
  const stream = gunzipSync(file);
  let p = 8 + stream.readInt32LE(4);
  const names: string[] = [];
  const nRef = stream.readInt32LE(p);
  p += 4;
  for (let i = 0; i < nRef; i++) {
    const l = stream.readInt32LE(p);
    names.push(stream.toString('latin1', p + 4, p + 3 + l));
    p += 8 + l;
  }
  const records: Buffer[] = [];
  while (p + 4 <= stream.length) {
    const l = stream.readInt32LE(p);
    records.push(stream.subarray(p + 4, p + 4 + l));
    p += 4 + l;
  }
  return { records, refs: refNameBytes(names) };
}

test('the unmutated files view as samtools views them (the fuzzers start from good input)', async () => {
  for (const index of [files.bai, files.csi]) {
    const got = await viewBytes({ data: files.bam, index, regions: ['chr1:1-20000'] });
    const want = await samtools(['view', '-h', '--no-PG', `${work}/small.bam`, 'chr1:1-20000']);
    assert.equal(got, want.stdout.toString('latin1'));
  }
  assert.equal(await viewBytes({ data: files.stored, index: files.storedBai, regions: ['chr2:1-20000'] }), await viewBytes({ data: files.bam, index: files.bai, regions: ['chr2:1-20000'] }));
});

test('BGZF blocks: a mutated block inflates to at most 64 KiB or is refused cleanly', { timeout: 120_000 }, async () => {
  const blocks = bgzfBlocks(files.bam).slice(0, 8);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: blocks.length - 1 }), mutations(65536), async (i, muts) => {
      const [pos, block] = blocks[i];
      let size = -1;
      const r = await outcome(async () => (size = (await inflateBlock(mutate(block, muts), pos, 'fuzz.bam')).length), DATA_ERRORS, 'inflateBlock');
      if (r === 'ok') assert.ok(size <= 65536, `inflated ${size}`);
    }),
    { ...fuzzOptions, numRuns: 500 },
  );
});

test('BGZF framing and records: a mutated stream gives records or a clean error', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(mutations(files.bam.length), async (muts) => {
      const bam = mutate(files.bam, muts);
      const readAt = async (pos: number, len: number) => bam.subarray(pos, Math.min(bam.length, pos + len));
      await outcome(
        async () => {
          for await (const batch of recordsBetween(readAt, bam.length, { blockPosition: 0, dataPosition: 0 }, undefined, 'fuzz.bam')) {
            for (const rec of batch) assert.ok(rec.length >= 32 && rec.length <= bam.length * 1100, `record of ${rec.length} bytes`);
          }
        },
        DATA_ERRORS,
        'recordsBetween',
      );
    }),
    fuzzOptions,
  );
});

test('BAM (compressed bytes mutated): view gives SAM or one clean error', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(mutations(files.bam.length), regionSets(), async (muts, regions) => {
      await outcome(() => viewBytes({ data: mutate(files.bam, muts), index: files.bai, regions }), DATA_ERRORS, 'view of a mutated BAM');
    }),
    fuzzOptions,
  );
});

test('BAM (header and records mutated inside valid BGZF): view gives SAM or one clean error', { timeout: 120_000 }, async () => {
  const size = gunzipSync(files.stored).length;
  await fc.assert(
    fc.asyncProperty(mutations(size, true, 6), regionSets(), async (muts, regions) => {
      const data = withInflated(files.stored, (stream) => mutate(stream, muts));
      await outcome(() => viewBytes({ data, index: files.storedBai, regions }), DATA_ERRORS, 'view of a BAM with mutated records');
    }),
    fuzzOptions,
  );
});

test('BAI (mutated): view gives SAM or one clean error', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(mutations(files.bai.length), regionSets(), async (muts, regions) => {
      await outcome(() => viewBytes({ data: files.bam, index: mutate(files.bai, muts), regions }), DATA_ERRORS, 'view with a mutated BAI');
    }),
    fuzzOptions,
  );
});

test('CSI (mutated, compressed or inflated): view gives SAM or one clean error', { timeout: 120_000 }, async () => {
  const inflated = gunzipSync(files.csi);
  const bgzf = (data: Buffer) => {
    const blocks: Buffer[] = [];
    const w = new BgzfWriter((b) => blocks.push(b));
    w.write(data);
    w.end();
    return Buffer.concat(blocks);
  };
  await fc.assert(
    fc.asyncProperty(fc.boolean(), mutations(Math.max(files.csi.length, inflated.length)), regionSets(), async (inside, muts, regions) => {
      const index = inside ? bgzf(mutate(inflated, muts)) : mutate(files.csi, muts);
      await outcome(() => viewBytes({ data: files.bam, index, regions }), DATA_ERRORS, 'view with a mutated CSI');
    }),
    fuzzOptions,
  );
});

test('SAM formatting: a mutated or random record is a SAM line or one clean error', { timeout: 120_000 }, async () => {
  const { records, refs } = recordsOfBam(files.bam);
  const sink = new ByteSink();
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.tuple(fc.integer({ min: 0, max: records.length - 1 }), mutations(400)).map(([i, muts]) => mutate(records[i], muts)),
        fc.uint8Array({ minLength: 0, maxLength: 300 }).map((a) => Buffer.from(a)),
      ),
      async (rec) => {
        sink.len = 0;
        const r = await outcome(() => formatSamInto(rec, refs, sink), DATA_ERRORS, 'formatSamInto');
        if (r === 'ok') assert.equal(sink.buf[sink.len - 1], 10, 'a line ends with a newline');
      },
    ),
    { ...fuzzOptions, numRuns: 2000 },
  );
});

test('memory stayed bounded through the BAM fuzzing', () => {
  assert.ok(peakRssMiB() < MAX_PEAK_MIB, `peak RSS ${peakRssMiB().toFixed(0)} MiB`);
});
