/**
 * `slicefs view` of CRAM against `samtools view -T ref.fa` on the same files, served by the fixture
 * server on 127.0.0.1: record text byte for byte (CIGAR, sequence, MD/NM regenerated from the
 * reference, mates' TLEN) for 200 seeded random regions and the edge regions, several regions,
 * --contained, the header, BAM output, CRAMs written with other encoder options (many slices,
 * multi-reference slices, CRAM 2.1 and 3.1, embedded reference, no reference at all), a reference
 * over HTTP of which only the needed slices are fetched, a local reference without its .fai, and
 * the errors of a missing or wrong reference.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom } from '../helpers/random.js';
import { ensureSampleData, samtools, samtoolsContigs, type SampleData } from '../helpers/sample-data.js';
import { edgeRegions, randomRegions, regionName, viewText as viewTextOf, type ViewTextOptions } from '../helpers/view-text.js';

let server: FixtureServer;
let sample: SampleData;
let work: string;
let contigs: { name: string; length: number }[];

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  for (const f of [sample.cram, sample.crai, sample.ref, sample.fai]) server.addFile(`/d/${basename(f)}`, await readFile(f));
  work = await tempDir('slicefs-view-cram-');
  contigs = await samtoolsContigs(sample.cram);
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** The view engine on a CRAM URL with the served reference (`referenceUrl: undefined`: none), in view's 64 KiB blocks. */
const viewText = (url: string, regions: string[], opts: ViewTextOptions = {}) =>
  viewTextOf(url, regions, { blockSize: 64 * 1024, referenceUrl: server.url('/d/ref.fa'), ...opts });

