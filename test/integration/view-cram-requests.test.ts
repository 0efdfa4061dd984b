/**
 * A long CRAM query (whole contigs, hundreds of slices) fetches its slices and the reference they
 * are decoded against in large requests, planned ahead of the decoder (reader/planned-reader.ts),
 * not one request per slice, and fetches no byte twice, while its output stays samtools's.
 *
 * The cache is made small (as a whole chromosome is large next to view's 64 MiB budget): what
 * the view wants to fetch is many times the cache's readahead bound, so a plan that asked the
 * cache for all of it at once would have most of it refused and read slice by slice.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';
import { viewText } from '../helpers/view-text.js';

let server: FixtureServer;
let sample: SampleData;
let work: string;

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  work = await tempDir('slicefs-view-cram-requests-');
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** The cache's budget and block size here: 1 MiB of 16 KiB blocks. */
const CACHE_BYTES = 1024 * 1024;
const BLOCK = 16 * 1024;
/**
 * The request a planned reader makes: half its window, which is a quarter of the cache's budget
 * (half of the cache's readahead bound, shared by the data and the reference).
 */
const PLANNED_REQUEST = CACHE_BYTES / 8;
/** Requests beyond bytes / PLANNED_REQUEST: a contig's or region's first and last, and a block refetched. */
const SLACK = 4;

test('CRAM: a whole-contig query fetches its slices and their reference in large requests, each byte once', async () => {
  // Small slices, as a real file has many (a slice holds 10 000 reads; a chromosome thousands).
  const file = join(work, 'many-slices.cram');
  assert.equal((await samtools(['view', '-C', '-T', sample.ref, '--output-fmt-option', 'seqs_per_slice=200', '-o', file, sample.bam])).code, 0);
  assert.equal((await samtools(['index', file])).code, 0);
  server.addFile('/c/many-slices.cram', await readFile(file));
  server.addFile('/c/many-slices.cram.crai', await readFile(`${file}.crai`));
  server.addFile('/c/ref.fa', await readFile(sample.ref));
  server.addFile('/c/ref.fa.fai', await readFile(sample.fai));

  for (const regions of [['chr1'], ['chr1', 'chr2']]) {
    server.resetLog();
    const want = await samtools(['view', '-T', sample.ref, file, ...regions]);
    assert.equal(want.code, 0, want.stderr.toString());
    const got = await viewText(server.url('/c/many-slices.cram'), regions, { blockSize: BLOCK, cacheBytes: CACHE_BYTES, referenceUrl: server.url('/c/ref.fa') });
    assert.equal(got, want.stdout.toString('latin1'), regions.join(' '));

    const gets = (path: string) => server.requests.filter((r) => r.path === path && r.method === 'GET');
    const bytes = (path: string) => gets(path).reduce((n, r) => n + r.bytesSent, 0);
    // Each fetched byte is fetched once: the requests' ranges do not overlap.
    for (const path of ['/c/many-slices.cram', '/c/ref.fa']) {
      const ranges = gets(path)
        .map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.range ?? '')!)
        .map((m) => [Number(m[1]), Number(m[2]) + 1])
        .sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i][0] >= ranges[i - 1][1], `${path}: bytes ${ranges[i][0]}.. fetched twice (${regions.join(' ')})`);
    }
    const refBytes = bytes('/c/ref.fa');
    const dataBytes = bytes('/c/many-slices.cram');
    // The reference: the contigs' bases (and line ends), nothing else.
    const fai = (await readFile(sample.fai, 'latin1')).split('\n').map((l) => l.split('\t'));
    const contigBytes = regions.reduce((n, name) => {
      const [, length, , lineBases, lineBytes] = fai.find((f) => f[0] === name)!.map(Number);
      return n + Math.ceil(length / lineBases) * lineBytes;
    }, 0);
    assert.ok(refBytes <= contigBytes + 2 * BLOCK * regions.length, `reference: ${refBytes} bytes for ${Math.round(contigBytes)} of bases`);
    const refMax = Math.ceil(refBytes / PLANNED_REQUEST) + SLACK * regions.length;
    const dataMax = Math.ceil(dataBytes / PLANNED_REQUEST) + SLACK * regions.length;
    assert.ok(gets('/c/ref.fa').length <= refMax, `${regions.join(' ')}: ${gets('/c/ref.fa').length} reference requests for ${refBytes} bytes (at most ${refMax})`);
    assert.ok(gets('/c/many-slices.cram').length <= dataMax, `${regions.join(' ')}: ${gets('/c/many-slices.cram').length} data requests for ${dataBytes} bytes (at most ${dataMax})`);
  }
});
