/**
 * Regions from a BED file (`--bed-query`): `chrom start end [...]`, 0-based half-open, tab- or
 * space-separated; `#`, `track` and `browser` lines and blank lines are skipped. Errors name the
 * file, the line and the column, like the manifest's.
 */
import { manifestError } from '../manifest/manifest-error.js';
import { SlicefsError } from '../errors.js';
import { printable } from '../util/printable.js';
import { nearestContigs, OPEN_END, type Contig, type Region } from './region.js';

export function parseBed(text: string, file: string, contigs: readonly Contig[]): Region[] {
  const byName = new Map(contigs.map((c) => [c.name, c]));
  const out: Region[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const t = raw.trim();
    if (t === '' || t.startsWith('#') || /^(track|browser)(\s|$)/.test(t)) return;
    const fields = raw.split(/[\t ]+/);
    const col = (k: number) => raw.indexOf(fields[k]) + 1;
    const bad = (k: number, msg: string) => {
      const e = manifestError(file, line, col(k), msg);
      return new SlicefsError('USAGE', printable(e.message));
    };
    if (fields.length < 3) throw bad(0, `a BED line needs chrom, start and end (got ${fields.length} field${fields.length === 1 ? '' : 's'})`);
    const [chrom, s, e] = fields;
    const c = byName.get(chrom);
    if (!c) {
      const near = nearestContigs(chrom, contigs);
      throw bad(0, `unknown contig '${chrom}'${near.length ? `; did you mean ${near.map((n) => `'${n}'`).join(', ')}?` : ''}`);
    }
    if (!/^\d+$/.test(s)) throw bad(1, `start '${s}' is not a number`);
    if (!/^\d+$/.test(e)) throw bad(2, `end '${e}' is not a number`);
    const start = Number(s);
    const end = Number(e);
    if (end < start) throw bad(2, `end ${end} is before start ${start}`);
    // Not clamped to LN: samtools reads records placed at or past it; OPEN_END is past every record.
    out.push({ kind: 'contig', contig: c.name, start: Math.min(start, OPEN_END), end: Math.min(end, OPEN_END) });
  });
  return out;
}
