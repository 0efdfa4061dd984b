/**
 * `slicefs view` against `samtools view http://…` on the same BAM and CRAM (the bench data of
 * test/helpers/sample-data: sample.bam ~272 MB, sample.cram ~132 MB with its reference ref.fa ~81 MB),
 * side by side in one run: the table of issue 18.
 *
 * A cell is (format BAM|CRAM, output SAM|BAM|ubam, link, region, index cold|warm). In each cell the
 * tools run in turn, N rounds (round robin, so a change of the machine's load hits every tool
 * alike), each run a new process; the median of the N is reported:
 *   - the peers: `samtools view URL REGION` and `samtools view -@2 URL REGION` (`-b` / `-u` for BAM
 *     and uncompressed BAM output);
 *   - slicefs as users get it ("defaults": only `--url`, `-q` and the output flags; disk tier and
 *     index cache on, its cache directory a fresh XDG_CACHE_HOME per cell), and tuned/isolated
 *     ("no-disk": the same with `--disk-cache-size 0`, so only the index is kept). `--configs`
 *     picks them, `--slicefs-args` adds flags to both (e.g. "-@ 1").
 * Cold: each tool's directory emptied before each run (samtools drops the remote `.bai`/`.crai` into
 * its working directory; slicefs keeps indexes, and with the disk tier data blocks, in its cache
 * directory). Warm: one unmeasured run first, then everything kept: for "defaults" that is the
 * index AND the data blocks the disk tier kept, so a warm defaults run may fetch nothing.
 *
 * Per cell and tool: wall seconds, CPU seconds (user + system, GNU time), peak RSS (GNU time),
 * origin requests and bytes (nginx's access log; for CRAM also the reference's share), output
 * bytes; the ratio of slicefs's time to each peer's. The records are checked equal: the last run's
 * output of every tool is digested (SAM: SHA-256 of the text; BAM: SHA-256 of `samtools view` of
 * it) and compared with samtools's; CRAM record counts are compared with the BAM's for the same
 * region. Links: loopback (nginx on 127.0.0.1) and the 20 ms / 1 Gbit/s latency proxy.
 *
 * CRAM: both tools read the reference over the same link: `slicefs view --reference-url
 * …/ref.fa` and `samtools view -T http://…/ref.fa` (htslib reads `ref.fa.fai` over HTTP, then seeks
 * in ref.fa with open-ended range requests). samtools runs with REF_PATH=/nonexistent/%s and
 * REF_CACHE= (empty): htslib then neither asks www.ebi.ac.uk for a reference by MD5 nor writes a
 * copy into ~/.cache/hts-ref, so a cold run is cold and the network stays on 127.0.0.1.
 *
 * slicefs runs from a copy of bin/ and dist/ taken at the start (under .bench/), so a rebuild
 * during the run does not change what is measured. The markdown (command line first, then the
 * table, then the issue's targets met or not) goes to stdout and to `--out`.
 *
 *   node dist/test/bench/view-bench.js [--runs 3] [--format bam|cram|both] [--output sam,bam,ubam]
 *     [--sizes 1k,100k,10M,chrom] [--links loopback,wan] [--index cold,warm] [--configs defaults,no-disk]
 *     [--slicefs-args="..."] [--out FILE] [--cmd-timeout 600] [--estimate-only]
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSampleData } from '../helpers/sample-data.js';
import { startLatencyProxy } from './latency-proxy.js';
import { startNginx } from './nginx.js';
import { childEnv, copyCli, onCleanup, runBenchMain, runCleanups, shellQuote, sleep, splitArgs } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** htslib must not look a CRAM reference up by MD5 anywhere (www.ebi.ac.uk) nor cache one. */
const SAMTOOLS_ENV = childEnv({ REF_PATH: '/nonexistent/%s', REF_CACHE: '' });

interface Timed {
  s: number;
  lines: number;
  code: number | null;
  err: string;
  rssMiB: number;
  /** CPU seconds (user + system) of the tool and its children, from GNU time. */
  cpuS: number;
  timedOut: boolean;
  /** Bytes written to stdout. */
  bytes: number;
  /** SHA-256 of stdout, when asked (`digest`). */
  sha256?: string;
}

