/**
 * Where a command's CPU goes, per thread: runs it (stdout into a pipe that counts bytes), samples
 * /proc/PID/task/TID/stat (utime + stime) of it and of its descendants every ~10 ms until it exits,
 * and prints CPU seconds per thread group beside the wall time and GNU time's total. A thread that
 * ends keeps the last value sampled, so the groups add up to a little less than GNU time's figure;
 * the difference (work of the last interval, threads shorter than one) is shown as "not sampled".
 *
 * Node names none of its threads (all are "node"), so a Node process's threads are grouped by what
 * Node's start-up order says they are:
 *   - the main thread (tid = pid): JavaScript, and whatever native code it calls synchronously;
 *   - the threads Node starts before any JavaScript runs: V8's platform workers (concurrent and
 *     parallel garbage collection, background compilation; `--v8-pool-size`, 4 by default), the
 *     delayed-task scheduler, the inspector's signal thread, and with `--cpu-prof` V8's sampler.
 *     How many there are is measured once with the same node flags (`node -e` that counts its own
 *     threads), so the first that many threads by start time are this group;
 *   - threads started later: a thread seen waiting in epoll_wait (/proc/…/wchan) runs an event
 *     loop of its own, so it is a worker_threads Worker; the others are libuv's pool (fs, zlib,
 *     crypto; UV_THREADPOOL_SIZE, 4 by default) and any other native thread.
 * A process that is not node (samtools) is grouped by thread name (comm).
 *
 * With `--cpu-prof`, each case runs once more under `node --cpu-prof --cpu-prof-dir DIR` (one
 * profile per JavaScript thread: main and each Worker) and the top functions of each profile by
 * self time are printed; the profiles are kept in DIR for Chrome DevTools.
 *
 *   node dist/test/bench/thread-cpu.js [--runs 3] [--interval 10] [--cpu-prof] [--prof-dir D] [--top 12] [--no-samtools] [-- CMD ARGS…]
 *
 * CMD `slicefs` means `node bin/slicefs.js`. Without a command it runs the cases of issue 18 on the
 * local bench files (.bench/data/sample-bench): a 10 Mb region of the BAM as SAM, of the CRAM as
 * SAM, of the BAM as BAM (`-b`), and a 1 kb region of the BAM as SAM, each beside `samtools view`
 * of the same (`--no-samtools`: without).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { childEnv, onCleanup, runBenchMain, runCleanups, shellQuote, sleep } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SLICEFS_BIN = join(REPO, 'bin', 'slicefs.js');
const DATA = join(REPO, '.bench', 'data', 'sample-bench');
/** Clock ticks per second of /proc's utime and stime (USER_HZ; 100 on Linux). */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const NODE_EXE = realpathSync(process.execPath);

type Group = 'main thread (JS)' | 'V8 platform + start-up threads (GC, compiler)' | 'worker_threads' | 'libuv pool + other native threads';
const NODE_GROUPS: Group[] = ['main thread (JS)', 'V8 platform + start-up threads (GC, compiler)', 'worker_threads', 'libuv pool + other native threads'];

interface ThreadSample {
  pid: number;
  tid: number;
  comm: string;
  /** utime + stime, seconds, last value seen. */
  cpuS: number;
  /** Start time after boot, clock ticks (field 22 of stat). */
  start: number;
  /** Seen waiting in epoll_wait: the thread runs an event loop. */
  epoll: boolean;
}

/** utime + stime (seconds) and start time of one stat line; the name may hold spaces, so fields are counted after its ')'. */
function parseStat(stat: string): { comm: string; cpuS: number; start: number } | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const f = stat.slice(close + 2).split(' '); // f[0] is field 3 (state); utime, stime, starttime are fields 14, 15, 22
  return { comm: stat.slice(stat.indexOf('(') + 1, close), cpuS: (Number(f[11]) + Number(f[12])) / CLK_TCK, start: Number(f[19]) };
}

const readOr = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

function exeOf(pid: number): string {
  try {
    return realpathSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

/** The process and its descendants (children of every thread, recursively). */
function processTree(root: number): number[] {
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    out.push(pid);
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) for (const c of readOr(`/proc/${pid}/task/${tid}/children`).split(' ')) if (c.trim()) todo.push(Number(c));
  }
  return out;
}

