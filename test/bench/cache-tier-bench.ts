/**
 * The disk tier and the shared cache tier (issue 9), in one run, through the 20 ms / 1 Gbit/s
 * latency proxy in front of the origin (nginx serving the bench BAM and its BAI, from
 * test/helpers/sample-data). Ten regions of 100 kb spread over chr1 and chr2 are read in one
 * process ("a job") by:
 *
 * - `samtools view -c URL r1 … r10` over HTTP: the peer; it caches only the index (in its working
 *   directory), so every node and every re-run pulls the data again. Cold: fresh working directory.
 * - `slicefs view --url URL -q r1 … -q r10 -o /dev/null --stats` (records from --stats);
 * - `samtools view -c` of the same regions on a `slicefs mount` of a manifest (BAM + BAI), one
 *   fresh daemon per job;
 *
 * each of the two slicefs forms in five states (one process, i.e. one node, each):
 *
 * - cold, disk tier off: `--disk-cache-size 0` (what the other benchmarks run), for reference;
 * - cold:  an empty --cache-dir (the disk tier on, default budget);
 * - warm disk tier: the same --cache-dir again (a re-run on the same node);
 * - shared tier, 1st node: an empty --cache-dir, `--cache-proxy` pointing at a fresh nginx cache
 *   tier (test/helpers/cache-tier.ts, docker/cache-tier/nginx.conf), which this node fills;
 * - shared tier, next node: another empty --cache-dir, the same (now warm) tier.
 *
 * The tier sits on the cluster side (loopback to the nodes) and fetches from the origin through the
 * latency proxy, as a site cache in front of a distant archive would. Reported per node: wall time,
 * requests and body bytes in the origin's access log (the tier's access checks are HEAD requests:
 * counted as requests, no body), the bytes that crossed the emulated link (the proxy's counter),
 * and the time ratio against samtools over HTTP. Every job's record count is checked against
 * `samtools view -c` of the local BAM.
 *
 * --log-dir DIR keeps the origin's access log of every job there (`<n>-<job>-<state>.log`).
 *
 *   node dist/test/bench/cache-tier-bench.js [--runs 1] [--cmd-timeout 300] [--log-dir DIR]
 */
import { copyFile, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CacheTier } from '../helpers/cache-tier.js';
import { ensureSampleData } from '../helpers/sample-data.js';
import { startLatencyProxy, type LatencyProxy } from './latency-proxy.js';
import { startSlicefsMount } from './mount-daemon.js';
import { startNginx, type NginxServer } from './nginx.js';
import { copyCli, launchTimed, onCleanup, runBenchMain, runCleanups, type TimedExit } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

type State = 'cold, disk tier off' | 'cold' | 'warm disk tier' | 'shared tier, 1st node' | 'shared tier, next node';

