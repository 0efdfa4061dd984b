/**
 * Runs the real `slicefs mount` daemon (bin/slicefs.js) as a child process for FUSE tests, waits
 * for its "mounted" line, and stops it with a signal. FUSE must be available: when it is not, the
 * tests fail with a message saying so (they are never skipped).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = join(REPO, 'bin/slicefs.js');

export function requireFuse(): void {
  const problems: string[] = [];
  if (!existsSync('/dev/fuse')) problems.push('/dev/fuse is missing');
  if (spawnSync('which', ['fusermount']).status !== 0) problems.push('fusermount is not installed (apt-get install fuse)');
  if (problems.length > 0) {
    throw new Error(`FUSE is unavailable: ${problems.join('; ')}. These tests need a real FUSE mount (run as root, or in Docker with --device /dev/fuse --cap-add SYS_ADMIN).`);
  }
}

export interface Daemon {
  proc: ChildProcess;
  mountPoint: string;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  /** Sends SIGUSR1 and resolves with the parsed stats line. */
  stats(): Promise<Record<string, number>>;
  /** SIGTERM (default) and wait for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function writeManifest(dir: string, rows: Record<string, string | number | undefined>[]): Promise<string> {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const text = [cols.join('\t'), ...rows.map((r) => cols.map((c) => (r[c] === undefined ? '' : String(r[c]))).join('\t'))].join('\n') + '\n';
  const path = join(dir, 'manifest.tsv');
  await writeFile(path, text);
  return path;
}

export function parseStats(line: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+)=(\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

/** Spawns `slicefs mount` and waits until it is mounted (or exits, which rejects with its stderr). */
export async function startDaemon(manifest: string, mountPoint: string, extra: string[] = [], env: Record<string, string | undefined> = {}): Promise<Daemon> {
  requireFuse();
  // Each daemon gets an empty disk cache of its own (tests count requests), unless the test names one.
  const ownCache = extra.includes('--cache-dir') || 'XDG_CACHE_HOME' in env ? undefined : await mkdtemp(join(tmpdir(), 'slicefs-cache-'));
  const proc = spawn(process.execPath, [BIN, 'mount', ...(manifest ? ['--manifest', manifest] : []), mountPoint, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...(ownCache ? { XDG_CACHE_HOME: ownCache } : {}), ...env },
  });
  if (ownCache) proc.once('exit', () => void rm(ownCache, { recursive: true, force: true }));
  let err = '';
  const waiters: ((s: string) => void)[] = [];
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    err += d;
    for (const w of waiters.splice(0)) w(err);
  });
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const waitFor = (re: RegExp, ms: number, from = 0) =>
    new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`timed out waiting for ${re} from slicefs; stderr:\n${err}`)), ms);
      const check = (s: string) => {
        const m = re.exec(s.slice(from));
        if (m) {
          clearTimeout(timer);
          res(m[0]);
        } else waiters.push(check);
      };
      void exited.then(() => setTimeout(() => rej(new Error(`slicefs exited; stderr:\n${err}`)), 50));
      check(err);
    });
  await waitFor(/mounted \d+ files? at/, 30_000).catch(async (e: unknown) => {
    // Not left running (a test waiting on it would hang): stopped, and the mount it may have made undone.
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
    await new Promise((r) => execFile('fusermount', ['-uz', mountPoint], () => r(undefined)));
    throw e;
  });
  return {
    proc,
    mountPoint,
    stderr: () => err,
    exited,
    async stats() {
      const from = err.length;
      proc.kill('SIGUSR1');
      return parseStats(await waitFor(/slicefs stats:[^\n]*\n/, 5000, from));
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Runs a command to completion (no shell); returns stdout as a Buffer. `env`: the whole environment (default: this process's). */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd, env: opts.env as NodeJS.ProcessEnv | undefined });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      rej(new Error(`${cmd} ${args.join(' ')} timed out`));
    }, opts.timeoutMs ?? 60_000);
    p.on('error', rej);
    p.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

/**
 * Runs the slicefs CLI with none of the portal or tier settings of the environment it was started
 * from (tokens, service URLs, cache tier), `env` on top.
 */
export function runSlicefs(args: string[], env: Record<string, string | undefined> = {}): ReturnType<typeof run> {
  const clean = { ...process.env, SLICEFS_CACHE_PROXY: undefined, ACCESSTOKEN: undefined, SLICEFS_TOKEN: undefined, STORAGE_URL: undefined, METADATA_URL: undefined, ...env };
  return run(process.execPath, [BIN, ...args], { env: clean });
}

/** Reads up to `len` bytes of `path` at `pos` (fewer at the end of the file). */
export async function readAt(path: string, pos: number, len: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, pos);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** True when `dir` is a mount point in /proc/mounts. */
export async function mounted(dir: string): Promise<boolean> {
  const text = await readFile('/proc/mounts', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[1] === dir);
}

/** Last-resort cleanup after a failed test: lazy-unmount and remove the directory. */
export async function cleanup(dir: string): Promise<void> {
  spawnSync('fusermount', ['-uz', join(dir, 'mnt')]);
  await rm(dir, { recursive: true, force: true });
}
