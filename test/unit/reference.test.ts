/**
 * The FASTA reference behind CRAM decoding, against samtools: a seeded FASTA (several contigs of
 * different lengths and line widths, one a whole number of lines, one shorter than a line, one
 * base long, soft-masked lowercase runs, a name with colons, a description after a name), written
 * with LF, with CRLF and without a final newline. `buildFai` must write the bytes `samtools faidx`
 * writes (and fail where it fails, naming the line), and `fetch` through LocalSource + BlockCache +
 * RangeReader (the production path) must return what `samtools faidx ref.fa region` prints,
 * uppercased, for seeded random ranges.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BlockCache } from '../../src/cache/block-cache.js';
import { DEFAULT_CACHE, DEFAULT_READER, type ReaderConfig } from '../../src/config.js';
import { SlicefsError } from '../../src/errors.js';
import { RangeReader } from '../../src/reader/range-reader.js';
import { LocalSource } from '../../src/source/local-source.js';
import { Stats } from '../../src/stats.js';
import { FastaReference, buildFai, localFai, parseFai } from '../../src/view/reference.js';
import { SeededRandom } from '../helpers/random.js';
import { samtools } from '../helpers/sample-data.js';

interface Contig {
  name: string;
  /** The `>` line after the `>` (a description may follow the name). */
  header: string;
  width: number;
  /** As written: mixed case. */
  seq: string;
}

const CONTIG_PLAN: { header: string; length: number; width: number }[] = [
  { header: 'chr1 test chromosome 1, soft-masked', length: 150_007, width: 60 },
  { header: 'chr2', length: 60 * 400, width: 60 }, // ends exactly at a line end
  { header: 'tiny', length: 17, width: 60 }, // shorter than one line
  { header: 'HLA-A*01:01:01:01', length: 3_371, width: 60 }, // colons: braces in samtools regions
  { header: 'chrW\twith a tab before its description', length: 10_001, width: 80 },
  { header: 'one', length: 1, width: 60 },
  { header: 'chrM', length: 16_569, width: 70 },
];

/** Bases with runs of lowercase (soft-masked repeats) and of N, as real references have. */
function makeContigs(seed: number): Contig[] {
  const rng = new SeededRandom(seed);
  return CONTIG_PLAN.map(({ header, length, width }) => {
    const out: string[] = [];
    let lower = false;
    let n = false;
    for (let i = 0; i < length; i++) {
      if (rng.chance(0.002)) lower = !lower;
      if (rng.chance(n ? 0.05 : 0.0005)) n = !n;
      const b = n ? 'N' : 'ACGT'[rng.int(0, 3)];
      out.push(lower ? b.toLowerCase() : b);
    }
    return { name: header.split(/\s/)[0], header, width, seq: out.join('') };
  });
}

function fastaText(contigs: Contig[], eol: string, finalNewline: boolean): string {
  const parts: string[] = [];
  for (const c of contigs) {
    parts.push(`>${c.header}${eol}`);
    for (let p = 0; p < c.seq.length; p += c.width) parts.push(`${c.seq.slice(p, p + c.width)}${eol}`);
  }
  const text = parts.join('');
  return finalNewline ? text : text.slice(0, -eol.length);
}

const CONTIGS = makeContigs(20240611);
const VARIANTS = [
  { file: 'lf.fa', text: fastaText(CONTIGS, '\n', true) },
  { file: 'crlf.fa', text: fastaText(CONTIGS, '\r\n', true) },
  { file: 'noeol.fa', text: fastaText(CONTIGS, '\n', false) },
];

const root = await mkdtemp(join(tmpdir(), 'slicefs-ref-'));
after(() => rm(root, { recursive: true, force: true }));

/** A fresh directory holding every variant (and no .fai). */
async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir);
  for (const v of VARIANTS) await writeFile(join(dir, v.file), v.text, 'latin1');
  return dir;
}

/**
 * A reference read the way `view` reads one. Blocks of 16 KiB instead of 1 MiB so that a ~200 KB
 * file spans many blocks and fetches cross block boundaries.
 */
async function openReference(path: string, faiText: string, reader: Partial<ReaderConfig> = {}) {
  const source = new LocalSource(path);
  const cache = new BlockCache({ ...DEFAULT_CACHE, blockSize: 16 * 1024 }, new Stats());
  const rr = new RangeReader(cache, { source, version: await source.version() }, { ...DEFAULT_READER, ...reader });
  return new FastaReference(rr, parseFai(faiText, `${path}.fai`), path);
}

