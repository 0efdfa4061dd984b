/**
 * `slicefs view` against samtools 1.16 on small BAMs that real files can be but the sample data is
 * not (slicefs issue 17): a file whose only reads are unplaced (`-q '*'`), a header text without
 * @SQ lines (samtools prints them from the binary reference list), and records placed at or running
 * past their contig's LN (samtools clamps no region to LN). Each is compared byte for byte with
 * `samtools view` through the CLI, from a local file and over HTTP from the fixture server.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { bgzfBlock, BGZF_EOF } from '../../src/view/bgzf.js';
import { cleanup, runSlicefs, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { samtools } from '../helpers/sample-data.js';

let work: string;
let server: FixtureServer;

const HEADER = '@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:xx\tLN:1000\n@SQ\tSN:yy\tLN:100\n';
/**
 * On yy (LN 100): a read inside the contig that runs past its end (95, 10M), and a valid secondary
 * pair placed past it at 111 and 141 (the hts-specs `pnext` tests); then an unplaced read.
 */
const PAST_LN_READS = [
  'x1\t0\txx\t10\t30\t10M\t*\t0\t0\tACGTACGTAC\tIIIIIIIIII',
  'r3\t0\tyy\t95\t30\t10M\t*\t0\t0\tGGGGGGGGGG\tIIIIIIIIII',
  'p1\t355\tyy\t111\t30\t10M\t=\t141\t40\tAAAAAAAAAA\tIIIIIIIIII',
  'p2\t403\tyy\t141\t30\t10M\t=\t111\t-40\tCCCCCCCCCC\tIIIIIIIIII',
  'u1\t4\t*\t0\t0\t*\t*\t0\t0\tAC\tII',
];

/** Writes `name.sam`, sorts it to `name.bam` and indexes it (`index` args: `-c` for CSI). */
async function makeBam(name: string, sam: string, indexArgs: string[] = []): Promise<string> {
  const samPath = join(work, `${name}.sam`);
  const bam = join(work, `${name}.bam`);
  await writeFile(samPath, sam);
  for (const args of [['sort', '--no-PG', '-o', bam, samPath], ['index', ...indexArgs, bam]]) {
    const r = await samtools(args);
    assert.equal(r.code, 0, `samtools ${args.join(' ')}: ${r.stderr}`);
  }
  return bam;
}

/**
 * A copy of `from` whose header text is `text` and whose binary reference list (and records) are
 * unchanged, indexed by samtools: what samtools cannot write itself (its reheader rebuilds both).
 */
async function withHeaderText(from: string, name: string, text: string): Promise<string> {
  const raw = gunzipSync(await readFile(from));
  const lText = raw.readInt32LE(4);
  const t = Buffer.from(text, 'utf8');
  const head = Buffer.alloc(8);
  head.write('BAM\x01', 0, 'latin1');
  head.writeInt32LE(t.length, 4);
  const all = Buffer.concat([head, t, raw.subarray(8 + lText)]);
  const blocks: Buffer[] = [];
  // Under BGZF's 64 KiB block limit.
  for (let i = 0; i < all.length; i += 60_000) blocks.push(bgzfBlock(all.subarray(i, i + 60_000)));
  const bam = join(work, `${name}.bam`);
  await writeFile(bam, Buffer.concat([...blocks, BGZF_EOF]));
  const r = await samtools(['index', bam]);
  assert.equal(r.code, 0, `samtools index ${name}.bam: ${r.stderr}`);
  return bam;
}

/** `slicefs view` of a local file (`--input-file`) and of the same file over HTTP (`--url`). */
async function slicefsBoth(bam: string, args: string[]): Promise<{ local: string; http: string }> {
  const out: string[] = [];
  for (const where of [['--input-file', bam], ['--url', server.url(`/c/${basename(bam)}`)]]) {
    const r = await runSlicefs(['view', '--no-index-cache', ...where, ...args]);
    assert.equal(r.code, 0, `slicefs view ${args.join(' ')}: ${r.stderr}`);
    out.push(r.stdout.toString('latin1'));
  }
  return { local: out[0], http: out[1] };
}

async function serve(bam: string): Promise<void> {
  server.addFile(`/c/${basename(bam)}`, await readFile(bam));
  server.addFile(`/c/${basename(bam)}.bai`, await readFile(`${bam}.bai`).catch(() => readFile(`${bam}.csi`)));
}

