/**
 * A CRAM reference whose contig is not as long as the file's `@SQ LN` says: `slicefs view` follows
 * samtools (1.16), the oracle here, byte for byte (records, MD/NM, the header with and without a
 * @PG line, a BAM header's reference list), and refuses where samtools would print bases from a
 * reference that nothing shows to be the file's (docs/SEMANTICS.md, "CRAM reference length").
 * htslib puts the reference's length in place of LN and never compares the @SQ M5; what proves the
 * reference is a single-reference slice's MD5. Each case: (a) LN wrong, M5 right; (b) M5 wrong;
 * (c) no M5, a longer and a shorter reference; (d) an embedded reference; (e) no_ref; and
 * multi-reference slices, which carry no MD5. A small reference and reads generated from a seed;
 * one case over HTTP from the fixture server on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom } from '../helpers/random.js';
import { samtools } from '../helpers/sample-data.js';

const CHR1 = 3000;
const CHR2 = 1000;
/** The longer reference's chr1 goes on past the file's; the shorter one ends inside its last reads. */
const LONG = 3500;
const SHORT = 2500;
const READ = 50;

let work: string;
let server: FixtureServer;
let chr1: string;
let chr2: string;
/** FASTA files (indexed): the file's reference, a longer and a shorter chr1, chr1 with one base changed. */
const refs: Record<'ref' | 'long' | 'short' | 'wrong', string> = { ref: '', long: '', short: '', wrong: '' };
/** CRAM files by case (indexed). */
const cram: Record<string, string> = {};

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

async function fasta(name: string, seqs: [string, string][]): Promise<string> {
  const path = join(work, `${name}.fa`);
  await writeFile(path, seqs.map(([n, s]) => `>${n}\n${s.replace(/.{1,60}/g, '$&\n')}`).join(''));
  assert.equal((await samtools(['faidx', path])).code, 0);
  return path;
}

/** The @SQ text of a case: chr1 with `ln` and the M5 given (none: undefined), chr2 as it is. */
function header(ln: number, m5: string | undefined): string {
  return `@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:${ln}${m5 ? `\tM5:${m5}` : ''}\n@SQ\tSN:chr2\tLN:${CHR2}\tM5:${md5(chr2)}\n`;
}

/** Writes `name`.cram from the reads with samtools's `options`, then gives it `text` as its header. */
async function writeCram(name: string, sam: string, options: string[], text: string): Promise<void> {
  const written = join(work, `${name}.written.cram`);
  const w = await samtools(['view', '-C', '-T', refs.ref, '--no-PG', ...options.flatMap((o) => ['--output-fmt-option', o]), '-o', written, sam]);
  assert.equal(w.code, 0, w.stderr);
  const hdr = join(work, `${name}.hdr`);
  await writeFile(hdr, text);
  const r = await samtools(['reheader', '--no-PG', hdr, written]);
  assert.equal(r.code, 0, r.stderr);
  const file = join(work, `${name}.cram`);
  await writeFile(file, r.stdout);
  assert.equal((await samtools(['index', file])).code, 0);
  cram[name] = file;
}

