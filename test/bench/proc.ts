// Process, port, mount and cleanup helpers shared by the benchmark scripts (test/bench only).
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { cp, mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { basename, join, sep } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Cleanup registry: every started resource registers its undo; run in reverse order exactly once.

type CleanupFn = () => Promise<void> | void;
const cleanups: { name: string; fn: CleanupFn }[] = [];

/** Registers a cleanup; returns a function that unregisters it (call after a normal stop). */
export function onCleanup(name: string, fn: CleanupFn): () => void {
  const entry = { name, fn };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/** Runs (and forgets) every registered cleanup, newest first; each one bounded to `perStepMs`. */
export async function runCleanups(perStepMs = 15_000): Promise<void> {
  while (cleanups.length > 0) {
    const { name, fn } = cleanups.pop()!;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(fn),
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), perStepMs);
        }),
      ]);
    } catch (err) {
      process.stderr.write(`bench: cleanup "${name}" failed: ${(err as Error).message}\n`);
    } finally {
      clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Spawning. Children get PR_SET_PDEATHSIG through util-linux `setpriv` when available, so a
// SIGKILLed orchestrator still takes its nginx / FUSE daemons down with it.

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** Environment for children: no HTTP proxy variables, so curl/htslib talk to 127.0.0.1 directly. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (/^(https?|all|ftp)_proxy$/i.test(k)) delete env[k];
  }
  env.no_proxy = '127.0.0.1,localhost';
  env.NO_PROXY = '127.0.0.1,localhost';
  return { ...env, ...extra };
}

export function spawnChild(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { deathSignal?: NodeJS.Signals } = {},
): ChildProcess {
  const { deathSignal = 'SIGTERM', ...rest } = opts;
  const options: SpawnOptions = { env: childEnv(), ...rest };
  if (SETPRIV) {
    return spawn(SETPRIV, ['--pdeathsig', deathSignal.replace(/^SIG/, ''), '--', cmd, ...args], options);
  }
  return spawn(cmd, args, options);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a command to completion with a hard timeout (SIGKILL). stdout is discarded to /dev/null
 * unless `captureStdout` (then kept, capped at 1 MiB); stderr is kept (capped).
 */
export function runTimed(
  cmd: string,
  args: string[],
  opts: { timeoutMs: number; cwd?: string; captureStdout?: boolean; env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawnChild(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? childEnv(),
      stdio: ['ignore', opts.captureStdout ? 'pipe' : 'ignore', 'pipe'],
      deathSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    const cap = 1 << 20;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < cap) stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < cap) stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      resolve({ code, signal, wallMs: performance.now() - started, stdout, stderr, timedOut });
    };
    child.on('error', (err) => {
      stderr += String(err);
      done(127, null);
    });
    child.on('close', done);
  });
}

/** How a command run by `launchTimed` ended. */
export interface TimedExit {
  /** Wall clock from spawn to exit. */
  wallS: number;
  code: number | null;
  stdout: string;
  stderr: string;
  /** user + system CPU seconds (GNU time), NaN when it was killed. */
  cpuS: number;
  /** Peak RSS (GNU time), NaN when it was killed. */
  rssMiB: number;
  timedOut: boolean;
  /** Killed by `kill()`, the timeout or the cleanups. */
  killed: boolean;
}

export interface Launched {
  /** The pid of GNU time; the tool is its only child. */
  pid: number;
  done: Promise<TimedExit>;
  /** SIGKILL to the whole process group (time and the tool). */
  kill(): void;
}

/**
 * Runs `cmd` under GNU time (/usr/bin/time: CPU seconds, peak RSS) in its own process group,
 * stdout and stderr kept (capped at 1 MiB each; time's line taken out of stderr). With setpriv,
 * both time and the tool get a parent-death SIGKILL. Killed after `timeoutMs`, and by the cleanups
 * (registered as "<cmd's name> (<owner>)") while it runs. `env` defaults to `childEnv()`.
 */