/** `samtools view --no-PG ARGS FILE [REGION]`'s output. */
async function samtoolsView(bam: string, args: string[], region?: string): Promise<string> {
  const r = await samtools(['view', '--no-PG', ...args, bam, ...(region === undefined ? [] : [region])]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString('latin1');
}

before(async () => {
  work = await tempDir('slicefs-view-conf-');
  server = await FixtureServer.start();
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

test("-q '*' of a BAM with no placed reads prints its unplaced reads, as samtools does", async () => {
  const bam = await makeBam('unplaced', '@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:xx\tLN:1000\n' + ['u1\t4\t*\t0\t0\t*\t*\t0\t0\tAC\tII', 'u2\t4\t*\t0\t0\t*\t*\t0\t0\tGT\tII'].join('\n') + '\n');
  await serve(bam);
  for (const header of [['-h'], []]) {
    const want = await samtoolsView(bam, header, '*');
    assert.match(want, /^u1\t.*\nu2\t/m, 'samtools prints both unplaced reads');
    const got = await slicefsBoth(bam, ['-q', '*', '--no-PG', ...(header.length ? [] : ['--no-header'])]);
    assert.equal(got.local, want, `local file, header ${header.join('') || 'none'}`);
    assert.equal(got.http, want, `over HTTP, header ${header.join('') || 'none'}`);
  }
});

test('a header text without @SQ lines: @SQ lines from the binary reference list, as samtools prints them', async () => {
  const placed = await makeBam('placed', HEADER + PAST_LN_READS.join('\n') + '\n');
  const cases = [
    { name: 'nosq', text: '@HD\tVN:1.6\tSO:coordinate\n@CO\tno SQ here\n' },
    { name: 'emptytext', text: '' },
    // Not at the start of a line: not an @SQ line.
    { name: 'sqinside', text: '@CO\ta@SQ\tSN:q\n' },
    // Without its last newline: samtools ends the text with one.
    { name: 'nonewline', text: '@HD\tVN:1.6' },
    // An @SQ line (even of another name) means none are added.
    { name: 'othersq', text: '@HD\tVN:1.6\n@SQ\tSN:zz\tLN:5\n' },
  ];
  for (const c of cases) {
    const bam = await withHeaderText(placed, c.name, c.text);
    await serve(bam);
    const wantHeader = await samtoolsView(bam, ['-H']);
    if (c.name === 'nosq') assert.match(wantHeader, /^@CO\tno SQ here\n@SQ\tSN:xx\tLN:1000\n@SQ\tSN:yy\tLN:100\n$/m, 'samtools adds the @SQ lines');
    const header = await slicefsBoth(bam, ['--header-only', '--no-PG']);
    assert.equal(header.local, wantHeader, `${c.name}: -H, local file`);
    assert.equal(header.http, wantHeader, `${c.name}: -H, over HTTP`);
    const wantRegion = await samtoolsView(bam, ['-h'], 'yy');
    const region = await slicefsBoth(bam, ['-q', 'yy', '--no-PG']);
    assert.equal(region.local, wantRegion, `${c.name}: -h yy, local file`);
    assert.equal(region.http, wantRegion, `${c.name}: -h yy, over HTTP`);
    if (c.name === 'othersq') continue; // samtools's rebuilt header (with @PG) reconciles @SQ lines: not mirrored
    // With the default @PG line (samtools rebuilds the header): the same lines but the @PG ones.
    const withPg = await slicefsBoth(bam, ['--header-only']);
    const samtoolsPg = await samtools(['view', '-H', bam]);
    const noPgLines = (s: string) => s.replace(/^@PG\t.*\n/gm, '');
    assert.equal(noPgLines(withPg.local), noPgLines(samtoolsPg.stdout.toString('latin1')), `${c.name}: -H with @PG`);
    assert.match(withPg.local, /\n@PG\tID:slicefs\t[^\n]*\n$/, `${c.name}: the @PG line comes last`);
  }
});

test('records at or past the contig length are read: every region equals samtools view, byte for byte (BAI and CSI)', async () => {
  const sam = HEADER + PAST_LN_READS.join('\n') + '\n';
  const regions = ['yy', 'yy:1-100', 'yy:90-100', 'yy:95-200', 'yy:101-200', 'yy:112', 'yy:150-160', 'yy:200', 'yy:100-', '{yy}:141', '.', 'xx', '*'];
  for (const [name, indexArgs] of [['pastln', []], ['pastlncsi', ['-c']]] as const) {
    const bam = await makeBam(name, sam, [...indexArgs]);
    await serve(bam);
    const whole = await samtoolsView(bam, ['-h'], 'yy');
    assert.match(whole, /^p1\t.*\np2\t/m, 'samtools prints the pair placed past LN');
    for (const r of regions) {
      const want = await samtoolsView(bam, ['-h'], r);
      const got = await slicefsBoth(bam, ['-q', r, '--no-PG']);
      assert.equal(got.local, want, `${name} ${r}: local file`);
      assert.equal(got.http, want, `${name} ${r}: over HTTP`);
    }
    // A BED file (`samtools view -L`): its ranges are not clamped to LN either.
    const bed = join(work, `${name}.bed`);
    await writeFile(bed, 'yy\t100\t200\nyy\t150\t151\n');
    const wantBed = await samtoolsView(bam, ['-L', bed]);
    assert.match(wantBed, /^p1\t/m, 'samtools -L prints the reads past LN');
    const gotBed = await runSlicefs(['view', '--no-index-cache', '--input-file', bam, '--bed-query', bed, '--no-header']);
    assert.equal(gotBed.stdout.toString('latin1'), wantBed, `${name}: --bed-query`);
    // No region: the whole file, as plain samtools view.
    const want = await samtoolsView(bam, ['-h']);
    const got = await slicefsBoth(bam, ['--no-PG']);
    assert.equal(got.local, want, `${name}: the whole file`);
    assert.equal(got.http, want, `${name}: the whole file over HTTP`);
  }
});
