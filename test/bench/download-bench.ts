/**
 * `slicefs download` against `curl -o` (one stream) and `aria2c -x8 -s8` (8 connections, 8 splits),
 * side by side in one run, on one generated file (default 1 GiB, seeded, `.bench/data/random-<size>-s<seed>.bin`,
 * made by ./prng.ts and reused when present) served by nginx on 127.0.0.1: on loopback and through
 * the latency proxy (20 ms RTT, 1 Gbit/s). Each download is a new process writing into a fresh
 * directory under .bench/ (the same disk as the data); the output is removed and `sync` run between
 * downloads; the runs of the tools are interleaved. Reports MB/s (10^6 bytes) of the median of N
 * runs, wall clock from spawn to exit, and the ratios slicefs/aria2c and slicefs/curl per link.
 * Every download is checked (size and MD5 against the source's, computed once) outside the timing.
 * Also per tool: CPU seconds and peak RSS (GNU time), nginx's CPU seconds (/proc), requests,
 * connections and bytes (nginx's access log).
 *
 * slicefs syncs each part to disk before it journals it, and aria2c fsyncs its file before it exits;
 * curl leaves dirty pages. So the tables also show MB/s "to durable": the wall clock plus an
 * fdatasync of the output, done by the benchmark right after the tool exits (for slicefs and aria2c
 * it finds nothing left to write).
 *
 * Also:
 *   resume   `slicefs download --limit-rate 200M` on loopback, SIGKILLed (the node process only, so
 *            its parent reaps it at once, as a shell would) after ~2 s; its journal
 *            (NAME.part.journal, `done` ranges) read right after the kill says what was complete; the
 *            same command again, and nginx's log says what that second run fetched. Re-fetched beyond
 *            what was missing = fetched - (size - complete); lost to the kill = what the killed run
 *            had read from its sockets (ss, just before the kill) - complete. 3 tries.
 *   resume-slow  the same over a slow link (the latency proxy at 40 Mbit/s in all, 0.6 MB/s per
 *            stream) with a 64 MiB file of its own (seed 2), killed once the sockets have read half
 *            of it: what the second run fetches beyond what the killed run had never received (ss),
 *            per stream, in MB and in seconds of a stream's transfer.
 *   limit    --limit-rate 50M and 200M (binary units: 52.4 and 209.7 MB/s) on loopback: average rate
 *            (size / wall clock, and the session's own bytes/seconds from --json) and the fastest 1 s
 *            window. The window rate is sampled every 100 ms with `ss -ti` on the client sockets to
 *            nginx: bytes the process read = tcpi_bytes_received - Recv-Q ("app"), and bytes that
 *            reached the host = tcpi_bytes_received ("wire"). (/proc/PID/io rchar would count the
 *            MD5's read-back of the part file as well as the sockets: its total is shown, to see.)
 *   sweep    --parallel 4, 8, 16 x --part-size 4M, 8M, 16M, 32M, once each, on the latency link
 *            (about 2.5 of the ~6 minutes of a default run; --no-sweep skips it).
 *   profile  one slicefs download on loopback under `node --cpu-prof`: top self-time functions,
 *            mapped to src/ through the bundle's source maps, each with its nearest caller in src/.
 *
 * slicefs runs from a copy of bin/ and dist/ taken at the start (under .bench/), so a rebuild during
 * the run does not change what is measured.
 *
 *   node dist/test/bench/download-bench.js [--runs 3] [--size 1G] [--no-sweep]
 *        [--only loopback,wan,resume,resume-slow,limit,sweep,profile] [--resume-tries 3]
 *        [--curl-args "…"] [--aria2c-args "…"] [--slicefs-args "…"] [--cmd-timeout 300] [--timeout 1800]
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { startLatencyProxy, type LatencyProxy } from './latency-proxy.js';
import { startNginx, type AccessLogSummary, type NginxServer } from './nginx.js';
import { ensureDataFile } from './prng.js';
import { childEnv, copyCli, launchTimed, onCleanup, runBenchMain, runCleanups, sleep } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const execFileP = promisify(execFile);
const MiB = 1024 * 1024;
const MB = 1e6;

type Tool = 'curl' | 'aria2c' | 'slicefs';
const TOOLS: Tool[] = ['curl', 'aria2c', 'slicefs'];

// ---------------------------------------------------------------------------------------------
// Processes.

/** The pid of the tool under `launchTimed` (time's only child; setpriv exec'ed into it). */
async function toolPid(timePid: number, waitMs = 2000): Promise<number | undefined> {
  const deadline = Date.now() + waitMs;
  const pid = timePid;
  // setpriv (if any) execs time in place; time forks setpriv, which execs the tool.
  while (Date.now() < deadline) {
    const kids = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    const first = Number(kids.trim().split(/\s+/)[0]);
    if (first > 0) return first;
    await sleep(5);
  }
  return undefined;
}

/** user + system CPU seconds of a live process (from /proc/PID/stat), NaN when unknown. */
async function cpuSeconds(pid: number | undefined, clkTck: number): Promise<number> {
  if (!pid) return NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is the state; utime, stime are f[11], f[12]
  return f.length > 12 ? (Number(f[11]) + Number(f[12])) / clkTck : NaN;
}

/**
 * nginx.ts keeps its pid file in its temp dir `slicefs-bench-nginx-<our pid>-*`, the one whose
 * config listens on the port (as view-bench finds the access log); with master_process off it is
 * the one process that serves.
 */
async function findNginxPid(nginx: NginxServer): Promise<number | undefined> {
  const prefix = `slicefs-bench-nginx-${process.pid}-`;
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(prefix)) continue;
    const conf = await readFile(join(tmpdir(), name, 'nginx.conf'), 'utf8').catch(() => '');
    if (!conf.includes(`listen 127.0.0.1:${nginx.port};`)) continue;
    const pid = Number((await readFile(join(tmpdir(), name, 'nginx.pid'), 'utf8').catch(() => '')).trim());
    return pid > 0 ? pid : undefined;
  }
  return undefined;
}

