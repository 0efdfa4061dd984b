/**
 * `view --threads`: SAM formatted on worker threads (src/view/sam-format-pool.ts) is the text
 * samtools prints, in samtools's order, whatever order the workers finish in: small batches spread
 * over two workers, with and without records formatted on the main thread first; a record that
 * cannot be formatted fails the run with one clear error naming the file and the record; the CLI
 * takes `--threads` / `-@` and refuses values it cannot use.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { OrderedFormatter, SamFormatPool, formatPlan } from '../../src/view/sam-format-pool.js';
import { formatSamRecord, refNameBytes } from '../../src/view/sam-format.js';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom } from '../helpers/random.js';
import { ensureSampleData, samtools, samtoolsContigs, type SampleData } from '../helpers/sample-data.js';
import { edgeRegions, randomRegions, viewText } from '../helpers/view-text.js';

let server: FixtureServer;
let sample: SampleData;
let work: string;
let contigs: { name: string; length: number }[];

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  for (const f of [sample.bam, sample.bai]) server.addFile(`/d/${basename(f)}`, await readFile(f));
  work = await tempDir('slicefs-view-threads-');
  contigs = await samtoolsContigs(sample.bam);
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** A record with its core fields right and one tag of type `type` (a byte), value bytes `value`. */
function recordWithTag(name: string, type: number, value: number[]): Buffer {
  const core = Buffer.alloc(32);
  core.writeInt32LE(-1, 0); // refID: unplaced
  core.writeInt32LE(-1, 4); // pos
  core[8] = name.length + 1; // l_read_name
  core.writeUInt16LE(4680, 10); // bin of an unplaced read
  core.writeUInt16LE(4, 14); // flag: unmapped
  core.writeInt32LE(-1, 20);
  core.writeInt32LE(-1, 24);
  return Buffer.concat([core, Buffer.from(`${name}\0`, 'latin1'), Buffer.from([0x58, 0x58, type, ...value])]);
}

test('two workers, small batches, with and without records formatted inline first: samtools text, byte for byte', async () => {
  const url = server.url(`/d/${basename(sample.bam)}`);
  const regions = [...edgeRegions(contigs, sample.regions), ...randomRegions(new SeededRandom(7), contigs, 12), ...contigs.map((c) => c.name)];
  // 2 KiB batches: a whole contig is hundreds of batches, so the two workers finish out of order.
  const plans = [
    { threads: 2, inlineBytes: 0, batchBytes: 2048, maxInFlight: 3 },
    { threads: 2, inlineBytes: 3000, batchBytes: 1500, maxInFlight: 5 },
    { threads: 1, inlineBytes: 0, batchBytes: 64 << 10, maxInFlight: 2 },
  ];
  for (const r of regions) {
    const want = (await samtools(['view', sample.bam, r])).stdout.toString('latin1');
    for (const formatting of plans) assert.equal(await viewText(url, [r], { formatting }), want, `${r} ${JSON.stringify(formatting)}`);
  }
  // Several regions, and the header first.
  const set = ['chr1:1000-50000', 'chr2', '*'];
  const want = (await samtools(['view', '-h', '--no-PG', '-M', sample.bam, ...set])).stdout.toString('latin1');
  assert.equal(await viewText(url, set, { header: 'with', formatting: plans[0] }), want);
});

test('a record a worker cannot format: the batch fails with the record named, the file named by the formatter', async () => {
  const refs = contigs.map((c) => c.name);
  const good = recordWithTag('ok', 0x69 /* i */, [1, 0, 0, 0]);
  const bad = recordWithTag('broken', 0x51 /* Q: no such type */, [1, 0, 0, 0]);
  const pool = new SamFormatPool(2, refs);
  try {
    assert.equal((await pool.format([good, good])).toString('latin1'), `${formatSamRecord(good, refs)}\n`.repeat(2));
    await assert.rejects(pool.format([good, bad]), (e: unknown) => e instanceof SlicefsError && e.code === 'BAD_RESPONSE' && /^corrupt BAM record 'broken': tag XX has unknown type 'Q'$/.test(e.message));
    // The pool still works after a bad batch.
    assert.equal((await pool.format([good])).toString('latin1'), `${formatSamRecord(good, refs)}\n`);
  } finally {
    await pool.close();
  }
  const written: Buffer[] = [];
  const f = new OrderedFormatter({ threads: 1, inlineBytes: 0, batchBytes: 1, maxInFlight: 4 }, refs, refNameBytes(refs), (b) => void written.push(b), 1 << 20, 'x.bam');
  await assert.rejects(
    (async () => {
      await f.add([good, bad, good]);
      await f.end();
    })(),
    /^SlicefsError: x\.bam: corrupt BAM record 'broken': tag XX has unknown type 'Q'$/,
  );
  await f.close();
  // What came before the bad record went out, nothing after it.
  assert.equal(Buffer.concat(written).toString('latin1'), `${formatSamRecord(good, refs)}\n`);
});

test('the CLI: -@ 2 and --threads 0 print what samtools prints; a count it cannot use is one line, exit 2', async () => {
  const cache = join(work, 'cache');
  const want = await samtools(['view', sample.bam, 'chr1']);
  for (const t of [['-@', '2'], ['--threads', '0'], ['--threads=1']]) {
    const r = await run(process.execPath, [BIN, 'view', '--cache-dir', cache, '--input-file', sample.bam, '-q', 'chr1', '--no-header', ...t]);
    assert.equal(r.code, 0, `${t.join(' ')}: ${r.stderr}`);
    assert.ok(r.stdout.equals(want.stdout), t.join(' '));
  }
  for (const bad of ['-1', '1.5', 'many', '65']) {
    const r = await run(process.execPath, [BIN, 'view', '--cache-dir', cache, '--input-file', sample.bam, '-q', 'chr1', '--threads', bad]);
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /^slicefs: error: --threads must be a whole number from 0 to 64\n$/, bad);
  }
});

test('formatPlan: the default keeps small regions on the main thread and bounds what is in flight', () => {
  const p = formatPlan(3);
  assert.equal(p.threads, 3);
  assert.ok(p.inlineBytes >= 1 << 20, 'a 100 kb region at 30x stays inline');
  assert.ok(p.maxInFlight * p.batchBytes * 3 <= 16 << 20, 'text in flight stays a few MiB');
});
