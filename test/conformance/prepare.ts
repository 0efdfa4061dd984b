/**
 * Makes one corpus file's variants (./variants.ts) with samtools in a work directory: the
 * coordinate-sorted BAM first (once per file), then each variant from it, indexed. Every samtools
 * call that fails makes the variant `skipped` with samtools's first error line: that is samtools
 * refusing the combination (a reference it cannot find, a file it cannot index), not a pass.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { samtools } from '../helpers/sample-data.js';
import type { CorpusFile, Fasta } from './corpus.js';
import type { Variant } from './variants.js';

export interface PreparedVariant {
  /** The data file; its basename is what it is served as. */
  path: string;
  /** Its index, beside it (`path` + `.bai` / `.csi` / `.crai`). */
  index: string;
}

export type Prepared = PreparedVariant | { skipped: string };

/**
 * A file name for a corpus id: `#` and other characters URLs and shells mind become `_`. The
 * extension stays: `range.bam` and `range.cram` are two files, with two work directories.
 */
export function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** samtools's first error line, for a skip reason. */
function firstError(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('This is a technology demonstration'));
  return (lines.find((l) => /\[E::|error|fail|could not|refus/i.test(l)) ?? lines[0] ?? 'no message').trim();
}

/** The exit code the samtools helper gives a process killed by a signal (samtools 1.16 segfaults on some inputs). */
const KILLED = 128;

async function samtoolsStep(args: string[]): Promise<string | undefined> {
  const r = await samtools(args);
  if (r.code === 0) return undefined;
  return `samtools ${args[0]}: ${r.code === KILLED ? 'crashed (killed by a signal)' : firstError(r.stderr)}`;
}

/** The per-file work directory and the sorted BAM every variant but `original` starts from. */
export class FileWork {
  private sorted?: Promise<string | { skipped: string }>;

  constructor(
    readonly file: CorpusFile,
    readonly reference: Fasta | undefined,
    readonly dir: string,
  ) {}

  private refArgs(): string[] {
    return this.reference ? ['--reference', this.reference.path] : [];
  }

  private sortedBam(): Promise<string | { skipped: string }> {
    this.sorted ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      const out = join(this.dir, 'sorted.bam');
      const err = await samtoolsStep(['sort', '--no-PG', ...this.refArgs(), '-o', out, this.file.path]);
      return err ? { skipped: err } : out;
    })();
    return this.sorted;
  }

  /** Writes and indexes `variant`; `{ skipped }` when samtools refuses a step. */
  async prepare(variant: Variant): Promise<Prepared> {
    await mkdir(this.dir, { recursive: true });
    const base = join(this.dir, `${safeName(this.file.id)}.${variant.name}`);
    if (variant.from === 'original') {
      if (this.file.kind === 'sam') return { skipped: 'a SAM file has no original BAM/CRAM to view' };
      const path = `${base}.${this.file.kind}`;
      await copyFile(this.file.path, path);
      if (this.file.shippedIndex) {
        const index = `${path}${this.file.shippedIndex.slice(this.file.shippedIndex.lastIndexOf('.'))}`;
        await copyFile(this.file.shippedIndex, index);
        return { path, index };
      }
      const err = await samtoolsStep(['index', path]);
      if (err) return { skipped: err };
      return { path, index: `${path}.${this.file.kind === 'cram' ? 'crai' : 'bai'}` };
    }
    const sorted = await this.sortedBam();
    if (typeof sorted !== 'string') return sorted;
    if (variant.from === 'bam') {
      const path = `${base}.bam`;
      await copyFile(sorted, path);
      const err = await samtoolsStep(['index', ...(variant.bamIndex === 'csi' ? ['-c'] : ['-b']), path]);
      if (err) return { skipped: err };
      return { path, index: `${path}.${variant.bamIndex}` };
    }
    const path = `${base}.cram`;
    const ref = variant.encodeWithReference && this.reference ? ['-T', this.reference.path] : [];
    const opts = (variant.cramOptions ?? []).flatMap((o) => ['--output-fmt-option', o]);
    const err = (await samtoolsStep(['view', '--no-PG', '-C', ...ref, ...opts, '-o', path, sorted])) ?? (await samtoolsStep(['index', path]));
    if (err) return { skipped: err };
    return { path, index: `${path}.crai` };
  }
}
