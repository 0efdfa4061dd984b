/**
 * Fuzzing the text parsers of `view` (issue 15): regions (src/view/region.ts) and BED files
 * (src/view/bed.ts), with strings built from the characters their grammars care about and with
 * arbitrary Unicode. A region resolves to a range on its contig or is refused with one USAGE line; a BED
 * file gives regions inside their contigs or one USAGE line naming file:line:column. (That the
 * regions mean what samtools means is region-samtools.test.ts's job.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseBed } from '../../src/view/bed.js';
import { OPEN_END, parseRegion, type Contig, type Region } from '../../src/view/region.js';
import { assertCleanError, fuzzOptions, outcome } from '../helpers/fuzz.js';
import { TRICKY_CONTIGS } from '../helpers/region-bam.js';

const CONTIGS: readonly Contig[] = TRICKY_CONTIGS;
/** The characters the region grammar reacts to, contig names' characters, and some that it must not. */
const REGION_CHARS = [...':-,.{}*+ \t\nkKmMgGeE0123456789', 'chr1', 'X', 'HLA-A*01:01', 'chr2-3', '\u2028', '\x1b', 'é'];

function inBounds(r: Region): void {
  if (r.kind !== 'contig') return;
  const c = CONTIGS.find((x) => x.name === r.contig);
  assert.ok(c, `contig ${r.contig} is in the header`);
  // Not bounded by LN (samtools reads records past it), but by OPEN_END, where a range is open.
  assert.ok(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end) && r.start >= 0 && r.start <= r.end && r.end <= OPEN_END, JSON.stringify(r));
}

test('regions: any string resolves to a range on its contig or is one USAGE line', { timeout: 60_000 }, async () => {
  const grammarish = fc.array(fc.constantFrom(...REGION_CHARS), { maxLength: 16 }).map((a) => a.join(''));
  await fc.assert(
    fc.asyncProperty(fc.oneof(grammarish, fc.string({ unit: 'binary', maxLength: 40 })), async (text) => {
      let region: Region | undefined;
      if ((await outcome(() => (region = parseRegion(text, CONTIGS)), ['USAGE'], `parseRegion(${JSON.stringify(text)})`)) === 'ok') inBounds(region!);
    }),
    { ...fuzzOptions, numRuns: 5000 },
  );
});

test('BED: any text gives regions inside their contigs or one USAGE line with file:line:column', { timeout: 60_000 }, async () => {
  const field = fc.oneof(fc.constantFrom(...CONTIGS.map((c) => c.name), '0', '10', '-5', '1e3', '99999999999999999999', '', '#', 'track'), fc.string({ unit: 'binary', maxLength: 8 }));
  const number = fc.oneof(fc.constantFrom('0', '1', '10', '-5', '1e3', '2000', '99999999999999999999', '007'), fc.nat({ max: 5000 }).map(String));
  // Mostly well-formed lines (contig, start, end, maybe a name), some of arbitrary fields.
  const wellFormed = fc.tuple(fc.constantFrom(...CONTIGS.map((c) => c.name)), number, number, fc.constantFrom([], ['name'])).map(([c, a, b, rest]) => [c, a, b, ...rest]);
  const line = fc.oneof(wellFormed, fc.array(field, { maxLength: 5 })).chain((fields) => fc.constantFrom('\t', ' ', '  ').map((sep) => fields.join(sep)));
  await fc.assert(
    fc.asyncProperty(fc.array(line, { maxLength: 6 }), fc.constantFrom('\n', '\r\n'), async (lines, eol) => {
      let regions: Region[];
      try {
        regions = parseBed(lines.join(eol), 'fuzz.bed', CONTIGS);
      } catch (err) {
        assertCleanError(err, ['USAGE'], 'parseBed');
        assert.match((err as Error).message, /^fuzz\.bed:\d+:\d+: /);
        return;
      }
      regions.forEach(inBounds);
    }),
    { ...fuzzOptions, numRuns: 3000 },
  );
});