/** One sample of every thread of the tree into `threads` (synchronous: a sample is a few dozen small reads). */
function sample(root: number, threads: Map<string, ThreadSample>, isNode: Map<number, boolean>): void {
  for (const pid of processTree(root)) {
    if (!isNode.get(pid)) {
      // Asked again until it is node: the first samples may see the child between fork and exec.
      try {
        isNode.set(pid, realpathSync(`/proc/${pid}/exe`) === NODE_EXE);
      } catch {
        continue;
      }
    }
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      const st = parseStat(readOr(`/proc/${pid}/task/${t}/stat`));
      if (!st) continue;
      const key = `${pid}/${t}`;
      const prev = threads.get(key);
      const tid = Number(t);
      const wantWchan = isNode.get(pid) && tid !== pid && !prev?.epoll;
      const epoll = prev?.epoll || (wantWchan && /epoll|ep_poll/.test(readOr(`/proc/${pid}/task/${t}/wchan`)));
      threads.set(key, { pid, tid, comm: st.comm, cpuS: Number.isFinite(st.cpuS) ? st.cpuS : (prev?.cpuS ?? 0), start: st.start, epoll: Boolean(epoll) });
    }
  }
}

/** Threads a node process has before its first line of JavaScript (main included), with these node flags. */
function startupThreads(nodeFlags: string[], dir: string): number {
  const r = spawnSync(process.execPath, [...nodeFlags, '-e', "process.stdout.write(String(require('fs').readdirSync('/proc/self/task').length))"], {
    encoding: 'utf8',
    cwd: dir,
    timeout: 30_000,
  });
  const n = Number(r.stdout);
  if (r.status !== 0 || !(n >= 1)) throw new Error(`cannot count node's start-up threads: ${r.stderr.slice(-500)}`);
  return n;
}

/** Thread groups of one process: CPU seconds and thread count per group. */
function groupThreads(threads: ThreadSample[], nodeStartup: number, isNode: boolean): Map<string, { cpuS: number; threads: number }> {
  const out = new Map<string, { cpuS: number; threads: number }>();
  const add = (g: string, t: ThreadSample) => {
    const e = out.get(g) ?? { cpuS: 0, threads: 0 };
    e.cpuS += t.cpuS;
    e.threads++;
    out.set(g, e);
  };
  if (!isNode) {
    for (const t of threads) add(t.tid === t.pid ? `main thread (${t.comm})` : `other threads (${t.comm})`, t);
    return out;
  }
  for (const g of NODE_GROUPS) out.set(g, { cpuS: 0, threads: 0 });
  const others = threads.filter((t) => t.tid !== t.pid).sort((a, b) => a.start - b.start || a.tid - b.tid);
  const early = new Set(others.slice(0, nodeStartup - 1));
  for (const t of threads) {
    if (t.tid === t.pid) add('main thread (JS)', t);
    else if (early.has(t)) add('V8 platform + start-up threads (GC, compiler)', t);
    else add(t.epoll ? 'worker_threads' : 'libuv pool + other native threads', t);
  }
  return out;
}

interface RunResult {
  wallS: number;
  /** user + system of the whole tree, GNU time. */
  cpuS: number;
  rssMiB: number;
  outBytes: number;
  code: number | null;
  err: string;
  /** Per process (pid, in the order first seen): its command and groups. */
  processes: { pid: number; name: string; groups: Map<string, { cpuS: number; threads: number }> }[];
  /** The sampler's own CPU (this process), seconds: it shares the machine with the command. */
  samplerCpuS: number;
  samples: number;
}

