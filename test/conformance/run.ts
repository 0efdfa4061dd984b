/**
 * `npm run conformance`: the whole conformance suite (every corpus file × every variant), its
 * report on stdout (test/conformance/summary.ts), exit 1 when anything differs. Not a `*.test.ts`:
 * `npm test` runs the per-commit slice (test/integration/view-public-conformance.test.ts) instead.
 * Environment: SLICEFS_CONFORMANCE_SEED (random regions), SLICEFS_CONFORMANCE_RANDOM (how many per
 * file and variant), SLICEFS_CONFORMANCE_JOBS (files at once), SLICEFS_CONFORMANCE_FILES and
 * SLICEFS_CONFORMANCE_VARIANTS (a regular expression over corpus ids / variant names),
 * SLICEFS_CONFORMANCE_VERBOSE=1 (list what was skipped), SLICEFS_CONFORMANCE_JSON (a file for every result),
 * SLICEFS_CONFORMANCE_MERGE (the report of such files, without running).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { report } from './summary.js';
import { runSuite, type VariantResult } from './suite.js';
import { kindOf } from './corpus.js';
import { variantApplies, variantNamed, VARIANTS } from './variants.js';

/** The default seed of the random regions; a failing run prints each file's own seed. */
const DEFAULT_SEED = 17;
/** Random regions per file and variant: beside the ~40 edge regions of a 7-contig file; the run takes ~30 min on 2 cores. */
const DEFAULT_RANDOM = 20;
/** Two files at a time: the machine's two cores, samtools and slicefs taking turns. */
const DEFAULT_JOBS = 2;

const env = process.env;
const fileFilter = new RegExp(env.SLICEFS_CONFORMANCE_FILES ?? '');
const variantFilter = new RegExp(env.SLICEFS_CONFORMANCE_VARIANTS ?? '');
const started = Date.now();
let done = 0;
// SLICEFS_CONFORMANCE_MERGE=a.json,b.json: the report of runs made apart (e.g. one per corpus, at once).
const merged = env.SLICEFS_CONFORMANCE_MERGE?.split(',');
const results: VariantResult[] = merged
  ? (await Promise.all(merged.map(async (f) => JSON.parse(await readFile(f, 'utf8')) as VariantResult[])))
      .flat()
      .filter((r) => variantApplies(variantNamed(r.variant), kindOf(r.file) ?? 'sam'))
  : await runSuite({
      files: (f) => fileFilter.test(f.id),
      variants: (f) => VARIANTS.filter((v) => variantFilter.test(v.name) && variantApplies(v, f.kind)),
      randomCount: Number(env.SLICEFS_CONFORMANCE_RANDOM ?? DEFAULT_RANDOM),
      seed: Number(env.SLICEFS_CONFORMANCE_SEED ?? DEFAULT_SEED),
      jobs: Number(env.SLICEFS_CONFORMANCE_JOBS ?? DEFAULT_JOBS),
      onResult: (r) => {
        done++;
        const state = r.skipped !== undefined ? 'skipped' : r.outcome!.differences.length === 0 ? 'ok' : `${r.outcome!.differences.length} differ`;
        process.stderr.write(`[${done}] ${r.file} ${r.variant}: ${state}\n`);
      },
    });
// Every result, for a closer look than the report's (SLICEFS_CONFORMANCE_JSON=path).
if (env.SLICEFS_CONFORMANCE_JSON) await writeFile(env.SLICEFS_CONFORMANCE_JSON, JSON.stringify(results, null, 1));
console.log(report(results, { verboseSkips: env.SLICEFS_CONFORMANCE_VERBOSE === '1' }));
if (!merged) console.log(`\ntime: ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exitCode = results.some((r) => (r.outcome?.differences.length ?? 0) > 0) ? 1 : 0;
