/**
 * The regions a corpus file is viewed over: `*`; for every contig the whole of it, its first and
 * last base, the 100 bases past its end, a start past its end, an open end (`chr:beg-`) near its
 * end; then seeded random ranges, half anywhere on a contig, half around a placed record (where
 * the data is: a uniform range on a 249 Mb contig with reads on 16 kb of it finds nothing).
 * Braces name contigs with colons (`{chr1:1-5}:1-10`), as samtools reads them.
 */
import type { SeededRandom } from '../helpers/random.js';
import { regionName } from '../helpers/view-text.js';

export interface Contig {
  name: string;
  length: number;
}

/** `*`, then the edges of every contig. */
export function edgeRegions(contigs: readonly Contig[]): string[] {
  const out = ['*'];
  for (const c of contigs) {
    const n = regionName(c.name);
    const ln = c.length;
    out.push(n, `${n}:1-1`, `${n}:${ln}-${ln}`, `${n}:${ln + 1}-${ln + 100}`, `${n}:${ln + 1000}`, `${n}:${Math.max(1, ln - 100)}-`);
  }
  return out;
}

/**
 * `n` seeded ranges of 1 b to 100 kb: even ones anywhere on a random contig, odd ones starting
 * within 300 b of a random placed record (`placed`: contig name and 1-based POS).
 */
export function randomRegions(rnd: SeededRandom, contigs: readonly Contig[], placed: readonly { name: string; pos: number }[], n: number): string[] {
  const out: string[] = [];
  const withLength = contigs.filter((c) => c.length > 0);
  if (withLength.length === 0) return out;
  for (let i = 0; i < n; i++) {
    const len = rnd.pick([1, 10, 150, 1000, 20_000, 100_000]);
    if (i % 2 === 1 && placed.length > 0) {
      const at = rnd.pick(placed);
      const beg = Math.max(1, at.pos + rnd.int(-300, 300));
      out.push(`${regionName(at.name)}:${beg}-${beg + len}`);
    } else {
      const c = rnd.pick(withLength);
      const beg = rnd.int(1, c.length);
      out.push(`${regionName(c.name)}:${beg}-${Math.min(c.length, beg + len)}`);
    }
  }
  return out;
}
