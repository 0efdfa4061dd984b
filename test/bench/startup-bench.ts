/**
 * Start-up of `slicefs view` (issue 18): a 1 kb region of the bench BAM on loopback (nginx on
 * 127.0.0.1), side by side in one run with `node -e 0` (what any Node program pays before its first
 * line) and `samtools view URL REGION` (the tool users compare with). Every command is a new
 * process; the commands take turns run by run (round robin), so a change of the machine's load
 * during the run weighs on all of them alike. Reports the median wall clock and CPU seconds
 * (user + system, all threads: GNU time) of N runs, and the ratios to `node -e 0` and to samtools.
 *
 * slicefs is measured as users get it (disk tier on, index cache on, @PG on: no option but
 * --url and -q), its cache directory a fresh one under the run's temp dir (XDG_CACHE_HOME), warm
 * (the index, the header and the chunks kept from the run before) and cold (emptied before each
 * run); and with `--disk-cache-size 0 --no-index-cache` (nothing kept). `slicefs --version` shows
 * what loading the CLI costs without a view. samtools runs in its own directory: warm, it keeps
 * the .bai it downloads (as it does for users), cold, that is removed before each run. Each
 * tool's records are checked against samtools's (same count, same lines).
 *
 * `--baseline-bin PATH` adds the same slicefs rows for another build (e.g. the previous commit's
 * bin/slicefs.js, built in its own checkout), measured in the same rounds.
 *
 * The CLI's V8 code cache (dist/bundle/main.cjs.v8cache, bin/slicefs.js): the bench first checks
 * that the launcher accepts it in a view (SLICEFS_DEBUG_CODE_CACHE=1), and adds a row of the warm
 * view by the same build without the cache, to show what the cache alone is worth.
 *
 *   node dist/test/bench/startup-bench.js [--runs 11] [--cmd-timeout 60] [--baseline-bin PATH]
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSampleData } from '../helpers/sample-data.js';
import { startNginx } from './nginx.js';
import { childEnv, copyCli, launchTimed, onCleanup, runBenchMain, runCleanups, type TimedExit } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

interface Cell {
  label: string;
  cmd: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Run before each timed run (a cold cell empties its caches). */
  before?: () => Promise<void>;
  /** Compared with samtools's records. */
  records: boolean;
  runs: TimedExit[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const recordLines = (sam: string) => sam.split('\n').filter((l) => l !== '' && !l.startsWith('@'));

async function emptyDir(dir: string): Promise<void> {
  for (const f of await readdir(dir)) await rm(join(dir, f), { recursive: true, force: true });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '11' }, 'cmd-timeout': { type: 'string', default: '60' }, 'baseline-bin': { type: 'string' } },
  });
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  if (!Number.isFinite(runs)) throw new Error(`--runs: not a number: ${values.runs}`);
  const timeoutMs = Number(values['cmd-timeout']) * 1000;
  if (!(timeoutMs > 0)) throw new Error(`--cmd-timeout: not a positive number of seconds: ${values['cmd-timeout']}`);

  const cli = await copyCli(REPO, 'startup-bench');
  const uncached = await copyCli(REPO, 'startup-bench-uncached');
  const uncachedCache = join(uncached.dir, 'dist/bundle/main.cjs.v8cache');
  if (!existsSync(uncachedCache)) throw new Error(`${uncachedCache}: missing: run \`npm run build\``);
  await rm(uncachedCache);
  const dataDir = join(REPO, '.bench/data');
  const sample = await ensureSampleData(join(dataDir, 'sample-bench'), { scale: 'bench' });
  const nginx = await startNginx(dataDir); // stopped by the cleanups
  const tmp = await mkdtemp(join(tmpdir(), 'slicefs-startup-bench-'));
  onCleanup('temp dir (startup-bench)', () => rm(tmp, { recursive: true, force: true }));
  const longest = [...sample.contigs].sort((a, b) => b.length - a.length)[0];
  const mid = Math.floor(longest.length / 2);
  const region = `${longest.name}:${mid - 500}-${mid + 499}`;
  const url = `${nginx.origin}/sample-bench/sample.bam`;

  const dir = async (name: string) => {
    const d = join(tmp, name);
    await mkdir(d, { recursive: true });
    return d;
  };
  const env = childEnv();
  const slicefs = async (label: string, name: string, extra: string[], cold: boolean, bin = cli.bin): Promise<Cell> => {
    const cache = await dir(`${name}-xdg`);
    return {
      label,
      cmd: process.execPath,
      args: [bin, 'view', '--url', url, '-q', region, ...extra],
      cwd: await dir(name),
      env: { ...env, XDG_CACHE_HOME: cache },
      before: cold ? () => emptyDir(cache) : undefined,
      records: true,
      runs: [],
    };
  };
  const samtoolsWarm = await dir('samtools-warm');
  const samtoolsCold = await dir('samtools-cold');
  const cells: Cell[] = [
    { label: '`node -e 0`', cmd: process.execPath, args: ['-e', '0'], cwd: tmp, env, records: false, runs: [] },
    { label: '`slicefs --version`', cmd: process.execPath, args: [cli.bin, '--version'], cwd: tmp, env, records: false, runs: [] },
    { label: 'samtools view, warm (.bai kept)', cmd: 'samtools', args: ['view', url, region], cwd: samtoolsWarm, env, records: true, runs: [] },
    { label: 'samtools view, cold', cmd: 'samtools', args: ['view', url, region], cwd: samtoolsCold, env, before: () => emptyDir(samtoolsCold), records: true, runs: [] },
    await slicefs('slicefs view, defaults, warm', 'default-warm', [], false),
    await slicefs('slicefs view, defaults, cold (empty cache dir)', 'default-cold', [], true),
    await slicefs('slicefs view `--disk-cache-size 0 --no-index-cache`', 'nothing-kept', ['--disk-cache-size', '0', '--no-index-cache'], false),
    await slicefs('slicefs view, defaults, warm, without the code cache', 'uncached-warm', [], false, uncached.bin),
  ];
  const baseline = values['baseline-bin'];
  if (baseline) {
    cells.push(
      await slicefs('baseline: slicefs view, defaults, warm', 'baseline-warm', [], false, baseline),
      await slicefs('baseline: slicefs view, defaults, cold', 'baseline-cold', [], true, baseline),
      await slicefs('baseline: slicefs view `--disk-cache-size 0 --no-index-cache`', 'baseline-nothing-kept', ['--disk-cache-size', '0', '--no-index-cache'], false, baseline),
    );
  }
  // The rows measure the code cache only if V8 takes it in this very command.
  const probe = cells.find((c) => c.label === 'slicefs view, defaults, warm')!;
  const probed = await launchTimed(probe.cmd, probe.args, { cwd: probe.cwd, env: { ...probe.env, SLICEFS_DEBUG_CODE_CACHE: '1' }, timeoutMs, owner: 'startup-bench' }).done;
  if (!/^slicefs: code cache: accepted$/m.test(probed.stderr)) throw new Error(`the code cache is not used in the view: ${probed.stderr.slice(0, 500)}`);
  // One untimed run each: the warm cells fill their caches, the page cache holds every file.
  for (const c of cells) await launchTimed(c.cmd, c.args, { cwd: c.cwd, env: c.env, timeoutMs, owner: 'startup-bench' }).done;
  let expected: string[] | undefined;
  try {
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`startup-bench: run ${i + 1}/${runs}\n`);
      for (const c of cells) {
        await c.before?.();
        const r = await launchTimed(c.cmd, c.args, { cwd: c.cwd, env: c.env, timeoutMs, owner: 'startup-bench' }).done;
        if (r.code !== 0 || r.timedOut) throw new Error(`${c.label}: ${r.timedOut ? 'timed out' : `exit ${r.code}`}: ${r.stderr.slice(-2000)}`);
        if (c.records) {
          const lines = recordLines(r.stdout);
          expected ??= lines;
          if (lines.length === 0 || lines.join('\n') !== expected.join('\n')) {
            throw new Error(`${c.label}: ${lines.length} records, not the ${expected.length} samtools printed`);
          }
        }
        c.runs.push(r);
      }
    }
  } finally {
    await cli.remove();
    await uncached.remove();
    await runCleanups();
  }
  const wall = (c: Cell) => median(c.runs.map((r) => r.wallS));
  const cpu = (c: Cell) => median(c.runs.map((r) => r.cpuS));
  const node0 = cells[0];
  const samtools = cells[2];
  const rows = cells.map(
    (c) =>
      `| ${c.label} | ${wall(c).toFixed(3)} | ${cpu(c).toFixed(3)} | **${(wall(c) / wall(node0)).toFixed(2)}×** | ${(wall(c) / wall(samtools)).toFixed(1)}× | ${median(c.runs.map((r) => r.rssMiB)).toFixed(0)} | ${c.runs.map((r) => r.wallS.toFixed(2)).join(' ')} |`,
  );
  process.stdout.write(
    `Start-up: a 1 kb region (${region}, ${expected?.length ?? 0} records) of ${sample.bam} on loopback (nginx), ${runs} runs per command, round robin, median` +
      `${baseline ? `; baseline: ${baseline}` : ''}\n\n` +
      '| command | wall s | CPU s | wall / `node -e 0` | wall / samtools (warm) | peak RSS MiB | runs, wall s |\n' +
      '|---|---:|---:|---:|---:|---:|---|\n' +
      rows.join('\n') +
      '\n',
  );
}

runBenchMain('startup-bench', main);