async function samtoolsView(cram: string, args: string[], ref: string | null = sample.ref): Promise<string> {
  const r = await samtools(['view', ...(ref ? ['-T', ref] : []), cram, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString('latin1');
}

test('CRAM: 200 random regions and the edge regions equal samtools view -T, byte for byte', async () => {
  const regions = [...edgeRegions(contigs, sample.regions), ...randomRegions(new SeededRandom(4202), contigs, 200)];
  const url = server.url(`/d/${basename(sample.cram)}`);
  let nonEmpty = 0;
  for (const r of regions) {
    const want = await samtoolsView(sample.cram, [r]);
    if (want.length > 0) nonEmpty++;
    assert.equal(await viewText(url, [r]), want, r);
  }
  assert.ok(nonEmpty > 150, `most regions have records (${nonEmpty})`);
});

test('CRAM: several regions at once (samtools view -M) and --contained', async () => {
  const url = server.url(`/d/${basename(sample.cram)}`);
  // samtools 1.16's -M does not parse `{name}` regions (it warns and skips them): leave them out.
  const plain = sample.regions.filter((r) => !r.startsWith('{'));
  for (const set of [['chr1:1000-50000', 'chr1:40000-90000', 'chr2', '*'], ['chr2:100-200', 'chr1:300000-300500', 'chr1:300400-301000'], plain]) {
    assert.equal(await viewText(url, set), await samtoolsView(sample.cram, ['-M', ...set]), set.join(' '));
  }
  const region = 'chr1:100000-140000';
  const all = (await samtoolsView(sample.cram, [region])).split('\n').filter(Boolean);
  const inside = all.filter((line) => {
    const f = line.split('\t');
    const pos = Number(f[3]);
    let rlen = 0;
    for (const m of f[5].matchAll(/(\d+)([MIDNSHP=X])/g)) if ('MDN=X'.includes(m[2])) rlen += Number(m[1]);
    return pos >= 100000 && pos + Math.max(1, rlen) - 1 <= 140000;
  });
  assert.ok(inside.length > 10 && inside.length < all.length);
  assert.equal(await viewText(url, [region], { contained: true }), inside.map((l) => l + '\n').join(''));
});

test('CRAM through the CLI: header as samtools -h --no-PG, BAM output, a local reference whose .fai is made', async () => {
  const url = server.url(`/d/${basename(sample.cram)}`);
  const ref = server.url('/d/ref.fa');
  const noPg = await run(process.execPath, [BIN, 'view', '--no-index-cache', '--url', url, '--reference-url', ref, '-q', 'chr2:1-50000', '--no-PG']);
  assert.equal(noPg.code, 0, noPg.stderr);
  assert.equal(noPg.stdout.toString('latin1'), await samtoolsView(sample.cram, ['-h', '--no-PG', 'chr2:1-50000']));

  const bamPath = join(work, 'from-cram.bam');
  const b = await run(process.execPath, [BIN, 'view', '--no-index-cache', '--url', url, '--reference-url', ref, '-q', 'chr1:100000-300000', '-q', '*', '--output-format', 'bam', '-o', bamPath]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal((await samtools(['quickcheck', '-v', bamPath])).code, 0);
  assert.equal((await samtools(['view', bamPath])).stdout.toString('latin1'), await samtoolsView(sample.cram, ['-M', 'chr1:100000-300000', '*']));

  // A reference without its .fai: slicefs indexes it (as samtools faidx would) and says so once.
  const localRef = join(work, 'ref-copy.fa');
  await copyFile(sample.ref, localRef);
  const local = await run(process.execPath, [BIN, 'view', '--no-index-cache', '--input-file', sample.cram, '--reference-file', localRef, '-q', 'chrM', '--no-header']);
  assert.equal(local.code, 0, local.stderr);
  assert.equal(local.stdout.toString('latin1'), await samtoolsView(sample.cram, ['chrM']));
  assert.equal(local.stderr.trim().split('\n').length, 1, local.stderr);
  assert.equal(await readFile(`${localRef}.fai`, 'latin1'), await readFile(sample.fai, 'latin1'));
});

test('CRAM: only the index, the overlapping slices and the reference slices they need are fetched', async () => {
  // Small slices (as large files have: a slice holds 10 000 reads, a small part of a real file).
  const file = join(work, 'small-slices.cram');
  assert.equal((await samtools(['view', '-C', '-T', sample.ref, '--output-fmt-option', 'seqs_per_slice=500', '-o', file, sample.bam])).code, 0);
  assert.equal((await samtools(['index', file])).code, 0);
  server.addFile('/s/small-slices.cram', await readFile(file));
  server.addFile('/s/small-slices.cram.crai', await readFile(`${file}.crai`));
  server.resetLog();
  const region = 'chr1:200000-201000';
  assert.equal(await viewText(server.url('/s/small-slices.cram'), [region]), await samtoolsView(file, [region]));
  const bytes = (suffix: string) => server.requests.filter((r) => r.path.endsWith(suffix) && r.method === 'GET').reduce((n, r) => n + r.bytesSent, 0);
  const cramSize = (await readFile(file)).length;
  const refSize = (await readFile(sample.ref)).length;
  assert.ok(bytes('.cram') < cramSize / 4, `fetched ${bytes('.cram')} of ${cramSize} CRAM bytes`);
  assert.ok(bytes('/ref.fa') > 0 && bytes('/ref.fa') < refSize / 4, `fetched ${bytes('/ref.fa')} of ${refSize} reference bytes`);
  assert.ok(server.requests.some((r) => r.path.endsWith('.crai')));
});

test('CRAMs written with other encoder options decode the same as samtools', async () => {
  const variants: [string, string[]][] = [
    ['many-slices', ['seqs_per_slice=300']],
    ['multi-ref', ['seqs_per_slice=2000', 'multi_seq_per_slice=1']],
    ['v21', ['version=2.1']],
    ['v31', ['version=3.1']],
    ['embedded', ['embed_ref=1']],
    ['noref', ['no_ref=1']],
    ['stored-md', ['store_md=1', 'store_nm=1']],
  ];
  const regions = ['chr1:1-60000', 'chr2:150000-200000', 'chrM', `${regionName(contigs.at(-1)!.name)}`, '*'];
  for (const [name, options] of variants) {
    const file = join(work, `${name}.cram`);
    const w = await samtools(['view', '-C', '-T', sample.ref, ...options.flatMap((o) => ['--output-fmt-option', o]), '-o', file, sample.bam]);
    assert.equal(w.code, 0, w.stderr);
    assert.equal((await samtools(['index', file])).code, 0);
    server.addFile(`/v/${name}.cram`, await readFile(file));
    server.addFile(`/v/${name}.cram.crai`, await readFile(`${file}.crai`));
    const withoutRef = name === 'noref' || name === 'embedded';
    for (const r of regions) {
      const want = await samtoolsView(file, [r], withoutRef ? null : sample.ref);
      assert.equal(await viewText(server.url(`/v/${name}.cram`), [r], withoutRef ? { referenceUrl: undefined } : {}), want, `${name} ${r}`);
    }
  }
});

test('CRAM errors: no reference, a wrong reference, a reference of other contigs, a missing or corrupt index', async () => {
  const cram = await readFile(sample.cram);
  const refText = await readFile(sample.ref, 'latin1');
  // One base changed in chr1: the slices over it no longer match their MD5.
  const seqStart = refText.indexOf('\n') + 1;
  const at = seqStart + 5000;
  const wrong = refText.slice(0, at) + (refText[at] === 'A' ? 'C' : 'A') + refText.slice(at + 1);
  const wrongRef = join(work, 'wrong.fa');
  await writeFile(wrongRef, wrong, 'latin1');
  // chr1 shorter: the first slice runs past its end, so its bases do not match the slice's MD5.
  const shortRef = join(work, 'short.fa');
  const lines = refText.split('\n');
  await writeFile(shortRef, [lines[0], ...lines.slice(1, 100)].join('\n') + '\n', 'latin1');
  // No chr2 at all.
  const otherRef = join(work, 'other.fa');
  await writeFile(otherRef, refText.slice(0, refText.indexOf('>chr2')), 'latin1');
  // Indexed beforehand, so that each error is the only line on stderr.
  for (const f of [wrongRef, shortRef, otherRef]) assert.equal((await samtools(['faidx', f])).code, 0);
  server.addFile('/e/noindex.cram', cram);
  server.addFile('/e/badindex.cram', cram);
  server.addFile('/e/badindex.cram.crai', Buffer.from('this is no index\n'));
  server.addFile('/e/truncated.cram', cram.subarray(0, Math.floor(cram.length * 0.5)));
  server.addFile('/e/truncated.cram.crai', await readFile(sample.crai));

  const local = ['--input-file', sample.cram];
  const cases: [string[], number, RegExp][] = [
    [[...local, '-q', 'chr1:1-100'], 2, /^slicefs: error: this CRAM needs its reference to decode: give its reference with --reference-file/],
    [[...local, '--reference-file', wrongRef, '-q', 'chr1:1-10000'], 2, /^slicefs: error: wrong reference: the bases of chr1:\d+-\d+ do not match the CRAM \(MD5 [0-9a-f]{32}, the CRAM says [0-9a-f]{32}\)/],
    [[...local, '--reference-file', shortRef, '-q', 'chr1:1-100'], 2, /^slicefs: error: wrong reference: the bases of chr1:1-\d+ do not match the CRAM \(MD5 [0-9a-f]{32}, the CRAM says [0-9a-f]{32}\) \(the reference's chr1 ends at \d+, the slice reaches \d+\)/],
    [[...local, '--reference-file', otherRef, '-q', 'chr2:1-100'], 2, /^slicefs: error: the reference has no sequence named chr2/],
    [['--url', server.url('/e/noindex.cram'), '-T', sample.ref, '-q', 'chr1'], 1, /^slicefs: error: no index found \(tried .*noindex\.cram\.crai, .*noindex\.crai\); give one with --index-url$/m],
    [['--url', server.url('/e/badindex.cram'), '-T', sample.ref, '-q', 'chr1'], 1, /^slicefs: error: .*badindex\.cram\.crai:1: not a CRAM index line/],
    [['--url', server.url('/e/truncated.cram'), '-T', sample.ref, '-q', 'chr2'], 1, /^slicefs: error: .*(CRAM|short|end of)/i],
  ];
  for (const [args, code, pattern] of cases) {
    const r = await run(process.execPath, [BIN, 'view', '--no-index-cache', ...args]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.equal(r.stdout.length, 0, `nothing on stdout: ${args.join(' ')}`);
  }
});
