/**
 * BAM output without recompressing (`view -b`) and uncompressed BAM (`-u`), against samtools, over
 * HTTP from the fixture server. For every region the output must pass `samtools quickcheck` and
 * `samtools view` of it must equal `samtools view` of `samtools view -b`'s output, byte for byte;
 * and the blocks that hold only wanted records must be the input's blocks, copied. Two inputs: the
 * sample BAM as samtools writes it (records start on block boundaries) and the same records
 * re-blocked here at odd, seeded block sizes (records straddle blocks, as htsjdk writes them).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { bgzfBlock, BGZF_EOF } from '../../src/view/bgzf.js';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom } from '../helpers/random.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';
import { edgeRegions, randomRegions, regionName, viewOutput } from '../helpers/view-text.js';

let server: FixtureServer;
let sample: SampleData;
let work: string;
let contigs: { name: string; length: number }[];
/** The sample BAM re-blocked at odd sizes, and which of its blocks begin inside a record. */
let straddling: { path: string; midRecordBlocks: Set<string> };

/** A BGZF file's blocks, in order. */
function blocksOf(file: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < file.length; ) {
    const n = file.readUInt16LE(p + 16) + 1;
    out.push(file.subarray(p, p + n));
    p += n;
  }
  return out;
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The output's blocks that are blocks of the input with data (the EOF block is everyone's). */
function copiedBlocks(input: Buffer, output: Buffer): Buffer[] {
  const have = new Set(blocksOf(input).filter((b) => b.readUInt32LE(b.length - 4) > 0).map(digest));
  return blocksOf(output).filter((b) => have.has(digest(b)));
}

/**
 * The records of `bam` (its whole inflated stream) in new BGZF blocks of seeded odd sizes, from 1
 * byte to the most a block holds, so that records and the header straddle blocks everywhere; with
 * the digests of the blocks that begin inside a record.
 */
function reblock(bam: Buffer, rnd: SeededRandom): { file: Buffer; midRecordBlocks: Set<string> } {
  const stream = gunzipSync(bam);
  // Record boundaries: after the header (magic, text, references), then each record's length.
  const starts = new Set<number>();
  let p = 8 + stream.readInt32LE(4);
  const nRef = stream.readInt32LE(p);
  p += 4;
  for (let i = 0; i < nRef; i++) p += 8 + stream.readInt32LE(p);
  for (; p < stream.length; p += 4 + stream.readInt32LE(p)) starts.add(p);
  const blocks: Buffer[] = [];
  const midRecordBlocks = new Set<string>();
  for (let at = 0; at < stream.length; ) {
    const size = Math.min(stream.length - at, rnd.pick([1, 3, rnd.int(5, 200), rnd.int(200, 2000), rnd.int(2000, 65280), 65280]));
    const block = bgzfBlock(stream.subarray(at, at + size));
    if (!starts.has(at)) midRecordBlocks.add(digest(block));
    blocks.push(block);
    at += size;
  }
  return { file: Buffer.concat([...blocks, BGZF_EOF]), midRecordBlocks };
}

/** Lines of `samtools view` of a BAM given as bytes. */
async function decode(bam: Buffer): Promise<string> {
  const r = await samtools(['view', '-'], { input: bam });
  assert.equal(r.code, 0, r.stderr.toString());
  return r.stdout.toString('latin1');
}

/** `samtools view` of `samtools view -b FILE REGIONS` (-M with several), and of `-u`. */
async function samtoolsOracle(file: string, regions: string[], flag: '-b' | '-u' = '-b'): Promise<{ text: string; bam: Buffer }> {
  const r = await samtools(['view', flag, ...(regions.length > 1 ? ['-M'] : []), file, ...regions]);
  assert.equal(r.code, 0, r.stderr.toString());
  return { text: await decode(r.stdout), bam: r.stdout };
}

async function quickcheck(bam: Buffer, name: string): Promise<void> {
  const path = join(work, name);
  await writeFile(path, bam);
  const r = await samtools(['quickcheck', '-v', path]);
  assert.equal(r.code, 0, `quickcheck ${name}: ${r.stdout.toString()}${r.stderr.toString()}`);
}

