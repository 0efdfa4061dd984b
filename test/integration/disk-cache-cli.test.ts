/**
 * The disk tier through the commands a user runs (child processes, fixture server on 127.0.0.1):
 * `slicefs view` run again with the index cache off fetches no data byte, views in parallel
 * processes on one cache directory print what samtools prints, `cache stats` and `cache clear`
 * (all, or one object's chunks), `download` caches index files only, `--disk-cache-size 0` writes
 * nothing, and a full disk is one warning with the right output.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

let server: FixtureServer;
let sample: SampleData;
let work: string;
let bamUrl: string;
const REGIONS = ['chr1:100000-120000', 'chr2:1-5000', 'chr2:200000-210000', 'chrM'];

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  server.addFile('/d/sample.bam', await readFile(sample.bam));
  server.addFile('/d/sample.bam.bai', await readFile(sample.bai));
  bamUrl = server.url('/d/sample.bam');
  work = await tempDir('slicefs-disk-cli-');
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

const slicefs = (args: string[]) => run(process.execPath, [BIN, ...args], { timeoutMs: 60_000 });
const dataGets = () => server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/d/'));

async function expected(regions: string[]): Promise<Buffer> {
  return (await samtools(['view', '-M', sample.bam, ...regions])).stdout;
}

async function stats(cacheDir: string): Promise<Record<string, unknown>> {
  const r = await slicefs(['cache', 'stats', '--json', '--cache-dir', cacheDir]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
}

test('view run twice with the index cache off: the second run fetches no data byte', async () => {
  const cacheDir = join(work, 'twice');
  const args = ['view', '--no-index-cache', '--cache-dir', cacheDir, '--url', bamUrl, '--no-header', '--stats', ...REGIONS.flatMap((q) => ['-q', q])];
  server.resetLog();
  const first = await slicefs(args);
  assert.equal(first.code, 0, first.stderr);
  assert.ok(first.stdout.equals(await expected(REGIONS)));
  assert.ok(dataGets().length > 0);
  // Misses: the pieces fetched (a few pages each, the regions' blocks), not whole slots.
  const misses = Number(/disk_hits=\d+ disk_misses=(\d+) /.exec(first.stderr)?.[1]);
  assert.ok(misses >= 4, first.stderr);

  server.resetLog();
  const second = await slicefs(args);
  assert.equal(second.code, 0, second.stderr);
  assert.ok(second.stdout.equals(first.stdout));
  assert.deepEqual(dataGets().map((r) => `${r.path} ${r.range}`), [], 'no GET of the BAM or its index');
  assert.match(second.stderr, /disk_hits=[1-9]\d* disk_misses=0/);

  const s = await stats(cacheDir);
  assert.equal(s.objects, 2, 'the BAM and its index');
  assert.equal(s.entries, 4, 'one file per slot: three of the 2.2 MB BAM, one of the index');
  assert.ok((s.bytes as number) > 2 * 1024 * 1024);
  assert.equal(s.misses, misses);
  assert.ok((s.hits as number) >= 4);
  assert.equal(s.hitRate, (s.hits as number) / ((s.hits as number) + misses));
  const human = await slicefs(['cache', 'stats', '--cache-dir', cacheDir]);
  assert.match(human.stdout.toString(), /^objects: +2$/m);
  assert.match(human.stdout.toString(), /^hit rate: +\d+\.\d %$/m);
});

test('views in parallel processes on one cache directory, under load: each prints what samtools prints', async () => {
  const cacheDir = join(work, 'parallel');
  const sets = [REGIONS, ['chr1'], ['chr2:50000-250000', 'chr1:1-1000'], ['chr2', '*']];
  const want = await Promise.all(sets.map((q) => expected(q)));
  for (let round = 0; round < 2; round++) {
    const runs = await Promise.all(
      [...sets, ...sets].map((q) => slicefs(['view', '--no-index-cache', '--cache-dir', cacheDir, '--url', bamUrl, '--no-header', ...q.flatMap((x) => ['-q', x])])),
    );
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(want[i % sets.length]), `round ${round}, regions ${sets[i % sets.length].join(' ')}`);
    });
  }
  const s = await stats(cacheDir);
  assert.equal(s.corrupt, 0);
  assert.equal(s.entries, 4);
});

test('cache clear --url drops one object (any query string, every version); cache clear drops everything', async () => {
  const cacheDir = join(work, 'clear');
  const view = () => slicefs(['view', '--cache-dir', cacheDir, '--url', bamUrl, '--no-header', '-q', 'chrM']);
  assert.equal((await view()).code, 0);
  const before = await stats(cacheDir);
  // The index is read through the tier into the index cache, so both hold it (a few KiB).
  assert.equal(before.objects, 2, 'the BAM and its index');
  assert.equal(((before.index as { entries: number }).entries), 2, 'the index and the header');

  const cleared = await slicefs(['cache', 'clear', '--cache-dir', cacheDir, '--url', `${bamUrl}?X-Amz-Signature=whatever`]);
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.match(cleared.stderr, /cleared 1 cached version of http:\/\/127\.0\.0\.1:\d+\/d\/sample\.bam \(/);
  assert.doesNotMatch(cleared.stderr, /whatever/);
  assert.deepEqual(((await stats(cacheDir)).items as { identity: string }[]).map((i) => basename(i.identity)), ['sample.bam.bai']);
  const none = await slicefs(['cache', 'clear', '--cache-dir', cacheDir, '--url', server.url('/d/other.bam')]);
  assert.match(none.stderr, /nothing cached for/);

  server.resetLog();
  assert.equal((await view()).code, 0);
  assert.ok(dataGets().some((r) => r.path === '/d/sample.bam' && r.method === 'GET'), 'fetched again');
  assert.ok(!dataGets().some((r) => r.path === '/d/sample.bam.bai'), 'the index cache was kept');

  const all = await slicefs(['cache', 'clear', '--cache-dir', cacheDir]);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stderr, /cleared 2 objects .* and 2 cached index files/);
  const after = await stats(cacheDir);
  assert.equal(after.objects, 0);
  assert.equal(after.bytes, 0);
  assert.equal((after.index as { entries: number }).entries, 0);
  assert.equal(after.hits, 0, 'the counters of ended processes are cleared too');
});

test('download caches index files only: a downloaded file is not written twice', async () => {
  const cacheDir = join(work, 'download');
  const manifest = join(work, 'dl.tsv');
  await writeFile(manifest, `url\tpath\tindex_url\n${bamUrl}\tx/sample.bam\t${server.url('/d/sample.bam.bai')}\n`);
  const r = await slicefs(['download', '-m', manifest, '-d', join(work, 'dl-out'), '--cache-dir', cacheDir, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(work, 'dl-out/x/sample.bam'))).equals(await readFile(sample.bam)));
  assert.ok((await readFile(join(work, 'dl-out/x/sample.bam.bai'))).equals(await readFile(sample.bai)));
  const s = await stats(cacheDir);
  const items = s.items as { identity: string }[];
  assert.deepEqual(items.map((i) => basename(i.identity)), ['sample.bam.bai']);
});

test('--disk-cache-size 0 turns the tier off: nothing is written', async () => {
  const cacheDir = join(work, 'off');
  const r = await slicefs(['view', '--no-index-cache', '--disk-cache-size', '0', '--cache-dir', cacheDir, '--url', bamUrl, '-q', 'chrM', '--no-header']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await stat(cacheDir).catch(() => undefined), undefined);
  const bad = await slicefs(['view', '--disk-cache-size', '1K', '--url', bamUrl, '-q', 'chrM']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--disk-cache-size must be 0 \(off\) or at least 4M/);
});

test('a full disk under the cache: one warning, and the output is right', async () => {
  const mnt = join(work, 'tmpfs');
  await mkdir(mnt, { recursive: true });
  // 0700: a cache directory must be the user's alone (a tmpfs is 1777 by default).
  const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mnt]);
  assert.equal(m.code, 0, `mount tmpfs (the tests run as root): ${m.stderr}`);
  try {
    const r = await slicefs(['view', '--no-index-cache', '--cache-dir', mnt, '--disk-cache-size', '1G', '--url', bamUrl, '--no-header', ...REGIONS.flatMap((q) => ['-q', q])]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(await expected(REGIONS)));
    assert.equal(r.stderr.match(/warning/g)?.length, 1, r.stderr);
    assert.match(r.stderr, /warning: the disk of the disk cache \(.*\) is full; caching in memory only from now on/);
    const left = await readdir(join(mnt, 'blocks', 'objects'), { recursive: true });
    assert.ok(left.every((n) => !n.endsWith('.tmp')), left.join(' '));
  } finally {
    await run('umount', ['-l', mnt]);
  }
});
