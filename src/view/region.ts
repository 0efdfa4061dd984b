/**
 * Regions in samtools syntax, resolved against the contigs of a file's header (the first piece of
 * `slicefs view`, issue 4). Forms, as htslib's `hts_parse_region` reads them:
 *   `chr1`            the whole contig
 *   `chr1:1000`       from base 1000 to the end of the contig
 *   `chr1:1000-2000`  bases 1000..2000, 1-based and inclusive (commas allowed: `1,000-2,000`)
 *   `chr1:-2000`      bases 1..2000
 *   `{HLA:A*01}:1-9`  braces quote a contig name that contains ':'
 *   `*`               the unplaced unmapped reads
 * A name that is itself a contig wins over a `name:range` reading (htslib does the same), so a
 * contig called `HLA-A*01:01:01:01` needs no braces; when both readings are contigs, the region is
 * ambiguous and braces are required. An unknown contig is an error that names the nearest contigs
 * of the header (`6` vs `chr6`), never an empty result.
 *
 * Resolved regions are 0-based half-open (`start`, `end`), the convention of @gmod/bam; @gmod/cram
 * wants 1-based closed coordinates, which `toOneBasedClosed` gives.
 */
import { SlicefsError } from '../errors.js';

export interface Contig {
  name: string;
  length: number;
}

export type Region = { kind: 'contig'; contig: string; start: number; end: number } | { kind: 'unmapped' };

function parsePosition(text: string, what: string, region: string): number {
  const digits = text.replace(/,/g, '');
  if (!/^\d+$/.test(digits) || text.startsWith(',')) {
    throw new SlicefsError('USAGE', `region '${region}': ${what} '${text}' is not a number`);
  }
  const n = Number(digits);
  if (!Number.isSafeInteger(n)) throw new SlicefsError('USAGE', `region '${region}': ${what} '${text}' is too large`);
  return n;
}

/** Parses `range` (the part after the contig's ':') into 0-based half-open coordinates. */
function parseRange(range: string, contig: Contig, region: string): { start: number; end: number } {
  const dash = range.indexOf('-');
  const begText = dash < 0 ? range : range.slice(0, dash);
  const endText = dash < 0 ? '' : range.slice(dash + 1);
  if (begText === '' && endText === '') throw new SlicefsError('USAGE', `region '${region}': empty range after ':'`);
  const beg = begText === '' ? 1 : parsePosition(begText, 'start', region);
  if (beg < 1) throw new SlicefsError('USAGE', `region '${region}': positions start at 1`);
  if (endText !== '') {
    const end = parsePosition(endText, 'end', region);
    if (end < beg) throw new SlicefsError('USAGE', `region '${region}': end ${end} is before start ${beg}`);
  }
  // Past the contig's end is an empty region, as in samtools (no records, no error).
  const end = Math.min(endText === '' ? contig.length : parsePosition(endText, 'end', region), contig.length);
  const start = Math.min(beg - 1, contig.length);
  return { start, end: Math.max(start, end) };
}

/** Parses one samtools region against the header's contigs. */
export function parseRegion(text: string, contigs: readonly Contig[]): Region {
  const region = text.trim();
  if (region === '') throw new SlicefsError('USAGE', 'empty region');
  if (region === '*') return { kind: 'unmapped' };
  const byName = new Map(contigs.map((c) => [c.name, c]));
  const whole = (c: Contig): Region => ({ kind: 'contig', contig: c.name, start: 0, end: c.length });

  if (region.startsWith('{')) {
    const close = region.indexOf('}');
    if (close < 0) throw new SlicefsError('USAGE', `region '${region}': '{' without a closing '}'`);
    const name = region.slice(1, close);
    const rest = region.slice(close + 1);
    const c = byName.get(name) ?? unknownContig(name, contigs);
    if (rest === '') return whole(c);
    if (!rest.startsWith(':')) throw new SlicefsError('USAGE', `region '${region}': expected ':' after '}'`);
    return { kind: 'contig', contig: c.name, ...parseRange(rest.slice(1), c, region) };
  }

  const colon = region.lastIndexOf(':');
  const asWhole = byName.get(region);
  const asRange = colon > 0 ? byName.get(region.slice(0, colon)) : undefined;
  if (asWhole && asRange && /^[\d,]*(-[\d,]*)?$/.test(region.slice(colon + 1))) {
    throw new SlicefsError(
      'USAGE',
      `region '${region}' is ambiguous: it is a contig and also '${asRange.name}' with a range; write {${region}} or {${asRange.name}}:${region.slice(colon + 1)}`,
    );
  }
  if (asWhole) return whole(asWhole);
  if (asRange) return { kind: 'contig', contig: asRange.name, ...parseRange(region.slice(colon + 1), asRange, region) };
  return unknownContig(colon > 0 ? region.slice(0, colon) : region, contigs);
}

/** Throws the "unknown contig" error with the nearest names of the header. */
function unknownContig(name: string, contigs: readonly Contig[]): never {
  const near = nearestContigs(name, contigs);
  const hint = near.length > 0 ? `; did you mean ${near.map((n) => `'${n}'`).join(', ')}?` : contigs.length === 0 ? '; the header lists no contigs' : '';
  throw new SlicefsError('USAGE', `unknown contig '${name}'${hint}`);
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