/** Whether every block but the EOF block is stored deflate blocks (BTYPE 00) from end to end. */
function allStored(file: Buffer): boolean {
  for (const b of blocksOf(file)) {
    if (b.equals(BGZF_EOF)) continue;
    let p = 18;
    for (;;) {
      const head = b[p];
      if (((head >> 1) & 3) !== 0) return false;
      const len = b.readUInt16LE(p + 1);
      if ((len ^ b.readUInt16LE(p + 3)) !== 0xffff) return false;
      p += 5 + len;
      if (head & 1) break;
    }
    if (p !== b.length - 8) return false;
  }
  return true;
}

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  work = await tempDir('slicefs-view-bam-');
  for (const f of [sample.bam, sample.bai]) server.addFile(`/d/${basename(f)}`, await readFile(f));
  const re = reblock(await readFile(sample.bam), new SeededRandom(18));
  const path = join(work, 'straddling.bam');
  await writeFile(path, re.file);
  const ix = await samtools(['index', path]);
  assert.equal(ix.code, 0, ix.stderr.toString());
  server.addFile('/d/straddling.bam', re.file);
  server.addFile('/d/straddling.bam.bai', await readFile(`${path}.bai`));
  straddling = { path, midRecordBlocks: re.midRecordBlocks };
  const h = await samtools(['view', '-H', sample.bam]);
  contigs = [...h.stdout.toString().matchAll(/^@SQ\tSN:(\S+)\tLN:(\d+)/gm)].map((m) => ({ name: m[1], length: Number(m[2]) }));
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/**
 * Every region of `regions` of `file` (served as `/d/NAME`) as BAM: valid, and the records of
 * samtools's BAM. Returns the blocks copied from the input.
 */
async function checkRegions(file: string, regions: string[]): Promise<Buffer[]> {
  const input = await readFile(file);
  const url = server.url(`/d/${basename(file)}`);
  const copied: Buffer[] = [];
  for (const r of regions) {
    const out = await viewOutput(url, [r], 'bam');
    await quickcheck(out, 'region.bam');
    assert.equal(await decode(out), (await samtoolsOracle(file, [r])).text, `${basename(file)} ${r}`);
    copied.push(...copiedBlocks(input, out));
  }
  return copied;
}

test('BAM output of a BAM written by samtools: the records of samtools view -b for the edge and 80 random regions; inner blocks copied', async () => {
  const regions = [...edgeRegions(contigs, sample.regions), ...randomRegions(new SeededRandom(1818), contigs, 80)];
  const copied = await checkRegions(sample.bam, regions);
  assert.ok(copied.length > 0, 'input blocks are copied');
  // A whole contig is nearly all inner blocks: all but the edges are copied.
  const input = await readFile(sample.bam);
  const chr1 = await viewOutput(server.url('/d/sample.bam'), ['chr1'], 'bam');
  const outBlocks = blocksOf(chr1).length;
  assert.ok(copiedBlocks(input, chr1).length >= outBlocks - 4, `chr1: ${copiedBlocks(input, chr1).length} of ${outBlocks} blocks copied`);
});

test('records that straddle blocks (re-blocked at odd sizes): the same records, and blocks that begin inside a record are copied too', async () => {
  const regions = [...edgeRegions(contigs, sample.regions), ...randomRegions(new SeededRandom(1819), contigs, 40)];
  const copied = await checkRegions(straddling.path, regions);
  assert.ok(straddling.midRecordBlocks.size > 100, 'the file has records across blocks');
  assert.ok(copied.some((b) => straddling.midRecordBlocks.has(digest(b))), 'a block that begins inside a record is copied');
});

