/**
 * BAM output without recompressing (`view -b`) and uncompressed BAM (`-u`), against samtools, over
 * HTTP from the fixture server. For every region the output must pass `samtools quickcheck` and
 * `samtools view` of it must equal `samtools view` of `samtools view -b`'s output, byte for byte;
 * and the blocks that hold only wanted records must be the input's blocks, copied. Two inputs: the
 * sample BAM as samtools writes it (records start on block boundaries) and the same records
 * re-blocked here at odd, seeded block sizes (records straddle blocks, as htsjdk writes them).
 * Inside a region's run of overlapping records, blocks are copied without being inflated (the
 * view's `unread` count; with -u they are inflated but their records not read); a BAM built here, indexed as htslib before 1.15 did (unmapped placed
 * reads left out of the linear index), checks that this trusts only what every index vouches for.
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
async function checkRegions(file: string, regions: string[]): Promise<{ copied: Buffer[]; uninflated: number }> {
  const input = await readFile(file);
  const url = server.url(`/d/${basename(file)}`);
  const copied: Buffer[] = [];
  let uninflated = 0;
  for (const r of regions) {
    const out = await viewOutput(url, [r], 'bam', { onResult: (res) => (uninflated += res.unread) });
    await quickcheck(out, 'region.bam');
    assert.equal(await decode(out), (await samtoolsOracle(file, [r])).text, `${basename(file)} ${r}`);
    copied.push(...copiedBlocks(input, out));
  }
  return { copied, uninflated };
}

test('BAM output of a BAM written by samtools: the records of samtools view -b for the edge and 80 random regions; inner blocks copied', async () => {
  const regions = [...edgeRegions(contigs, sample.regions), ...randomRegions(new SeededRandom(1818), contigs, 80)];
  const { copied, uninflated } = await checkRegions(sample.bam, regions);
  assert.ok(copied.length > 0, 'input blocks are copied');
  assert.ok(uninflated > 0, 'blocks inside a run of overlapping records are copied without being inflated');
  // A whole contig is nearly all inner blocks: all but the edges are copied, most not even inflated.
  const input = await readFile(sample.bam);
  let chr1Uninflated = 0;
  const chr1 = await viewOutput(server.url('/d/sample.bam'), ['chr1'], 'bam', { onResult: (res) => (chr1Uninflated = res.unread) });
  const outBlocks = blocksOf(chr1).length;
  assert.ok(copiedBlocks(input, chr1).length >= outBlocks - 4, `chr1: ${copiedBlocks(input, chr1).length} of ${outBlocks} blocks copied`);
  assert.ok(chr1Uninflated >= outBlocks / 2, `chr1: ${chr1Uninflated} of ${outBlocks} blocks copied without being inflated`);
});

test('records that straddle blocks (re-blocked at odd sizes): the same records, and blocks that begin inside a record are copied too', async () => {
  const regions = [...edgeRegions(contigs, sample.regions), ...randomRegions(new SeededRandom(1819), contigs, 40)];
  const { copied, uninflated } = await checkRegions(straddling.path, regions);
  assert.ok(straddling.midRecordBlocks.size > 100, 'the file has records across blocks');
  assert.ok(copied.some((b) => straddling.midRecordBlocks.has(digest(b))), 'a block that begins inside a record is copied');
  assert.ok(uninflated > 0, 'blocks are copied without being inflated, records straddling in and out of them');
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

test('-u (uncompressed BAM): stored deflate blocks only, the records of samtools view -u; inner blocks written unread', async () => {
  for (const file of [sample.bam, straddling.path]) {
    const url = server.url(`/d/${basename(file)}`);
    let unread = 0;
    for (const set of [['chr1:150000-250000'], ['chr2'], ['chrUn'], ['chr1:1000-50000', 'chr1:40000-90000', '*']]) {
      const out = await viewOutput(url, set, 'ubam', { onResult: (res) => (unread += res.unread) });
      await quickcheck(out, 'u.bam');
      const oracle = await samtoolsOracle(file, set, '-u');
      assert.ok(allStored(oracle.bam), 'samtools view -u writes stored blocks (the check reads them right)');
      assert.ok(allStored(out), `${basename(file)} ${set.join(' ')}: every block stored`);
      assert.equal(await decode(out), oracle.text, `${basename(file)} ${set.join(' ')}`);
    }
    assert.ok(unread > 0, `${basename(file)}: blocks inside a run of overlapping records are written without their records being read`);
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

/** A BAM's records in file order: virtual offset, reference, position, end on the reference, flag. */
function recordsOf(bam: Buffer): { voff: bigint; tid: number; pos: number; end: number; unmapped: boolean }[] {
  const parts: { pos: number; start: number; size: number }[] = [];
  const payloads: Buffer[] = [];
  let streamAt = 0;
  let filePos = 0;
  for (const b of blocksOf(bam)) {
    const data = gunzipSync(b);
    parts.push({ pos: filePos, start: streamAt, size: data.length });
    payloads.push(data);
    streamAt += data.length;
    filePos += b.length;
  }
  const stream = Buffer.concat(payloads);
  let q = 8 + stream.readInt32LE(4);
  const nRef = stream.readInt32LE(q);
  q += 4;
  for (let i = 0; i < nRef; i++) q += 8 + stream.readInt32LE(q);
  const out: ReturnType<typeof recordsOf> = [];
  let part = 0;
  for (; q < stream.length; q += 4 + stream.readInt32LE(q)) {
    while (q >= parts[part].start + parts[part].size) part++;
    const nameLen = stream[q + 12];
    const nCigar = stream.readUInt16LE(q + 16);
    let refLen = 0;
    for (let i = 0; i < nCigar; i++) {
      const op = stream.readUInt32LE(q + 36 + nameLen + 4 * i);
      if ([0, 2, 3, 7, 8].includes(op & 15)) refLen += op >>> 4;
    }
    const pos = stream.readInt32LE(q + 8);
    out.push({
      voff: (BigInt(parts[part].pos) << 16n) | BigInt(q - parts[part].start),
      tid: stream.readInt32LE(q + 4),
      pos,
      end: pos + Math.max(1, refLen),
      unmapped: (stream.readUInt16LE(q + 18) & 4) !== 0,
    });
  }
  return out;
}

