/**
 * Region strings: exactly samtools's grammar (issue 15, finding 11), decided by experiment. A
 * seeded set of generated strings (zero and negative starts, k/M/G suffixes in either case,
 * exponents, fractions, commas, spaces, braces, open and reversed ranges, past the end, unknown
 * contigs, names with ':' and '-' that the header really has, `*`, `.`) goes through
 * `samtools view FILE REGION` and through slicefs's region parser and view (in this process, on
 * the same local BAM): the SAM text must be the same, or both must refuse. A handful also goes
 * through the CLI, where a refusal is one `slicefs: error:` line and exit 2.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { DEFAULT_CACHE, DEFAULT_READER } from '../../src/config.js';
import { SlicefsError } from '../../src/errors.js';
import { LocalSource } from '../../src/source/local-source.js';
import { Stats } from '../../src/stats.js';
import { parseRegion } from '../../src/view/region.js';
import { formatPlan } from '../../src/view/sam-format-pool.js';
import { runView } from '../../src/view/view-session.js';
import { cleanup, run, runSlicefs, tempDir } from '../helpers/daemon.js';
import { SeededRandom } from '../helpers/random.js';
import { makeTrickyBam, TRICKY_CONTIGS } from '../helpers/region-bam.js';

let work: string;
let bam: string;

before(async () => {
  work = await tempDir('slicefs-region-');
  bam = await makeTrickyBam(work);
});
after(() => cleanup(work));

/** What samtools does with a region: its records as SAM text, or a refusal. */
async function samtoolsView(region: string): Promise<{ refused: boolean; sam: string }> {
  const r = await run('samtools', ['view', bam, region], { timeoutMs: 20_000 });
  // samtools warns, prints nothing and exits 0 for a region it cannot use ("Continue anyway").
  const refused = /specifies an invalid region or unknown reference/.test(r.stderr);
  assert.equal(r.code, 0, `samtools view '${region}': ${r.stderr}`);
  return { refused, sam: r.stdout.toString('latin1') };
}

/** The same through slicefs's parser and view, in this process. */
async function slicefsView(region: string): Promise<{ refused: boolean; sam: string; message?: string }> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  try {
    await runView({
      data: new LocalSource(bam),
      indexCandidates: () => [new LocalSource(`${bam}.bai`)],
      regions: (contigs) => [parseRegion(region, contigs)],
      contained: false,
      format: 'sam',
      formatting: formatPlan(0),
      header: 'without',
      cache: DEFAULT_CACHE,
      reader: DEFAULT_READER,
      stats: new Stats(),
      out,
    });
  } catch (err) {
    if (err instanceof SlicefsError && err.code === 'USAGE') return { refused: true, sam: '', message: err.message };
    throw err;
  }
  return { refused: false, sam: Buffer.concat(chunks).toString('latin1') };
}

/**
 * Hand-picked strings: the finding's three, and the corners found while establishing the grammar
 * (each one's samtools behaviour is in the comment).
 */
