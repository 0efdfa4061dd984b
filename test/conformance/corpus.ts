/**
 * The public corpora of the `view` conformance suite (test/data/conformance/README.md): every SAM
 * (plain or gzip-compressed), BAM and CRAM under the corpus directory, and every indexed FASTA
 * there. A SAM beside a CRAM of the same name is that CRAM's expected decoding (hts-specs), not an
 * input. A file's reference is the FASTA whose `.fai` has each of the file's @SQ names with the
 * same length; a file without @SQ lines needs none; a file that no FASTA fits has none (samtools
 * then refuses what needs one, and the suite counts that as skipped).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO } from '../helpers/daemon.js';

export const CORPUS_ROOT = join(REPO, 'test/data/conformance');

export type InputKind = 'sam' | 'bam' | 'cram';

export interface CorpusFile {
  /** Path under the corpus root, e.g. `hts-specs/cram/3.0/passed/0400_mapped.cram`: names it in reports. */
  id: string;
  path: string;
  kind: InputKind;
  /** The index shipped beside a BAM or CRAM, if any. */
  shippedIndex?: string;
}

export interface Fasta {
  path: string;
  /** Sequence name → length, from its `.fai`. */
  lengths: Map<string, number>;
}

export interface Corpus {
  files: CorpusFile[];
  fastas: Fasta[];
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

export function kindOf(path: string): InputKind | undefined {
  if (/\.sam(\.gz)?$/.test(path)) return 'sam';
  if (path.endsWith('.bam')) return 'bam';
  if (path.endsWith('.cram')) return 'cram';
  return undefined;
}

/** The corpus under `root` (default: test/data/conformance). */
export async function loadCorpus(root = CORPUS_ROOT): Promise<Corpus> {
  const paths = await walk(root);
  const have = new Set(paths);
  const files: CorpusFile[] = [];
  const fastas: Fasta[] = [];
  for (const path of paths) {
    if (path.endsWith('.fa') && have.has(`${path}.fai`)) {
      const fai = await readFile(`${path}.fai`, 'latin1');
      fastas.push({ path, lengths: new Map(fai.split('\n').filter(Boolean).map((l) => l.split('\t')).map((f) => [f[0], Number(f[1])])) });
      continue;
    }
    const kind = kindOf(path);
    if (!kind) continue;
    if (kind === 'sam' && have.has(path.replace(/\.sam$/, '.cram'))) continue;
    const shippedIndex = kind === 'sam' ? undefined : [`${path}.bai`, `${path}.csi`, `${path}.crai`].find((p) => existsSync(p));
    files.push({ id: relative(root, path), path, kind, shippedIndex });
  }
  return { files, fastas };
}

/** @SQ names and lengths of a header text. */
export function headerContigs(headerText: string): { name: string; length: number }[] {
  const out: { name: string; length: number }[] = [];
  for (const line of headerText.split('\n')) {
    if (!line.startsWith('@SQ\t')) continue;
    const sn = /\tSN:([^\t]*)/.exec(line);
    const ln = /\tLN:(\d+)/.exec(line);
    if (sn && ln) out.push({ name: sn[1], length: Number(ln[1]) });
  }
  return out;
}

/**
 * The FASTA that has every contig with its length (the first, in path order), `undefined` when
 * none does; `null` when there are no contigs (no reference needed).
 */
export function referenceFor(contigs: readonly { name: string; length: number }[], fastas: readonly Fasta[]): Fasta | undefined | null {
  if (contigs.length === 0) return null;
  return fastas.find((f) => contigs.every((c) => f.lengths.get(c.name) === c.length));
}
