/**
 * `slicefs view` against `samtools view http://…` on the same BAM (the bench BAM of
 * test/helpers/sample-data, ~272 MB), side by side in one run: regions of 1 kb, 100 kb and 10 Mb,
 * on loopback (nginx on 127.0.0.1) and through the 20 ms / 1 Gbit/s latency proxy. Both tools write
 * SAM records to a pipe that counts lines; each run is a new process. Cold: no cached index (slicefs's
 * --cache-dir emptied, samtools' downloaded `.bai` in its working directory removed); warm: both
 * keep their index from the previous run. Reports median time of 3 runs, HTTP requests and bytes
 * from nginx's log, and the ratios.
 *
 *   node dist/test/bench/view-bench.js [--runs 3]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSampleData } from '../helpers/sample-data.js';
import { startLatencyProxy } from './latency-proxy.js';
import { startNginx } from './nginx.js';
import { runCleanups } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Runs a command with stdout counted (lines), in `cwd` (samtools drops remote indexes into it),
 * under GNU time for its peak RSS.
 */
function timed(cmd: string, args: string[], cwd: string): Promise<{ s: number; lines: number; code: number | null; err: string; rssMiB: number }> {
  return new Promise((res) => {
    const t0 = performance.now();
    const p = spawn('/usr/bin/time', ['-f', 'SLICEFS_BENCH_MAXRSS_KB=%M', cmd, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let lines = 0;
    let err = '';
    p.stdout.on('data', (d: Buffer) => {
      for (const b of d) if (b === 10) lines++;
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => {
      const rss = Number(/SLICEFS_BENCH_MAXRSS_KB=(\d+)/.exec(err)?.[1] ?? NaN) / 1024;
      res({ s: (performance.now() - t0) / 1000, lines, code, err, rssMiB: rss });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
  const runs = Math.max(1, Number(values.runs));
  const dataDir = join(REPO, '.bench/data');
  const sample = await ensureSampleData(join(dataDir, 'sample-bench'), { scale: 'bench' });
  const nginx = await startNginx(dataDir);
  const proxy = await startLatencyProxy({ upstreamPort: nginx.port, oneWayDelayMs: 10, rateBitsPerSec: 1e9 });
  const cwd = await mkdtemp(join(tmpdir(), 'slicefs-viewbench-'));
  const longest = [...sample.contigs].sort((a, b) => b.length - a.length)[0];
  const mid = Math.floor(longest.length / 2);
  const regions = [1_000, 100_000, 10_000_000].map((len) => `${longest.name}:${mid - len / 2}-${mid + len / 2 - 1}`);
  // A whole chromosome, once, on loopback and cold: memory must stay bounded.
  const whole = longest.name;
  const rows: string[] = [];
  try {
    for (const [link, origin] of [
      ['loopback', nginx.origin],
      ['wan 20ms/1G', `http://127.0.0.1:${proxy.port}`],
    ] as const) {
      const url = `${origin}/sample-bench/sample.bam`;
      const cells = regions.flatMap((r) => [
        { region: r, warm: false },
        { region: r, warm: true },
      ]);
      if (link === 'loopback') cells.push({ region: whole, warm: false });
      for (const { region, warm } of cells) {
        const result: Record<string, { s: number[]; req: number; bytes: number; lines: number; rss: number }> = {};
        for (const [tool, cmd, args] of [
          ['samtools', 'samtools', ['view', url, region]],
          ['slicefs', process.execPath, [join(REPO, 'bin/slicefs.js'), 'view', '--cache-dir', join(cwd, 'cache'), '--url', url, '-q', region, '--no-header']],
        ] as const) {
          const r = { s: [] as number[], req: 0, bytes: 0, lines: 0, rss: 0 };
          if (warm) await timed(cmd, [...args], cwd); // leaves each tool's index behind
          for (let i = 0; i < runs; i++) {
            if (!warm) {
              // samtools keeps a remote index in its working directory, slicefs in --cache-dir.
              await rm(join(cwd, 'sample.bam.bai'), { force: true });
              await rm(join(cwd, 'cache'), { recursive: true, force: true });
            }
            await nginx.resetLog();
            const t = await timed(cmd, [...args], cwd);
            if (t.code !== 0) throw new Error(`${tool} failed: ${t.err.slice(0, 300)}`);
            const log = await nginx.accessLog();
            r.s.push(t.s);
            r.req = log.requests;
            r.bytes = log.bytes;
            r.lines = t.lines;
            r.rss = Math.max(r.rss, t.rssMiB);
          }
          result[tool] = r;
        }
        const a = result.samtools;
        const b = result.slicefs;
        if (a.lines !== b.lines) throw new Error(`${region}: samtools ${a.lines} records, slicefs ${b.lines}`);
        rows.push(
          `| ${link} | ${region} (${b.lines} records) | ${warm ? 'warm' : 'cold'} | ${median(a.s).toFixed(3)} | ${median(b.s).toFixed(3)} | **${(median(b.s) / median(a.s)).toFixed(2)}×** | ${a.req} / ${b.req} | ${(a.bytes / 1e6).toFixed(2)} / ${(b.bytes / 1e6).toFixed(2)} | ${a.rss.toFixed(0)} / ${b.rss.toFixed(0)} |`,
        );
      }
    }
  } finally {
    await proxy.close();
    await nginx.stop();
    await rm(cwd, { recursive: true, force: true });
    await runCleanups();
  }
  process.stdout.write(
    `slicefs view vs samtools view on ${sample.bam} (${runs} runs, median; cold processes)\n\n` +
      '| link | region | index | samtools s | slicefs s | time ratio | requests (samtools / slicefs) | origin MB (samtools / slicefs) | peak RSS MiB (samtools / slicefs) |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n' +
      rows.join('\n') +
      '\n',
  );
}

main().catch((e: Error) => {
  process.stderr.write(`view-bench: ${e.message}\n`);
  process.exit(1);
});