interface Cell {
  tool: string;
  state: State | 'cold (caches the index only)';
  s: number[];
  requests: number;
  originMB: number;
  linkMB: number;
  records: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '1' },
      'cmd-timeout': { type: 'string', default: '300' },
      'log-dir': { type: 'string' },
    },
  });
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  if (!Number.isFinite(runs)) throw new Error(`--runs: not a number: ${values.runs}`);
  const cmdTimeoutMs = Number(values['cmd-timeout']) * 1000;
  if (!(cmdTimeoutMs > 0)) throw new Error(`--cmd-timeout: not a positive number of seconds: ${values['cmd-timeout']}`);

  const t0 = performance.now();
  const cli = await copyCli(REPO, 'cache-tier-bench');
  const dataDir = join(REPO, '.bench/data');
  const sample = await ensureSampleData(join(dataDir, 'sample-bench'), { scale: 'bench' });
  const bamSize = (await stat(sample.bam)).size;
  const bai = sample.bai;
  const baiSize = (await stat(bai)).size;
  const nginx: NginxServer = await startNginx(dataDir);
  const proxy: LatencyProxy = await startLatencyProxy({ upstreamPort: nginx.port, oneWayDelayMs: 10, rateBitsPerSec: 1e9 });
  const unregisterProxy = onCleanup('latency proxy (cache-tier-bench)', () => proxy.close());
  const work = await mkdtemp(join(tmpdir(), `slicefs-bench-${process.pid}-tier-`));
  const unregisterWork = onCleanup('cache-tier-bench temp dir', () => rm(work, { recursive: true, force: true }));
  const origin = `http://127.0.0.1:${proxy.port}`;
  const url = `${origin}/sample-bench/${basename(sample.bam)}`;
  const baiUrl = `${origin}/sample-bench/${basename(bai)}`;

  // Ten 100 kb regions: six on chr1, four on chr2, evenly spaced.
  const contig = (name: string) => {
    const c = sample.contigs.find((x) => x.name === name);
    if (!c) throw new Error(`the bench BAM has no ${name}`);
    return c.length;
  };
  const regions: string[] = [];
  for (const [name, n] of [
    ['chr1', 6],
    ['chr2', 4],
  ] as const) {
    const len = contig(name);
    for (let i = 0; i < n; i++) {
      const beg = Math.floor(((i + 0.5) * len) / n);
      regions.push(`${name}:${beg}-${beg + 99_999}`);
    }
  }
  const expectedRun = await launchTimed('samtools', ['view', '-c', sample.bam, ...regions], { cwd: work, timeoutMs: cmdTimeoutMs, owner: 'cache-tier-bench' }).done;
  if (expectedRun.code !== 0) throw new Error(`samtools view -c on the local BAM failed: ${expectedRun.stderr.slice(-500)}`);
  const expected = Number(expectedRun.stdout.trim());

  let seq = 0;
  const newDir = async (name: string) => {
    const d = join(work, `${name}-${++seq}`);
    await mkdir(d, { recursive: true });
    return d;
  };
  const log = (m: string) => process.stderr.write(`cache-tier-bench: ${m}\n`);
  const fail = (what: string, t: TimedExit, args: string[]) =>
    new Error(`${what}: ${t.timedOut ? `timed out after ${cmdTimeoutMs / 1000} s` : `exit ${t.code}`}: ${args.join(' ')}\n${t.stderr.slice(-3000)}`);

  const logDir = values['log-dir'] ? resolve(values['log-dir']) : undefined;
  if (logDir) await mkdir(logDir, { recursive: true });
  const accessLogPath = logDir ? nginx.accessLogPath : '';
  let jobSeq = 0;

  /** One job: resets the origin's log, runs `job`, returns wall time, origin traffic, records. */
  const measure = async (name: string, job: () => Promise<{ s: number; records: number }>) => {
    await nginx.resetLog();
    const before = proxy.stats().deliveredDown;
    const r = await job();
    const logSum = await nginx.accessLog();
    if (logDir) await copyFile(accessLogPath, join(logDir, `${++jobSeq}-${name.replace(/[^\w.-]+/g, '-')}.log`));
    return { ...r, requests: logSum.requests, originMB: logSum.bytes / 1e6, linkMB: (proxy.stats().deliveredDown - before) / 1e6 };
  };

  const samtoolsHttp = async () => {
    const cwd = await newDir('samtools-http'); // htslib drops the remote .bai here
    const args = ['view', '-c', url, ...regions];
    const t = await launchTimed('samtools', args, { cwd, timeoutMs: cmdTimeoutMs, owner: 'cache-tier-bench' }).done;
    if (t.code !== 0 || t.timedOut) throw fail('samtools over HTTP', t, args);
    return { s: t.wallS, records: Number(t.stdout.trim()) };
  };

  const slicefsView = (cacheDir: string, tier?: CacheTier, diskOff = false) => async () => {
    const args = [cli.bin, 'view', '--url', url, '--cache-dir', cacheDir];
    if (diskOff) args.push('--disk-cache-size', '0');
    if (tier) args.push('--cache-proxy', tier.url);
    for (const r of regions) args.push('-q', r);
    args.push('-o', '/dev/null', '--stats');
    const t = await launchTimed(process.execPath, args, { cwd: work, timeoutMs: cmdTimeoutMs, owner: 'cache-tier-bench' }).done;
    if (t.code !== 0 || t.timedOut) throw fail('slicefs view', t, args);
    const m = /records[=: ]+(\d+)/i.exec(t.stderr) ?? /(\d+) records/i.exec(t.stderr);
    if (!m) throw new Error(`slicefs view --stats printed no record count:\n${t.stderr.slice(-1000)}`);
    return { s: t.wallS, records: Number(m[1]) };
  };

  /** One node with a mount: a fresh daemon on `cacheDir`, one samtools job on it, the daemon stopped. */
  const slicefsMount = (cacheDir: string, tier?: CacheTier, diskOff = false) => async () => {
    const base = await newDir('mount');
    const dir = join(base, 'mnt');
    await mkdir(dir);
    const manifest = join(base, 'manifest.tsv');
    await writeFile(manifest, `url\tpath\tsize\n${url}\tsample.bam\t${bamSize}\n${baiUrl}\tsample.bam.bai\t${baiSize}\n`);
    const args = [cli.bin, 'mount', '--manifest', manifest, '--mount-point', dir, '--cache-dir', cacheDir];
    if (diskOff) args.push('--disk-cache-size', '0');
    if (tier) args.push('--cache-proxy', tier.url);
    // The time of a node's job includes starting its daemon.
    const t1 = performance.now();
    const m = await startSlicefsMount({ args, dir, cwd: work, logFile: join(base, 'slicefs.log'), mountedTimeoutMs: 60_000 });
    try {
      const sargs = ['view', '-c', join(dir, 'sample.bam'), ...regions];
      const t = await launchTimed('samtools', sargs, { cwd: base, timeoutMs: cmdTimeoutMs, owner: 'cache-tier-bench' }).done;
      if (t.code !== 0 || t.timedOut) throw fail('samtools on the mount', t, sargs);
      return { s: (performance.now() - t1) / 1000, records: Number(t.stdout.trim()) };
    } finally {
      const note = await m.stop();
      if (note) log(`mount ${dir}: ${note}`);
    }
  };

  const cells: Cell[] = [];
  const add = (tool: string, state: Cell['state']) => {
    const c: Cell = { tool, state, s: [], requests: 0, originMB: 0, linkMB: 0, records: 0 };
    cells.push(c);
    return c;
  };
  const record = (c: Cell, r: Awaited<ReturnType<typeof measure>>) => {
    if (r.records !== expected) throw new Error(`${c.tool}, ${c.state}: ${r.records} records, expected ${expected}`);
    c.s.push(r.s);
    // The last run's traffic (every run of a cell is in the same state, so they agree).
    c.requests = r.requests;
    c.originMB = r.originMB;
    c.linkMB = r.linkMB;
    c.records = r.records;
  };

  try {
    const st = add('samtools view, HTTP', 'cold (caches the index only)');
    for (let i = 0; i < runs; i++) {
      log(`samtools over HTTP, run ${i + 1}/${runs}`);
      record(st, await measure('samtools-http', samtoolsHttp));
    }
    for (const [tool, job] of [
      ['slicefs view', slicefsView],
      ['samtools view on slicefs mount', slicefsMount],
    ] as const) {
      const off = add(tool, 'cold, disk tier off');
      const cold = add(tool, 'cold');
      const warm = add(tool, 'warm disk tier');
      const first = add(tool, 'shared tier, 1st node');
      const next = add(tool, 'shared tier, next node');
      for (let i = 0; i < runs; i++) {
        log(`${tool}: cold and warm disk tier, run ${i + 1}/${runs}`);
        record(off, await measure(`${tool} cold-disk-off`, job(await newDir('cache'), undefined, true)));
        const cacheDir = await newDir('cache');
        record(cold, await measure(`${tool} cold`, job(cacheDir)));
        record(warm, await measure(`${tool} warm`, job(cacheDir)));
        log(`${tool}: shared tier, run ${i + 1}/${runs}`);
        const tier = await CacheTier.start();
        const unregisterTier = onCleanup('cache tier (cache-tier-bench)', () => tier.close());
        try {
          record(first, await measure(`${tool} tier-1st`, job(await newDir('cache'), tier)));
          record(next, await measure(`${tool} tier-next`, job(await newDir('cache'), tier)));
        } finally {
          await tier.close();
          unregisterTier();
        }
      }
    }
  } finally {
    await proxy.close();
    unregisterProxy();
    await nginx.stop();
    await rm(work, { recursive: true, force: true });
    unregisterWork();
    await cli.remove();
    await runCleanups();
  }

  const base = median(cells[0].s);
  const rows = cells.map(
    (c) =>
      `| ${c.tool} | ${c.state} | ${median(c.s).toFixed(2)} | ${(median(c.s) / base).toFixed(2)}× | ${c.requests} | ${c.originMB.toFixed(2)} | ${c.linkMB.toFixed(2)} |`,
  );
  process.stdout.write(
    `Disk and shared cache tiers: ${regions.length} regions of 100 kb of ${basename(sample.bam)} (${(bamSize / 1e6).toFixed(0)} MB, ${expected} records) in one job per node, ` +
      `through the latency proxy (20 ms RTT, 1 Gbit/s); ${runs} run(s), median\n\n` +
      '| job | state | s | time vs samtools HTTP | origin requests | origin MB | MB over the link |\n' +
      '|---|---|---:|---:|---:|---:|---:|\n' +
      rows.join('\n') +
      '\n\n' +
      `- Regions: ${regions.join(' ')}.\n` +
      '- Each row is one node\'s job in a new process: `slicefs view`, or a new `slicefs mount` daemon (its start-up included) with one `samtools view -c` on it. ' +
      'cold, disk tier off: `--disk-cache-size 0`; cold: an empty `--cache-dir` (the disk tier on); warm disk tier: the same `--cache-dir` again; shared tier: an empty `--cache-dir` and `--cache-proxy` to an nginx cache tier ' +
      '(docker/cache-tier/nginx.conf) on the nodes\' side of the link, empty for the 1st node, filled by it for the next.\n' +
      '- Origin requests and MB (of the last run): the origin nginx\'s access log (body bytes; the tier\'s access checks are HEADs, counted, no body). ' +
      'MB over the link: what the latency proxy delivered from the origin (htslib asks for open-ended ranges and drops the connection, so nginx\'s count can exceed it).\n' +
      `- ${((performance.now() - t0) / 60_000).toFixed(1)} min in all.\n`,
  );
}

runBenchMain('cache-tier-bench', main);
