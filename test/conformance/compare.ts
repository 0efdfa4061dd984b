/**
 * Compares `slicefs view` with `samtools view` (1.16, the oracle) on one prepared variant, byte for
 * byte, the data served by the fixture server on 127.0.0.1 and samtools reading the same bytes from
 * disk:
 *   1. the whole file with its header (`.`) against `samtools view -h --no-PG`;
 *   2. every region (./regions.ts), one at a time, against `samtools view FILE REGION`.
 * slicefs is the view engine run in this process on the URL (test/helpers/view-text.ts): a CLI
 * start costs 0.4 to 1 s on a loaded 2-core machine, a region in process 15 ms. The CLI itself
 * (`slicefs view --url … --no-PG`) views the whole file of one variant per corpus file, and of
 * every variant the engine fails on: its output must be samtools's, its failure one
 * `slicefs: error:` line, never a stack trace.
 * samtools is run once over all the regions without `-M`: it then prints each region's records in
 * turn, which is the concatenation of one-region runs (with `-M` it merges regions and misreads
 * `chr:beg-` and comma forms); only when the concatenations differ is it run per region, to name
 * the regions that differ.
 */
import { basename } from 'node:path';
import { readFile } from 'node:fs/promises';
import { runSlicefs } from '../helpers/daemon.js';
import type { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom } from '../helpers/random.js';
import { samtools } from '../helpers/sample-data.js';
import { viewText } from '../helpers/view-text.js';
import { headerContigs, type Fasta } from './corpus.js';
import type { PreparedVariant } from './prepare.js';
import { edgeRegions, randomRegions } from './regions.js';

/** The whole-file comparison's name in reports, where a region would be. */
export const WHOLE_FILE = '(whole file, -h)';
export const WHOLE_FILE_CLI = '(whole file, -h, CLI)';

export interface Difference {
  region: string;
  /** 1-based line of the first difference, and that line on each side (`<end of output>` when one side has no more). */
  line: number;
  samtools: string;
  slicefs: string;
}

export interface VariantOutcome {
  /** Comparisons made (the whole file plus each region samtools could read). */
  compared: number;
  identical: number;
  /** Regions samtools refused (it printed an error for them alone): not compared. */
  skippedRegions: string[];
  differences: Difference[];
  /** The seed of the random regions, to re-run exactly. */
  seed: number;
}

const END = '<end of output>';
/** Characters of a differing line kept in a report: a read of 100 kb is not useful in full. */
const SHOWN = 300;

export function firstDifference(region: string, want: string, got: string): Difference {
  const a = want.split('\n');
  const b = got.split('\n');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const cut = (s: string | undefined) => (s === undefined ? END : s.length > SHOWN ? `${s.slice(0, SHOWN)}…` : s);
  return { region, line: i + 1, samtools: cut(a[i]), slicefs: cut(b[i]) };
}

/** A stack trace's frame line, or a Node error's name at the start of a line. */
const STACK = /^\s+at \S.*$|^\w*Error: |^node:internal/m;

/** Where a corpus file's variant is served: its directory keeps names apart, its basename is the file's. */
export interface Served {
  url: string;
  referenceUrl?: string;
}

const servedRefs = new Map<string, string>();

/** Serves the variant (and its index, and its reference once) on `server`. */
export async function serveVariant(server: FixtureServer, prefix: string, v: PreparedVariant, reference: Fasta | undefined): Promise<Served> {
  const path = `${prefix}/${basename(v.path)}`;
  server.addFile(path, await readFile(v.path));
  server.addFile(`${prefix}/${basename(v.index)}`, await readFile(v.index));
  let referenceUrl: string | undefined;
  if (reference) {
    const key = `${server.origin}|${reference.path}`;
    referenceUrl = servedRefs.get(key);
    if (!referenceUrl) {
      const refPath = `/ref/${servedRefs.size}/${basename(reference.path)}`;
      server.addFile(refPath, await readFile(reference.path));
      server.addFile(`${refPath}.fai`, await readFile(`${reference.path}.fai`));
      referenceUrl = server.url(refPath);
      servedRefs.set(key, referenceUrl);
    }
  }
  return { url: server.url(path), referenceUrl };
}

/** How an error of the view engine shows in its output, where the records would be. */
const REFUSED = '<slicefs refused: ';

async function slicefsRegion(served: Served, region: string, header: 'with' | 'without' = 'without'): Promise<string> {
  try {
    return await viewText(served.url, [region], { referenceUrl: served.referenceUrl, header });
  } catch (err) {
    return `${REFUSED}${err instanceof Error ? err.message : String(err)}>`;
  }
}

