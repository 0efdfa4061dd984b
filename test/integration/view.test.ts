/**
 * `slicefs view` against samtools on the same data, served by the fixture server on 127.0.0.1:
 * record text byte for byte for 200 seeded random regions and the edge regions, several regions at
 * once (`samtools view -M`), `--contained`, the header, BAM output, a closed stdout, and the errors
 * a user meets (unknown contig, malformed region, missing index, 403, truncated or corrupt files).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom } from '../helpers/random.js';
import { ensureSampleData, samtools, samtoolsContigs, type SampleData } from '../helpers/sample-data.js';
import { assertNoSecrets } from '../helpers/secret-scan.js';
import { edgeRegions, randomRegions, viewText } from '../helpers/view-text.js';

let server: FixtureServer;
let sample: SampleData;
let work: string;
let contigs: { name: string; length: number }[];

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  for (const f of [sample.bam, sample.bai, sample.csiBam, sample.csi]) server.addFile(`/d/${basename(f)}`, await readFile(f));
  const bam = await readFile(sample.bam);
  server.addFile('/bad/truncated.bam', bam.subarray(0, Math.floor(bam.length * 0.6)));
  server.addFile('/bad/truncated.bam.bai', await readFile(sample.bai));
  server.addFile('/bad/garbage.bam', bam);
  server.addFile('/bad/garbage.bam.bai', Buffer.from('this is not an index at all'));
  server.addFile('/bad/noindex.bam', bam);
  server.addFile('/bad/presigned.bam', bam);
  for (const n of ['/bad/presigned.bam.bai', '/bad/presigned.bam.csi', '/bad/presigned.bai']) {
    server.addFile(n, Buffer.alloc(0), { fault: { kind: 'status', status: 403 } });
  }
  server.addFile('/bad/forbidden.bam', bam, { fault: { kind: 'status', status: 403 } });
  server.addFile('/bad/forbidden.bam.bai', await readFile(sample.bai));
  work = await tempDir('slicefs-view-');
  contigs = await samtoolsContigs(sample.bam);
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

test('200 random regions and the edge regions: records equal samtools view, byte for byte', async () => {
  const regions = [...edgeRegions(contigs, sample.regions), ...randomRegions(new SeededRandom(2024), contigs, 200)];
  for (const file of [sample.bam, sample.csiBam]) {
    const url = server.url(`/d/${basename(file)}`);
    for (const r of regions) {
      const want = (await samtools(['view', file, r])).stdout.toString('latin1');
      assert.equal(await viewText(url, [r]), want, `${basename(file)} ${r}`);
    }
  }
});

test('several regions at once: each record once, in file order (samtools view -M)', async () => {
  const url = server.url(`/d/${basename(sample.bam)}`);
  const sets = [
    ['chr1:1000-50000', 'chr1:40000-90000', 'chr2', '*'],
    ['chr2:100-200', 'chr1:300000-300500', 'chr1:300400-301000'],
    // samtools 1.16's -M does not parse `{name}` regions (it warns and skips them): leave them out.
    sample.regions.filter((r) => !r.startsWith('{')),
  ];
  for (const set of sets) {
    const want = (await samtools(['view', '-M', sample.bam, ...set])).stdout.toString('latin1');
    assert.equal(await viewText(url, set), want, set.join(' '));
  }
});

test('--contained keeps only records entirely inside the region', async () => {
  const url = server.url(`/d/${basename(sample.bam)}`);
  const region = 'chr1:100000-140000';
  const got = await viewText(url, [region], { contained: true });
  // The oracle: samtools' overlapping records, kept when POS..end-from-CIGAR lies inside.
  const all = (await samtools(['view', sample.bam, region])).stdout.toString('latin1').split('\n').filter(Boolean);
  const inside = all.filter((line) => {
    const f = line.split('\t');
    const pos = Number(f[3]);
    let rlen = 0;
    for (const m of f[5].matchAll(/(\d+)([MIDNSHP=X])/g)) if ('MDN=X'.includes(m[2])) rlen += Number(m[1]);
    const end = pos + Math.max(1, Number(f[1]) & 4 ? 1 : rlen) - 1;
    return pos >= 100000 && end <= 140000;
  });
  assert.ok(inside.length > 10 && inside.length < all.length);
  assert.equal(got, inside.map((l) => l + '\n').join(''));
});

test('the CLI: header equals samtools -h --no-PG; default adds a @PG line; BAM output decodes to the same records', async () => {
  const url = server.url(`/d/${basename(sample.bam)}`);
  const noPg = await run(process.execPath, [BIN, 'view', '--cache-dir', join(work, 'cache'), '--url', url, '-q', 'chr2:1-50000', '--no-PG']);
  assert.equal(noPg.code, 0, noPg.stderr);
  const want = await samtools(['view', '-h', '--no-PG', sample.bam, 'chr2:1-50000']);
  assert.ok(noPg.stdout.equals(want.stdout), 'SAM with header equals samtools view -h --no-PG');

  const withPg = await run(process.execPath, [BIN, 'view', '--cache-dir', join(work, 'cache'), '--url', url + '?X-Amz-Signature=SECRET', '-q', 'chr2:1-50000', '--header-only']);
  assert.equal(withPg.code, 0, withPg.stderr);
  assert.match(withPg.stdout.toString(), /^@PG\tID:slicefs\tPN:slicefs.*\tCL:slicefs view --cache-dir \S+ --url http:\/\/127\.0\.0\.1:\d+\/d\/sample\.bam\?… /m);
  assert.doesNotMatch(withPg.stdout.toString(), /SECRET/);
  assert.doesNotMatch(withPg.stdout.toString(), /^r\d/m, 'header only');

  const bamPath = join(work, 'out.bam');
  const b = await run(process.execPath, [BIN, 'view', '--cache-dir', join(work, 'cache'), '--url', url, '-q', 'chr1:100000-300000', '-q', '*', '--output-format', 'bam', '-o', bamPath]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal((await samtools(['quickcheck', '-v', bamPath])).code, 0);
  const decoded = await samtools(['view', bamPath]);
  const direct = await samtools(['view', '-M', sample.bam, 'chr1:100000-300000', '*']);
  assert.ok(decoded.stdout.equals(direct.stdout));
});

test('the @PG CL: allow-listed options, every URL redacted in any form, no token; SAM and BAM (secret scan)', async () => {
  const url = server.url(`/d/${basename(sample.bam)}`);
  const [sig1, sig2, sig3, token1, token2] = ['Sig1-9c2e7a41d0', 'Sig2-4b8f13e6aa', 'Sig3-70d5c9b2ee', 'tok1-e3a9d81f52c7', 'tok2-5f0b6ce4917d'];
  const cache = join(work, 'pg-cache');
  const sam = await run(process.execPath, [
    BIN, 'view', `--cache-dir=${cache}`, `--url=${url}?X-Amz-Signature=${sig1}`, '--index-url', `${url}.bai?X-Amz-Signature=${sig2}`,
    `--token=${token1}`, '-q', 'chr2:1-50000', '--header-only',
  ]);
  assert.equal(sam.code, 0, sam.stderr);
  const cl = /^@PG\tID:slicefs\t.*\tCL:(.*)$/m.exec(sam.stdout.toString())?.[1];
  const origin = new URL(url).origin;
  assert.equal(cl, `slicefs view --cache-dir=${cache} --url=${origin}/d/sample.bam?… --index-url ${origin}/d/sample.bam.bai?… --token=… -q chr2:1-50000 --header-only`);

  const bamPath = join(work, 'pg.bam');
  const bam = await run(process.execPath, [
    BIN, 'view', '--cache-dir', cache, '--url', `${url}?X-Amz-Signature=${sig3}`, '--token', token2, '--output-format', 'bam', '-o', bamPath, '-q', 'chr1:1-2000',
  ]);
  assert.equal(bam.code, 0, bam.stderr);
  const header = (await samtools(['view', '-H', bamPath])).stdout.toString();
  assert.match(header, /\tCL:slicefs view --cache-dir \S+ --url http:\/\/127\.0\.0\.1:\d+\/d\/sample\.bam\?… --token … --output-format bam -o \S+pg\.bam -q chr1:1-2000$/m);
  // A portal's own token in the query is not a recognised signature: it stays in the identity, and
  // the disk tier's meta.json records that identity with its query hashed.
  const portal = 'portal-tok-2c8e40d91fa6';
  const viaPortal = await run(process.execPath, [BIN, 'view', '--cache-dir', cache, '--url', `${url}?token=${portal}`, '-q', 'chr1:1-2000']);
  assert.equal(viaPortal.code, 0, viaPortal.stderr);
  await assertNoSecrets([sig1, sig2, sig3, token1, token2, portal], {
    outputs: { 'view stdout': Buffer.concat([sam.stdout, viaPortal.stdout]), 'view stderr': sam.stderr + bam.stderr + viaPortal.stderr },
    paths: [bamPath, cache],
  });
});

test('a closed stdout (| head) ends quietly with exit 0', async () => {
  const url = server.url(`/d/${basename(sample.bam)}`);
  const p = spawn(process.execPath, [BIN, 'view', '--no-index-cache', '--url', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((res) => p.stdout.once('data', () => res()));
  p.stdout.destroy();
  const code = await new Promise<number | null>((res) => p.once('exit', res));
  assert.equal(code, 0, err);
  assert.equal(err, '');
});

test('only the index and the overlapping blocks are fetched', async () => {
  const url = server.url(`/d/${basename(sample.bam)}`);
  server.resetLog();
  await viewText(url, ['chr1:1-1000']);
  const bamBytes = server.requests.filter((r) => r.path.endsWith('.bam') && r.method === 'GET').reduce((n, r) => n + r.bytesSent, 0);
  const size = (await readFile(sample.bam)).length;
  assert.ok(bamBytes < size, `fetched ${bamBytes} of ${size}`);
  assert.ok(server.requests.some((r) => r.path.endsWith('.bam.bai')));
});

test('bad inputs: one clear line, the right exit code', async () => {
  const cases: [string[], number, RegExp][] = [
    [['--url', server.url('/d/sample.bam'), '-q', '1:1-100'], 2, /^slicefs: error: unknown contig '1'; did you mean 'chr1'\?\n$/],
    [['--url', server.url('/d/sample.bam'), '-q', 'chr1:5-x'], 2, /^slicefs: error: region 'chr1:5-x': unexpected 'x' after 'chr1:5-'\n$/],
    [['--url', server.url('/bad/noindex.bam'), '-q', 'chr1'], 1, /^slicefs: error: no index found \(tried .*noindex\.bam\.bai, .*noindex\.bam\.csi, .*noindex\.bai\); give one with --index-url\n$/],
    [['--url', server.url('/bad/forbidden.bam'), '-q', 'chr1'], 1, /^slicefs: error: (HEAD|GET) .*forbidden\.bam( \(size probe\))?: HTTP 403 \(access denied: check the token or whether the URL expired\)\n$/],
    [['--url', server.url('/bad/presigned.bam') + '?X-Amz-Signature=SECRET', '-q', 'chr2'], 1, /no index found \(tried .*presigned\.bam\.bai\?…, .*\) \(3 refused with 401\/403: a presigned URL signs one object, so its index needs its own URL\); give one with --index-url\n$/],
    [['--url', server.url('/bad/truncated.bam'), '-q', 'chr2'], 1, /^slicefs: error: .*(truncated|BGZF|BAM)/],
    [['--url', server.url('/bad/garbage.bam'), '-q', 'chr1'], 1, /^slicefs: error: .*(index|BAM|readable)/i],
    [['--url', server.url('/d/sample.bam'), '--input-file', 'x.bam'], 2, /^slicefs: error: give exactly one of --url, --input-file, --manifest \(with --path\), --object-id or --ghga \(with --accession\)$/m],
  ];
  for (const [args, code, pattern] of cases) {
    const r = await run(process.execPath, [BIN, 'view', '--cache-dir', join(work, 'cache'), ...args]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /SECRET/, 'no signature in messages');
  }
});

test('a local file works the same (--input-file), with a BED of regions', async () => {
  const bed = join(work, 'r.bed');
  await writeFile(bed, 'chr1\t999\t5000\nchr2\t0\t2000\n');
  const r = await run(process.execPath, [BIN, 'view', '--cache-dir', join(work, 'cache'), '--input-file', sample.bam, '--bed-query', bed, '--no-header']);
  assert.equal(r.code, 0, r.stderr);
  const want = await samtools(['view', '-M', sample.bam, 'chr1:1000-5000', 'chr2:1-2000']);
  assert.ok(r.stdout.equals(want.stdout));
});

test('a second view of the same file reads its index and header from the disk cache (keyed by version)', async () => {
  const url = server.url(`/d/${basename(sample.bam)}`);
  const cacheDir = join(work, 'cache-hit');
  // A region far from the start of the file: the only reason to read its first bytes is the header.
  const args = ['view', '--cache-dir', cacheDir, '--url', url, '-q', 'chr2:200000-210000'];
  const first = await run(process.execPath, [BIN, ...args]);
  assert.equal(first.code, 0, first.stderr);
  server.resetLog();
  const second = await run(process.execPath, [BIN, ...args]);
  assert.equal(second.code, 0, second.stderr);
  assert.ok(second.stdout.equals(first.stdout));
  assert.ok(second.stdout.toString().startsWith('@HD'), 'the header is printed');
  const indexGets = server.requests.filter((r) => r.path.endsWith('.bai') && r.method === 'GET');
  assert.equal(indexGets.length, 0, 'no GET of the index');
  const headGets = server.requests.filter((r) => r.path.endsWith('.bam') && r.method === 'GET' && /^bytes=0-/.test(r.range ?? ''));
  assert.equal(headGets.length, 0, `no GET of the header: ${JSON.stringify(server.requests.map((r) => r.range))}`);
  const modes = await run('find', [cacheDir, '-type', 'f', '-printf', '%m\n']);
  // The index and the header (index/), and the data's chunks with their meta and counters (blocks/).
  assert.match(modes.stdout.toString(), /^(600\n){3,}$/);
});

test('--manifest with --path reads the entry and its index_url', async () => {
  const manifest = join(work, 'm.tsv');
  // The index (a CSI) is named so that only the manifest can point at it, and says nothing of its kind.
  server.addFile('/m/renamed-index', await readFile(sample.csi));
  server.addFile('/m/data.bam', await readFile(sample.csiBam));
  await writeFile(manifest, `url\tpath\tindex_url\n${server.url('/m/data.bam')}\tdonor/x.bam\t${server.url('/m/renamed-index')}\n`);
  const r = await run(process.execPath, [BIN, 'view', '--no-index-cache', '-m', manifest, '--path', 'donor/x.bam', '-q', 'chrM', '--no-header']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.equals((await samtools(['view', sample.bam, 'chrM'])).stdout));
  const missing = await run(process.execPath, [BIN, 'view', '--no-index-cache', '-m', manifest, '--path', 'nope', '-q', 'chrM']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no entry with path 'nope'/);
});

test('transient server faults are retried: the output is still exactly samtools', async () => {
  const bam = await readFile(sample.bam);
  const faults = [
    { kind: 'status-then-ok', status: 503, times: 2 },
    { kind: 'drop-mid-body', times: 2, afterBytes: 40_000 },
    { kind: 'retry-after', times: 1, seconds: 1 },
  ] as const;
  for (const [i, fault] of faults.entries()) {
    const path = `/faults/f${i}.bam`;
    server.addFile(path, bam, { fault });
    server.addFile(`${path}.bai`, await readFile(sample.bai));
    const region = 'chr1:100000-300000';
    const got = await viewText(server.url(path), [region]);
    assert.equal(got, (await samtools(['view', sample.bam, region])).stdout.toString('latin1'), fault.kind);
  }
});
