/**
 * CRAM decoding corners where `slicefs view` must print what `samtools view` (1.16) prints, on
 * CRAMs samtools writes from a small SAM made here (reads over chr1 of the sample reference) and
 * from the sample BAM, served by the fixture server on 127.0.0.1:
 *   - preserved qualities (the QS run) win over the quality a `B` read feature carries;
 *   - htslib's internal `cF` tag (written with embed_ref=2) is never printed;
 *   - MD/NM are not generated where htslib generates none: the `cF` flags of an embed_ref=2 CRAM
 *     (its consensus reference is not the truth) and a no_ref CRAM, with and without -T.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

let server: FixtureServer;
let sample: SampleData;
let work: string;
/** A coordinate-sorted BAM of the reads `smallSam` makes. */
let smallBam: string;

/** Qualities 0..39 in a pattern: each read's run is easy to find in an uncompressed block. */
const QUALS = Buffer.from(Array.from({ length: 50 }, (_, i) => (i * 7) % 40));
const QUAL_TEXT = Buffer.from(QUALS.map((q) => q + 33)).toString('latin1');
/** 0-based read positions of the IUPAC bases (R, Y) that htslib stores as `B` features. */
const B_POSITIONS = [10, 40];

async function refBases(region: string): Promise<string> {
  const r = await samtools(['faidx', sample.ref, region]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString('latin1').split('\n').slice(1).join('').toUpperCase();
}

/**
 * Reads without MD/NM: one with IUPAC bases (B features), an N and a mismatch; a mapped read
 * whose mate is unmapped but placed at its position; an unmapped read placed alone; a read
 * without qualities.
 */
async function smallSam(): Promise<string> {
  const header = (await samtools(['view', '-H', sample.bam])).stdout
    .toString('latin1')
    .split('\n')
    .filter((l) => l.startsWith('@HD') || l.startsWith('@SQ'));
  const at1001 = await refBases('chr1:1001-1050');
  const iupac = [...at1001];
  iupac[B_POSITIONS[0]] = 'R';
  iupac[20] = 'N';
  iupac[30] = iupac[30] === 'A' ? 'C' : 'A';
  iupac[B_POSITIONS[1]] = 'Y';
  const at4001 = [...(await refBases('chr1:4001-4050'))];
  at4001[5] = 'M';
  const other = 'ACGT'.repeat(12) + 'AC';
  const line = (f: (string | number)[]) => f.join('\t');
  return [
    ...header,
    line(['iupac', 0, 'chr1', 1001, 60, '50M', '*', 0, 0, iupac.join(''), QUAL_TEXT]),
    line(['pair', 97, 'chr1', 2001, 60, '50M', '=', 2001, 0, await refBases('chr1:2001-2050'), QUAL_TEXT]),
    line(['pair', 133, 'chr1', 2001, 0, '*', '=', 2001, 0, other, QUAL_TEXT]),
    line(['lone', 4, 'chr1', 3001, 0, '*', '*', 0, 0, other, QUAL_TEXT]),
    line(['noqual', 0, 'chr1', 4001, 60, '50M', '*', 0, 0, at4001.join(''), '*']),
    '',
  ].join('\n');
}

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  work = await tempDir('slicefs-view-cram-conf-');
  const sam = join(work, 'small.sam');
  await writeFile(sam, await smallSam(), 'latin1');
  smallBam = join(work, 'small.bam');
  const s = await samtools(['sort', '-o', smallBam, sam]);
  assert.equal(s.code, 0, s.stderr);
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** Writes `input` as CRAM with samtools (`-T ref` unless `withRef` is false) and the output options given. */
async function writeCram(name: string, input: string, options: string[], withRef = true): Promise<string> {
  const file = join(work, `${name}.cram`);
  const opts = options.flatMap((o) => ['--output-fmt-option', o]);
  const w = await samtools(['view', '-C', ...(withRef ? ['-T', sample.ref] : []), ...opts, '-o', file, input]);
  assert.equal(w.code, 0, w.stderr);
  return file;
}

const served = new Set<string>();

/** Indexes the CRAM and serves it (once), and checks `slicefs view` against `samtools view` over `regions`. */
async function assertSameAsSamtools(file: string, regions: string[], withRef: boolean): Promise<string> {
  const path = `/c/${file.slice(work.length + 1)}`;
  if (!served.has(path)) {
    const ix = await samtools(['index', file]);
    assert.equal(ix.code, 0, ix.stderr);
    server.addFile(path, await readFile(file));
    server.addFile(`${path}.crai`, await readFile(`${file}.crai`));
    served.add(path);
  }
  const ref = withRef ? ['-T', sample.ref] : [];
  const want = await samtools(['view', ...ref, '-M', file, ...regions]);
  assert.equal(want.code, 0, want.stderr);
  const got = await run(process.execPath, [BIN, 'view', '--no-index-cache', '--no-header', '--url', server.url(path), ...ref, ...regions.flatMap((r) => ['-q', r])]);
  assert.equal(got.code, 0, got.stderr);
  const text = want.stdout.toString('latin1');
  assert.ok(text.length > 0, `${file}: samtools printed records`);
  assert.equal(got.stdout.toString('latin1'), text, `${file} ${regions.join(' ')}`);
  return text;
}

test('CRAM: preserved qualities win over the quality of a B read feature, as in samtools', async () => {
  // CRAM 2.1 (no block CRCs) with uncompressed blocks: the QS block can be edited in place.
  const file = await writeCram('b-feature', smallBam, ['version=2.1', 'level=0']);
  const bytes = await readFile(file);
  // htslib appends a B feature's quality to the QS block, then the read's preserved run.
  const runAt = bytes.indexOf(QUALS);
  assert.ok(runAt > 0, 'the preserved qualities are in an uncompressed block');
  const featureQuals = bytes.subarray(runAt - B_POSITIONS.length, runAt);
  assert.deepEqual([...featureQuals], B_POSITIONS.map((p) => QUALS[p]), 'the B features carry the qualities before the run');
  // Other qualities in the features than in the run: only the run's must be printed.
  featureQuals.fill(5);
  const edited = join(work, 'b-feature-edited.cram');
  await writeFile(edited, bytes);
  const text = await assertSameAsSamtools(edited, ['chr1'], true);
  assert.match(text, new RegExp(`^iupac\\t.*\\t${QUAL_TEXT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\t`, 'm'));
});

test('CRAM: htslib\'s internal cF tag is not printed (embed_ref=2, unmapped reads placed at their mate)', async () => {
  const file = await writeCram('embed2', smallBam, ['embed_ref=2'], false);
  const text = await assertSameAsSamtools(file, ['chr1', '*'], false);
  assert.match(text, /^pair\t133\tchr1\t2001\t/m, 'an unmapped read placed at its mate');
  assert.match(text, /^lone\t4\tchr1\t3001\t/m, 'an unmapped read placed alone');
  await assertSameAsSamtools(file, ['chr1'], true);
});

test('CRAM: MD and NM are not generated where samtools generates none (embed_ref=2, no_ref with and without -T)', async () => {
  // The sample without MD/NM, written against a consensus reference: htslib flags its reads not
  // to have MD/NM generated (the consensus has Ns where no read covers it).
  const stripped = join(work, 'stripped.bam');
  const s = await samtools(['view', '-b', '-x', 'MD', '-x', 'NM', '-o', stripped, sample.bam]);
  assert.equal(s.code, 0, s.stderr);
  const embed2 = await writeCram('sample-embed2', stripped, ['embed_ref=2'], false);
  const text = await assertSameAsSamtools(embed2, ['chr1:1-200000', 'chrM', '*'], false);
  assert.doesNotMatch(text, /\t(MD|NM):/, 'samtools prints no MD/NM');
  // A no_ref CRAM: htslib loads no reference for it, -T or not.
  const noRef = await writeCram('small-noref', smallBam, ['no_ref=1']);
  for (const withRef of [false, true]) {
    assert.doesNotMatch(await assertSameAsSamtools(noRef, ['chr1', '*'], withRef), /\t(MD|NM):/);
  }
  const small2 = await writeCram('small-embed2', smallBam, ['embed_ref=2'], false);
  assert.doesNotMatch(await assertSameAsSamtools(small2, ['chr1'], false), /\t(MD|NM):/);
});