before(async () => {
  work = await tempDir('slicefs-view-cram-ref-');
  const rnd = new SeededRandom(1704);
  const bases = (n: number) => Array.from({ length: n }, () => rnd.pick(['A', 'C', 'G', 'T'])).join('');
  chr1 = bases(CHR1);
  chr2 = bases(CHR2);
  refs.ref = await fasta('ref', [['chr1', chr1], ['chr2', chr2]]);
  refs.long = await fasta('long', [['chr1', chr1 + bases(LONG - CHR1)], ['chr2', chr2]]);
  refs.short = await fasta('short', [['chr1', chr1.slice(0, SHORT)], ['chr2', chr2]]);
  const at = 1500;
  refs.wrong = await fasta('wrong', [['chr1', chr1.slice(0, at) + (chr1[at] === 'A' ? 'C' : 'A') + chr1.slice(at + 1)], ['chr2', chr2]]);

  // Reads with a few mismatches (MD/NM are regenerated from the reference), pairs, reads over the
  // shorter reference's end and at chr1's last base, a few unplaced.
  type Rec = { tid: number; pos: number; line: string };
  const recs: Rec[] = [];
  const read = (seq: string, pos: number) => {
    const s = [...seq.slice(pos - 1, pos - 1 + READ)];
    for (let i = 0; i < s.length; i++) if (rnd.chance(0.03)) s[i] = s[i] === 'G' ? 'T' : 'G';
    return s.join('');
  };
  const qual = 'I'.repeat(READ);
  let n = 0;
  const single = (tid: number, pos: number) => {
    const seq = tid === 0 ? chr1 : chr2;
    recs.push({ tid, pos, line: `s${n++}\t0\t${tid === 0 ? 'chr1' : 'chr2'}\t${pos}\t60\t${READ}M\t*\t0\t0\t${read(seq, pos)}\t${qual}` });
  };
  for (let i = 0; i < 150; i++) single(0, rnd.int(1, CHR1 - READ + 1));
  for (const pos of [SHORT - 30, SHORT - READ + 1, SHORT + 1, CHR1 - READ + 1]) single(0, pos);
  for (let i = 0; i < 40; i++) single(1, rnd.int(1, CHR2 - READ + 1));
  for (let i = 0; i < 20; i++) {
    const pos = rnd.int(1, CHR1 - 250);
    const mate = pos + 150;
    const tlen = mate + READ - pos;
    recs.push({ tid: 0, pos, line: `p${i}\t99\tchr1\t${pos}\t60\t${READ}M\t=\t${mate}\t${tlen}\t${read(chr1, pos)}\t${qual}` });
    recs.push({ tid: 0, pos: mate, line: `p${i}\t147\tchr1\t${mate}\t60\t${READ}M\t=\t${pos}\t${-tlen}\t${read(chr1, mate)}\t${qual}` });
  }
  recs.sort((a, b) => a.tid - b.tid || a.pos - b.pos);
  const unplaced = [0, 1, 2].map((i) => `u${i}\t4\t*\t0\t0\t*\t*\t0\t0\t${bases(30)}\t${'I'.repeat(30)}`);
  const sam = join(work, 'reads.sam');
  await writeFile(sam, header(CHR1, undefined) + [...recs.map((r) => r.line), ...unplaced].join('\n') + '\n');

  const right = md5(chr1);
  await writeCram('m5ok-ln-short', sam, [], header(SHORT, right));
  await writeCram('m5ok-ln-long', sam, [], header(LONG, right));
  await writeCram('m5bad', sam, [], header(LONG, '0123456789abcdef0123456789abcdef'));
  await writeCram('nom5-ln-long', sam, [], header(LONG, undefined));
  await writeCram('nom5', sam, [], header(CHR1, undefined));
  await writeCram('embedded', sam, ['embed_ref=1'], header(CHR1, right));
  await writeCram('noref', sam, ['no_ref=1'], header(CHR1, right));
  // Few reads per contig: htslib puts both contigs' reads in one slice, which has no MD5.
  await writeCram('multi', sam, ['multi_seq_per_slice=1'], header(CHR1, right));
  await writeCram('multi-m5ok-ln-short', sam, ['multi_seq_per_slice=1'], header(SHORT, right));
  await writeCram('multi-nom5-ln-long', sam, ['multi_seq_per_slice=1'], header(LONG, undefined));

  server = await FixtureServer.start();
  for (const f of [cram['m5ok-ln-short'], `${cram['m5ok-ln-short']}.crai`, refs.ref, `${refs.ref}.fai`]) server.addFile(`/r/${f.slice(work.length + 1)}`, await readFile(f));
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function samtoolsView(file: string, ref: string | null, options: string[] = [], regions: string[] = []): Promise<Output> {
  const r = await samtools(['view', ...(ref ? ['-T', ref] : []), ...options, file, ...regions]);
  return { code: r.code, stdout: r.stdout.toString('latin1'), stderr: r.stderr };
}

async function slicefsView(file: string, ref: string, args: string[] = []): Promise<Output> {
  const input = file.startsWith('http') ? ['--url', file, '--reference-url', ref] : ['--input-file', file, '--reference-file', ref];
  const r = await run(process.execPath, [BIN, 'view', '--no-index-cache', ...input, ...args]);
  return { code: r.code, stdout: r.stdout.toString('latin1'), stderr: r.stderr };
}

const REGIONS = ['chr1:2400-2600', 'chr1:2950-3100', 'chr2', '*'];

/** Records of the whole file and of the regions (samtools -M), without header, equal samtools's. */
async function sameRecords(name: string, ref: string): Promise<void> {
  const file = cram[name];
  const whole = await samtoolsView(file, ref);
  assert.equal(whole.code, 0, `${name}: samtools: ${whole.stderr}`);
  assert.ok(whole.stdout.split('\n').length > 200, `${name}: samtools prints the reads`);
  const got = await slicefsView(file, ref, ['--no-header']);
  assert.equal(got.code, 0, `${name}: ${got.stderr}`);
  assert.equal(got.stdout, whole.stdout, `${name} with ${ref}: whole file`);
  const regions = await samtoolsView(file, ref, ['-M'], REGIONS);
  assert.equal((await slicefsView(file, ref, ['--no-header', ...REGIONS.flatMap((r) => ['-q', r])])).stdout, regions.stdout, `${name} with ${ref}: ${REGIONS.join(' ')}`);
}

/** The header as samtools prints it: with a @PG line (rebuilt: LN is the reference's) and without. */
async function sameHeader(name: string, ref: string): Promise<void> {
  const noPg = (text: string) => text.replace(/^@PG\t.*\n/gm, '');
  const withPg = await samtoolsView(cram[name], ref, ['-H']);
  assert.equal(noPg((await slicefsView(cram[name], ref, ['--header-only'])).stdout), noPg(withPg.stdout), `${name}: header with @PG`);
  const plain = await samtoolsView(cram[name], ref, ['-H', '--no-PG']);
  assert.equal((await slicefsView(cram[name], ref, ['--header-only', '--no-PG'])).stdout, plain.stdout, `${name}: header without @PG`);
}

/** The reference list (name, length) of a BAM's binary header. */
function bamReferences(bam: Buffer): string[] {
  const b = gunzipSync(bam);
  let at = 8 + b.readInt32LE(4);
  const n = b.readInt32LE(at);
  at += 4;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = b.readInt32LE(at);
    out.push(`${b.toString('latin1', at + 4, at + 3 + len)}:${b.readInt32LE(at + 4 + len)}`);
    at += 8 + len;
  }
  return out;
}

/** samtools decodes, slicefs refuses with one line naming the cause. */
async function refused(name: string, ref: string, pattern: RegExp): Promise<void> {
  const want = await samtoolsView(cram[name], ref);
  assert.equal(want.code, 0, `${name}: samtools decodes it: ${want.stderr}`);
  const got = await slicefsView(cram[name], ref, ['--no-header']);
  assert.equal(got.code, 2, `${name} with ${ref}: ${got.stderr}`);
  assert.match(got.stderr, pattern);
  assert.equal(got.stderr.trim().split('\n').length, 1, `one line: ${got.stderr}`);
  assert.equal(got.stdout, '');
}

test('(a) @SQ LN differs from the reference, M5 right: decoded with the reference\'s length, as samtools', async () => {
  for (const name of ['m5ok-ln-short', 'm5ok-ln-long']) {
    await sameRecords(name, refs.ref);
    await sameHeader(name, refs.ref);
    const got = await slicefsView(cram[name], refs.ref, ['--no-header', '-q', 'chr1']);
    const ln = name.endsWith('short') ? SHORT : LONG;
    assert.equal(got.stderr, `slicefs: warning: the reference's chr1 is ${CHR1} bases long, the CRAM's @SQ says ${ln}; its bases match the CRAM's checksums, so it is decoded with the reference's length (as samtools does)\n`);
    // A BAM's reference list has the reference's length, with or without @PG.
    for (const pg of [[], ['--no-PG']]) {
      const want = await samtools(['view', '-b', '-T', refs.ref, ...pg, cram[name]]);
      const bam = await run(process.execPath, [BIN, 'view', '--no-index-cache', '--input-file', cram[name], '--reference-file', refs.ref, '--output-format', 'bam', ...pg]);
      assert.deepEqual(bamReferences(bam.stdout), bamReferences(want.stdout));
      assert.deepEqual(bamReferences(bam.stdout), [`chr1:${CHR1}`, `chr2:${CHR2}`]);
    }
  }
  // Over HTTP: the reference's length comes from its remote .fai.
  const url = server.url('/r/m5ok-ln-short.cram');
  const want = await samtoolsView(cram['m5ok-ln-short'], refs.ref, ['-M'], REGIONS);
  assert.equal((await slicefsView(url, server.url('/r/ref.fa'), ['--no-header', ...REGIONS.flatMap((r) => ['-q', r])])).stdout, want.stdout, 'over HTTP');
});

test('(b) the @SQ M5 wrong: not compared (the slices\' MD5s prove the reference); a wrong reference is refused', async () => {
  await sameRecords('m5bad', refs.ref);
  await sameHeader('m5bad', refs.ref);
  // One base changed: the slice over it does not match its MD5; samtools fails too.
  const want = await samtoolsView(cram.nom5, refs.wrong);
  assert.notEqual(want.code, 0);
  assert.match(want.stderr, /MD5 checksum reference mismatch/);
  const got = await slicefsView(cram.nom5, refs.wrong, ['--no-header']);
  assert.equal(got.code, 2);
  assert.match(got.stderr, /^slicefs: error: wrong reference: the bases of chr1:\d+-\d+ do not match the CRAM \(MD5 [0-9a-f]{32}, the CRAM says [0-9a-f]{32}\); give the reference the file was written with\n$/);
});

test('(c) no M5: a reference longer than LN decodes, as does a longer one whose start is the file\'s; a shorter one is refused', async () => {
  await sameRecords('nom5-ln-long', refs.ref);
  await sameRecords('nom5', refs.long);
  await sameHeader('nom5', refs.long);
  // The slice over the shorter reference's end no longer matches its MD5: samtools fails too.
  const want = await samtoolsView(cram.nom5, refs.short);
  assert.notEqual(want.code, 0);
  assert.match(want.stderr, /MD5 checksum reference mismatch/);
  const got = await slicefsView(cram.nom5, refs.short, ['--no-header', '-q', 'chr1:2000-2100']);
  assert.equal(got.code, 2);
  assert.match(got.stderr, new RegExp(`^slicefs: error: wrong reference: the bases of chr1:\\d+-${SHORT} do not match the CRAM \\(MD5 [0-9a-f]{32}, the CRAM says [0-9a-f]{32}\\) \\(the reference's chr1 ends at ${SHORT}, the slice reaches \\d+\\); give the reference the file was written with\\n$`));
  assert.equal(got.stdout, '');
});

test('(d) an embedded reference: its bases, whatever reference is given; (e) no_ref: the reference is not used', async () => {
  for (const ref of [refs.long, refs.short]) {
    await sameHeader('embedded', ref);
    await sameHeader('noref', ref);
  }
  await sameRecords('embedded', refs.long);
  await sameRecords('noref', refs.long);
  await sameRecords('noref', refs.short);
  // htslib puts the shorter reference's length in place of LN and prints N for the embedded bases
  // past it; slicefs prints the slice's own bases: what samtools prints without the reference.
  const withShort = await samtoolsView(cram.embedded, refs.short);
  const own = await samtoolsView(cram.embedded, null);
  assert.equal(own.code, 0, own.stderr);
  assert.notEqual(withShort.stdout, own.stdout);
  assert.match(withShort.stdout, /\tN{50}\t/);
  assert.equal((await slicefsView(cram.embedded, refs.short, ['--no-header'])).stdout, own.stdout);
});

test('multi-reference slices (no MD5): decoded when the @SQ M5 proves the reference, else refused where samtools prints', async () => {
  // The @SQ line's LN is wrong, its M5 names the reference given: decoded as samtools does.
  await sameRecords('multi-m5ok-ln-short', refs.ref);
  await sameRecords('multi', refs.ref);
  // A longer reference is not the one the M5 names: samtools prints its bases, slicefs refuses.
  await refused('multi', refs.long, new RegExp(`^slicefs: error: wrong reference: its chr1 is ${LONG} bases long, the CRAM's @SQ says ${CHR1}, and its MD5 is [0-9a-f]{32}, the @SQ line's M5 ${md5(chr1)}; give the reference the file was written with\\n$`));
  // A shorter one: samtools prints N past its end.
  assert.match((await samtoolsView(cram.multi, refs.short)).stdout, /\tN{50}\t/);
  await refused('multi', refs.short, /^slicefs: error: wrong reference: its chr1 is 2500 bases long, the CRAM's @SQ says 3000, and its MD5 is [0-9a-f]{32}, the @SQ line's M5 [0-9a-f]{32}; give/);
  // No M5 and another length: nothing shows the reference is the file's.
  await refused('multi-nom5-ln-long', refs.ref, new RegExp(`^slicefs: error: wrong reference: its chr1 is ${CHR1} bases long, the CRAM's @SQ says ${LONG}, and neither the slice nor the @SQ line has an MD5 that would show it is the file's reference; give the reference the file was written with\\n$`));
});