export function launchTimed(cmd: string, args: string[], opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv; owner: string }): Launched {
  const t0 = performance.now();
  const pd = (argv: string[]) => (SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...argv] : argv);
  const argv = pd(['/usr/bin/time', '-f', 'SLICEFS_BENCH_TIME=%e %U %S %M', ...pd([cmd, ...args])]);
  const p = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env ?? childEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let killed = false;
  const kill = () => {
    killed = true;
    try {
      if (p.pid) process.kill(-p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const unregister = onCleanup(`${basename(cmd)} (${opts.owner})`, kill);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, opts.timeoutMs);
  let stdout = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => {
    if (stdout.length < 1 << 20) stdout += d;
  });
  p.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 1 << 20) stderr += d;
  });
  const done = new Promise<TimedExit>((res) => {
    const finish = (code: number | null) => {
      clearTimeout(timer);
      unregister();
      const m = /SLICEFS_BENCH_TIME=(\S+) (\S+) (\S+) (\d+)/.exec(stderr);
      stderr = stderr.replace(/^(Command (exited with non-zero status|terminated by signal) .*\n)?SLICEFS_BENCH_TIME=.*\n?/m, '');
      res({
        wallS: (performance.now() - t0) / 1000,
        code,
        stdout,
        stderr,
        cpuS: m ? Number(m[2]) + Number(m[3]) : NaN,
        rssMiB: m ? Number(m[4]) / 1024 : NaN,
        timedOut,
        killed,
      });
    };
    p.on('close', finish);
    p.on('error', (e) => {
      stderr += String(e);
      finish(127);
    });
  });
  return { pid: p.pid ?? 0, done, kill };
}