/** Runs `argv` under GNU time with its threads sampled every `intervalMs`. */
async function runSampled(argv: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; intervalMs: number; timeoutMs: number; nodeStartup: number }): Promise<RunResult> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const p = spawn('/usr/bin/time', ['-f', 'THREAD_CPU_TIME=%U %S %M', ...argv], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const kill = () => {
    try {
      if (p.pid) process.kill(-p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const unregister = onCleanup(`${basename(argv[0])} (thread-cpu)`, kill);
  const timer = setTimeout(kill, opts.timeoutMs);
  let outBytes = 0;
  let err = '';
  p.stdout.on('data', (d: Buffer) => (outBytes += d.length));
  p.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (err.length < 1 << 20) err += d;
  });
  let exited = false;
  const closed = new Promise<number | null>((res) => p.on('close', (code) => res(code)));
  void closed.then(() => (exited = true));
  const threads = new Map<string, ThreadSample>();
  const isNode = new Map<number, boolean>();
  const order: number[] = [];
  let root = 0;
  let samples = 0;
  let execed = false;
  while (!exited) {
    if (!root && p.pid) root = Number(readOr(`/proc/${p.pid}/task/${p.pid}/children`).trim().split(' ')[0]) || 0;
    // Between fork and exec the child is still GNU time: not sampled (it would be named "time").
    if (root && !execed) execed = exeOf(root) !== exeOf(p.pid!);
    if (root && execed) {
      sample(root, threads, isNode);
      samples++;
      for (const t of threads.values()) if (!order.includes(t.pid)) order.push(t.pid);
    }
    await sleep(opts.intervalMs);
  }
  const code = await closed;
  clearTimeout(timer);
  unregister();
  const m = /THREAD_CPU_TIME=(\S+) (\S+) (\d+)/.exec(err);
  err = err.replace(/^(Command (exited with non-zero status|terminated by signal) .*\n)?THREAD_CPU_TIME=.*\n?/m, '');
  const used = process.cpuUsage(cpu0);
  const processes = order.map((pid) => {
    const ts = [...threads.values()].filter((t) => t.pid === pid);
    const main = ts.find((t) => t.tid === pid);
    return { pid, name: main?.comm ?? '?', groups: groupThreads(ts, opts.nodeStartup, isNode.get(pid) ?? false) };
  });
  return {
    wallS: (performance.now() - t0) / 1000,
    cpuS: m ? Number(m[1]) + Number(m[2]) : NaN,
    rssMiB: m ? Number(m[3]) / 1024 : NaN,
    outBytes,
    code,
    err,
    processes,
    samplerCpuS: (used.user + used.system) / 1e6,
    samples,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---------------------------------------------------------------------------------------------
// --cpu-prof: the top functions of each JavaScript thread by self time.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** Self time per function (ms) of a .cpuprofile, largest first, and the profile's total. */
function selfTimes(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }): { totalMs: number; top: [string, number][] } {
  const byNode = new Map<number, number>();
  profile.samples.forEach((id, i) => byNode.set(id, (byNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const byFunction = new Map<string, number>();
  let totalMs = 0;
  for (const n of profile.nodes) {
    const ms = byNode.get(n.id) ?? 0;
    totalMs += ms;
    const cf = n.callFrame;
    const where = cf.url ? ` ${cf.url.split('/').slice(-1)[0]}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}${where}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
  }
  return { totalMs, top: [...byFunction].sort((a, b) => b[1] - a[1]) };
}

/** The profiles in `dir` (Node names them CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is main). */
async function profileSummary(dir: string, top: number): Promise<string[]> {
  const lines: string[] = [];
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort((a, b) => threadIdOf(a) - threadIdOf(b));
  for (const f of files) {
    const { totalMs, top: fns } = selfTimes(JSON.parse(await readFile(join(dir, f), 'utf8')));
    const id = threadIdOf(f);
    lines.push('', `${id === 0 ? 'main thread' : `worker thread ${id}`} (${relative(process.cwd(), join(dir, f))}): ${totalMs.toFixed(0)} ms sampled`, '');
    lines.push('| self ms | share | function |', '|---:|---:|---|');
    for (const [name, ms] of fns.slice(0, top)) lines.push(`| ${ms.toFixed(0)} | ${((100 * ms) / totalMs).toFixed(1)}% | \`${name.replace(/\|/g, '\\|')}\` |`);
  }
  if (files.length === 0) lines.push('', `(no profile written in ${dir})`);
  return lines;
}

function threadIdOf(file: string): number {
  const parts = file.split('.');
  return Number(parts[parts.length - 3]);
}

// ---------------------------------------------------------------------------------------------
// Main.

interface Case {
  title: string;
  argv: string[];
}

/** The cases of issue 18 on the local bench files, each beside samtools unless `withSamtools` is false. */
function issue18Cases(withSamtools: boolean): Case[] {
  const bam = join(DATA, 'sample.bam');
  const cram = join(DATA, 'sample.cram');
  const ref = join(DATA, 'ref.fa');
  for (const f of [bam, cram, ref]) if (!existsSync(f)) throw new Error(`${f} is missing: the bench data (.bench/data/sample-bench) is needed`);
  const tenMb = 'chr1:19000000-28999999';
  const oneKb = 'chr1:23999500-24000499';
  const cases: [string, string[], string[]][] = [
    ['10 Mb BAM → SAM', ['view', '--input-file', bam, '-q', tenMb, '--no-header'], ['view', bam, tenMb]],
    ['10 Mb CRAM → SAM', ['view', '--input-file', cram, '-T', ref, '-q', tenMb, '--no-header'], ['view', '-T', ref, cram, tenMb]],
    ['10 Mb BAM → BAM (-b)', ['view', '--input-file', bam, '-q', tenMb, '-b'], ['view', '-b', bam, tenMb]],
    ['1 kb BAM → SAM', ['view', '--input-file', bam, '-q', oneKb, '--no-header'], ['view', bam, oneKb]],
  ];
  return cases.flatMap(([title, slicefs, samtools]) => [
    { title: `${title}: slicefs`, argv: ['slicefs', ...slicefs] },
    ...(withSamtools ? [{ title: `${title}: samtools`, argv: ['samtools', ...samtools] }] : []),
  ]);
}

/** The argv to spawn: `slicefs …` is node (with `nodeFlags`) running bin/slicefs.js. */
function resolveArgv(argv: string[], nodeFlags: string[]): string[] {
  if (argv[0] === 'slicefs') return [process.execPath, ...nodeFlags, SLICEFS_BIN, ...argv.slice(1)];
  if (argv[0] === 'node') return [process.execPath, ...nodeFlags, ...argv.slice(1)];
  return argv;
}

const shown = (argv: string[]) => shellQuote(argv.map((a) => (a.startsWith(REPO + '/') ? relative(REPO, a) : a)));

async function main(): Promise<void> {
  const dashDash = process.argv.indexOf('--');
  const own = dashDash >= 0 ? process.argv.slice(2, dashDash) : process.argv.slice(2);
  const command = dashDash >= 0 ? process.argv.slice(dashDash + 1) : [];
  const { values } = parseArgs({
    args: own,
    options: {
      runs: { type: 'string', default: '3' },
      interval: { type: 'string', default: '10' },
      'cpu-prof': { type: 'boolean', default: false },
      'prof-dir': { type: 'string' },
      top: { type: 'string', default: '12' },
      'no-samtools': { type: 'boolean', default: false },
      'cmd-timeout': { type: 'string', default: '600' },
    },
  });
  const runs = Math.floor(Number(values.runs));
  const intervalMs = Number(values.interval);
  const top = Math.floor(Number(values.top));
  const timeoutMs = Number(values['cmd-timeout']) * 1000;
  if (!(runs >= 1) || !(intervalMs > 0) || !(top >= 1) || !(timeoutMs > 0)) throw new Error('--runs, --interval, --top, --cmd-timeout: positive numbers');
  const cases: Case[] = command.length > 0 ? [{ title: shown(command), argv: command }] : issue18Cases(!values['no-samtools']);
  const work = await mkdtemp(join(tmpdir(), 'slicefs-thread-cpu-'));
  onCleanup('thread-cpu temp dir', () => rm(work, { recursive: true, force: true }));
  // Nothing kept outside the run (slicefs's cache directory is XDG_CACHE_HOME/slicefs).
  const env = childEnv({ XDG_CACHE_HOME: join(work, 'cache') });
  const nodeStartup = startupThreads([], work);
  const out: string[] = [
    `\`${shellQuote(['node', relative(process.cwd(), process.argv[1]) || process.argv[1], ...process.argv.slice(2)])}\``,
    '',
    `# CPU per thread (${runs} run(s) per command, median; /proc/PID/task/*/stat every ${intervalMs} ms)`,
    '',
    `Node threads before any JavaScript (main included): ${nodeStartup}. Groups: main thread (JS); V8 platform + start-up threads ` +
      '(the threads Node starts before JS: V8 garbage collection and compiler workers, delayed-task scheduler, inspector signal thread); ' +
      'worker_threads (later threads seen in epoll_wait: they run an event loop); libuv pool + other native threads (the other later ' +
      'threads: fs, zlib, crypto work). "not sampled" = GNU time\'s total minus the sampled sum (the last interval, threads shorter than one).',
  ];
  try {
    for (const c of cases) {
      const argv = resolveArgv(c.argv, []);
      process.stderr.write(`thread-cpu: ${c.title} …\n`);
      const results: RunResult[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await runSampled(argv, { cwd: process.cwd(), env, intervalMs, timeoutMs, nodeStartup });
        if (r.code !== 0) throw new Error(`${shown(argv)} exited with ${r.code}: ${r.err.slice(-2000)}`);
        results.push(r);
      }
      const last = results[results.length - 1];
      out.push('', `## ${c.title}`, '', `\`${shown(c.argv)}\``, '');
      out.push(
        `wall **${median(results.map((r) => r.wallS)).toFixed(2)} s**, CPU **${median(results.map((r) => r.cpuS)).toFixed(2)} s** (user + system, GNU time), ` +
          `peak RSS ${median(results.map((r) => r.rssMiB)).toFixed(0)} MiB, output ${(last.outBytes / 1e6).toFixed(1)} MB; ` +
          `runs: ${results.map((r) => `${r.wallS.toFixed(2)} s / ${r.cpuS.toFixed(2)} CPU s`).join(', ')}; ` +
          `${last.samples} samples in the last run, the sampler's own CPU ${last.samplerCpuS.toFixed(2)} s`,
        '',
        '| process | thread group | threads | CPU s | share of CPU |',
        '|---|---|---:|---:|---:|',
      );
      const cpu = median(results.map((r) => r.cpuS));
      let sampled = 0;
      for (const [pi, proc] of last.processes.entries()) {
        for (const [group, { threads }] of proc.groups) {
          if (threads === 0) continue;
          // The median over runs of this group's seconds (same process position and group in every run).
          const s = median(results.map((r) => r.processes[pi]?.groups.get(group)?.cpuS ?? 0));
          sampled += s;
          out.push(`| ${pi === 0 ? proc.name : `${proc.name} (child ${pi})`} | ${group} | ${threads} | ${s.toFixed(2)} | ${cpu > 0 ? `${((100 * s) / cpu).toFixed(0)}%` : '–'} |`);
        }
      }
      const share = (x: number) => (cpu > 0 ? `${((100 * x) / cpu).toFixed(0)}%` : '–');
      out.push(`| | not sampled${last.samples === 0 ? ' (it ended before the first sample)' : ''} | | ${(cpu - sampled).toFixed(2)} | ${share(cpu - sampled)} |`);
      if (values['cpu-prof'] && c.argv[0] !== 'samtools') {
        const base = resolve(values['prof-dir'] ?? join(REPO, '.bench', `thread-cpu-prof-${process.pid}`));
        const dir = join(base, c.title.replace(/[^\w.-]+/g, '-').replace(/^-|-$/g, ''));
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
        const flags = ['--cpu-prof', '--cpu-prof-dir', dir];
        const profArgv = resolveArgv(c.argv, flags);
        process.stderr.write(`thread-cpu: ${c.title} under --cpu-prof …\n`);
        // The probe's own profile goes elsewhere, not among the case's.
        const probeStartup = startupThreads(['--cpu-prof', '--cpu-prof-dir', join(work, 'probe-profiles')], work);
        const r = await runSampled(profArgv, { cwd: process.cwd(), env, intervalMs, timeoutMs, nodeStartup: probeStartup });
        if (r.code !== 0) throw new Error(`${shown(profArgv)} exited with ${r.code}: ${r.err.slice(-2000)}`);
        out.push('', `Under \`--cpu-prof\` (one more run; the profiler costs time): wall ${r.wallS.toFixed(2)} s, CPU ${r.cpuS.toFixed(2)} s. Top ${top} functions by self time:`);
        out.push(...(await profileSummary(dir, top)));
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    await runCleanups();
  }
  process.stdout.write(out.join('\n') + '\n');
}

runBenchMain('thread-cpu', main);
