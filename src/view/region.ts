/**
 * Regions in samtools syntax, resolved against the contigs of a file's header. The grammar is
 * samtools 1.16's (htslib's `hts_parse_region` with thousands separators, as `samtools view FILE
 * REGION` reads it), established by experiment: test/unit/region-samtools.test.ts runs a seeded set
 * of generated strings through samtools and through this parser and requires the same records, or
 * a refusal from both.
 *
 * The algorithm, in htslib's order:
 *   1. `*` is the unplaced unmapped reads and `.` the whole file (exact strings: no spaces).
 *   2. `{name}` quotes a contig name: the range follows only if `:` comes right after the first `}`;
 *      otherwise the name is everything after `{` but the string's last character (so `{chr1}`
 *      is chr1 and `{chr1}5` the unknown contig `chr1}`). `{` without `}` is an error.
 *   3. Unquoted: the whole string, if it is a contig, is that contig, unless the text before its
 *      last `:` is a contig too (then it is ambiguous and refused, whatever follows the colon).
 *      Otherwise the text before the last `:` must be a contig and the rest is the range; with no
 *      `:` at all the whole string must be a contig. Names are compared exactly (no trimming).
 *   4. A position is htslib's decimal (`parseDecimal`): leading white space, a sign, digits with
 *      commas anywhere among them, an optional `.` and more digits, then either `e`/`E` with an
 *      optional sign and digits, or one of `k`/`K`, `m`/`M`, `g`/`G` (×10³, ×10⁶, ×10⁹); a
 *      fraction left over is dropped (1.5 is 1). `beg` is that value − 1 (0-based).
 *   5. The range: nothing after the position (or after `:`) runs to the contig's end; `-end`
 *      gives the end, and an end of 0 or a missing one means the contig's end. A negative start
 *      reads as an end (`chr:-5` is 1..5; `chr:-0` and `chr:` the whole contig), and a start of 0
 *      is a start of 1 (`chr:0-1000` is 1..1000); `chr:-5-10` is refused. A `,` right after the
 *      end (or after a negative start) ends the region, whatever follows it (`chr:1-1k,5` is
 *      1..1000, but `chr:1k,5` is refused); other text left over is refused, and so is a start
 *      after the end.
 * Nothing is clamped to the contig's length (@SQ LN), as in samtools: a record may start at or run
 * past it (a valid file), and `chr`, `chr:beg` and `chr:beg-end` reach it there. A region past
 * every record is empty (no records, no error).
 *
 * Where samtools's arithmetic goes wrong, this parser refuses instead: a position above 2⁶³−1
 * (htslib wraps it around: `chr1:18446744073709551617` is chr1:1 there). Positions from about 10¹⁴
 * up can make samtools 1.16 loop forever (`chr1:1-1e18`, `chr1:309664g`); here they are past the
 * contig's end, as smaller ones are.
 *
 * Resolved regions are 0-based half-open (`start`, `end`), the convention of @gmod/bam; an open end
 * (and any position past the largest a record can have) is OPEN_END; @gmod/cram wants 1-based
 * closed coordinates, which `toOneBasedClosed` gives. An unknown
 * contig is an error that names the nearest contigs of the header (`6` vs `chr6`).
 */
import { SlicefsError } from '../errors.js';
import { printable } from '../util/printable.js';

/** A refused region: the message quotes the user's text and header names, control characters escaped. */
const usage = (message: string) => new SlicefsError('USAGE', printable(message));

export interface Contig {
  name: string;
  length: number;
}

export type Region =
  | { kind: 'contig'; contig: string; start: number; end: number }
  /** `*`: the unplaced unmapped reads. */
  | { kind: 'unmapped' }
  /** `.`: every record of the file (see `expandRegions`). */
  | { kind: 'all' };

/** A region as the views read it: `.` written out (`expandRegions`). */
export type ViewRegion = Exclude<Region, { kind: 'all' }>;

/** htslib's HTS_POS_MAX, the end of an open range: ((INT_MAX) << 32) | INT_MAX. */
const HTS_POS_MAX = (0x7fffffffn << 32n) | 0x7fffffffn;
/** htslib's positions are signed 64-bit: past this its arithmetic wraps around, so we refuse. */
const INT64_MAX = (1n << 63n) - 1n;
/** Exponents beyond this make any non-zero value overflow 64 bits (or vanish): no huge powers of ten. */
const MAX_EXPONENT = 40;