/** Resolves when the child has exited (immediately if it already has). */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`. Resolves once the child is gone. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<'exited' | 'killed'> {
  if (child.exitCode !== null || child.signalCode !== null) return 'exited';
  child.kill('SIGTERM');
  if (await waitExit(child, graceMs)) return 'exited';
  child.kill('SIGKILL');
  await waitExit(child, 5_000);
  return 'killed';
}

/**
 * Splits a readable into lines, calls `onLine` for each, and keeps the last `keep` lines (for error
 * messages). Returns a `waitFor(predicate, timeoutMs)` that resolves with the first matching line
 * (seen from now on), or rejects on timeout or when the stream ends first.
 */
export function lineWatcher(stream: Readable, onLine: (line: string) => void = () => {}, keep = 40) {
  const tail: string[] = [];
  const waiters = new Set<{ pred: (l: string) => boolean; resolve: (l: string) => void; reject: (e: Error) => void }>();
  let ended = false;
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => {
    tail.push(line);
    if (tail.length > keep) tail.shift();
    onLine(line);
    for (const w of [...waiters]) {
      if (w.pred(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  });
  rl.on('close', () => {
    ended = true;
    for (const w of [...waiters]) w.reject(new Error('stream ended'));
    waiters.clear();
  });
  return {
    tail: () => tail.join('\n'),
    waitFor(pred: (l: string) => boolean, timeoutMs: number): Promise<string> {
      if (ended) return Promise.reject(new Error('stream ended'));
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (l: string) => {
            clearTimeout(timer);
            resolve(l);
          },
          reject: (e: Error) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Ports.

/** A currently free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls until something accepts on the port; gives up on timeout or when `gaveUp()` is true. */
export async function waitForPort(port: number, timeoutMs: number, gaveUp: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gaveUp()) throw new Error('process exited before listening');
    if (await tryConnect(port)) return;
    await sleep(25);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Mounts and the page cache.

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The filesystem type mounted exactly at `dir` (from /proc/self/mountinfo), or null. */
export function mountTypeAt(dir: string): string | null {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return null;
  }
  let found: string | null = null;
  for (const line of info.split('\n')) {
    const parts = line.split(' ');
    if (parts.length < 10) continue;
    const dash = parts.indexOf('-');
    if (dash < 0) continue;
    if (unescapeMountinfo(parts[4]) === dir) found = parts[dash + 1]; // the last one wins (stacked)
  }
  return found;
}

/** FUSE mount points at or below `dir` (deepest first). */
export function fuseMountsUnder(dir: string): string[] {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const parts = line.split(' ');
    const sep = parts.indexOf('-');
    if (parts.length < 10 || sep < 0 || !parts[sep + 1].startsWith('fuse')) continue;
    const mnt = unescapeMountinfo(parts[4]);
    if (mnt === dir || mnt.startsWith(dir + '/')) out.push(mnt);
  }
  return out.sort((a, b) => b.length - a.length);
}

export function isFuseMounted(dir: string): boolean {
  const t = mountTypeAt(dir);
  return t !== null && t.startsWith('fuse');
}

/** Lazy-unmounts a FUSE mount left behind (no error when nothing is mounted). */
export function forceUnmount(dir: string): void {
  if (!isFuseMounted(dir)) return;
  spawnSync('fusermount', ['-uz', dir], { stdio: 'ignore', timeout: 10_000 });
  if (isFuseMounted(dir)) spawnSync('umount', ['-l', dir], { stdio: 'ignore', timeout: 10_000 });
}

let dropCachesWarned = false;
/** sync + echo 3 > /proc/sys/vm/drop_caches. Returns false (and warns once) when not permitted. */
export function dropCaches(): boolean {
  spawnSync('sync', [], { stdio: 'ignore', timeout: 60_000 });
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch (err) {
    if (!dropCachesWarned) {
      dropCachesWarned = true;
      process.stderr.write(`bench: cannot drop the page cache (${(err as Error).message}); numbers may include cache hits\n`);
    }
    return false;
  }
}

/** Peak (VmHWM) and current (VmRSS) resident set of a process in KiB, or null when gone. */
export function procMemory(pid: number): { hwmKiB: number; rssKiB: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(s);
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(s);
    if (!hwm || !rss) return null;
    return { hwmKiB: Number(hwm[1]), rssKiB: Number(rss[1]) };
  } catch {
    return null;
  }
}

/** Shell-like split: whitespace-separated, with '...' and "..." quoting (for --slicefs-args "..."). */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  for (const m of s.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** A command line as it could be typed again in a shell (arguments quoted where needed). */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** True when this module's file is the script node was started with. */
export function isMain(importMetaUrl: string): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(importMetaUrl));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// What the benchmark scripts that run the CLI share.

/**
 * A copy of the CLI (bin/ and dist/ without dist/test) under `repo`/.bench/`name`-cli-<pid>, taken
 * once at the start so every run of a benchmark uses the same build even if dist/ is rebuilt
 * meanwhile. It lives inside the repository so node_modules and package.json ("type": "module")
 * resolve upwards; it is removed by `remove()` or by the cleanups.
 */
export async function copyCli(repo: string, name: string): Promise<{ dir: string; bin: string; remove: () => Promise<void> }> {
  const dir = join(repo, '.bench', `${name}-cli-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const removeDir = () => rm(dir, { recursive: true, force: true });
  const unregister = onCleanup(`${name} CLI snapshot`, removeDir);
  await cp(join(repo, 'bin'), join(dir, 'bin'), { recursive: true });
  const distTest = join(repo, 'dist', 'test');
  await cp(join(repo, 'dist'), join(dir, 'dist'), { recursive: true, filter: (src) => src !== distTest && !src.startsWith(distTest + sep) });
  return {
    dir,
    bin: join(dir, 'bin', 'slicefs.js'),
    remove: async () => {
      await removeDir();
      unregister();
    },
  };
}

/**
 * Runs a benchmark's `main` with the cleanups on every way out: the tools run in their own process
 * groups, so a Ctrl-C (or SIGTERM, SIGHUP) does not reach them and is turned into the cleanups here.
 */
export function runBenchMain(name: string, main: () => Promise<void>): void {
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.once(sig, () => {
      process.stderr.write(`${name}: ${sig}, stopping\n`);
      void runCleanups().finally(() => process.exit(code));
    });
  }
  main().catch((e: Error) => {
    process.stderr.write(`${name}: ${e.message}\n`);
    void runCleanups().finally(() => process.exit(1));
  });
}
