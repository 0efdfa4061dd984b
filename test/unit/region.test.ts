/**
 * samtools region syntax and BED parsing for `slicefs view` (issue 4). Where the meaning of a form
 * matters (open ends, commas, braces), samtools is the oracle: the canonical `chr:beg-end` of our
 * parse must select exactly the records that samtools selects for the original string.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { parseBed } from '../../src/view/bed.js';
import { nearestContigs, OPEN_END, parseRegion, toOneBasedClosed, type Contig } from '../../src/view/region.js';
import { ensureSampleData, samtools } from '../helpers/sample-data.js';

const CONTIGS: Contig[] = [
  { name: 'chr1', length: 1000 },
  { name: 'chr6', length: 500 },
  { name: 'HLA-A*01:01:01:01', length: 3000 },
  { name: 'X:1', length: 50 },
  { name: 'X', length: 80 },
];

const usage = (pattern: RegExp) => (e: unknown) => e instanceof SlicefsError && e.code === 'USAGE' && pattern.test(e.message);

test('samtools region forms parse to 0-based half-open ranges', () => {
  assert.deepEqual(parseRegion('chr1', CONTIGS), { kind: 'contig', contig: 'chr1', start: 0, end: OPEN_END });
  assert.deepEqual(parseRegion('chr1:100', CONTIGS), { kind: 'contig', contig: 'chr1', start: 99, end: OPEN_END });
  assert.deepEqual(parseRegion('chr1:100-200', CONTIGS), { kind: 'contig', contig: 'chr1', start: 99, end: 200 });
  assert.deepEqual(parseRegion('chr1:1,00-2,00', CONTIGS), { kind: 'contig', contig: 'chr1', start: 99, end: 200 });
  assert.deepEqual(parseRegion('chr1:-200', CONTIGS), { kind: 'contig', contig: 'chr1', start: 0, end: 200 });
  assert.deepEqual(parseRegion('chr1:900-5000', CONTIGS), { kind: 'contig', contig: 'chr1', start: 899, end: 5000 });
  assert.deepEqual(parseRegion('*', CONTIGS), { kind: 'unmapped' });
  assert.deepEqual(parseRegion('.', CONTIGS), { kind: 'all' });
  // samtools reads a start of 0 as 1, and k/M/G suffixes and exponents (region-samtools.test.ts).
  assert.deepEqual(parseRegion('chr1:0-10', CONTIGS), { kind: 'contig', contig: 'chr1', start: 0, end: 10 });
  assert.deepEqual(parseRegion('chr1:.1k-2e2', CONTIGS), { kind: 'contig', contig: 'chr1', start: 99, end: 200 });
  assert.deepEqual(parseRegion('chr1:', CONTIGS), { kind: 'contig', contig: 'chr1', start: 0, end: OPEN_END });
  // Not clamped to LN: samtools reads records placed past it (and prints nothing if there are none).
  assert.deepEqual(parseRegion('chr1:2000', CONTIGS), { kind: 'contig', contig: 'chr1', start: 1999, end: OPEN_END });
  assert.deepEqual(parseRegion('chr1:2000-3000', CONTIGS), { kind: 'contig', contig: 'chr1', start: 1999, end: 3000 });
  assert.deepEqual(toOneBasedClosed({ start: 99, end: 200 }), { start: 100, end: 200 });
});

test('contig names with colons: whole names win, braces quote, ambiguity is an error', () => {
  assert.deepEqual(parseRegion('HLA-A*01:01:01:01', CONTIGS), { kind: 'contig', contig: 'HLA-A*01:01:01:01', start: 0, end: OPEN_END });
  assert.deepEqual(parseRegion('HLA-A*01:01:01:01:5-10', CONTIGS), { kind: 'contig', contig: 'HLA-A*01:01:01:01', start: 4, end: 10 });
  assert.deepEqual(parseRegion('{HLA-A*01:01:01:01}:5-10', CONTIGS), { kind: 'contig', contig: 'HLA-A*01:01:01:01', start: 4, end: 10 });
  assert.throws(() => parseRegion('X:1', CONTIGS), usage(/ambiguous: .*\{X:1\} or \{X\}:1/));
  assert.deepEqual(parseRegion('{X:1}', CONTIGS), { kind: 'contig', contig: 'X:1', start: 0, end: OPEN_END });
  assert.deepEqual(parseRegion('{X}:1', CONTIGS), { kind: 'contig', contig: 'X', start: 0, end: OPEN_END });
});

test('malformed regions name the bad part', () => {
  assert.throws(() => parseRegion('chr1:abc-200', CONTIGS), usage(/region 'chr1:abc-200': unexpected 'abc-200' after 'chr1:'/));
  assert.throws(() => parseRegion('chr1:100-x', CONTIGS), usage(/unexpected 'x' after 'chr1:100-'/));
  assert.throws(() => parseRegion('chr1:200-100', CONTIGS), usage(/end 100 is before start 200/));
  assert.throws(() => parseRegion('chr1:-1-10', CONTIGS), usage(/positions start at 1/));
  assert.throws(() => parseRegion(' chr1', CONTIGS), usage(/unknown contig ' chr1'; did you mean 'chr1'/));
  assert.throws(() => parseRegion('{chr1', CONTIGS), usage(/without a closing/));
  // htslib drops the last character after an unclosed-by-':' brace: `{chr1}5` names `chr1}`.
  assert.throws(() => parseRegion('{chr1}5', CONTIGS), usage(/unknown contig 'chr1}'/));
  assert.throws(() => parseRegion('', CONTIGS), usage(/empty region/));
});

test('an unknown contig names the nearest ones', () => {
  assert.throws(() => parseRegion('6:1-100', CONTIGS), usage(/^unknown contig '6'; did you mean 'chr6'\?$/));
  assert.throws(() => parseRegion('CHR1', CONTIGS), usage(/did you mean 'chr1'/));
  assert.throws(() => parseRegion('chrUnknownThing', CONTIGS), usage(/^unknown contig 'chrUnknownThing'$/));
  assert.throws(() => parseRegion('chr1', []), usage(/the header lists no contigs/));
  assert.deepEqual(nearestContigs('chr7', CONTIGS), ['chr1', 'chr6']);
});

test('BED lines: 0-based half-open, comments skipped, errors with file:line:column', () => {
  const bed = '# comment\ntrack name=x\nchr1\t0\t100\tname\nchr6 10 20\n\n';
  assert.deepEqual(parseBed(bed, 'r.bed', CONTIGS), [
    { kind: 'contig', contig: 'chr1', start: 0, end: 100 },
    { kind: 'contig', contig: 'chr6', start: 10, end: 20 },
  ]);
  assert.throws(() => parseBed('chr1\t5\n', 'r.bed', CONTIGS), usage(/^r\.bed:1:1: a BED line needs chrom, start and end/));
  assert.throws(() => parseBed('chr1\t5\tz\n', 'r.bed', CONTIGS), usage(/^r\.bed:1:8: end 'z' is not a number/));
  assert.throws(() => parseBed('chr1\t50\t10\n', 'r.bed', CONTIGS), usage(/end 10 is before start 50/));
  assert.throws(() => parseBed('\n6\t1\t2\n', 'r.bed', CONTIGS), usage(/^r\.bed:2:1: unknown contig '6'; did you mean 'chr6'\?/));
});

test('samtools agrees: each form selects the same records as its canonical chr:beg-end', async () => {
  const sample = await ensureSampleData();
  const header = await samtools(['view', '-H', sample.bam]);
  const contigs = [...header.stdout.toString().matchAll(/^@SQ\tSN:(\S+)\tLN:(\d+)/gm)].map((m) => ({ name: m[1], length: Number(m[2]) }));
  assert.ok(contigs.length >= 2);
  const c = contigs[0];
  const forms = [c.name, `${c.name}:1000`, `${c.name}:-2,000`, `${c.name}:10,001-20,000`, `{${c.name}}:5000-6000`, `${c.name}:${c.length - 500}-${c.length + 1000}`];
  for (const form of forms) {
    const r = parseRegion(form, contigs);
    assert.equal(r.kind, 'contig');
    if (r.kind !== 'contig') continue;
    const canonical = `${r.contig}:${r.start + 1}-${r.end}`;
    const [a, b] = await Promise.all([samtools(['view', '-c', sample.bam, form]), samtools(['view', '-c', sample.bam, canonical])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout.toString(), b.stdout.toString(), `${form} vs ${canonical}`);
  }
});