/**
 * The end of an open range (`chr`, `chr:beg`), and the ceiling of every resolved position: above
 * any record's end (a 32-bit position plus a CIGAR's reference length), and exact as a JS number.
 */
export const OPEN_END = Number.MAX_SAFE_INTEGER;
const OPEN_END_BIG = BigInt(OPEN_END);

/** k, M, G (either case): ×10³, ×10⁶, ×10⁹. */
const SUFFIX_EXPONENT: Record<string, number> = { k: 3, m: 6, g: 9 };

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
/** C's isspace. */
const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

interface Decimal {
  value: bigint;
  /** Where parsing stopped; `from` itself when there were no digits (htslib's `strend`). */
  next: number;
  /** Whether some value or intermediate passed 2⁶³−1 (htslib would have wrapped around). */
  overflow: boolean;
}

/** htslib's hts_parse_decimal with HTS_PARSE_THOUSANDS_SEP, in exact arithmetic. */
function parseDecimal(s: string, from: number): Decimal {
  let i = from;
  while (isSpace(s[i])) i++;
  let negative = false;
  if (s[i] === '+' || s[i] === '-') negative = s[i++] === '-';
  let n = 0n;
  let digits = 0;
  let decimals = 0;
  let overflow = false;
  const push = (c: string) => {
    n = n * 10n + BigInt(c.charCodeAt(0) - 48);
    digits++;
    if (n > INT64_MAX) overflow = true;
  };
  for (; i < s.length; i++) {
    if (isDigit(s[i])) {
      if (!overflow) push(s[i]);
      else digits++;
    } else if (s[i] !== ',') break;
  }
  if (s[i] === '.') {
    for (i++; isDigit(s[i]); i++) {
      if (!overflow) push(s[i]);
      decimals++;
    }
  }
  let e = 0;
  const c = s[i];
  if (c === 'e' || c === 'E') {
    i++;
    let expNegative = false;
    if (s[i] === '+' || s[i] === '-') expNegative = s[i++] === '-';
    for (; isDigit(s[i]); i++) e = Math.min(e * 10 + s.charCodeAt(i) - 48, 10 * MAX_EXPONENT);
    if (expNegative) e = -e;
  } else {
    const suffix = SUFFIX_EXPONENT[c?.toLowerCase() ?? ''];
    if (suffix !== undefined) {
      e = suffix;
      i++;
    }
  }
  e -= decimals;
  if (!overflow && n !== 0n) {
    if (e > MAX_EXPONENT) overflow = true;
    else if (e > 0) n *= 10n ** BigInt(e);
    else if (e < 0) n = e < -MAX_EXPONENT ? 0n : n / 10n ** BigInt(-e);
    if (n > INT64_MAX) overflow = true;
  }
  return { value: negative ? -n : n, next: digits > 0 ? i : from, overflow };
}

/**
 * The range after the contig's ':' (at `colon` in `text`), as htslib's hts_parse_region reads it:
 * 0-based `beg` (−1 allowed: a start of 0) and exclusive `end` (HTS_POS_MAX: to the contig's end).
 */
function parseRange(text: string, colon: number): { beg: bigint; end: bigint } {
  const fail = (why: string) => usage(`region '${text}': ${why}`);
  const unexpected = (at: number) => fail(`unexpected '${text.slice(at)}' after '${text.slice(0, at)}'`);
  const tooLarge = (d: Decimal, from: number) => fail(`position '${text.slice(from, d.next).trim()}' is too large (at most 2^63-1)`);
  const b = parseDecimal(text, colon + 1);
  if (b.overflow) throw tooLarge(b, colon + 1);
  const beg = b.value - 1n;
  let end = HTS_POS_MAX;
  let at = b.next;
  if (beg < 0n) {
    if (beg !== -1n && text[at] === '-' && colon + 1 < text.length) throw fail(`positions start at 1 (the start is ${b.value})`);
    // `chr:-100` is chr:1-100, and a start of 0 (or none) reads as "from the start".
    if (isDigit(text[at]) || at === text.length || text[at] === ',') return { beg: 0n, end: beg === -1n ? HTS_POS_MAX : -(beg + 1n) };
    if (beg < -1n) throw unexpected(at);
  }
  if (at < text.length) {
    if (text[at] !== '-') throw unexpected(at);
    const e = parseDecimal(text, at + 1);
    if (e.overflow) throw tooLarge(e, at + 1);
    end = e.value;
    at = e.next;
    // samtools stops at a ',' after the end, whatever follows (`chr1:1-1k,5` is chr1:1-1000).
    if (at < text.length && text[at] !== ',') throw unexpected(at);
  }
  if (end === 0n) end = HTS_POS_MAX; // `chr:100-` and `chr:100-0` run to the contig's end
  if (beg >= end) throw fail(`end ${end} is before start ${beg + 1n}`);
  return { beg, end };
}