async function quiet(cmd: string, args: string[]): Promise<void> {
  await execFileP(cmd, args, { env: childEnv() }).catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// The CLI snapshot (as view-bench).

/**
 * A copy of the CLI (bin/ and dist/ without dist/test) taken once at the start, so every download
 * runs the same build even if dist/ is rebuilt meanwhile. It lives under .bench/ (git-ignored)
 * inside the repository so that node_modules and package.json ("type": "module") resolve upwards.
 */
async function snapshotCli(): Promise<{ dir: string; bin: string; startupS: number; remove: () => Promise<void> }> {
  const { dir, bin, remove } = await copyCli(REPO, 'download-bench');
  const check = await launchTimed(process.execPath, [bin, '--version'], { cwd: dir, timeoutMs: 60_000, owner: 'download-bench' }).done;
  if (check.code !== 0) throw new Error(`the CLI copy in ${dir} does not run (is dist/ built?):\n${check.stderr.slice(-2000)}`);
  // Start-up: `slicefs download --help` loads the CLI and the command's options (median of 5).
  const startup: number[] = [];
  for (let i = 0; i < 5; i++) startup.push((await launchTimed(process.execPath, [bin, 'download', '--help'], { cwd: dir, timeoutMs: 60_000, owner: 'download-bench' }).done).wallS);
  return {
    dir,
    bin,
    startupS: median(startup),
    remove,
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers.

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (bytes: number, digits = 1) => (bytes / MB).toFixed(digits);
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;

async function md5File(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const chunk of createReadStream(path, { highWaterMark: 8 * MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** `4M`-style sizes (binary units, as slicefs parses them). */
function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: ${text}`);
  return Math.round(Number(m[1]) * { '': 1, K: 1024, M: MiB, G: 1024 * MiB }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G']);
}

interface SliceJson {
  bytesFetched: number;
  seconds: number;
  bytesPerSecond: number;
  retries: number;
  interrupted: boolean;
  files: { status: string; md5?: string; error?: string }[];
}

function parseJson(stdout: string): SliceJson | undefined {
  try {
    return JSON.parse(stdout) as SliceJson;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Socket byte counters (for the rate windows): `ss -ti` on the client sockets to nginx's port.

interface Sample {
  t: number;
  /** Bytes the client read from its sockets (tcpi_bytes_received - Recv-Q), summed over sockets. */
  app: number;
  /** Bytes that reached the client's TCP (tcpi_bytes_received). */
  wire: number;
  /** /proc/PID/io rchar of the tool (NaN when unknown). */
  rchar: number;
}

/** Per client socket to 127.0.0.1:`port` (by local address): bytes read by the process and bytes received by TCP. */
async function readSockets(port: number): Promise<Map<string, { app: number; wire: number }>> {
  const out = await execFileP('ss', ['-tinH', 'state', 'established', `dport = :${port}`], { env: childEnv() }).then(
    (r) => r.stdout,
    () => '',
  );
  const sockets = new Map<string, { app: number; wire: number }>();
  // A socket is a line "Recv-Q Send-Q local peer", then an indented line of tcp_info.
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const head = /^(\d+)\s+\d+\s+(\S+)\s+\S+/.exec(lines[i]);
    if (!head) continue;
    const received = Number(/bytes_received:(\d+)/.exec(lines[i + 1] ?? '')?.[1] ?? 0);
    sockets.set(head[2], { app: Math.max(0, received - Number(head[1])), wire: received });
  }
  return sockets;
}

function startSampler(port: number, pid: () => number | undefined, everyMs = 100) {
  const samples: Sample[] = [];
  const last = new Map<string, { app: number; wire: number }>();
  let app = 0;
  let wire = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      const sockets = await readSockets(port);
      const t1 = performance.now();
      for (const [key, now] of sockets) {
        const prev = last.get(key);
        // A counter that went down is a new socket on the same local port.
        app += prev && now.wire >= prev.wire ? now.app - prev.app : now.app;
        wire += prev && now.wire >= prev.wire ? now.wire - prev.wire : now.wire;
        last.set(key, now);
      }
      const p = pid();
      let rchar = NaN;
      if (p) {
        const io = await readFile(`/proc/${p}/io`, 'utf8').catch(() => '');
        rchar = Number(/^rchar:\s+(\d+)/m.exec(io)?.[1] ?? NaN);
      }
      samples.push({ t: (t0 + t1) / 2, app, wire, rchar });
      await sleep(Math.max(0, everyMs - (performance.now() - t0)));
    }
  })();
  return {
    samples,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/**
 * The highest rate (bytes/s) over any window of at least `windowMs` between samples; with `skipMs`,
 * only windows that start that long after the first bytes.
 */
function maxWindowRate(samples: Sample[], key: 'app' | 'wire', windowMs = 1000, skipMs = 0): number {
  let best = 0;
  let j = 0;
  const first = samples.find((s) => s[key] > 0)?.t ?? Infinity;
  for (let i = 0; i < samples.length; i++) {
    if (samples[i].t < first + skipMs) continue;
    if (j < i) j = i;
    while (j < samples.length && samples[j].t - samples[i].t < windowMs) j++;
    if (j >= samples.length) break;
    best = Math.max(best, ((samples[j][key] - samples[i][key]) * 1000) / (samples[j].t - samples[i].t));
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// CPU profile.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

/**
 * Top self-time entries of a .cpuprofile, positions mapped through the bundle's source maps; for
 * each, the nearest caller in src/ (the frame up the stack that maps to src/, weighted by time).
 */
function topSelf(profilePath: string, snapshotDir: string, n: number): { name: string; where: string; caller: string; ms: number; share: number }[] {
  const prof = JSON.parse(readFileSync(profilePath, 'utf8')) as { nodes: (ProfileNode & { children?: number[] })[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of prof.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const maps = new Map<string, SourceMap | null>();
  const mapFor = (url: string): SourceMap | null => {
    if (!maps.has(url)) {
      let sm: SourceMap | null = null;
      try {
        sm = new SourceMap(JSON.parse(readFileSync(fileURLToPath(url) + '.map', 'utf8')));
      } catch {
        sm = null;
      }
      maps.set(url, sm);
    }
    return maps.get(url)!;
  };
  const located = new Map<number, string>();
  const locate = (node: ProfileNode): string => {
    let where = located.get(node.id);
    if (where !== undefined) return where;
    const cf = node.callFrame;
    where = cf.url ? `${cf.url.startsWith('file:') ? relative(snapshotDir, fileURLToPath(cf.url)) : cf.url}:${cf.lineNumber + 1}` : '(native / VM)';
    if (cf.url.startsWith('file:') && cf.url.includes('/dist/bundle/')) {
      const entry = mapFor(cf.url)?.findEntry(cf.lineNumber, cf.columnNumber) as { originalSource?: string; originalLine?: number } | undefined;
      if (entry?.originalSource) {
        const src = entry.originalSource.startsWith('file:') ? fileURLToPath(entry.originalSource) : resolve(dirname(fileURLToPath(cf.url)), entry.originalSource);
        where = `${relative(snapshotDir, src).replace(/^(\.\.\/)+/, '')}:${(entry.originalLine ?? 0) + 1}`;
      }
    }
    located.set(node.id, where);
    return where;
  };
  const callerInSrc = (id: number): string => {
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
      const node = byId.get(p)!;
      const where = locate(node);
      if (where.startsWith('src/')) return `\`${node.callFrame.functionName || '(anonymous)'}\` ${where}`;
    }
    return '–';
  };
  const self = new Map<string, { name: string; where: string; us: number; callers: Map<string, number> }>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byId.get(prof.samples[i]);
    if (!node) continue;
    const us = prof.timeDeltas[i + 1] ?? 0; // the time until the next sample is this one's
    const cf = node.callFrame;
    if (cf.functionName === '(idle)') continue;
    total += us;
    const key = `${cf.functionName}|${cf.url}|${cf.lineNumber}|${cf.columnNumber}`;
    let e = self.get(key);
    if (!e) {
      e = { name: cf.functionName || '(anonymous)', where: locate(node), us: 0, callers: new Map() };
      self.set(key, e);
    }
    e.us += us;
    const caller = callerInSrc(node.id);
    e.callers.set(caller, (e.callers.get(caller) ?? 0) + us);
  }
  return [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((e) => ({
      name: e.name,
      where: e.where,
      caller: [...e.callers.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '–',
      ms: e.us / 1000,
      share: e.us / total,
    }));
}

// ---------------------------------------------------------------------------------------------
// The benchmark.

interface Ctx {
  cli: { dir: string; bin: string; startupS: number };
  nginx: NginxServer;
  proxy: LatencyProxy;
  work: string;
  name: string;
  size: number;
  md5: string;
  cmdTimeoutMs: number;
  seq: number;
  /** --curl-args, --aria2c-args, --slicefs-args: added to every command of that tool. */
  toolArgs: Record<Tool, string[]>;
  nginxPid?: number;
  clkTck: number;
  /** Median MB/s of unlimited slicefs on loopback, once measured. */
  slicefsLoopbackMBps?: number;
}

interface Download {
  tool: Tool;
  wallS: number;
  syncS: number;
  cpuS: number;
  /** nginx's CPU seconds during the download. */
  nginxCpuS: number;
  rssMiB: number;
  log: AccessLogSummary;
  json?: SliceJson;
  error?: string;
}

function commandFor(ctx: Ctx, tool: Tool, url: string, dir: string, extra: string[] = [], nodeFlags: string[] = []): [string, string[]] {
  switch (tool) {
    case 'curl':
      return ['curl', ['-sS', '-f', ...ctx.toolArgs.curl, '-o', join(dir, ctx.name), url]];
    case 'aria2c':
      return [
        'aria2c',
        [
          '--no-conf=true',
          '-x8',
          '-s8',
          '--file-allocation=none',
          '--allow-overwrite=true',
          '--auto-file-renaming=false',
          '--quiet=true',
          '--summary-interval=0',
          ...ctx.toolArgs.aria2c,
          '-d',
          dir,
          '-o',
          ctx.name,
          url,
        ],
      ];
    case 'slicefs':
      return [process.execPath, [...nodeFlags, ctx.cli.bin, 'download', '--url', url, '-d', dir, '-q', '--json', ...ctx.toolArgs.slicefs, ...extra]];
  }
}

/** A readable form of a command for the report (paths shortened). */
function showCommand(ctx: Ctx, cmd: string, args: string[]): string {
  const short = (s: string) =>
    s === process.execPath ? 'node' : s.startsWith(ctx.cli.dir) ? relative(ctx.cli.dir, s) : s.startsWith(ctx.work) ? s.slice(ctx.work.length).replace(/^\/[^/]+/, 'DIR') : s;
  return [cmd, ...args].map(short).join(' ');
}

/**
 * One download into a fresh directory: sync first, nginx's log reset; timed to exit; then the
 * output fdatasync'ed (timed apart), nginx's log read, the file checked and removed.
 */
async function download(ctx: Ctx, tool: Tool, url: string, extra: string[] = [], opts: { nodeFlags?: string[]; keep?: boolean; sample?: boolean } = {}) {
  const dir = join(ctx.work, `out-${++ctx.seq}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await quiet('sync', []);
  await ctx.nginx.resetLog();
  const [cmd, args] = commandFor(ctx, tool, url, dir, extra, opts.nodeFlags);
  const nginxCpu0 = await cpuSeconds(ctx.nginxPid, ctx.clkTck);
  const l = launchTimed(cmd, args, { cwd: dir, timeoutMs: ctx.cmdTimeoutMs, owner: 'download-bench' });
  let pid: number | undefined;
  const sampler = opts.sample ? startSampler(ctx.nginx.port, () => pid) : undefined;
  if (sampler) void toolPid(l.pid).then((p) => (pid = p));
  const exit = await l.done;
  const nginxCpuS = (await cpuSeconds(ctx.nginxPid, ctx.clkTck)) - nginxCpu0;
  await sampler?.stop();
  const out = join(dir, ctx.name);
  const d: Download = {
    tool,
    wallS: exit.wallS,
    syncS: NaN,
    cpuS: exit.cpuS,
    nginxCpuS,
    rssMiB: exit.rssMiB,
    log: await ctx.nginx.accessLog(),
    json: parseJson(exit.stdout),
  };
  if (exit.code !== 0 || exit.timedOut) {
    d.error = `${tool} ${exit.timedOut ? `timed out after ${ctx.cmdTimeoutMs / 1000} s` : `exited with ${exit.code}`}: ${showCommand(ctx, cmd, args)}\n${exit.stderr.slice(-3000)}${exit.stdout ? `\nstdout: ${exit.stdout.slice(-2000)}` : ''}`;
  } else {
    const st = await stat(out).catch(() => undefined);
    if (!st) d.error = `${tool}: no ${out} after exit 0 (${(await readdir(dir)).join(', ')})`;
    else {
      const fh = await open(out, 'r');
      const s0 = performance.now();
      await fh.datasync();
      d.syncS = (performance.now() - s0) / 1000;
      await fh.close();
      if (st.size !== ctx.size) d.error = `${tool}: ${st.size} bytes, expected ${ctx.size}`;
      else {
        const got = await md5File(out);
        if (got !== ctx.md5) d.error = `${tool}: MD5 ${got}, expected ${ctx.md5}`;
      }
    }
    if (exit.stderr.trim()) process.stderr.write(`download-bench: ${tool} stderr: ${exit.stderr.trim().slice(-2000)}\n`);
  }
  if (!opts.keep) await rm(dir, { recursive: true, force: true });
  return { d, dir, samples: sampler?.samples ?? [], command: showCommand(ctx, cmd, args) };
}

interface Section {
  title: string;
  body: string;
}

async function compare(ctx: Ctx, runs: number, failures: string[], commands: Map<string, string>): Promise<Section> {
  const links = [
    ['loopback', ctx.nginx.origin],
    ['wan 20ms/1G', `http://127.0.0.1:${ctx.proxy.port}`],
  ] as const;
  const rows: string[] = [];
  const ratios: string[] = [];
  for (const [link, origin] of links) {
    const url = `${origin}/${ctx.name}`;
    const res = new Map<Tool, Download[]>(TOOLS.map((t) => [t, []]));
    for (let i = 0; i < runs; i++) {
      for (const tool of TOOLS) {
        process.stderr.write(`download-bench: ${link} ${tool} run ${i + 1}/${runs} … `);
        const { d, command } = await download(ctx, tool, url);
        commands.set(tool, command.replace(url, 'URL'));
        if (d.error) {
          failures.push(`${link} ${tool} run ${i + 1}: ${d.error}`);
          process.stderr.write(`FAILED\n${d.error}\n`);
          continue;
        }
        process.stderr.write(`${(ctx.size / d.wallS / MB).toFixed(1)} MB/s (${d.wallS.toFixed(2)} s, +${d.syncS.toFixed(2)} s fdatasync)\n`);
        res.get(tool)!.push(d);
      }
    }
    const rate = (ds: Download[]) => ctx.size / median(ds.map((d) => d.wallS)) / MB;
    const durable = (ds: Download[]) => ctx.size / median(ds.map((d) => d.wallS + d.syncS)) / MB;
    for (const tool of TOOLS) {
      const ds = res.get(tool)!;
      if (ds.length === 0) {
        rows.push(`| ${link} | ${tool} | failed | | | | | | | | |`);
        continue;
      }
      // Requests, connections and bytes of the median run.
      const m = [...ds].sort((a, b) => a.wallS - b.wallS)[Math.floor(ds.length / 2)];
      rows.push(
        `| ${link} | ${tool} | **${rate(ds).toFixed(1)}** | ${ds.map((d) => (ctx.size / d.wallS / MB).toFixed(0)).join(', ')} | ${median(ds.map((d) => d.wallS)).toFixed(2)} | ${durable(ds).toFixed(1)} | ${median(ds.map((d) => d.cpuS)).toFixed(2)} (${((median(ds.map((d) => d.cpuS)) / median(ds.map((d) => d.wallS))) * 100).toFixed(0)} %) | ${median(ds.map((d) => d.nginxCpuS)).toFixed(2)} | ${Math.max(...ds.map((d) => d.rssMiB)).toFixed(0)} | ${m.log.requests} / ${m.log.connections} | ${mb(m.log.bytes)} |`,
      );
    }
    const s = res.get('slicefs')!;
    if (link === 'loopback' && s.length) ctx.slicefsLoopbackMBps = rate(s);
    const cell = (other: Tool, f: (ds: Download[]) => number) => (s.length && res.get(other)!.length ? `${(f(s) / f(res.get(other)!)).toFixed(2)}×` : '–');
    ratios.push(`| ${link} | **${cell('aria2c', rate)}** | **${cell('curl', rate)}** | ${cell('aria2c', durable)} | ${cell('curl', durable)} |`);
  }
  return {
    title: `Throughput (${runs} runs each, interleaved; median)`,
    body:
      '| link | tool | MB/s (median) | MB/s of each run | s | MB/s to durable (+ fdatasync after exit) | CPU s user+sys (% of wall) | nginx CPU s | peak RSS MiB | requests / connections | origin MB |\n' +
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n' +
      rows.join('\n') +
      '\n\n| link | slicefs / aria2c | slicefs / curl | to durable: slicefs / aria2c | to durable: slicefs / curl |\n|---|---:|---:|---:|---:|\n' +
      ratios.join('\n'),
  };
}

async function resumeAfterKill(ctx: Ctx, tries: number, failures: string[]): Promise<Section> {
  const url = `${ctx.nginx.origin}/${ctx.name}`;
  const partSize = 8 * MiB; // the default --part-size
  const limit = 200 * MiB;
  const extra = ['--limit-rate', '200M'];
  const rows: string[] = [];
  for (let i = 0; i < tries; i++) {
    process.stderr.write(`download-bench: resume after kill -9, try ${i + 1}/${tries} … `);
    const dir = join(ctx.work, `resume-${i}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await quiet('sync', []);
    const [cmd, args] = commandFor(ctx, 'slicefs', url, dir, extra);
    await ctx.nginx.resetLog();
    const first = launchTimed(cmd, args, { cwd: dir, timeoutMs: ctx.cmdTimeoutMs, owner: 'download-bench' });
    const pid = await toolPid(first.pid);
    // ~2 s: mid-way through 1 GiB at 200 MiB/s (about 40 % of a smaller --size).
    await sleep(Math.min(2000, 300 + (0.4 * ctx.size * 1000) / limit));
    // SIGKILL to slicefs alone, as `kill -9 PID` from a shell: its parent (GNU time) reaps it at
    // once. (Killing the whole group would leave a zombie for PID 1 to reap, and slicefs's lock
    // takes a zombie's pid for a live owner.)
    // What it has read from its sockets so far (the ss call takes a few ms: at 200 MiB/s, ~1 MB
    // more is read before the kill lands).
    let readAtKill = 0;
    for (const v of (await readSockets(ctx.nginx.port)).values()) readAtKill += v.app;
    const t = performance.now();
    if (pid) process.kill(pid, 'SIGKILL');
    else first.kill();
    const e1 = await first.done;
    const killedAt = e1.wallS - (performance.now() - t) / 1000;
    const finishedEarly = existsSync(join(dir, ctx.name));
    let complete = 0;
    let journalNote = '';
    try {
      const j = JSON.parse(await readFile(join(dir, `${ctx.name}.part.journal`), 'utf8')) as { done: [number, number][] };
      complete = j.done.reduce((n, [a, b]) => n + (b - a), 0);
      journalNote = `${j.done.length} range${j.done.length === 1 ? '' : 's'}`;
    } catch (err) {
      journalNote = `no journal (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
    await sleep(500); // nginx logs the aborted responses
    const log1 = await ctx.nginx.accessLog();
    await ctx.nginx.resetLog();
    const second = launchTimed(cmd, args, { cwd: dir, timeoutMs: ctx.cmdTimeoutMs, owner: 'download-bench' });
    const e2 = await second.done;
    const log = await ctx.nginx.accessLog();
    const json = parseJson(e2.stdout);
    let check = 'ok';
    if (e2.code !== 0) check = `exit ${e2.code}`;
    else {
      const got = await md5File(join(dir, ctx.name)).catch((err: Error) => `(${err.message})`);
      if (got !== ctx.md5) check = `MD5 ${got}`;
    }
    if (check !== 'ok' || finishedEarly) failures.push(`resume try ${i + 1}: ${finishedEarly ? 'the first run was not killed mid-way; ' : ''}${check}\n${e2.stderr.slice(-3000)}`);
    const missing = ctx.size - complete;
    const beyond = log.bytes - missing;
    const lost = readAtKill - complete;
    process.stderr.write(
      `${mb(complete)} MB complete at the kill, ${mb(beyond)} MB re-fetched beyond the missing ${mb(missing)} MB; ${mb(lost)} MB read by the killed run but not journaled\n`,
    );
    if (e2.stderr.trim()) process.stderr.write(`download-bench: slicefs stderr (resume): ${e2.stderr.trim().slice(-2000)}\n`);
    rows.push(
      `| ${i + 1} | ${killedAt.toFixed(2)} | ${mb(readAtKill)} / ${mb(log1.bytes)} | ${mb(complete)} (${journalNote}) | ${mb(missing)} | ${mb(log.bytes)} (${log.requests} requests; --json says ${json ? mb(json.bytesFetched) : '?'}) | **${mb(beyond)} MB (${(beyond / partSize).toFixed(2)} parts of ${mb(partSize, 2)} MB)** | ${mb(lost)} MB (${(lost / partSize).toFixed(2)} parts) | ${e2.wallS.toFixed(2)} | ${check} |`,
    );
    await rm(dir, { recursive: true, force: true });
  }
  return {
    title: `Resume after kill -9 (loopback, \`--limit-rate 200M\`, SIGKILL after ~2 s, then the same command again; default --parallel 8 --part-size 8M)`,
    body:
      '| try | killed at s | killed run: MB read from its sockets (ss, just before the kill) / MB nginx sent | complete at the kill, MB (journal) | missing MB (size - complete) | second run fetched MB (nginx log) | re-fetched beyond what was missing (second run - missing) | lost to the kill: read by the killed run but not in its journal | second run s | result |\n' +
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n' +
      rows.join('\n') +
      '\n\nThe journal names only synced bytes: a part at its end, and a part in flight at its checkpoints (every second or 4 MiB of its stream). The second run fetching exactly what was missing is the check (0 beyond); what the kill cost is the last column, what the streams had read since their last checkpoints.',
  };
}

/** The slow link of `resume-slow`: 40 Mbit/s in all, 5 MB/s, so 0.625 MB/s for each of 8 streams (an 8 MiB part in 13 s). */
const SLOW_LINK_BITS = 40e6;
/** Its file: 64 MiB, 13 s at that rate, so that a try takes half a minute. */
const SLOW_FILE_SIZE = 64 * MiB;

/**
 * kill -9 half way through a file over a slow link, then the same command again: what the second
 * run fetches beyond what the killed run had never received, per stream (the default --parallel 8).
 * The killed run's received bytes are those it read from its sockets to the proxy (ss), sampled
 * every 100 ms until half the file, then once more right before the kill.
 */
async function resumeSlowLink(ctx: Ctx, tries: number, failures: string[]): Promise<Section> {
  const parallel = 8; // the default --parallel
  const dataPath = await ensureDataFile(join(REPO, '.bench/data'), SLOW_FILE_SIZE, 2);
  const name = basename(dataPath);
  const md5 = await md5File(dataPath);
  const proxy = await startLatencyProxy({ upstreamPort: ctx.nginx.port, oneWayDelayMs: 10, rateBitsPerSec: SLOW_LINK_BITS });
  const url = `http://127.0.0.1:${proxy.port}/${name}`;
  const streamRate = SLOW_LINK_BITS / 8 / parallel;
  const rows: string[] = [];
  try {
    for (let i = 0; i < tries; i++) {
      process.stderr.write(`download-bench: resume after kill -9 on a slow link, try ${i + 1}/${tries} … `);
      const dir = join(ctx.work, `resume-slow-${i}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await quiet('sync', []);
      const [cmd, args] = commandFor(ctx, 'slicefs', url, dir);
      await ctx.nginx.resetLog();
      const first = launchTimed(cmd, args, { cwd: dir, timeoutMs: ctx.cmdTimeoutMs, owner: 'download-bench' });
      const pid = await toolPid(first.pid);
      const readNow = async () => {
        let n = 0;
        for (const v of (await readSockets(proxy.port)).values()) n += v.app;
        return n;
      };
      // Summed over the open sockets: 64 MiB is 8 parts of 8 MiB, one per stream, so none has
      // ended (nor its socket closed) at half way.
      let seen = 0;
      const deadline = performance.now() + ctx.cmdTimeoutMs;
      while ((seen = await readNow()) < SLOW_FILE_SIZE / 2 && performance.now() < deadline) await sleep(100);
      const readAtKill = Math.max(seen, await readNow());
      if (pid) process.kill(pid, 'SIGKILL');
      else first.kill();
      const e1 = await first.done;
      const finishedEarly = existsSync(join(dir, name));
      let complete = 0;
      try {
        const j = JSON.parse(await readFile(join(dir, `${name}.part.journal`), 'utf8')) as { done: [number, number][] };
        complete = j.done.reduce((n, [a, b]) => n + (b - a), 0);
      } catch {
        // no journal: nothing complete
      }
      await ctx.nginx.resetLog();
      const second = launchTimed(cmd, args, { cwd: dir, timeoutMs: ctx.cmdTimeoutMs, owner: 'download-bench' });
      const e2 = await second.done;
      const log = await ctx.nginx.accessLog();
      let check = 'ok';
      if (e2.code !== 0) check = `exit ${e2.code}`;
      else {
        const got = await md5File(join(dir, name)).catch((err: Error) => `(${err.message})`);
        if (got !== md5) check = `MD5 ${got}`;
      }
      if (check !== 'ok' || finishedEarly) failures.push(`resume-slow try ${i + 1}: ${finishedEarly ? 'the first run was not killed mid-way; ' : ''}${check}\n${e2.stderr.slice(-3000)}`);
      const neverReceived = SLOW_FILE_SIZE - readAtKill;
      const beyond = log.bytes - neverReceived;
      const perStream = beyond / parallel;
      process.stderr.write(`${mb(readAtKill)} MB received, ${mb(complete)} MB journaled at the kill; the resume fetched ${mb(log.bytes)} MB, ${mb(beyond, 2)} MB beyond what was never received (${mb(perStream, 2)} MB per stream)\n`);
      rows.push(
        `| ${i + 1} | ${e1.wallS.toFixed(1)} | ${mb(readAtKill)} | ${mb(complete)} | ${mb(neverReceived)} | ${mb(log.bytes)} (${log.requests} requests) | ${mb(beyond, 2)} | **${mb(perStream, 2)} MB (${(perStream / streamRate).toFixed(2)} s of a stream)** | ${e2.wallS.toFixed(1)} | ${check} |`,
      );
      await rm(dir, { recursive: true, force: true });
    }
  } finally {
    await proxy.close();
  }
  return {
    title: `Resume after kill -9 half way, slow link (latency proxy: 10 ms each way, ${SLOW_LINK_BITS / 1e6} Mbit/s in all; ${mb(SLOW_FILE_SIZE)} MB file; default --parallel 8 --part-size 8M)`,
    body:
      '| try | killed run s | received by the killed run, MB (ss: read from its sockets) | complete at the kill, MB (journal) | never received, MB | second run fetched, MB (nginx log) | fetched again beyond what was never received, MB | the same per stream | second run s | result |\n' +
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n' +
      rows.join('\n') +
      `\n\nA stream checkpoints its part (fdatasync, then the journal) every second or 4 MiB, so a kill costs each stream at most about a second of its transfer (here ${mb(streamRate, 3)} MB/s per stream); the second run fetches exactly what the journal lacks.`,
  };
}

async function limitRate(ctx: Ctx, failures: string[]): Promise<Section> {
  const url = `${ctx.nginx.origin}/${ctx.name}`;
  const rows: string[] = [];
  for (const limit of ['50M', '200M']) {
    const want = parseSize(limit);
    process.stderr.write(`download-bench: --limit-rate ${limit} … `);
    const { d, samples } = await download(ctx, 'slicefs', url, ['--limit-rate', limit], { sample: true });
    if (d.error) {
      failures.push(`--limit-rate ${limit}: ${d.error}`);
      process.stderr.write(`FAILED\n${d.error}\n`);
      rows.push(`| ${limit} | failed | | | | | |`);
      continue;
    }
    const avg = ctx.size / d.wallS;
    const session = d.json ? d.json.bytesFetched / d.json.seconds : NaN;
    const app = maxWindowRate(samples, 'app');
    const wire = maxWindowRate(samples, 'wire');
    const appLater = maxWindowRate(samples, 'app', 1000, 2000);
    const wireLater = maxWindowRate(samples, 'wire', 1000, 2000);
    const appTotal = samples.at(-1)?.app ?? 0;
    const rchar = samples.filter((s) => Number.isFinite(s.rchar)).at(-1)?.rchar ?? NaN;
    process.stderr.write(`${mb(avg)} MB/s average, ${mb(app)} MB/s max 1 s\n`);
    rows.push(
      `| ${limit} (${mb(want)} MB/s) | ${d.wallS.toFixed(2)} | ${mb(avg)} (${pct(avg / want - 1)}) | ${mb(session)} (${pct(session / want - 1)}) | **${mb(app)} (${pct(app / want - 1)})**; after the first 2 s: ${mb(appLater)} (${pct(appLater / want - 1)}) | ${mb(wire)} (${pct(wire / want - 1)}); after 2 s: ${mb(wireLater)} (${pct(wireLater / want - 1)}) | ${samples.length} samples; socket reads seen ${mb(appTotal)} MB; rchar at the last sample ${mb(rchar)} MB |`,
    );
  }
  const ceiling = ctx.slicefsLoopbackMBps
    ? `\n\nslicefs without a limit did ${ctx.slicefsLoopbackMBps.toFixed(1)} MB/s on loopback (median above): a limit near that is a limit on a process that cannot go much faster anyway.`
    : '';
  return {
    title: '--limit-rate accuracy (loopback, 1 download each; MB/s, error vs the limit)',
    body:
      '| --limit-rate | s | average: size / wall clock | session: bytesFetched / seconds (--json) | max over any 1 s window: bytes read from the sockets | max 1 s window: bytes at the host\'s TCP | sampling |\n' +
      '|---|---:|---:|---:|---:|---:|---|\n' +
      rows.join('\n') +
      '\n\nWindows: `ss -ti` every 100 ms on the client sockets to nginx; "read from the sockets" = tcpi_bytes_received - Recv-Q. ' +
      '/proc/PID/io rchar (last column) also counts the MD5 read-back of the part file, about as many bytes again, so it is not used for the rate.' +
      ceiling,
  };
}

async function sweep(ctx: Ctx, failures: string[]): Promise<Section> {
  const url = `http://127.0.0.1:${ctx.proxy.port}/${ctx.name}`;
  const parallels = [4, 8, 16];
  const parts = ['4M', '8M', '16M', '32M'];
  const rows: string[] = [];
  let best = { rate: 0, label: '' };
  for (const p of parallels) {
    const cells: string[] = [];
    for (const s of parts) {
      process.stderr.write(`download-bench: sweep wan --parallel ${p} --part-size ${s} … `);
      const { d } = await download(ctx, 'slicefs', url, ['--parallel', String(p), '--part-size', s]);
      if (d.error) {
        failures.push(`sweep --parallel ${p} --part-size ${s}: ${d.error}`);
        process.stderr.write(`FAILED\n${d.error}\n`);
        cells.push('failed');
        continue;
      }
      const rate = ctx.size / d.wallS / MB;
      process.stderr.write(`${rate.toFixed(1)} MB/s\n`);
      if (rate > best.rate) best = { rate, label: `--parallel ${p} --part-size ${s}` };
      cells.push(`${rate.toFixed(1)} (${d.log.requests} req, CPU ${d.cpuS.toFixed(1)} s)`);
    }
    rows.push(`| ${p} | ${cells.join(' | ')} |`);
  }
  return {
    title: 'Sweep on the latency link (20 ms RTT, 1 Gbit/s = 125 MB/s): slicefs MB/s, one run each',
    body:
      `| --parallel \\ --part-size | ${parts.join(' | ')} |\n|---|${parts.map(() => '---:').join('|')}|\n` +
      rows.join('\n') +
      `\n\nFastest: ${best.label} (${best.rate.toFixed(1)} MB/s); one run per cell, so differences of a few % are noise.`,
  };
}

async function profile(ctx: Ctx, failures: string[]): Promise<Section> {
  const url = `${ctx.nginx.origin}/${ctx.name}`;
  const profDir = join(ctx.work, 'cpu-prof');
  await rm(profDir, { recursive: true, force: true });
  await mkdir(profDir, { recursive: true });
  process.stderr.write('download-bench: slicefs under --cpu-prof (loopback) … ');
  const { d } = await download(ctx, 'slicefs', url, [], { nodeFlags: ['--cpu-prof', '--cpu-prof-dir', profDir] });
  if (d.error) {
    failures.push(`--cpu-prof run: ${d.error}`);
    process.stderr.write(`FAILED\n${d.error}\n`);
    return { title: 'CPU profile', body: 'failed (see stderr)' };
  }
  process.stderr.write(`${(ctx.size / d.wallS / MB).toFixed(1)} MB/s\n`);
  const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
  const parts: string[] = [];
  for (const f of files) {
    const top = topSelf(join(profDir, f), ctx.cli.dir, 12);
    parts.push(
      `${f} (${files.length > 1 ? 'one thread of several' : 'main thread'}):\n\n| # | function | where | nearest caller in src/ (most of its time) | self ms | % of non-idle |\n|---:|---|---|---|---:|---:|\n` +
        top.map((e, i) => `| ${i + 1} | \`${e.name}\` | ${e.where} | ${e.caller} | ${e.ms.toFixed(0)} | ${(e.share * 100).toFixed(1)} |`).join('\n'),
    );
  }
  return {
    title: `CPU profile: one slicefs download on loopback under \`node --cpu-prof\` (${(ctx.size / d.wallS / MB).toFixed(1)} MB/s, ${d.wallS.toFixed(2)} s wall, ${d.cpuS.toFixed(2)} s CPU user+sys of the process)`,
    body: parts.join('\n\n'),
  };
}

const SECTIONS = ['loopback', 'wan', 'resume', 'resume-slow', 'limit', 'sweep', 'profile'] as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      size: { type: 'string', default: '1G' },
      seed: { type: 'string', default: '1' },
      'no-sweep': { type: 'boolean', default: false },
      'slicefs-args': { type: 'string', default: '' },
      'aria2c-args': { type: 'string', default: '' },
      'curl-args': { type: 'string', default: '' },
      only: { type: 'string' },
      'resume-tries': { type: 'string', default: '3' },
      'cmd-timeout': { type: 'string', default: '300' },
      timeout: { type: 'string', default: '1800' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: node dist/test/bench/download-bench.js [--runs 3] [--size 1G] [--seed 1] [--no-sweep] [--only ' +
        SECTIONS.join(',') +
        '] [--resume-tries 3] [--curl-args "…"] [--aria2c-args "…"] [--slicefs-args "…"] [--cmd-timeout 300] [--timeout 1800]\n',
    );
    return;
  }
  const runs = Math.max(1, Math.trunc(Number(values.runs)));
  if (!Number.isFinite(runs)) throw new Error(`--runs: not a number: ${values.runs}`);
  const size = parseSize(values.size);
  const seed = Number(values.seed);
  const tries = Math.max(1, Math.trunc(Number(values['resume-tries'])));
  const cmdTimeoutMs = Number(values['cmd-timeout']) * 1000;
  if (!(cmdTimeoutMs > 0)) throw new Error(`--cmd-timeout: not a positive number of seconds: ${values['cmd-timeout']}`);
  const only = new Set(values.only ? values.only.split(',').map((s) => s.trim()) : SECTIONS.filter((s) => s !== 'sweep' || !values['no-sweep']));
  for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section ${s} (${SECTIONS.join(', ')})`);
  for (const tool of ['curl', 'aria2c', 'ss', '/usr/bin/time']) {
    const found = tool.startsWith('/') ? existsSync(tool) : await execFileP('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false);
    if (!found) throw new Error(`${tool} not found (bash scripts/setup.sh installs curl and aria2; ss is iproute2, /usr/bin/time is GNU time)`);
  }
  const globalTimer = setTimeout(() => {
    process.stderr.write(`download-bench: --timeout ${values.timeout} s reached, stopping\n`);
    void runCleanups().finally(() => process.exit(124));
  }, Number(values.timeout) * 1000);
  globalTimer.unref();

  const t0 = performance.now();
  const cli = await snapshotCli();
  const dataDir = join(REPO, '.bench/data');
  process.stderr.write(`download-bench: data file of ${size} bytes (seed ${seed}) …\n`);
  const dataPath = await ensureDataFile(dataDir, size, seed);
  const md5 = await md5File(dataPath); // also brings it into the page cache: nginx serves from memory
  const nginx = await startNginx(dataDir);
  const proxy = await startLatencyProxy({ upstreamPort: nginx.port, oneWayDelayMs: 10, rateBitsPerSec: 1e9 });
  const work = join(REPO, '.bench', `download-bench-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const unregisterWork = onCleanup('download-bench output dir', () => rm(work, { recursive: true, force: true }));
  const words = (s: string) => s.split(/\s+/).filter(Boolean);
  const toolArgs = { curl: words(values['curl-args']), aria2c: words(values['aria2c-args']), slicefs: words(values['slicefs-args']) };
  const clkTck = Number((await execFileP('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }))).stdout.trim()) || 100;
  const ctx: Ctx = { cli, nginx, proxy, work, name: basename(dataPath), size, md5, cmdTimeoutMs, seq: 0, toolArgs, nginxPid: await findNginxPid(nginx), clkTck };
  if (!ctx.nginxPid) process.stderr.write('download-bench: cannot find the pid of nginx: its CPU is not shown\n');
  const failures: string[] = [];
  const commands = new Map<string, string>();
  const sections: Section[] = [];
  try {
    if (only.has('loopback') || only.has('wan')) {
      const full = await compare(ctx, runs, failures, commands);
      // compare() runs both links; drop the one not asked for.
      if (!(only.has('loopback') && only.has('wan'))) {
        const keep = only.has('loopback') ? 'loopback' : 'wan';
        full.body = full.body
          .split('\n')
          .filter((l) => !/^\| (loopback|wan)/.test(l) || l.startsWith(`| ${keep}`))
          .join('\n');
      }
      sections.push(full);
    }
    if (only.has('resume')) sections.push(await resumeAfterKill(ctx, tries, failures));
    if (only.has('resume-slow')) sections.push(await resumeSlowLink(ctx, tries, failures));
    if (only.has('limit')) sections.push(await limitRate(ctx, failures));
    if (only.has('sweep')) sections.push(await sweep(ctx, failures));
    if (only.has('profile')) sections.push(await profile(ctx, failures));
  } finally {
    const ps = proxy.stats();
    await proxy.close();
    await nginx.stop();
    await rm(work, { recursive: true, force: true });
    unregisterWork();
    await cli.remove();
    await runCleanups();
    if (ps.connections > 0) process.stderr.write(`download-bench: latency proxy: ${ps.connections} connections, ${mb(ps.deliveredDown)} MB delivered down\n`);
  }
  const cmdLines = [...commands.entries()].map(([t, c]) => `- ${t}: \`${c}\``);
  if (cmdLines.length === 0) cmdLines.push(`- slicefs: \`node bin/slicefs.js download --url URL -d DIR -q --json\` (+ the options shown)`);
  process.stdout.write(
    `# slicefs download vs curl and aria2c\n\n` +
      `\`node dist/test/bench/download-bench.js${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}\`\n\n` +
      `File: ${relative(REPO, dataPath)}, ${size} bytes (${mb(size)} MB), MD5 ${md5}; nginx on 127.0.0.1 (sendfile, page cache warm); ` +
      `wan = test/bench/latency-proxy (10 ms each way, 1 Gbit/s aggregate, one RTT per new connection). MB = 10^6 bytes; ` +
      `wall clock from spawn to exit, process start-up included. Host: ${(await readFile('/proc/cpuinfo', 'utf8')).split('\n').filter((l) => l.startsWith('processor')).length} CPUs, Node ${process.version}.\n\n` +
      `Commands (URL = http://127.0.0.1:PORT/${ctx.name}, DIR = a fresh directory per run):\n\n${cmdLines.join('\n')}\n\n` +
      sections.map((s) => `## ${s.title}\n\n${s.body}\n`).join('\n') +
      '\nNotes:\n\n' +
      '- slicefs fdatasyncs every part before it journals it, and aria2c fsyncs its file before it exits (seen with strace), so both exit with the data on disk ' +
      '(the fdatasync after them finds nothing); curl exits with up to the whole file dirty in the page cache. "To durable" compares the three on equal terms.\n' +
      `- Start-up of the CLI: \`node bin/slicefs.js download --help\` takes ${cli.startupS.toFixed(2)} s here (median of 5), part of every slicefs wall clock above.\n` +
      '- aria2c\'s first request is a GET of the whole file (no Range), closed once its first split is done: nginx sends a few MB more than the file (origin MB).\n' +
      `\n${((performance.now() - t0) / 60_000).toFixed(1)} min in all.\n`,
  );
  if (failures.length > 0) throw new Error(`${failures.length} failure(s):\n${failures.join('\n\n')}`);
}

runBenchMain('download-bench', main);
