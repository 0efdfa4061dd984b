/**
 * Sizes that a server or a file claims never decide how much `view` allocates (src/view/limits.ts,
 * src/reader/object-filehandle.ts): an index or a .fai whose server claims more than the ceiling
 * is refused before a byte of it is fetched (the fixture server's log shows no GET), a local .fai
 * past it before it is read, a CRAI that inflates past it while inflating, and a parser's read of
 * more than 512 MiB before the buffer is made. Each is one line; the real-sized files still work.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { BlockCache } from '../../src/cache/block-cache.js';
import { DEFAULT_CACHE, DEFAULT_READER } from '../../src/config.js';
import { SlicefsError } from '../../src/errors.js';
import { MAX_READ_BYTES, ObjectFilehandle } from '../../src/reader/object-filehandle.js';
import { RangeReader } from '../../src/reader/range-reader.js';
import { LocalSource } from '../../src/source/local-source.js';
import { Stats } from '../../src/stats.js';
import { parseCrai } from '../../src/view/cram/cram-view.js';
import { MAX_FAI_BYTES, MAX_INDEX_BYTES } from '../../src/view/limits.js';
import { cleanup, runSlicefs, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { ensureSampleData, type SampleData } from '../helpers/sample-data.js';

const MiB = 1024 * 1024;
let server: FixtureServer;
let sample: SampleData;
let work: string;

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  for (const f of [sample.bam, sample.bai, sample.cram, sample.crai, sample.ref, sample.fai]) server.addFile(`/d/${basename(f)}`, await readFile(f));
  work = await tempDir('slicefs-claimed-sizes-');
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function assertOneLine(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, pattern);
}

test('an index whose server claims more than 512 MiB is refused before a byte of it is fetched', async () => {
  assert.equal(MAX_INDEX_BYTES, 512 * MiB);
  const bai = `/d/${basename(sample.bai)}`;
  const bam = server.url(`/d/${basename(sample.bam)}`);
  for (const cacheArgs of [['--no-index-cache'], ['--cache-dir', join(work, 'cache')]]) {
    server.setFault(bai, { kind: 'claim-size', size: 600 * MiB });
    server.resetLog();
    const r = await runSlicefs(['view', '--url', bam, '-q', 'chr1:1-100000', ...cacheArgs]);
    assertOneLine(r, new RegExp(`^slicefs: error: ${esc(server.url(bai))}: an index of 600\\.0 MiB is more than slicefs reads whole \\(512\\.0 MiB\\); a BAI, CSI or CRAI of real data is well under 100 MB\\n$`));
    assert.equal(server.count({ path: bai, method: 'GET' }), 0, 'no byte of the index asked for');
    // The same index at its real size is read.
    server.setFault(bai, undefined);
    const ok = await runSlicefs(['view', '--url', bam, '-q', 'chr1:1-100000', '--no-header', ...cacheArgs]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.stdout.length > 0, 'records');
  }
});

test('a .fai past 256 MiB, claimed by its server or on disk, is refused before it is read', async () => {
  assert.equal(MAX_FAI_BYTES, 256 * MiB);
  const fai = `/d/${basename(sample.fai)}`;
  const cram = server.url(`/d/${basename(sample.cram)}`);
  server.setFault(fai, { kind: 'claim-size', size: 300 * MiB });
  server.resetLog();
  const r = await runSlicefs(['view', '--no-index-cache', '--url', cram, '--reference-url', server.url(`/d/${basename(sample.ref)}`), '-q', 'chr1:1-1000']);
  assertOneLine(r, new RegExp(`^slicefs: error: ${esc(server.url(fai))}: a \\.fai of 300\\.0 MiB is more than slicefs reads whole \\(256\\.0 MiB\\)`));
  assert.equal(server.count({ path: fai, method: 'GET' }), 0, 'no byte of the .fai asked for');
  server.setFault(fai, undefined);

  // A local FASTA whose .fai (sparse: no disk used) is 1 byte past the ceiling.
  const ref = join(work, 'ref.fa');
  await copyFile(sample.ref, ref);
  await writeFile(`${ref}.fai`, '');
  await truncate(`${ref}.fai`, MAX_FAI_BYTES + 1);
  const local = await runSlicefs(['view', '--no-index-cache', '--url', cram, '--reference-file', ref, '-q', 'chr1:1-1000']);
  assertOneLine(local, new RegExp(`^slicefs: error: ${esc(ref)}\\.fai: a \\.fai of 256\\.0 MiB is more than slicefs reads whole \\(256\\.0 MiB\\)`));
  // Its real .fai is read.
  await copyFile(sample.fai, `${ref}.fai`);
  const ok = await runSlicefs(['view', '--no-index-cache', '--url', cram, '--reference-file', ref, '-q', 'chr1:1-1000', '--no-header']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(ok.stdout.length > 0, 'records');
});

test('a CRAI that inflates past 512 MiB is refused while inflating', () => {
  // 1 MiB of zeros gzips to ~1 KB; 600 members of it are one gzip stream of 600 MiB.
  const member = gzipSync(Buffer.alloc(MiB));
  const bomb = Buffer.concat(Array.from({ length: 600 }, () => member));
  assert.ok(bomb.length < MiB);
  assert.throws(
    () => parseCrai(bomb, 'x.crai'),
    (e: unknown) => e instanceof SlicefsError && /^x\.crai: inflates to more than 512 MiB, more than slicefs reads whole; a CRAI of real data is well under 100 MB$/.test(e.message),
  );
});

test("a parser's read of more than 512 MiB is refused before its buffer is made; smaller reads are served", async () => {
  assert.equal(MAX_READ_BYTES, 512 * MiB);
  // A sparse file of 513 MiB that starts with a few known bytes.
  const path = join(work, 'big.bin');
  await writeFile(path, 'BAM\x01');
  await truncate(path, MAX_READ_BYTES + MiB);
  const source = new LocalSource(path);
  const reader = new RangeReader(new BlockCache(DEFAULT_CACHE, new Stats()), { source, version: await source.version() }, DEFAULT_READER);
  const fh = new ObjectFilehandle(reader);
  const refused = (e: unknown) => e instanceof SlicefsError && /^a read of 513\.0 MiB at byte 0, as the file's header or index asks, is more than slicefs reads at once \(512\.0 MiB\): the file or its index is damaged$/.test(e.message);
  await assert.rejects(fh.readFile(), refused);
  await assert.rejects(fh.read(MAX_READ_BYTES + MiB, 0), refused);
  // Up to the end of the file counts, not what was asked: 4 bytes before the end are 4 bytes.
  assert.equal((await fh.read(MAX_READ_BYTES * 2, MAX_READ_BYTES + MiB - 4)).length, 4);
  assert.equal(Buffer.from(await fh.read(4, 0)).toString('latin1'), 'BAM\x01');
});