/** Parses one samtools region against the header's contigs (see the module header). */
export function parseRegion(text: string, contigs: readonly Contig[]): Region {
  if (text === '') throw usage('empty region');
  if (text === '*') return { kind: 'unmapped' };
  if (text === '.') return { kind: 'all' };
  const byName = new Map(contigs.map((c) => [c.name, c]));
  const resolved = (c: Contig, range?: { beg: bigint; end: bigint }): Region => {
    if (!range) return { kind: 'contig', contig: c.name, start: 0, end: OPEN_END };
    // Not clamped to LN: samtools reads records placed at or past it (see the module header).
    const start = range.beg < 0n ? 0n : range.beg > OPEN_END_BIG ? OPEN_END_BIG : range.beg;
    const end = range.end > OPEN_END_BIG ? OPEN_END_BIG : range.end < start ? start : range.end;
    return { kind: 'contig', contig: c.name, start: Number(start), end: Number(end) };
  };

  if (text.startsWith('{')) {
    const close = text.indexOf('}');
    if (close < 0) throw usage(`region '${text}': '{' without a closing '}'`);
    if (text[close + 1] !== ':') {
      // htslib drops the string's last character, whatever it is: `{chr1}5` names `chr1}`.
      const name = text.slice(1, -1);
      return resolved(byName.get(name) ?? unknownContig(name, contigs));
    }
    const name = text.slice(1, close);
    const c = byName.get(name) ?? unknownContig(name, contigs);
    return resolved(c, parseRange(text, close + 1));
  }

  const colon = text.lastIndexOf(':');
  const asWhole = byName.get(text);
  if (colon < 0) return resolved(asWhole ?? unknownContig(text, contigs));
  const before = text.slice(0, colon);
  const asRange = byName.get(before);
  if (asWhole && asRange) {
    throw usage(`region '${text}' is ambiguous: it is a contig and also '${before}' with a range; write {${text}} or {${before}}:${text.slice(colon + 1)}`);
  }
  if (asWhole) return resolved(asWhole);
  return resolved(asRange ?? unknownContig(before, contigs), parseRange(text, colon));
}

/**
 * The regions with `.` (the whole file) written out: every contig whole, then the unplaced reads,
 * which is what a view of no region reads.
 */
export function expandRegions(regions: readonly Region[], contigs: readonly Contig[]): ViewRegion[] {
  return regions.flatMap((r): ViewRegion[] => (r.kind === 'all' ? wholeFile(contigs) : [r]));
}

/** Every contig whole, then the unplaced unmapped reads: the whole file. */
export function wholeFile(contigs: readonly Contig[]): ViewRegion[] {
  return [...contigs.map((c): ViewRegion => ({ kind: 'contig', contig: c.name, start: 0, end: OPEN_END })), { kind: 'unmapped' }];
}

/** Throws the "unknown contig" error with the nearest names of the header. */
function unknownContig(name: string, contigs: readonly Contig[]): never {
  const near = nearestContigs(name, contigs);
  const hint = near.length > 0 ? `; did you mean ${near.map((n) => `'${n}'`).join(', ')}?` : contigs.length === 0 ? '; the header lists no contigs' : '';
  throw usage(`unknown contig '${name}'${hint}`);
}

/** Contig names a user probably meant: the `chr` prefix added or removed, case, or an edit or two away. */
export function nearestContigs(name: string, contigs: readonly Contig[], max = 3): string[] {
  const strip = (s: string) => s.toLowerCase().replace(/^chr/, '');
  const key = strip(name);
  const scored = contigs
    .map((c) => ({ name: c.name, d: strip(c.name) === key ? 0 : editDistance(c.name.toLowerCase(), name.toLowerCase()) }))
    .filter((x) => x.d <= Math.min(2, Math.floor(name.length / 2)))
    .sort((a, b) => a.d - b.d || a.name.localeCompare(b.name));
  return scored.slice(0, max).map((x) => x.name);
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** 1-based closed coordinates, as @gmod/cram takes them. */
export function toOneBasedClosed(r: { start: number; end: number }): { start: number; end: number } {
  return { start: r.start + 1, end: r.end };
}
