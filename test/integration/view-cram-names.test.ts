/**
 * Generated read names of a CRAM written with `lossy_names` (names left out where the template is
 * whole in its slice): `slicefs view` names those records as `samtools view` (1.16) does, after the
 * file's name and the record's number in the file (htslib's cram_to_bam: `x.cram:N`, a mate
 * taking the number of the mate before it). samtools is the oracle, byte for byte: the whole file
 * and regions in the middle (the number is the file's, not the region's), a local file and over
 * HTTP from the fixture server on 127.0.0.1, a manifest entry (named after its path, the name it
 * has in the mount). One difference is deliberate: htslib keeps a URL's query string in the name
 * (`x.cram?sig=…:N`); slicefs names after the path alone, so no signature is ever printed.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

let server: FixtureServer;
let sample: SampleData;
let work: string;
/** The sample BAM as a lossy_names CRAM of many slices and containers (record counters far from 0). */
let lossy: string;

/** Regions in the middle of the file, and the unplaced reads at its end. */
const REGIONS = ['chr1:200000-201000', 'chr2:100000-100500', 'chrM:5000-5200', '*'];

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  work = await tempDir('slicefs-view-cram-names-');
  lossy = join(work, 'lossy.cram');
  const w = await samtools(['view', '-C', '-T', sample.ref, '--output-fmt-option', 'lossy_names=1', '--output-fmt-option', 'seqs_per_slice=1000', '-o', lossy, sample.bam]);
  assert.equal(w.code, 0, w.stderr);
  assert.equal((await samtools(['index', lossy])).code, 0);
  server.addFile('/n/lossy.cram', await readFile(lossy));
  server.addFile('/n/lossy.cram.crai', await readFile(`${lossy}.crai`));
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

async function samtoolsView(file: string, regions: string[]): Promise<string> {
  // In the work directory: htslib saves a remote file's index in the current directory.
  const r = await samtools(['view', '-T', sample.ref, ...(regions.length > 1 ? ['-M'] : []), file, ...regions], { cwd: work });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString('latin1');
}

async function slicefsView(input: string[], regions: string[]): Promise<string> {
  const r = await run(process.execPath, [BIN, 'view', '--no-index-cache', '--no-header', ...input, '--reference-file', sample.ref, ...regions.flatMap((q) => ['-q', q])]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString('latin1');
}

test('lossy_names CRAM: generated names equal samtools, whole file and regions, local and over HTTP', async () => {
  const whole = await samtoolsView(lossy, []);
  const generated = whole.match(/^lossy\.cram:\d+\t/gm) ?? [];
  // Most names are generated, and some are kept (templates split across slices), so both paths run.
  assert.ok(generated.length > 10_000, `${generated.length} generated names`);
  assert.ok(/^r\d+\t/m.test(whole), 'some stored names');
  assert.equal(await slicefsView(['--input-file', lossy], []), whole, 'local, whole file');
  const url = server.url('/n/lossy.cram');
  assert.equal(await slicefsView(['--url', url], []), await samtoolsView(url, []), 'HTTP, whole file');
  for (const r of REGIONS) {
    const want = await samtoolsView(lossy, [r]);
    assert.ok(/^lossy\.cram:\d+\t/m.test(want), `${r} has generated names`);
    assert.equal(await slicefsView(['--input-file', lossy], [r]), want, `local ${r}`);
    assert.equal(await slicefsView(['--url', url], [r]), await samtoolsView(url, [r]), `HTTP ${r}`);
  }
  assert.equal(await slicefsView(['--url', url], REGIONS), await samtoolsView(url, REGIONS), `HTTP ${REGIONS.join(' ')}`);
});

test('lossy_names CRAM: a URL is named by its path without the query; a manifest entry by its path', async () => {
  const region = 'chr1:200000-201000';
  const url = server.url('/n/lossy.cram');
  const withQuery = await slicefsView(['--url', `${url}?X-Amz-Signature=0123abcd&token=secret`], [region]);
  assert.equal(withQuery, await samtoolsView(url, [region]));
  assert.ok(!/secret|0123abcd/.test(withQuery));

  // Mounted from this manifest, the file is `sub/renamed.cram`: samtools would read it under that name.
  const manifest = join(work, 'manifest.tsv');
  await writeFile(manifest, `url\tpath\n${url}?token=secret\tsub/renamed.cram\n`);
  await mkdir(join(work, 'sub'));
  const renamed = join(work, 'sub', 'renamed.cram');
  await copyFile(lossy, renamed);
  await copyFile(`${lossy}.crai`, `${renamed}.crai`);
  const want = await samtoolsView(renamed, [region]);
  assert.ok(/^renamed\.cram:\d+\t/m.test(want));
  assert.equal(await slicefsView(['--manifest', manifest, '--path', 'sub/renamed.cram'], [region]), want);
});
