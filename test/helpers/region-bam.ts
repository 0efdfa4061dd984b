/**
 * A small BAM whose header has contig names that region syntax must get right: a name that is also
 * a `chr1:1-5` range of another contig, a name with a colon whose suffix is not a range
 * (`chr1:abc`), `HLA-A*01:01`, names with `-` and `_`, the `X` / `X:1` pair that only braces tell
 * apart, and a contig without reads. A few seeded reads on each (at the first base, at the last,
 * with deletions and splices), a placed unmapped read and unplaced unmapped reads, sorted and
 * indexed (BAI) by samtools.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { SeededRandom } from './random.js';
import { samtools } from './sample-data.js';

export const TRICKY_CONTIGS: readonly { name: string; length: number }[] = [
  { name: 'chr1', length: 2000 },
  { name: 'chr1:1-5', length: 300 },
  { name: 'chr1:abc', length: 100 },
  { name: 'HLA-A*01:01', length: 500 },
  { name: 'chrUn_x', length: 400 },
  { name: 'chr2-3', length: 600 },
  { name: 'chr2', length: 700 },
  { name: 'X:1', length: 50 },
  { name: 'X', length: 80 },
  { name: 'chrEmpty', length: 1000 },
];

/** Writes `dir/tricky.bam` (+ `.bai`) and returns its path. */
export async function makeTrickyBam(dir: string, seed = 15): Promise<string> {
  const rnd = new SeededRandom(seed);
  const lines = ['@HD\tVN:1.6\tSO:unsorted', ...TRICKY_CONTIGS.map((c) => `@SQ\tSN:${c.name}\tLN:${c.length}`)];
  let n = 0;
  const read = (rname: string, pos: number, flag: number, cigar: string, len: number) => {
    const seq = Array.from({ length: len }, () => rnd.pick(['A', 'C', 'G', 'T'])).join('');
    lines.push(`r${++n}\t${flag}\t${rname}\t${pos}\t${flag & 4 ? 0 : 30}\t${cigar}\t*\t0\t0\t${seq}\t${'I'.repeat(len)}`);
  };
  for (const c of TRICKY_CONTIGS) {
    if (c.name === 'chrEmpty') continue;
    const count = rnd.int(6, 12);
    for (let i = 0; i < count; i++) {
      const len = rnd.int(5, 20);
      // Reads at the contig's first and last bases, then anywhere; some span a deletion or a splice.
      const pos = i === 0 ? 1 : i === 1 ? c.length - len + 1 : rnd.int(1, c.length - len - 10);
      const cigar = i > 1 && rnd.chance(0.3) ? `${len - 3}M${rnd.int(1, 9)}${rnd.pick(['D', 'N'])}3M` : `${len}M`;
      read(c.name, pos, rnd.pick([0, 16]), cigar, len);
    }
  }
  read('chr2', 350, 4, '*', 8); // placed, unmapped: at its mate's position
  for (let i = 0; i < 3; i++) read('*', 0, 4, '*', 8);
  const sam = join(dir, 'tricky.sam');
  const bam = join(dir, 'tricky.bam');
  await fs.writeFile(sam, lines.join('\n') + '\n');
  for (const args of [['sort', '--no-PG', '-o', bam, sam], ['index', bam]]) {
    const r = await samtools(args);
    if (r.code !== 0) throw new Error(`samtools ${args.join(' ')}: ${r.stderr.trim()}`);
  }
  return bam;
}
