/**
 * `view --threads N` of a CRAM: slices decoded on worker threads (src/view/cram/slice-pool.ts) give
 * the text and BAM records samtools gives, in samtools's order, over regions of many slices (with 0
 * and 2 threads, several regions, multi-reference slices, the unplaced reads); a slice that fails
 * to decode in a worker ends the run with the error the main thread gives and nothing from the
 * slices after it; a worker that dies fails the run instead of leaving it waiting.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { DEFAULT_CACHE, DEFAULT_READER, DEFAULT_TRANSPORT } from '../../src/config.js';
import { HttpSource } from '../../src/source/object-source.js';
import { Stats } from '../../src/stats.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import { Cursor } from '../../src/view/cram/cram-check.js';
import { parseCrai } from '../../src/view/cram/cram-view.js';
import { CramSlicePool } from '../../src/view/cram/slice-pool.js';
import { parseRegion } from '../../src/view/region.js';
import { formatPlan } from '../../src/view/sam-format-pool.js';
import { runView } from '../../src/view/view-session.js';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { fixCramCrcs } from '../helpers/fuzz-formats.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';
import { regionName } from '../helpers/view-text.js';

let server: FixtureServer;
let sample: SampleData;
let work: string;
let contigs: { name: string; length: number }[];

/** Writes `sample.bam` as a CRAM with samtools's `options`, indexed, served at /t/NAME.cram; its path. */
async function cramWith(name: string, options: string[]): Promise<string> {
  const file = join(work, `${name}.cram`);
  const w = await samtools(['view', '-C', '-T', sample.ref, ...options.flatMap((o) => ['--output-fmt-option', o]), '-o', file, sample.bam]);
  assert.equal(w.code, 0, w.stderr);
  assert.equal((await samtools(['index', file])).code, 0);
  server.addFile(`/t/${name}.cram`, await readFile(file));
  server.addFile(`/t/${name}.cram.crai`, await readFile(`${file}.crai`));
  return file;
}

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  for (const f of [sample.ref, sample.fai]) server.addFile(`/t/${basename(f)}`, await readFile(f));
  work = await tempDir('slicefs-view-cram-threads-');
  const h = await samtools(['view', '-H', sample.cram]);
  contigs = [...h.stdout.toString().matchAll(/^@SQ\tSN:(\S+)\tLN:(\d+)/gm)].map((m) => ({ name: m[1], length: Number(m[2]) }));
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** The view engine in this process on /t/NAME.cram with `threads`; the output, and slices whose output workers made (or the error). */
async function view(name: string, regions: string[], threads: number, format: 'sam' | 'bam' = 'sam'): Promise<{ out: Buffer; onWorkers: number; error?: Error }> {
  const stats = new Stats();
  const transport = new HttpTransport(DEFAULT_TRANSPORT, stats);
  const source = (u: string) => new HttpSource(transport, server.url(u));
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  let error: Error | undefined;
  try {
    await runView({
      data: source(`/t/${name}.cram`),
      indexCandidates: () => [source(`/t/${name}.cram.crai`)],
      reference: { fasta: source('/t/ref.fa'), fai: source('/t/ref.fa.fai') },
      regions: (c) => regions.map((r) => parseRegion(r, c)),
      contained: false,
      format,
      formatting: formatPlan(threads),
      header: 'without',
      cache: { ...DEFAULT_CACHE, blockSize: 64 * 1024 },
      reader: DEFAULT_READER,
      stats,
      out,
    });
  } catch (err) {
    error = err as Error;
  } finally {
    await transport.close();
  }
  return { out: Buffer.concat(chunks), onWorkers: stats.cramSlicesOnWorkers, error };
}