const FIXED = [
  'chr1:0-1000', // a start of 0 is a start of 1
  'chr1:1-1k',
  'chr1:1-1e9',
  'chr1:1-1K',
  'chr1:1-1.5k', // 1500
  'chr1:.5k-1k', // 500..1000
  'chr1:1-1m',
  'chr1:1-1G',
  'chr1:1.k', // 1000
  'chr1:1,k', // 1000: commas anywhere among the digits
  'chr1:1,,,5', // 15
  'chr1:,1', // 1
  'chr1:,,,', // no digits, then a comma: the whole contig
  'chr1:,-5', // likewise
  'chr1:1.5', // the fraction is dropped (samtools warns): 1
  'chr1:1e-1', // 0: the whole contig
  'chr1:15e-1', // 1
  'chr1:1e', // 1: an exponent without digits is 0
  'chr1:1e-',
  'chr1:1e+3',
  'chr1:1ek', // refused: a suffix after an exponent
  'chr1:1kb', // refused
  'chr1:e5', // refused: no digits
  'chr1:k', // refused
  'chr1:.', // refused
  'chr1:0x10', // refused
  'chr1:+5',
  'chr1:5-+10',
  'chr1: 5-10', // white space before a number is skipped
  'chr1:1- 5',
  'chr1:\t1-5',
  'chr1:1 -5', // refused: white space after one is not
  'chr1:1-5 ', // refused
  ' chr1:1-5', // refused: names are not trimmed
  'chr1 :1-5', // refused
  'chr1:5-', // to the end
  'chr1:5-0', // an end of 0 is the contig's end
  'chr1:1-0',
  'chr1:0',
  'chr1:0-0',
  'chr1:0-',
  'chr1:-0',
  'chr1:-1', // 1..1
  'chr1:-5', // 1..5
  'chr1: -5',
  'chr1:-1.5', // -1.5 is -1: 1..1
  'chr1:-', // the whole contig
  'chr1:', // the whole contig
  'chr1:--5', // refused: start after end
  'chr1:-5-10', // refused: "Coordinates must be > 0"
  'chr1:-5-', // refused
  'chr1:-0-5', // 1..5
  'chr1:+0-5',
  'chr1:10-5', // refused: reversed
  'chr1:6-5', // refused
  'chr1:5-5',
  'chr1:2-1.5', // refused: 2 > 1
  'chr1:1.5,0', // refused: a comma after a fraction
  'chr1:1-2-3', // refused
  'chr1:1-1k,5', // a comma after the end ends the region: 1..1000
  'chr1:1-,x', // 1 to the end
  'chr1:-5k5', // 1..5000: a digit after a negative start's suffix ends it
  'chr1:1k,5', // refused: not after a start
  'chr1:1-5,x', // refused: '5,' is the number, then 'x'
  'chr1:5000', // past the end: nothing
  'chr1:1996-1996',
  'chr1:2000',
  'chr1:2001-3000',
  // (`chr1:9223372034707292159`, just before htslib's HTS_POS_MAX, makes samtools loop forever.)
  'chr1:9223372034707292160', // at HTS_POS_MAX: refused (the start is after the open end)
  'chr1:1-9223372036854775807', // the largest 64-bit end: the whole contig
  'chr1:-9223372036854775807', // likewise
  'chr1:1-1e15',
  '*',
  '.',
  ' *', // refused
  '* ', // refused
  '*:1-5', // refused
  '.:1-5', // refused
  '',
  'chr1:1-5', // refused: ambiguous (a contig, and chr1 with a range)
  '{chr1:1-5}',
  '{chr1:1-5}:1-2',
  '{chr1}:1-5',
  'chr1:1-5:3', // contig 'chr1:1-5' from 3
  'chr1:1-5:1-2',
  'chr1:abc', // refused: ambiguous, though 'abc' is no range
  '{chr1:abc}',
  '{chr1:abc}:2-9',
  'chr1:abc:2-9',
  'X:1', // refused: ambiguous
  '{X:1}',
  '{X}:1',
  'X:1:5-6',
  'X:2',
  'HLA-A*01:01',
  'HLA-A*01:01:5-20',
  '{HLA-A*01:01}:5',
  'HLA-A*01', // refused: unknown
  'chr2-3',
  'chr2-3:1-100',
  'chr2:1-100',
  'chr2:350', // the placed unmapped read
  'chrUn_x:1-1k',
  'chrEmpty',
  'chrEmpty:1-1000',
  '{chr1}',
  '{chr1}5', // refused: names 'chr1}'
  '{chr1}x', // refused
  '{chr1', // refused: no closing brace
  '{chr1}:',
  '{chr1}:5',
  '{}', // refused
  '{chr1}}:1-5', // refused
  'chr9', // refused: unknown
  'chr3:1-10', // refused
  '6:1-100', // refused
  'CHR1', // refused: names are case-sensitive
];

const NAMED = TRICKY_CONTIGS.map((c) => c.name);
const UNKNOWN = ['chr3', 'chr', 'Chr1', 'chr1 ', 'chrUn', 'X:', 'HLA-A*01', 'chr2-', '1'];

/** One position as a user might type it; `len` is the contig's length. Values stay below 1e13. */
function position(r: SeededRandom, len: number): string {
  const base = r.pick([0, 1, 2, r.int(1, len), r.int(1, len), len - 1, len, len + 1, r.int(len, len * 3)]);
  switch (r.int(0, 9)) {
    case 0: {
      // Commas, anywhere among the digits (samtools takes `1,,0` as 10).
      const d = String(base).split('');
      return d.map((c, i) => (i > 0 && r.chance(0.4) ? `,${c}` : c)).join('') + (r.chance(0.1) ? ',' : '');
    }
    case 1: {
      // A k/M/G suffix, either case, with a whole or fractional mantissa.
      const [suffix, scale] = r.pick([['k', 1e3], ['K', 1e3], ['m', 1e6], ['M', 1e6], ['g', 1e9], ['G', 1e9]] as const);
      const mantissa = r.chance(0.5) ? String(r.int(0, 3)) : (Math.max(base, 1) / scale).toFixed(r.int(1, 4)).replace(/^0(?=\.)/, r.chance(0.5) ? '' : '0');
      return `${mantissa}${suffix}`;
    }
    case 2: {
      // An exponent: e/E, with or without a sign, positive or negative.
      const digits = String(base);
      const e = r.int(-3, 4);
      return `${digits}${r.pick(['e', 'E'])}${e < 0 ? '-' : r.pick(['', '+'])}${Math.abs(e)}`;
    }
    case 3:
      return `${base}.${r.int(0, 99)}`; // a fraction, dropped
    case 4:
      return `${r.pick(['+', ' ', '\t', ' +'])}${base}`;
    case 5:
      return `-${base}`;
    default:
      return String(base);
  }
}