/** A BAI's references: their bins' chunks and where their linear index lies in the file. */
function baiRefs(bai: Buffer): { bins: Map<number, [bigint, bigint][]>; linearAt: number; nIntv: number }[] {
  const refs: ReturnType<typeof baiRefs> = [];
  let p = 8;
  for (let r = 0; r < bai.readInt32LE(4); r++) {
    const bins = new Map<number, [bigint, bigint][]>();
    const nBin = bai.readInt32LE(p);
    p += 4;
    for (let i = 0; i < nBin; i++) {
      const bin = bai.readUInt32LE(p);
      const n = bai.readInt32LE(p + 4);
      p += 8;
      const chunks: [bigint, bigint][] = [];
      for (let c = 0; c < n; c++, p += 16) chunks.push([bai.readBigUInt64LE(p), bai.readBigUInt64LE(p + 8)]);
      bins.set(bin, chunks);
    }
    const nIntv = bai.readInt32LE(p);
    refs.push({ bins, linearAt: p + 4, nIntv });
    p += 4 + 8 * nIntv;
  }
  return refs;
}

/**
 * `bai` with the linear index of reference `tid` made as htslib before 1.15 made it: from mapped
 * records only (the smallest offset of those overlapping each 16 kb window), holes filled with the
 * window before's value, the windows before the first with the first record's offset.
 */
function withMappedOnlyLinearIndex(bai: Buffer, bam: Buffer, tid: number): Buffer {
  const out = Buffer.from(bai);
  const ref = baiRefs(bai)[tid];
  const records = recordsOf(bam).filter((r) => r.tid === tid);
  const linear: (bigint | undefined)[] = new Array<bigint | undefined>(ref.nIntv).fill(undefined);
  for (const r of records) {
    if (r.unmapped) continue;
    for (let w = r.pos >> 14; w <= (r.end - 1) >> 14 && w < ref.nIntv; w++) linear[w] ??= r.voff;
  }
  let last = records[0].voff;
  for (let w = 0; w < ref.nIntv; w++) {
    last = linear[w] ?? last;
    out.writeBigUInt64LE(last, ref.linearAt + 8 * w);
  }
  return out;
}