/**
 * Runs a command with stdout counted (bytes, lines), in `cwd` (samtools drops remote indexes into
 * it), under GNU time for CPU seconds and peak RSS. With `digest`, stdout is also hashed; with
 * `saveTo`, also written to that file (BAM output, whose records are compared afterwards). Killed
 * (its whole process group) after `timeoutMs`.
 */
function timed(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  keep: { digest?: boolean; saveTo?: string } = {},
): Promise<Timed> {
  return new Promise((res) => {
    const t0 = performance.now();
    const p = spawn('/usr/bin/time', ['-f', 'SLICEFS_BENCH_MAXRSS_KB=%M CPU_S=%U+%S', cmd, ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout or an abort kills the tool too, not only `time`
    });
    const killGroup = () => {
      try {
        if (p.pid) process.kill(-p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const unregister = onCleanup(`${basename(cmd)} (view-bench)`, killGroup);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    let lines = 0;
    let bytes = 0;
    const hash = keep.digest ? createHash('sha256') : undefined;
    const file: WriteStream | undefined = keep.saveTo ? createWriteStream(keep.saveTo) : undefined;
    let err = '';
    // A failed write (disk full) fails the run through its stderr text instead of crashing the bench.
    file?.on('error', (e) => {
      err += `view-bench: writing ${keep.saveTo}: ${e.message}\n`;
      killGroup();
    });
    p.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      hash?.update(d);
      if (file) {
        // The tool waits while the file catches up, as it would behind a slow pipe reader.
        if (!file.write(d)) {
          p.stdout.pause();
          file.once('drain', () => p.stdout.resume());
        }
      } else {
        for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
      }
    });
    p.stderr.on('data', (d: Buffer) => {
      if (err.length < 1 << 20) err += d.toString();
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      unregister();
      const m = /SLICEFS_BENCH_MAXRSS_KB=(\d+) CPU_S=([\d.]+)\+([\d.]+)/.exec(err);
      const rss = Number(m?.[1] ?? NaN) / 1024;
      const cpuS = Number(m?.[2] ?? NaN) + Number(m?.[3] ?? NaN);
      err = err.replace(/^(Command (exited with non-zero status|terminated by signal) .*\n)?SLICEFS_BENCH_MAXRSS_KB=\d+ CPU_S=\S+\n?/m, '');
      const result: Timed = { s: (performance.now() - t0) / 1000, lines, code, err, rssMiB: rss, cpuS, timedOut, bytes, sha256: hash?.digest('hex') };
      if (file) file.end(() => res(result));
      else res(result);
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Same format as nginx.ts: $msec $connection $connection_requests "$request" $status $body_bytes_sent …
const LOG_LINE = /^\S+ \d+ \d+ "\S+ (\S+) [^"]*" \d{3} (\d+) /;

/** Requests and body bytes in the access log, in all and for the paths that `isRef` picks out. */
async function traffic(logPath: string, isRef: (path: string) => boolean): Promise<{ requests: number; bytes: number; refRequests: number; refBytes: number }> {
  await sleep(50); // as nginx.ts: the log line is written just after the last byte
  const text = await readFile(logPath, 'utf8').catch(() => '');
  const out = { requests: 0, bytes: 0, refRequests: 0, refBytes: 0 };
  for (const line of text.split('\n')) {
    const m = LOG_LINE.exec(line);
    if (!m) continue;
    out.requests++;
    out.bytes += Number(m[2]);
    if (isRef(m[1].replace(/\?.*$/, ''))) {
      out.refRequests++;
      out.refBytes += Number(m[2]);
    }
  }
  return out;
}

type Format = 'bam' | 'cram';
type Output = 'sam' | 'bam' | 'ubam';
type Size = '1k' | '100k' | '10M' | 'chrom';
type LinkName = 'loopback' | 'wan';
type Config = 'defaults' | 'no-disk';

/** The records of a BAM file (`samtools view`), as a digest and a count. */
async function recordsOfBam(path: string): Promise<{ sha256: string; records: number }> {
  return new Promise((res, rej) => {
    const p = spawn('samtools', ['view', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    const hash = createHash('sha256');
    let records = 0;
    let err = '';
    p.stdout.on('data', (d: Buffer) => {
      hash.update(d);
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) records++;
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', rej);
    p.on('close', (code) => (code === 0 ? res({ sha256: hash.digest('hex'), records }) : rej(new Error(`samtools view ${path} exited with ${code}: ${err.slice(-500)}`))));
  });
}

/** One tool of a cell: a peer or a slicefs configuration. */
interface Tool {
  /** Column label: samtools, samtools -@2, slicefs defaults, slicefs no-disk. */
  name: string;
  peer: boolean;
  config?: Config;
}

interface ToolResult {
  s: number[];
  cpu: number[];
  req: number[];
  bytes: number[];
  refReq: number[];
  refBytes: number[];
  outBytes: number;
  rss: number;
  records: number;
  sha256: string;
}

interface CellResult {
  format: Format;
  output: Output;
  link: LinkName;
  size: Size;
  region: string;
  warm: boolean;
  failed?: string;
  byTool: Map<string, ToolResult>;
}

/**
 * A rough duration of one run, seconds, from the view-bench numbers in docs/benchmarks.md on this
 * 2-core machine (lightly loaded): only for the estimate printed at the start.
 */
function guessSeconds(tool: Tool, format: Format, output: Output, size: Size, link: LinkName): number {
  const i = ['1k', '100k', '10M', 'chrom'].indexOf(size);
  const samtools = { bam: [0.03, 0.04, 0.6, 2.6], cram: [0.05, 0.07, 0.9, 4] }[format][i];
  const slicefs = { bam: [0.5, 0.55, 2, 7], cram: [0.6, 0.8, 4, 15] }[format][i];
  let s: number;
  if (tool.peer) s = samtools * (output === 'bam' ? (tool.name.includes('-@') ? 2 : 3.5) : output === 'ubam' ? 1.3 : 1);
  else s = slicefs * (output === 'bam' ? (format === 'bam' ? 0.6 : 1.5) : output === 'ubam' ? 1.2 : 1);
  return link === 'wan' ? s * 1.1 + 0.4 : s;
}

function parseList<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const xs = value.split(',').map((x) => x.trim()).filter(Boolean);
  if (xs.length === 0 || xs.some((x) => !allowed.includes(x as T))) throw new Error(`--${flag}: a list of ${allowed.join(', ')} (got ${value})`);
  return allowed.filter((x) => xs.includes(x)); // the table's order, whatever the order given
}

const fmt = (x: number | undefined, digits = 2) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      format: { type: 'string', default: 'both' },
      output: { type: 'string', default: 'sam,bam,ubam' },
      sizes: { type: 'string', default: '1k,100k,10M,chrom' },
      links: { type: 'string', default: 'loopback,wan' },
      index: { type: 'string', default: 'cold,warm' },
      configs: { type: 'string', default: 'defaults,no-disk' },
      'slicefs-args': { type: 'string', default: '' },
      out: { type: 'string' },
      'cmd-timeout': { type: 'string', default: '600' },
      'estimate-only': { type: 'boolean', default: false },
    },
  });
  const commandLine = shellQuote(['node', relative(process.cwd(), process.argv[1]) || process.argv[1], ...process.argv.slice(2)]);
  const runs = Math.floor(Number(values.runs));
  if (!(runs >= 1)) throw new Error(`--runs: not a number ≥ 1: ${values.runs}`);
  if (!['bam', 'cram', 'both'].includes(values.format)) throw new Error(`--format must be bam, cram or both (got ${values.format})`);
  const formats: Format[] = values.format === 'both' ? ['bam', 'cram'] : [values.format as Format];
  const outputs = parseList<Output>('output', values.output, ['sam', 'bam', 'ubam']);
  const sizes = parseList<Size>('sizes', values.sizes, ['1k', '100k', '10M', 'chrom']);
  const links = parseList<LinkName>('links', values.links, ['loopback', 'wan']);
  const indexStates = parseList('index', values.index, ['cold', 'warm'] as const);
  const configs = parseList<Config>('configs', values.configs, ['defaults', 'no-disk']);
  const extra = splitArgs(values['slicefs-args']);
  const cmdTimeoutMs = Number(values['cmd-timeout']) * 1000;
  if (!(cmdTimeoutMs > 0)) throw new Error(`--cmd-timeout: not a positive number of seconds: ${values['cmd-timeout']}`);
  const started = new Date();
  const outPath = resolve(values.out ?? join(REPO, '.bench', `view-bench-${started.toISOString().replace(/[:.]/g, '-')}.md`));

  const tools: Tool[] = [
    { name: 'samtools', peer: true },
    { name: 'samtools -@2', peer: true },
    ...configs.map((config) => ({ name: `slicefs ${config}`, peer: false, config })),
  ];
  const cells = formats.flatMap((format) =>
    links.flatMap((link) =>
      outputs.flatMap((output) => sizes.flatMap((size) => indexStates.map((index) => ({ format, link, output, size, warm: index === 'warm' })))),
    ),
  );
  const estimateS = cells.reduce(
    (sum, c) => sum + tools.reduce((t, tool) => t + guessSeconds(tool, c.format, c.output, c.size, c.link) * (runs + (c.warm ? 1 : 0)), 0) * 1.1,
    0,
  );
  process.stderr.write(
    `view-bench: ${cells.length} cells × ${tools.length} tools × ${runs} runs (+1 unmeasured run per warm cell): ` +
      `about ${(estimateS / 60).toFixed(0)} min on an unloaded 2-core machine (a guess from earlier runs; load stretches it)\n`,
  );
  if (values['estimate-only']) return;

  const { dir: cliDir, bin, remove: removeCli } = await copyCli(REPO, 'view-bench');
  const check = await timed(process.execPath, [bin, '--version'], cliDir, childEnv(), 60_000);
  if (check.code !== 0) throw new Error(`the CLI copy in ${cliDir} does not run (is dist/ built?):\n${check.err.slice(-2000)}`);
  const dataDir = join(REPO, '.bench/data');
  const sample = await ensureSampleData(join(dataDir, 'sample-bench'), { scale: 'bench' });
  const nginx = await startNginx(dataDir);
  const proxy = await startLatencyProxy({ upstreamPort: nginx.port, oneWayDelayMs: 10, rateBitsPerSec: 1e9 });
  const work = await mkdtemp(join(tmpdir(), 'slicefs-viewbench-'));
  onCleanup('view-bench temp dir', () => rm(work, { recursive: true, force: true }));
  const longest = [...sample.contigs].sort((a, b) => b.length - a.length)[0];
  const mid = Math.floor(longest.length / 2);
  const regionOf = (size: Size) => {
    if (size === 'chrom') return longest.name;
    const len = { '1k': 1_000, '100k': 100_000, '10M': 10_000_000 }[size];
    return `${longest.name}:${mid - len / 2}-${mid + len / 2 - 1}`;
  };
  const originOf = (link: LinkName) => (link === 'loopback' ? nginx.origin : `http://127.0.0.1:${proxy.port}`);
  const isRef = (p: string) => p.endsWith('/ref.fa') || p.endsWith('/ref.fa.fai');
  const loadStart = os.loadavg();
  const results: CellResult[] = [];
  /** Records per region from the BAM cells, to check the CRAM ones against (same reads). */
  const bamRecords = new Map<string, number>();
  const commands = new Map<string, string>();
  const t0 = performance.now();

  /** The command of one tool in one cell. */
  const commandOf = (tool: Tool, format: Format, output: Output, url: string, refUrl: string, region: string, dir: string) => {
    const outFlags = output === 'sam' ? [] : [output === 'bam' ? '-b' : '-u'];
    if (tool.peer) {
      const threads = tool.name.includes('-@2') ? ['-@2'] : [];
      const args = ['view', ...threads, ...outFlags, ...(format === 'cram' ? ['-T', refUrl] : []), url, region];
      return { cmd: 'samtools', args, env: SAMTOOLS_ENV, shown: shellQuote(['samtools', ...args]) };
    }
    const args = [bin, 'view', '--url', url, ...(format === 'cram' ? ['--reference-url', refUrl] : []), '-q', region];
    // SAM: records only, as `samtools view` prints them without -h; BAM: both write the header.
    args.push(...(output === 'sam' ? ['--no-header'] : outFlags));
    if (tool.config === 'no-disk') args.push('--disk-cache-size', '0');
    args.push(...extra);
    const env = childEnv({ XDG_CACHE_HOME: join(dir, 'xdg-cache') });
    return { cmd: process.execPath, args, env, shown: shellQuote(['slicefs', ...args.slice(1)]) };
  };

  try {
    let cellNo = 0;
    for (const { format, link, output, size, warm } of cells) {
      cellNo++;
      const region = regionOf(size);
      const url = `${originOf(link)}/sample-bench/sample.${format}`;
      const refUrl = `${originOf(link)}/sample-bench/ref.fa`;
      const label = `${format.toUpperCase()} → ${output.toUpperCase()} ${link} ${region} ${warm ? 'warm' : 'cold'}`;
      process.stderr.write(`view-bench: [${cellNo}/${cells.length}, ${((performance.now() - t0) / 60_000).toFixed(1)} min] ${label} …\n`);
      const cell: CellResult = { format, output, link, size, region, warm, byTool: new Map() };
      results.push(cell);
      // A fresh directory per cell and tool: samtools's working directory, slicefs's XDG_CACHE_HOME.
      const cellDir = join(work, `cell-${cellNo}`);
      const dirs = tools.map((_, i) => join(cellDir, `tool-${i}`));
      for (const d of dirs) await mkdir(d, { recursive: true });
      const cmds = tools.map((tool, i) => commandOf(tool, format, output, url, refUrl, region, dirs[i]));
      tools.forEach((tool, i) => {
        const key = `${tool.name}, ${format.toUpperCase()} → ${output.toUpperCase()}`;
        if (!commands.has(key)) commands.set(key, cmds[i].shown.replace(url, 'URL').replace(refUrl, 'REF_URL').replace(region, 'REGION'));
      });
      for (const tool of tools) cell.byTool.set(tool.name, { s: [], cpu: [], req: [], bytes: [], refReq: [], refBytes: [], outBytes: 0, rss: 0, records: 0, sha256: '' });
      const fail = (why: string) => {
        cell.failed ??= why;
      };
      if (warm) {
        // One run to leave each tool's index (and slicefs's disk-tier blocks) behind.
        for (let i = 0; i < tools.length && !cell.failed; i++) {
          const t = await timed(cmds[i].cmd, cmds[i].args, dirs[i], cmds[i].env, cmdTimeoutMs);
          if (t.code !== 0 || t.timedOut) fail(`${tools[i].name}: the warm-up run ${t.timedOut ? 'timed out' : `exited with ${t.code}`}: ${cmds[i].shown}\n${t.err.slice(-3000)}`);
        }
      }
      for (let run = 0; run < runs && !cell.failed; run++) {
        for (let i = 0; i < tools.length && !cell.failed; i++) {
          if (!warm) {
            await rm(dirs[i], { recursive: true, force: true });
            await mkdir(dirs[i]);
          }
          const last = run === runs - 1;
          const saveTo = last && output !== 'sam' ? join(cellDir, `out-${i}.bam`) : undefined;
          await nginx.resetLog();
          const t = await timed(cmds[i].cmd, cmds[i].args, dirs[i], cmds[i].env, cmdTimeoutMs, { digest: last && output === 'sam', saveTo });
          if (t.code !== 0 || t.timedOut) {
            fail(`${tools[i].name} ${t.timedOut ? `timed out after ${cmdTimeoutMs / 1000} s` : `exited with ${t.code}`} (run ${run + 1}): ${cmds[i].shown}\n${t.err.slice(-3000)}`);
            break;
          }
          const log = await traffic(nginx.accessLogPath, isRef);
          const r = cell.byTool.get(tools[i].name)!;
          r.s.push(t.s);
          r.cpu.push(t.cpuS);
          r.req.push(log.requests);
          r.bytes.push(log.bytes);
          r.refReq.push(log.refRequests);
          r.refBytes.push(log.refBytes);
          r.rss = Math.max(r.rss, t.rssMiB);
          if (last) {
            r.outBytes = t.bytes;
            if (saveTo) {
              const rec = await recordsOfBam(saveTo).catch((e: Error) => {
                fail(`${tools[i].name}: its BAM output does not read back: ${e.message}`);
                return { sha256: '', records: 0 };
              });
              r.sha256 = rec.sha256;
              r.records = rec.records;
              await rm(saveTo, { force: true });
            } else {
              r.sha256 = t.sha256!;
              r.records = t.lines;
            }
          }
        }
      }
      await rm(cellDir, { recursive: true, force: true });
      if (!cell.failed) {
        const ref = cell.byTool.get('samtools')!;
        for (const tool of tools.slice(1)) {
          const r = cell.byTool.get(tool.name)!;
          if (r.sha256 !== ref.sha256) fail(`samtools's and ${tool.name}'s outputs hold different records (${ref.records} and ${r.records})`);
        }
        if (format === 'bam') bamRecords.set(`${output} ${region}`, ref.records);
        const fromBam = bamRecords.get(`${output} ${region}`);
        if (format === 'cram' && fromBam !== undefined && fromBam !== ref.records) fail(`${ref.records} records from the CRAM, ${fromBam} from the BAM`);
      }
      if (cell.failed) process.stderr.write(`view-bench: FAILED ${label}: ${cell.failed}\n`);
    }
  } finally {
    await proxy.close();
    await nginx.stop();
    await rm(work, { recursive: true, force: true });
    await removeCli();
    await runCleanups();
  }
  const minutes = (performance.now() - t0) / 60_000;
  const text = report({ commandLine, started, runs, tools, results, commands, minutes, loadStart, extra, files: formats.map((f) => basename(f === 'bam' ? sample.bam : sample.cram)) });
  await mkdir(dirname(outPath), { recursive: true });
  await writeFile(outPath, text);
  process.stdout.write(text);
  process.stderr.write(`view-bench: written to ${relative(process.cwd(), outPath) || outPath}\n`);
  const failures = results.filter((c) => c.failed);
  if (failures.length > 0) throw new Error(`${failures.length} cell(s) failed (see above and the table)`);
}

// ---------------------------------------------------------------------------------------------
// Report.

const linkLabel = (l: LinkName) => (l === 'loopback' ? 'loopback' : 'wan 20ms/1G');

/** Median time ratio of a slicefs configuration to a peer in a cell, or undefined. */
function ratio(cell: CellResult, slicefs: string, peer: string): number | undefined {
  if (cell.failed) return undefined;
  const a = cell.byTool.get(slicefs);
  const b = cell.byTool.get(peer);
  if (!a || !b || a.s.length === 0 || b.s.length === 0) return undefined;
  return median(a.s) / median(b.s);
}

interface Target {
  text: string;
  limit: number;
  applies: (c: CellResult) => boolean;
}

/** The issue's targets, as ratios of slicefs's time to samtools's in the same run. */
const TARGETS: Target[] = [
  { text: '20 ms link: every cell ≤ 1.0×', limit: 1.0, applies: (c) => c.link === 'wan' },
  ...(['10M', 'chrom'] as const).flatMap((size) => {
    const what = size === '10M' ? '10 Mb' : 'whole chromosome';
    return [
      { text: `20 ms link: ${what} BAM → BAM ≤ 0.5×`, limit: 0.5, applies: (c: CellResult) => c.link === 'wan' && c.size === size && c.format === 'bam' && c.output === 'bam' },
      { text: `loopback: ${what} BAM → BAM ≤ 0.25×`, limit: 0.25, applies: (c: CellResult) => c.link === 'loopback' && c.size === size && c.format === 'bam' && c.output === 'bam' },
      { text: `loopback: ${what} BAM → SAM ≤ 1.5×`, limit: 1.5, applies: (c: CellResult) => c.link === 'loopback' && c.size === size && c.format === 'bam' && c.output === 'sam' },
      { text: `loopback: ${what} CRAM → SAM ≤ 2.0×`, limit: 2.0, applies: (c: CellResult) => c.link === 'loopback' && c.size === size && c.format === 'cram' && c.output === 'sam' },
    ];
  }),
];

function cellName(c: CellResult): string {
  return `${c.format.toUpperCase()} → ${c.output.toUpperCase()} ${linkLabel(c.link)} ${c.size} ${c.warm ? 'warm' : 'cold'}`;
}

function targetLines(results: CellResult[], tools: Tool[]): string[] {
  const lines: string[] = [];
  const slicefsTools = tools.filter((t) => !t.peer);
  for (const target of TARGETS) {
    const cells = results.filter(target.applies);
    if (cells.length === 0) {
      lines.push(`- not measured: ${target.text} (no such cell in this run)`);
      continue;
    }
    for (const tool of slicefsTools) {
      const worst = (peer: string) => {
        let w: { r: number; c: CellResult } | undefined;
        for (const c of cells) {
          const r = ratio(c, tool.name, peer);
          if (r !== undefined && (!w || r > w.r)) w = { r, c };
        }
        return w;
      };
      const failed = cells.filter((c) => c.failed).length;
      const w = worst('samtools');
      const w2 = worst('samtools -@2');
      const met = cells.filter((c) => (ratio(c, tool.name, 'samtools') ?? Infinity) <= target.limit).length;
      const verdict = failed > 0 || !w ? '❓ not known' : w.r <= target.limit ? '✅ met' : '❌ not met';
      lines.push(
        `- ${verdict}: ${target.text} — slicefs ${tool.config}: ${met} of ${cells.length} cells` +
          (w ? `, worst ${w.r.toFixed(2)}× (${cellName(w.c)})` : '') +
          (w2 ? `; against \`samtools -@2\`: worst ${w2.r.toFixed(2)}× (${cellName(w2.c)})` : '') +
          (failed ? `; ${failed} cell(s) failed` : ''),
      );
    }
  }
  return lines;
}

/** The commit measured (and whether the worktree had changes), for the report's header. */
function gitRev(): string {
  const r = spawnSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) return 'no commit';
  const d = spawnSync('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', timeout: 5000 });
  return r.stdout.trim() + (d.status === 0 && d.stdout.trim() ? ' (dirty)' : '');
}

function report(r: {
  commandLine: string;
  started: Date;
  runs: number;
  tools: Tool[];
  results: CellResult[];
  commands: Map<string, string>;
  minutes: number;
  loadStart: number[];
  extra: string[];
  files: string[];
}): string {
  const peers = r.tools.filter((t) => t.peer);
  const slicefsTools = r.tools.filter((t) => !t.peer);
  const triple = (c: CellResult, slicefs: Tool, f: (x: ToolResult) => string) =>
    [...peers, slicefs].map((t) => (c.byTool.get(t.name) && c.byTool.get(t.name)!.s.length ? f(c.byTool.get(t.name)!) : '–')).join(' / ');
  const rows: string[] = [];
  for (const c of r.results) {
    const records = c.byTool.get('samtools')?.records;
    const head = `| ${c.format.toUpperCase()} | ${c.output.toUpperCase()} | ${linkLabel(c.link)} | ${c.region}${records ? ` (${records} records)` : ''} | ${c.warm ? 'warm' : 'cold'}`;
    for (const tool of slicefsTools) {
      if (c.failed) {
        rows.push(`${head} | ${tool.config} | failed: ${c.failed.split('\n')[0].replace(/\|/g, '\\|').slice(0, 200)} | | | | | | | | | | | |`);
        continue;
      }
      const s = (name: string) => fmt(median(c.byTool.get(name)!.s), 3);
      rows.push(
        `${head} | ${tool.config} | ${peers.map((p) => s(p.name)).join(' | ')} | ${s(tool.name)} | ` +
          `${peers.map((p) => `**${fmt(ratio(c, tool.name, p.name))}×**`).join(' | ')} | ` +
          `${triple(c, tool, (x) => fmt(median(x.cpu)))} | ${triple(c, tool, (x) => fmt(median(x.req), 0))} | ` +
          `${triple(c, tool, (x) => fmt(median(x.bytes) / 1e6))} | ` +
          (c.format === 'cram' ? `${triple(c, tool, (x) => fmt(median(x.refReq), 0))} | ${triple(c, tool, (x) => fmt(median(x.refBytes) / 1e6))}` : '– | –') +
          ` | ${triple(c, tool, (x) => fmt(x.outBytes / 1e6, x.outBytes < 1e6 ? 3 : 1))} | ${triple(c, tool, (x) => fmt(x.rss, 0))} |`,
      );
    }
  }
  const who = `${peers.map((p) => p.name).join(' / ')} / slicefs`;
  const load = os.loadavg();
  const out: string[] = [
    `\`${r.commandLine}\``,
    '',
    `# slicefs view vs samtools view, ${r.started.toISOString()}`,
    '',
    `- ${r.files.join(' and ')} (bench data, .bench/data/sample-bench), nginx on 127.0.0.1; the 20 ms link is test/bench/latency-proxy (10 ms each way, 1 Gbit/s).`,
    `- ${r.runs} run(s) per tool and cell, the tools in turn (round robin), median; every run a new process. ${r.minutes.toFixed(1)} min in all.`,
    `- host: ${os.cpus().length} CPUs, Node ${process.version}, slicefs ${gitRev()}; load average ${r.loadStart.map((x) => x.toFixed(1)).join(' ')} at the start, ${load.map((x) => x.toFixed(1)).join(' ')} at the end.`,
    `- commands (URL, REF_URL, REGION filled in per cell; slicefs = \`node bin/slicefs.js\` from a copy of bin/ and dist/ taken at the start):`,
    ...[...r.commands].map(([name, cmd]) => `  - ${name}: \`${cmd}\``),
    '',
    `| format | output | link | region | index | slicefs | ${peers.map((p) => `${p.name} s`).join(' | ')} | slicefs s | ${peers.map((p) => `ratio to ${p.name}`).join(' | ')} | CPU s (${who}) | requests (${who}) | origin MB (${who}) | reference requests (${who}) | reference MB (${who}) | output MB (${who}) | peak RSS MiB (${who}) |`,
    `|---|---|---|---|---|---|${peers.map(() => '---:|').join('')}---:|${peers.map(() => '---:|').join('')}---:|---:|---:|---:|---:|---:|---:|`,
    ...rows,
    '',
    '## Targets (issue 18: slicefs time / `samtools view` time in the same run)',
    '',
    ...targetLines(r.results, r.tools),
    '',
    '## What the columns are',
    '',
    '- **slicefs**: `defaults` = slicefs as users get it (disk tier and index cache on; only `--url`, `-q` and the output flags), ' +
      'its cache directory a fresh `XDG_CACHE_HOME` per cell; `no-disk` = the same with `--disk-cache-size 0` (the index cache stays on)' +
      (r.extra.length ? `; both with \`${shellQuote(r.extra)}\`` : '') +
      '.',
    '- **index**: cold = each tool\'s directory emptied before every run (samtools\'s working directory, where it keeps the `.bai` / `.crai` it ' +
      'downloads; slicefs\'s cache directory); warm = one unmeasured run first, then kept. For `defaults` warm also means the data blocks the ' +
      'disk tier kept, so a warm run may fetch little or nothing from the origin.',
    '- **s**: wall seconds from spawn to exit, median of the runs; **ratio** = slicefs s / peer s (below 1: slicefs faster).',
    '- **CPU s**: user + system seconds of the process and its threads (GNU time), median.',
    '- **requests**, **origin MB**: nginx\'s access log for the run (median), reference included for CRAM; the reference columns are its share ' +
      '(ref.fa and ref.fa.fai). htslib asks for open-ended ranges (`bytes=N-`) and closes the connection when it has enough, so its MB ' +
      'include whatever was in flight.',
    '- **output MB**: bytes written to stdout (a pipe read by the benchmark), last run. SAM is records only (`samtools view` without `-h`, ' +
      'slicefs `--no-header`); BAM outputs carry the header (slicefs adds its @PG line).',
    '- **peak RSS**: GNU time\'s maximum resident set, the largest of the runs.',
    '- Records checked in every cell: the last run\'s SAM text (or `samtools view` of its BAM) has the same SHA-256 for every tool; ' +
      'a CRAM cell has as many records as the BAM cell of the same region and output.',
  ];
  return out.join('\n') + '\n';
}

runBenchMain('view-bench', main);