/** A range after the ':' (possibly empty, open at either end, reversed, or with junk). */
function range(r: SeededRandom, len: number): string {
  switch (r.int(0, 9)) {
    case 0:
      return '';
    case 1:
      return position(r, len);
    case 2:
      return `-${position(r, len)}`;
    case 3:
      return `${position(r, len)}-`;
    case 4:
      return `${position(r, len)}-${position(r, len)}${r.pick(['', '', '', ' ', 'x', '-3', ',', 'bp'])}`;
    default: {
      const a = r.int(0, len + 5);
      const b = r.chance(0.2) ? r.int(0, a) : r.int(a, len + 50);
      return `${r.chance(0.8) ? a : position(r, len)}-${r.chance(0.8) ? b : position(r, len)}`;
    }
  }
}

/** `count` region strings from `seed`: a contig (known, braced, unknown) and maybe a range. */
function generatedRegions(seed: number, count: number): string[] {
  const r = new SeededRandom(seed);
  const out: string[] = [];
  while (out.length < count) {
    const known = r.chance(0.85);
    const c = known ? r.pick(TRICKY_CONTIGS) : { name: r.pick(UNKNOWN), length: 1000 };
    const braced = r.chance(0.2);
    const name = braced ? `{${c.name}}` : c.name;
    const text = r.chance(0.15) ? name : `${name}:${range(r, c.length)}`;
    out.push(text);
  }
  return out;
}

test('findings: chr1:0-1000, chr1:1-1k and chr1:1-1e9 select what samtools selects', async () => {
  for (const region of ['chr1:0-1000', 'chr1:1-1k', 'chr1:1-1e9']) {
    const want = await samtoolsView(region);
    assert.equal(want.refused, false);
    assert.ok(want.sam.length > 0, `${region}: samtools finds records`);
    assert.equal((await slicefsView(region)).sam, want.sam, region);
  }
});

test('hand-picked and 240 seeded generated regions: the same records as samtools view, or both refuse', async () => {
  const regions = [...FIXED, ...NAMED, ...generatedRegions(1515, 240)];
  const mismatches: string[] = [];
  let refusedBoth = 0;
  let acceptedWithRecords = 0;
  for (const region of regions) {
    const [want, got] = [await samtoolsView(region), await slicefsView(region)];
    if (want.refused !== got.refused) {
      mismatches.push(`${JSON.stringify(region)}: samtools ${want.refused ? 'refuses' : 'accepts'}, slicefs ${got.refused ? `refuses (${got.message})` : 'accepts'}`);
    } else if (want.sam !== got.sam) {
      mismatches.push(`${JSON.stringify(region)}: ${want.sam.split('\n').length - 1} records from samtools, ${got.sam.split('\n').length - 1} from slicefs`);
    } else if (want.refused) {
      refusedBoth++;
    } else if (want.sam.length > 0) {
      acceptedWithRecords++;
    }
  }
  assert.deepEqual(mismatches, []);
  // The set means something: many strings select records, many are refused.
  assert.ok(acceptedWithRecords > 100, `${acceptedWithRecords} regions with records`);
  assert.ok(refusedBoth > 40, `${refusedBoth} regions refused by both`);
});

test('the CLI: accepted regions print samtools records; refused ones one error line, exit 2, with the nearest contigs', async () => {
  for (const region of ['chr1:0-1000', 'chr1:1-1k', 'chr1:1-1e9', '{chr1:1-5}:1-2', '.']) {
    const r = await runSlicefs(['view', '--no-index-cache', '--input-file', bam, '--no-header', '-q', region]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString('latin1'), (await samtoolsView(region)).sam, region);
  }
  const refusals: [string, RegExp][] = [
    ['chr3:1-10', /^slicefs: error: unknown contig 'chr3'; did you mean 'chr1', 'chr2'/],
    [' chr1:1-5', /^slicefs: error: unknown contig ' chr1'; did you mean 'chr1'/],
    ['chr1:1-5', /^slicefs: error: region 'chr1:1-5' is ambiguous: .* write \{chr1:1-5\} or \{chr1\}:1-5/],
    ['chr1:10-5', /^slicefs: error: region 'chr1:10-5': end 5 is before start 10/],
    ['chr1:5-x', /^slicefs: error: region 'chr1:5-x': unexpected 'x' after 'chr1:5-'/],
    ['chr1:-5-10', /^slicefs: error: region 'chr1:-5-10': positions start at 1/],
  ];
  for (const [region, message] of refusals) {
    assert.equal((await samtoolsView(region)).refused, true, `samtools refuses ${region}`);
    const r = await runSlicefs(['view', '--no-index-cache', '--input-file', bam, '-q', region]);
    assert.equal(r.code, 2, `${region}: ${r.stderr}`);
    assert.equal(r.stdout.length, 0);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, message);
  }
});

test('positions past 2^63-1 are refused (htslib wraps them around)', async () => {
  // The last: an exponent with a dozen digits is refused at once, not computed.
  for (const region of ['chr1:18446744073709551617', 'chr1:1-9223372036854775808', 'chr1:1e30', 'chr1:99999999999999999999999999999999999999999e-20', 'chr1:1-1e999999999999']) {
    assert.throws(() => parseRegion(region, TRICKY_CONTIGS), (e: unknown) => e instanceof SlicefsError && e.code === 'USAGE' && /is too large/.test(e.message), region);
  }
});