/** The CLI's output of the whole file with its header, or what is wrong with how it failed. */
async function cliView(served: Served): Promise<string | { failure: string }> {
  const cli = await runSlicefs(['view', '--no-index-cache', '--url', served.url, ...(served.referenceUrl ? ['--reference-url', served.referenceUrl] : []), '--no-PG']);
  const stderr = cli.stderr.trim();
  if (STACK.test(stderr)) return { failure: `stack trace: ${stderr.split('\n').slice(0, 3).join(' | ')}` };
  if (cli.code === 0) return cli.stdout.toString('latin1');
  const lines = stderr.split('\n');
  const shape = lines.length === 1 && lines[0].startsWith('slicefs: error: ') ? '' : ` (${lines.length} lines, not one 'slicefs: error:' line)`;
  return { failure: `exit ${cli.code}${shape}: ${lines[0]}` };
}

/**
 * Compares the variant at `v` (served at `served`) over its regions and `randomCount` seeded random
 * ones. The whole file goes through the CLI too when `withCli`, or when the engine fails on it.
 */
export async function compareVariant(v: PreparedVariant, served: Served, reference: Fasta | undefined, seed: number, randomCount: number, withCli: boolean): Promise<VariantOutcome> {
  const refArgs = reference ? ['-T', reference.path] : [];
  const outcome: VariantOutcome = { compared: 0, identical: 0, skippedRegions: [], differences: [], seed };
  const note = (region: string, want: string, got: string) => {
    outcome.compared++;
    if (want === got) outcome.identical++;
    else outcome.differences.push(firstDifference(region, want, got));
  };

  const whole = await samtools(['view', '-h', '--no-PG', ...refArgs, v.path]);
  if (whole.code !== 0) {
    outcome.skippedRegions.push(`${WHOLE_FILE}: samtools: ${whole.stderr.trim().split('\n')[0]}`);
    return outcome;
  }
  const want = whole.stdout.toString('latin1');
  note(WHOLE_FILE, want, await slicefsRegion(served, '.', 'with'));
  if (withCli || outcome.differences.some((d) => d.slicefs.startsWith(REFUSED))) {
    // What a user of the CLI sees: the same bytes, or one error line and never a stack trace.
    const cli = await cliView(served);
    if (typeof cli === 'string') note(WHOLE_FILE_CLI, want, cli);
    else {
      outcome.compared++;
      outcome.differences.push({ region: WHOLE_FILE_CLI, line: 0, samtools: '(exit 0)', slicefs: cli.failure });
    }
  }

  const contigs = headerContigs(want.split('\n').filter((l) => l.startsWith('@')).join('\n'));
  const placed: { name: string; pos: number }[] = [];
  for (const line of want.split('\n')) {
    if (line === '' || line.startsWith('@')) continue;
    const f = line.split('\t', 4);
    if (f[2] !== '*' && Number(f[3]) > 0) placed.push({ name: f[2], pos: Number(f[3]) });
  }
  const regions = [...edgeRegions(contigs), ...randomRegions(new SeededRandom(seed), contigs, placed, randomCount)];
  const got: string[] = [];
  for (const r of regions) got.push(await slicefsRegion(served, r));
  const all = await samtools(['view', ...refArgs, v.path, ...regions]);
  if (all.code === 0 && all.stdout.toString('latin1') === got.join('')) {
    outcome.compared += regions.length;
    outcome.identical += regions.length;
    return outcome;
  }
  for (let i = 0; i < regions.length; i++) {
    const one = await samtools(['view', ...refArgs, v.path, regions[i]]);
    if (one.code !== 0) {
      outcome.skippedRegions.push(`${regions[i]}: samtools: ${one.stderr.trim().split('\n')[0]}`);
      continue;
    }
    note(regions[i], one.stdout.toString('latin1'), got[i]);
  }
  return outcome;
}

/**
 * The differences of `regions` alone (each region one samtools run): for tests that pin one
 * difference class down on a corpus file's variant.
 */
export async function compareRegions(v: PreparedVariant, served: Served, reference: Fasta | undefined, regions: readonly string[]): Promise<Difference[]> {
  const refArgs = reference ? ['-T', reference.path] : [];
  const out: Difference[] = [];
  for (const region of regions) {
    const one = await samtools(['view', ...refArgs, v.path, region]);
    if (one.code !== 0) throw new Error(`samtools view ${region}: ${one.stderr.trim().split('\n')[0]}`);
    const want = one.stdout.toString('latin1');
    const got = await slicefsRegion(served, region);
    if (want !== got) out.push(firstDifference(region, want, got));
  }
  return out;
}
