/**
 * Fuzzing the CRAM side of `view` (issue 15): the CRAI (parsed by slicefs), and CRAM containers,
 * blocks and slices (parsed by @gmod/cram and decoded by src/view/cram/), reached through slicefs's
 * view, starting from a real CRAM made by samtools (slices of 100 records) and mutating it. The
 * contract is test/helpers/fuzz.ts's: SAM text or one clean SlicefsError line, nothing else.
 */
import assert from 'node:assert/strict';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { parseCrai } from '../../src/view/cram/cram-view.js';
import { cleanup, tempDir } from '../helpers/daemon.js';
import { fuzzOptions, mutate, mutations, outcome } from '../helpers/fuzz.js';
import { fixCramCrcs, fuzzFiles, peakRssMiB, viewBytes, type FuzzFiles } from '../helpers/fuzz-formats.js';
import { samtools } from '../helpers/sample-data.js';

const DATA_ERRORS = ['BAD_RESPONSE', 'USAGE'] as const;
const MAX_PEAK_MIB = 600;

let work: string;
let files: FuzzFiles;

before(async () => {
  work = await tempDir('slicefs-fuzz-cram-');
  files = await fuzzFiles(work);
});
after(() => cleanup(work));

const regionSets = () => fc.subarray(files.regions, { minLength: 1, maxLength: 3 });
const view = (data: Buffer, index: Buffer, regions: string[]) => viewBytes({ data, index, regions, reference: files.reference, label: 'fuzz.cram' });

test('the unmutated CRAM views as samtools views it (the fuzzers start from good input)', async () => {
  const got = await view(files.cram, files.crai, ['chr1:1-20000']);
  const want = await samtools(['view', '-h', '--no-PG', '-T', files.reference.fasta, `${work}/small.cram`, 'chr1:1-20000']);
  assert.equal(got, want.stdout.toString('latin1'));
});

test('CRAI (text mutated, or its gzip bytes): parsed, or refused cleanly', { timeout: 120_000 }, async () => {
  const text = gunzipSync(files.crai);
  await fc.assert(
    fc.asyncProperty(fc.boolean(), mutations(Math.max(text.length, files.crai.length), false, 6), async (inside, muts) => {
      const bytes = inside ? gzipSync(mutate(text, muts)) : mutate(files.crai, muts);
      await outcome(() => parseCrai(bytes, 'fuzz.cram.crai'), DATA_ERRORS, 'parseCrai');
    }),
    { ...fuzzOptions, numRuns: 1000 },
  );
});

test('CRAI (mutated): view gives SAM or one clean error', { timeout: 120_000 }, async () => {
  const text = gunzipSync(files.crai);
  await fc.assert(
    fc.asyncProperty(mutations(text.length, false, 4), regionSets(), async (muts, regions) => {
      await outcome(() => view(files.cram, gzipSync(mutate(text, muts)), regions), DATA_ERRORS, 'view with a mutated CRAI');
    }),
    fuzzOptions,
  );
});

test('CRAM containers and slices (mutated): view gives SAM or one clean error', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(mutations(files.cram.length), regionSets(), async (muts, regions) => {
      await outcome(() => view(mutate(files.cram, muts), files.crai, regions), DATA_ERRORS, 'view of a mutated CRAM');
    }),
    fuzzOptions,
  );
});

test('CRAM (only bit flips and 32-bit fields, so the CRAI still points at the slices): SAM or one clean error', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(mutations(files.cram.length, true, 3), regionSets(), async (muts, regions) => {
      await outcome(() => view(mutate(files.cram, muts), files.crai, regions), DATA_ERRORS, 'view of a CRAM with flipped bits');
    }),
    fuzzOptions,
  );
});

test('CRAM slices (bytes mutated in place, CRCs recomputed, so the decoder sees them): SAM or one clean error', { timeout: 120_000 }, async () => {
  assert.equal(await view(fixCramCrcs(files.rawCram), files.rawCrai, ['chr2:1-20000']), await view(files.cram, files.crai, ['chr2:1-20000']), 'the CRC fixer keeps a good file good');
  await fc.assert(
    fc.asyncProperty(mutations(files.rawCram.length, true, 3), regionSets(), async (muts, regions) => {
      await outcome(() => view(fixCramCrcs(mutate(files.rawCram, muts)), files.rawCrai, regions), DATA_ERRORS, 'view of a CRAM with mutated blocks');
    }),
    { ...fuzzOptions, numRuns: 300 },
  );
});

test('memory stayed bounded through the CRAM fuzzing', () => {
  assert.ok(peakRssMiB() < MAX_PEAK_MIB, `peak RSS ${peakRssMiB().toFixed(0)} MiB`);
});