/** The sequences `samtools faidx path regions...` prints, one string per region, line breaks removed. */
async function samtoolsFetch(path: string, regions: string[]): Promise<string[]> {
  const r = await samtools(['faidx', path, ...regions]);
  assert.equal(r.code, 0, r.stderr);
  const out: string[] = [];
  for (const line of r.stdout.toString('latin1').split('\n')) {
    if (line.startsWith('>')) out.push('');
    else out[out.length - 1] += line;
  }
  assert.equal(out.length, regions.length);
  return out;
}

const badResponse = (pattern: RegExp) => (e: unknown) => e instanceof SlicefsError && e.code === 'BAD_RESPONSE' && pattern.test(e.message);

test('buildFai writes the bytes samtools faidx writes', async () => {
  const dir = await freshDir('build');
  for (const v of VARIANTS) {
    const path = join(dir, v.file);
    const ours = await buildFai(path);
    const r = await samtools(['faidx', path]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ours, await readFile(`${path}.fai`, 'latin1'), v.file);
  }
});

test('buildFai agrees with samtools on odd FASTA layouts, and fails where samtools fails, naming the line', async () => {
  const dir = join(root, 'odd');
  await mkdir(dir);
  // [name, text, line of the error or undefined when both must succeed]
  const cases: [string, string, number | undefined][] = [
    ['empty-entry', '>a\n>b\nACGT\n', undefined], // a header without bases is left out
    ['duplicate', '>a\nAC\n>a\nGGG\n', undefined], // the first of two equal names wins
    ['trailing-blank-lines', '>a\nACGT\nAC\n\n\n>b\nA\n', undefined],
    ['crlf-description', '>a x y\r\nACGT\r\nAC\r\n>b\r\nA\r\n', undefined],
    ['leading-blanks-in-name', '>  a b\nAC\n', undefined],
    ['spaces-in-lines', '>a\nAC GT\nACG T\nA\n', undefined], // counted as bytes, not bases
    ['crlf-blank-line', '>a\nAC\n\r\n>b\nA\n', undefined],
    ['blank-line-inside', '>a\nACGT\n\nAC\n', 4],
    ['short-line-inside', '>a\nACGT\nAC\nACGT\n', 4],
    ['long-line', '>a\nACGT\nACGTA\n', 3],
    ['long-last-line-no-eol', '>a\nACG\nACGT', 3],
    ['text-before-header', 'x\n>a\nAC\n', 1],
    ['last-header-without-bases', '>a\nAC\n>b\n', 3],
    ['last-header-at-eof', '>a\nAC\n>b c', 3],
    ['empty', '', 1],
  ];
  for (const [name, text, errorLine] of cases) {
    const path = join(dir, `${name}.fa`);
    await writeFile(path, text, 'latin1');
    const r = await samtools(['faidx', path]);
    if (errorLine === undefined) {
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(await buildFai(path), await readFile(`${path}.fai`, 'latin1'), name);
    } else {
      assert.notEqual(r.code, 0, `${name}: samtools accepted it`);
      await assert.rejects(buildFai(path), badResponse(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${errorLine}: `)), name);
    }
  }
  // Not references: FASTQ and compressed FASTA are refused by name.
  await writeFile(join(dir, 'reads.fq'), '@r1\nACGT\n+\nIIII\n');
  await assert.rejects(buildFai(join(dir, 'reads.fq')), badResponse(/:1: this is FASTQ/));
  await writeFile(join(dir, 'ref.fa.gz'), Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0]));
  await assert.rejects(buildFai(join(dir, 'ref.fa.gz')), badResponse(/compressed/));
  await assert.rejects(buildFai(join(dir, 'missing.fa')), (e: unknown) => e instanceof SlicefsError && e.code === 'NOT_FOUND');
});

test('fetch returns what samtools faidx prints, uppercased, for random ranges', async () => {
  const dir = await freshDir('fetch');
  const rng = new SeededRandom(7);
  for (const v of VARIANTS) {
    const path = join(dir, v.file);
    const ref = await openReference(path, await buildFai(path));
    assert.deepEqual(ref.names(), CONTIGS.map((c) => c.name));
    const ranges: { contig: Contig; start: number; end: number }[] = [];
    for (let i = 0; i < 200; i++) {
      const contig = rng.pick(CONTIGS);
      const len = contig.seq.length;
      const u = rng.next();
      let start: number;
      let end: number;
      if (u < 0.1) [start, end] = [0, len]; // whole contig
      else if (u < 0.2) [start, end] = [rng.int(Math.max(0, len - 200), len - 1), len + rng.int(0, 50)]; // past the end: clipped
      else if (u < 0.3) {
        start = rng.int(0, Math.floor((len - 1) / contig.width)) * contig.width; // at a line start
        end = Math.min(len, start + contig.width * rng.int(1, 3));
      } else {
        start = rng.int(0, len - 1);
        end = Math.min(len, start + rng.int(1, u < 0.9 ? 300 : 20_000));
      }
      ranges.push({ contig, start, end });
    }
    // One samtools run for all ranges: 1-based closed regions, braces around names with ':'.
    const regions = ranges.map(({ contig, start, end }) => `{${contig.name}}:${start + 1}-${end}`);
    const want = await samtoolsFetch(path, regions);
    const got = await Promise.all(ranges.map(({ contig, start, end }) => ref.fetch(contig.name, start, end)));
    ranges.forEach(({ contig, start, end }, i) => {
      const expected = contig.seq.slice(start, end).toUpperCase();
      assert.equal(want[i].toUpperCase(), expected, `samtools vs model, ${v.file} ${regions[i]}`);
      assert.equal(got[i].toString('latin1'), expected, `${v.file} ${regions[i]}`);
    });
  }
});

test('fetch clips to the contig, knows its names, and refuses unknown ones', async () => {
  const dir = await freshDir('clip');
  const path = join(dir, 'lf.fa');
  const ref = await openReference(path, await buildFai(path));
  const chr2 = CONTIGS[1];
  assert.equal(ref.has('chr2'), true);
  assert.equal(ref.has('chr2 '), false);
  assert.equal(ref.length('tiny'), 17);
  assert.equal(ref.length('nope'), undefined);
  assert.equal((await ref.fetch('chr2', -100, 10)).toString(), chr2.seq.slice(0, 10).toUpperCase());
  assert.equal((await ref.fetch('chr2', 23_990, 1e9)).toString(), chr2.seq.slice(23_990).toUpperCase());
  assert.equal((await ref.fetch('chr2', 500, 500)).length, 0);
  assert.equal((await ref.fetch('chr2', 30_000, 40_000)).length, 0);
  assert.equal((await ref.fetch('one', 0, 1)).toString(), CONTIGS[5].seq.toUpperCase());
  await assert.rejects(ref.fetch('chr3', 0, 10), (e: unknown) => e instanceof SlicefsError && e.code === 'NOT_FOUND' && /'chr3'/.test(e.message));
});

test('a fetch reads only the blocks that hold its bases', async () => {
  const dir = await freshDir('blocks');
  const path = join(dir, 'lf.fa');
  const reads: [number, number][] = [];
  class CountingSource extends LocalSource {
    override read(start: number, end: number, onData: (chunk: Buffer) => void): Promise<void> {
      reads.push([start, end]);
      return super.read(start, end, onData);
    }
  }
  const source = new CountingSource(path);
  const blockSize = 16 * 1024;
  const cache = new BlockCache({ ...DEFAULT_CACHE, blockSize }, new Stats());
  // No readahead, as view reads CRAM data: what is fetched is what fetch asked for.
  const rr = new RangeReader(cache, { source, version: await source.version() }, { ...DEFAULT_READER, readaheadMaxBytes: 0 });
  const fai = parseFai(await buildFai(path), 'lf.fa.fai');
  const ref = new FastaReference(rr, fai, path);
  const e = fai.get('chr1')!;
  const start = 100_000;
  const end = 100_500;
  await ref.fetch('chr1', start, end);
  const firstByte = e.offset + Math.floor(start / 60) * 61 + (start % 60);
  const lastByte = e.offset + Math.floor((end - 1) / 60) * 61 + ((end - 1) % 60);
  const blocks = Math.floor(lastByte / blockSize) - Math.floor(firstByte / blockSize) + 1;
  assert.equal(reads.length, 1);
  assert.equal(reads[0][0], Math.floor(firstByte / blockSize) * blockSize);
  assert.equal(reads[0][1] - reads[0][0], blocks * blockSize);
});

test('a .fai that does not describe the FASTA is an error, not wrong bases', async () => {
  const dir = await freshDir('mismatch');
  const lf = join(dir, 'lf.fa');
  const crlf = join(dir, 'crlf.fa');
  // The LF layout over the CRLF file: every offset is early, line ends are off by one byte per line.
  const wrongLayout = await openReference(crlf, await buildFai(lf));
  await assert.rejects(wrongLayout.fetch('chr1', 1000, 1200), badResponse(/chr1:1001-1200: byte \d+ .* the \.fai does not describe this file/));
  // The CRLF index over the (shorter) LF file: the last sequences end past the end of the file.
  await assert.rejects(openReference(lf, await buildFai(crlf)), badResponse(/the \.fai is not this FASTA's/));
});

test('localFai writes a missing .fai atomically and uses an existing one as it is', async () => {
  const dir = await freshDir('local');
  const path = join(dir, 'lf.fa');
  const notes: string[] = [];
  const text = await localFai(path, (m) => notes.push(m));
  assert.equal(notes.length, 1);
  assert.match(notes[0], /lf\.fa\.fai not found: indexed lf\.fa \(7 sequences\) and wrote .*lf\.fa\.fai$/);
  assert.equal(await readFile(`${path}.fai`, 'latin1'), text);
  assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.tmp')), [], 'no temporary file left');
  const r = await samtools(['faidx', '--fai-idx', join(dir, 'samtools.fai'), path]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(text, await readFile(join(dir, 'samtools.fai'), 'latin1'));

  // An existing .fai is read as it is (never rebuilt or rewritten), and nothing is noted.
  const existing = 'chr1\t10\t38\t60\t61\n';
  await writeFile(`${path}.fai`, existing);
  const again: string[] = [];
  assert.equal(await localFai(path, (m) => again.push(m)), existing);
  assert.deepEqual(again, []);
  assert.equal(await readFile(`${path}.fai`, 'latin1'), existing);
});

test('localFai keeps the index in memory when the directory is not writable', async () => {
  const dir = await freshDir('readonly');
  const path = join(dir, 'lf.fa');
  await chmod(root, 0o755);
  await chmod(dir, 0o555);
  let result: { text: string; notes: string[] };
  if (process.getuid?.() === 0) {
    // root writes anywhere: run localFai in a child process as `nobody`, for whom the directory
    // really is read-only (a real EACCES from the kernel, not a simulated one).
    const module = fileURLToPath(new URL('../../src/view/reference.js', import.meta.url));
    const script =
      `const { localFai } = await import(${JSON.stringify(module)}); const notes = [];` +
      `const text = await localFai(${JSON.stringify(path)}, (m) => notes.push(m));` +
      'process.stdout.write(JSON.stringify({ text, notes }));';
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const code = await new Promise<number | null>((res) => child.once('close', res));
    assert.equal(code, 0, Buffer.concat(err).toString());
    result = JSON.parse(Buffer.concat(out).toString()) as { text: string; notes: string[] };
  } else {
    const notes: string[] = [];
    result = { text: await localFai(path, (m) => notes.push(m)), notes };
  }
  await chmod(dir, 0o755);
  assert.equal(result.text, await buildFai(path));
  assert.equal(result.notes.length, 1);
  assert.match(result.notes[0], /indexed lf\.fa \(7 sequences\); kept in memory \(cannot write .*lf\.fa\.fai: permission denied\b.*\)$/);
  assert.deepEqual((await readdir(dir)).sort(), VARIANTS.map((v) => v.file).sort(), 'neither a .fai nor a temporary file was created');
});

test('parseFai reads samtools indexes and names the line and field of a bad one', () => {
  const label = 'ref.fa.fai';
  const fai = parseFai('chr1\t248956422\t112\t60\t61\r\n\nchrM\t16569\t253105752\t70\t71\nq\t4\t3\t4\t5\t10\n', label);
  assert.deepEqual([...fai.values()], [
    { name: 'chr1', length: 248956422, offset: 112, lineBases: 60, lineBytes: 61 },
    { name: 'chrM', length: 16569, offset: 253105752, lineBases: 70, lineBytes: 71 },
    { name: 'q', length: 4, offset: 3, lineBases: 4, lineBytes: 5 },
  ]);
  const good = 'chr1\t10\t6\t60\t61\n';
  const cases: [string, RegExp][] = [
    [`${good}chr2\t10\t6\t60\n`, /^ref\.fa\.fai:2:13: expected 5 tab-separated fields .* got 4$/],
    [`${good}chr2\t10\t6\t60\t61\t0\t9\n`, /^ref\.fa\.fai:2:19: expected 5 .* got 7$/],
    [`${good}chr2\t1x\t6\t60\t61\n`, /^ref\.fa\.fai:2:6: length '1x' is not a non-negative integer$/],
    [`${good}chr2 10 6 60 61\n`, /^ref\.fa\.fai:2:16: expected 5 .* got 1$/],
    [`${good}${good}chr2\t10\t-6\t60\t61\n`, /^ref\.fa\.fai:2:1: sequence 'chr1' is already on line 1$/],
    [`${good}chr2\t10\t-6\t60\t61\n`, /^ref\.fa\.fai:2:9: offset '-6' is not a non-negative integer$/],
    [`${good}\n\nchr2\t10\t6\t0\t1\n`, /^ref\.fa\.fai:4:11: linebases is 0 but 'chr2' has 10 bases$/],
    [`${good}chr2\t10\t6\t60\t59\n`, /^ref\.fa\.fai:2:14: linewidth 59 is less than linebases 60$/],
    [`${good}chr2\t99999999999999999\t6\t60\t61\n`, /^ref\.fa\.fai:2:6: length 99999999999999999 is too large$/],
    [`${good}chr2\t10\t6\t60\t61\tq\n`, /^ref\.fa\.fai:2:17: qualoffset 'q' is not/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(() => parseFai(text, label), badResponse(pattern), JSON.stringify(text));
  }
});