test('several and overlapping regions, --contained, `*`, the whole file: the records samtools writes, inner blocks copied', async () => {
  for (const file of [sample.bam, straddling.path]) {
    const input = await readFile(file);
    const url = server.url(`/d/${basename(file)}`);
    const sets = [
      ['chr1:1000-50000', 'chr1:40000-90000', 'chr2', '*'],
      ['chr2:100-200', 'chr1:300000-300500', 'chr1:300400-301000'],
      ['chr1:200000-260000', 'chr1:200000-260000', 'chr1:250000-255000'],
      ['*'],
    ];
    for (const set of sets) {
      const out = await viewOutput(url, set, 'bam');
      await quickcheck(out, 'set.bam');
      assert.equal(await decode(out), (await samtoolsOracle(file, set)).text, `${basename(file)} ${set.join(' ')}`);
    }
    // No region: every record, as `samtools view FILE`.
    const all = await viewOutput(url, [...contigs.map((c) => regionName(c.name)), '*'], 'bam');
    const want = await samtools(['view', file]);
    assert.equal(await decode(all), want.stdout.toString('latin1'), `${basename(file)}: the whole file`);
    assert.ok(copiedBlocks(input, all).length > blocksOf(all).length / 2, `${basename(file)}: the whole file is mostly copied blocks`);

    // --contained: samtools has no such option; its records for the region, kept when they lie inside.
    const region = 'chr1:100000-180000';
    const out = await viewOutput(url, [region], 'bam', { contained: true });
    await quickcheck(out, 'contained.bam');
    const inside = (await samtoolsOracle(file, [region])).text.split('\n').filter((line) => {
      if (!line) return false;
      const f = line.split('\t');
      const pos = Number(f[3]);
      let rlen = 0;
      for (const m of f[5].matchAll(/(\d+)([MIDNSHP=X])/g)) if ('MDN=X'.includes(m[2])) rlen += Number(m[1]);
      return pos >= 100000 && pos + Math.max(1, Number(f[1]) & 4 ? 1 : rlen) - 1 <= 180000;
    });
    assert.equal(await decode(out), inside.map((l) => l + '\n').join(''), `${basename(file)} --contained`);
    assert.ok(copiedBlocks(input, out).length > 0, `${basename(file)} --contained: blocks of records all inside are copied`);
  }
});

test('-u (uncompressed BAM): stored deflate blocks only, the records of samtools view -u', async () => {
  for (const file of [sample.bam, straddling.path]) {
    const url = server.url(`/d/${basename(file)}`);
    for (const set of [['chr1:150000-250000'], ['chr2'], ['chrUn'], ['chr1:1000-50000', 'chr1:40000-90000', '*']]) {
      const out = await viewOutput(url, set, 'ubam');
      await quickcheck(out, 'u.bam');
      const oracle = await samtoolsOracle(file, set, '-u');
      assert.ok(allStored(oracle.bam), 'samtools view -u writes stored blocks (the check reads them right)');
      assert.ok(allStored(out), `${basename(file)} ${set.join(' ')}: every block stored`);
      assert.equal(await decode(out), oracle.text, `${basename(file)} ${set.join(' ')}`);
    }
  }
});

test('the CLI: -b, -u and --output-format ubam over HTTP; a contradiction is bad input', async () => {
  const url = server.url('/d/straddling.bam');
  const region = 'chr1:120000-200000';
  const want = (await samtoolsOracle(straddling.path, [region])).text;
  for (const [flags, stored] of [[['-b'], false], [['-u'], true], [['-b', '-u'], true], [['--output-format', 'ubam'], true], [['--output-format', 'bam'], false]] as const) {
    const path = join(work, 'cli.bam');
    const r = await run(process.execPath, [BIN, 'view', '--no-index-cache', '--url', url, '-q', region, ...flags, '-o', path]);
    assert.equal(r.code, 0, r.stderr);
    const out = await readFile(path);
    await quickcheck(out, 'cli.bam');
    assert.equal(allStored(out), stored, `${flags.join(' ')}: stored blocks`);
    assert.equal(await decode(out), want, flags.join(' '));
  }
  const bad = await run(process.execPath, [BIN, 'view', '--no-index-cache', '--url', url, '-q', region, '--output-format', 'sam', '-u']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'slicefs: error: --output-format sam contradicts -u\n');
});