test('an index made as htslib before 1.15 made it (unmapped placed reads left out of the linear index): blocks are copied unread only where the bins vouch for them', async () => {
  // chr1: dense reads over [1000, 241000), a gap, then at 0-based 262144 (the start of the 17th
  // 16 kb window) 400 unmapped reads placed there, before their 400 mapped mates (more than a
  // block of records that the old linear index does not see), and a few reads further on: one that
  // crosses a 16 kb boundary, so htslib moves the small bins holding the pile up into a bin that
  // covers the region too, and the region's chunks run over the pile.
  const rnd = new SeededRandom(1820);
  const seq = () => Array.from({ length: 100 }, () => rnd.pick(['A', 'C', 'G', 'T'])).join('');
  const qual = 'I'.repeat(100);
  const lines = ['@HD\tVN:1.6\tSO:coordinate', '@SQ\tSN:chr1\tLN:1000000', '@SQ\tSN:chr2\tLN:100000'];
  for (let i = 0, pos = 1001; pos < 241_000; i++, pos += 20) lines.push(`d${i}\t0\tchr1\t${pos}\t60\t100M\t*\t0\t0\t${seq()}\t${qual}`);
  const pile = 262_145; // 1-based
  for (let i = 0; i < 400; i++) lines.push(`p${i}\t133\tchr1\t${pile}\t0\t*\t=\t${pile}\t0\t${seq()}\t${qual}`);
  for (let i = 0; i < 400; i++) lines.push(`p${i}\t73\tchr1\t${pile}\t60\t100M\t=\t${pile}\t0\t${seq()}\t${qual}`);
  for (const pos of [270_001, 278_501, 300_001]) lines.push(`t${pos}\t0\tchr1\t${pos}\t60\t100M\t*\t0\t0\t${seq()}\t${qual}`);
  for (let pos = 1001; pos < 90_000; pos += 500) lines.push(`c${pos}\t0\tchr2\t${pos}\t60\t100M\t*\t0\t0\t${seq()}\t${qual}`);
  const made = await samtools(['view', '-b', '-o', '-', '-'], { input: Buffer.from(lines.join('\n') + '\n') });
  assert.equal(made.code, 0, made.stderr.toString());
  const path = join(work, 'old-linear.bam');
  await writeFile(path, made.stdout);
  const ix = await samtools(['index', path]);
  assert.equal(ix.code, 0, ix.stderr.toString());
  const bam = made.stdout;
  const newBai = await readFile(`${path}.bai`);
  const oldBai = withMappedOnlyLinearIndex(newBai, bam, 0);

  // The trap is set: the first unmapped read of the pile lies in a block before its mates', the old
  // linear index places window 16 at the first mate (htslib's own at the unmapped read), and a
  // chunk of bin 73 (0-1 Mb, queried for any region of chr1) runs over it, so a view reads it.
  const recs = recordsOf(bam);
  const firstUnmapped = recs.find((r) => r.unmapped)!;
  const firstMate = recs.find((r) => r.pos === pile - 1 && !r.unmapped)!;
  assert.ok(firstUnmapped.voff >> 16n < firstMate.voff >> 16n, 'the pile spans blocks');
  const w16 = (bai: Buffer) => bai.readBigUInt64LE(baiRefs(bai)[0].linearAt + 8 * 16);
  assert.equal(w16(oldBai), firstMate.voff);
  assert.ok(w16(newBai) <= firstUnmapped.voff, "htslib's own linear index counts the unmapped reads");
  assert.ok(
    (baiRefs(newBai)[0].bins.get(73) ?? []).some(([u, v]) => u <= firstUnmapped.voff && firstUnmapped.voff < v),
    'a chunk of bin 73 runs over the pile',
  );

  await writeFile(`${path}.bai`, oldBai);
  server.addFile('/d/old-linear.bam', bam);
  server.addFile('/d/old-linear.bam.bai', oldBai);
  const url = server.url('/d/old-linear.bam');
  let uninflated = 0;
  for (const region of ['chr1:1000-262144', 'chr1:1001-262144', 'chr1:1000-262145', 'chr1:5000-250000', 'chr1:200000-262144', 'chr1:262145-262145', 'chr1:100000-300000', 'chr1']) {
    const out = await viewOutput(url, [region], 'bam', { onResult: (res) => (uninflated += res.unread) });
    await quickcheck(out, 'old-linear-region.bam');
    assert.equal(await decode(out), (await samtoolsOracle(path, [region])).text, region);
  }
  for (const set of [['chr1:1000-262144', 'chr2:1-5000'], ['chr1:1000-262144', 'chr1:240000-262144']]) {
    const out = await viewOutput(url, set, 'bam');
    assert.equal(await decode(out), (await samtoolsOracle(path, set)).text, set.join(' '));
  }
  assert.ok(uninflated > 0, 'blocks of the dense reads are copied without being inflated');
});
