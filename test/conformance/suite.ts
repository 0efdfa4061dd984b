/**
 * The conformance suite: for each chosen corpus file (./corpus.ts) and each chosen variant
 * (./variants.ts), make it (./prepare.ts), serve it from the fixture server and compare
 * `slicefs view` with `samtools view` (./compare.ts). Files run `jobs` at a time; each file's
 * random regions come from its own seed (the base seed and its id), so one file re-runs alone with
 * the same regions.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { samtools } from '../helpers/sample-data.js';
import { compareVariant, serveVariant, type Served, type VariantOutcome } from './compare.js';
import { headerContigs, loadCorpus, referenceFor, type Corpus, type CorpusFile, type Fasta } from './corpus.js';
import { FileWork, safeName, type PreparedVariant } from './prepare.js';
import type { Variant } from './variants.js';

export interface SuiteOptions {
  files: (f: CorpusFile) => boolean;
  /** The variants of a chosen file. */
  variants: (f: CorpusFile) => readonly Variant[];
  /** Seeded random regions per file and variant. */
  randomCount: number;
  seed: number;
  /** Files prepared and compared at once. */
  jobs: number;
  /** Called as each file's variant is done (progress). */
  onResult?: (r: VariantResult) => void;
}

export interface VariantResult {
  file: string;
  variant: string;
  /** Why samtools refused to make or read this variant: nothing compared. */
  skipped?: string;
  outcome?: VariantOutcome;
}

/** A file's seed: the base seed mixed with its id (FNV-1a), stable across runs and file sets. */
export function fileSeed(seed: number, id: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (const ch of Buffer.from(id)) h = Math.imul(h ^ ch, 0x01000193) >>> 0;
  return h >>> 0;
}

/** The FASTA of a corpus file's contigs (./corpus.ts), if one fits. */
async function fileReference(file: CorpusFile, corpus: Corpus): Promise<Fasta | undefined> {
  const header = await samtools(['view', '-H', '--no-PG', file.path]);
  return header.code === 0 ? (referenceFor(headerContigs(header.stdout.toString('latin1')), corpus.fastas) ?? undefined) : undefined;
}

/** One corpus file's variant, made in `work` and served on `server`: for tests of one case. */
export async function prepareOne(server: FixtureServer, work: string, fileId: string, variant: Variant): Promise<{ prepared: PreparedVariant; served: Served; reference?: Fasta }> {
  const corpus = await loadCorpus();
  const file = corpus.files.find((f) => f.id === fileId);
  if (!file) throw new Error(`no corpus file ${fileId}`);
  const reference = await fileReference(file, corpus);
  const prepared = await new FileWork(file, reference, join(work, safeName(file.id))).prepare(variant);
  if ('skipped' in prepared) throw new Error(`${fileId} ${variant.name}: ${prepared.skipped}`);
  const served = await serveVariant(server, `/${safeName(file.id)}`, prepared, reference);
  return { prepared, served, reference };
}

export async function runSuite(o: SuiteOptions): Promise<VariantResult[]> {
  const corpus = await loadCorpus();
  const files = corpus.files.filter(o.files);
  const work = await tempDir('slicefs-conformance-');
  const server = await FixtureServer.start();
  const results: VariantResult[] = [];
  try {
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const file = files[next++];
        const reference = await fileReference(file, corpus);
        const dir = join(work, safeName(file.id));
        const fw = new FileWork(file, reference, dir);
        // The CLI views the first variant compared (./compare.ts); the engine views all of them.
        let cliDone = false;
        for (const variant of o.variants(file)) {
          const prepared = await fw.prepare(variant);
          let r: VariantResult;
          if ('skipped' in prepared) {
            r = { file: file.id, variant: variant.name, skipped: prepared.skipped };
          } else {
            const served = await serveVariant(server, `/${safeName(file.id)}`, prepared, reference);
            const outcome = await compareVariant(prepared, served, reference, fileSeed(o.seed, file.id), o.randomCount, !cliDone);
            cliDone = true;
            r = { file: file.id, variant: variant.name, outcome };
          }
          results.push(r);
          o.onResult?.(r);
        }
        await rm(dir, { recursive: true, force: true });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.jobs) }, worker));
  } finally {
    await server.close();
    await rm(work, { recursive: true, force: true });
  }
  return results;
}