async function samtoolsView(cram: string, args: string[]): Promise<string> {
  const r = await samtools(['view', '-T', sample.ref, cram, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString('latin1');
}

test('CRAM with 2 threads: regions of many slices, several regions, multi-reference slices and BAM output equal samtools, and workers made them', async () => {
  const many = await cramWith('many', ['seqs_per_slice=300']);
  const multi = await cramWith('multi', ['seqs_per_slice=2000', 'multi_seq_per_slice=1']);
  // The contig whose name has colons is left out: samtools 1.16's -M skips `{name}` regions.
  const cases: [string, string, string[]][] = [
    ['many', many, ['chr1']],
    ['many', many, ['chr1:100000-400000']],
    ['many', many, ['chr1:1000-50000', 'chr1:40000-90000', 'chr2', '*']],
    ['multi', multi, ['chr1', 'chr2', 'chrM', '*']],
    ['multi', multi, [regionName(contigs.at(-1)!.name)]],
  ];
  for (const [name, file, regions] of cases) {
    const want = await samtoolsView(file, regions.length > 1 ? ['-M', ...regions] : regions);
    assert.ok(want.length > 0, `${name} ${regions.join(' ')} has records`);
    for (const threads of [0, 2]) {
      const got = await view(name, regions, threads);
      assert.equal(got.error, undefined, `${name} ${regions.join(' ')} -@ ${threads}`);
      assert.equal(got.out.toString('latin1'), want, `${name} ${regions.join(' ')} -@ ${threads}`);
      if (threads === 0) assert.equal(got.onWorkers, 0);
      else if (regions[0] === 'chr1') assert.ok(got.onWorkers >= 4, `${name} ${regions.join(' ')}: ${got.onWorkers} slices decoded on workers`);
    }
  }
  // BAM output: samtools reads back the records samtools gives.
  const bam = await view('many', ['chr1'], 2, 'bam');
  assert.equal(bam.error, undefined);
  assert.ok(bam.onWorkers >= 4);
  const bamFile = join(work, 'many-chr1.bam');
  await writeFile(bamFile, bam.out);
  const back = await samtools(['view', bamFile]);
  assert.equal(back.code, 0, back.stderr);
  assert.equal(back.stdout.toString('latin1'), await samtoolsView(many, ['chr1']));
});

test('CRAM with 2 threads: a slice that fails in a worker gives the main thread\'s error, after the slices before it and nothing after', async () => {
  const file = join(work, 'many.cram');
  const bytes = await readFile(file);
  const crai = parseCrai(await readFile(`${file}.crai`), 'many.cram.crai');
  const chr1 = crai.filter((e) => e.refId === 0).sort((a, b) => a.start - b.start);
  assert.ok(chr1.length > 12, `chr1 has ${chr1.length} slices`);
  const bad = chr1[10];
  // The slice's second block (its core data block) gets a compression method no codec knows; the
  // CRCs are made right again, so the main thread's checks pass it on and the decoder refuses it.
  const container = new Cursor(bytes, bad.containerStart + 4);
  for (let i = 0; i < 4; i++) container.itf8();
  assert.ok(container.skipLtf8() && container.skipLtf8());
  const nBlocks = container.itf8()!;
  const nLandmarks = container.itf8()!;
  for (let i = 0; i < nLandmarks; i++) container.itf8();
  assert.ok(nBlocks > 0);
  const sliceAt = container.pos + 4 + bad.sliceStart;
  const header = new Cursor(bytes, sliceAt + 2);
  header.itf8();
  const compressed = header.itf8()!;
  header.itf8();
  const coreAt = header.pos + compressed + 4;
  const broken = Buffer.from(bytes);
  broken[coreAt] = 0x7f;
  const brokenFile = join(work, 'broken.cram');
  await writeFile(brokenFile, fixCramCrcs(broken));
  await writeFile(`${brokenFile}.crai`, await readFile(`${file}.crai`));
  server.addFile('/t/broken.cram', await readFile(brokenFile));
  server.addFile('/t/broken.cram.crai', await readFile(`${file}.crai`));

  const main = await view('broken', ['chr1'], 0);
  const workers = await view('broken', ['chr1'], 2);
  assert.ok(main.error, 'the main thread refuses the slice');
  assert.equal(workers.error?.message, main.error.message);
  assert.ok(workers.onWorkers >= 4, `${workers.onWorkers} slices decoded on workers`);
  // What came out is whole lines of samtools's text, from slices before the broken one only.
  const want = await samtoolsView(file, ['chr1']);
  const text = workers.out.toString('latin1');
  assert.ok(want.startsWith(text), 'a prefix of samtools output');
  assert.ok(text.length > 0 && text.endsWith('\n'));
  for (const line of text.split('\n').filter(Boolean)) assert.ok(Number(line.split('\t')[3]) <= bad.start, `a record of a later slice: ${line.slice(0, 80)}`);

  // Through the CLI: one line on stderr, the same as without threads, and the same exit code.
  const cli = async (threads: number) => run(process.execPath, [BIN, 'view', '--input-file', brokenFile, '-T', sample.ref, '-@', String(threads), '-q', 'chr1'], { timeoutMs: 120_000 });
  const [r0, r2] = [await cli(0), await cli(2)];
  assert.notEqual(r2.code, 0);
  assert.equal(r2.code, r0.code);
  assert.equal(r2.stderr, r0.stderr);
  assert.match(r2.stderr, /^slicefs: error: [^\n]+\n$/);
});

test('a CRAM decoding worker that dies, by an exception or by exiting, fails its jobs instead of hanging', async () => {
  const script = new URL('../helpers/dying-worker.js', import.meta.url);
  for (const how of ['throw', 'exit']) {
    const pool = new CramSlicePool(
      1,
      { majorVersion: 3, contigs: [], openedLengths: [], readGroups: [], referenceHint: '', fileName: 'x.cram', hasReference: false, fileSize: 0, label: how },
      async () => ({}),
      script,
    );
    try {
      const job = () => pool.run({ pieces: [], containerStart: 0, sliceStart: 0, sliceBytes: 0, wanted: [], unmapped: false, contained: false, output: 'sam' });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer from a dead worker (${how}) in 30 s`)), 30_000)));
      try {
        await assert.rejects(Promise.race([job(), timeout]), /a CRAM decoding thread stopped/);
      } finally {
        clearTimeout(timer);
      }
      // Later jobs fail at once.
      await assert.rejects(job(), /a CRAM decoding thread stopped/);
    } finally {
      await pool.close();
    }
  }
});
