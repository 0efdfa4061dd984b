/**
 * Which processes keep a mount busy, found the way `fuser -m` and `lsof` find them: every process's
 * working directory, root, executable and open files (`/proc/PID/{cwd,root,exe,fd/*}`) that lie
 * on the mount. Only links are read, never the files they name, so this never calls into the
 * mount itself (a hung mount cannot hang the search). Processes of other users are invisible
 * without the privilege to read their /proc entries; they are missed, not guessed.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface PathUser {
  pid: number;
  /** The program's name (`/proc/PID/comm`). */
  command: string;
  /** What it holds: `cwd`, `root`, `exe`, or an open file's path. */
  holds: string[];
}

function under(path: string, mountPoint: string): boolean {
  return path === mountPoint || path.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`);
}

export async function processesUsing(mountPoint: string, exclude: readonly number[] = []): Promise<PathUser[]> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n)).map(Number);
  const out: PathUser[] = [];
  for (const pid of pids) {
    if (pid === process.pid || exclude.includes(pid)) continue;
    const holds: string[] = [];
    for (const what of ['cwd', 'root', 'exe']) {
      const target = await readlink(`/proc/${pid}/${what}`).catch(() => undefined);
      // A process whose root is "/" is not holding a mount below it.
      if (target !== undefined && under(target, mountPoint) && !(what === 'root' && target === '/')) holds.push(what);
    }
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
      if (target !== undefined && under(target, mountPoint)) holds.push(target);
    }
    if (holds.length > 0) {
      const command = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
      out.push({ pid, command, holds: [...new Set(holds)] });
    }
  }
  return out;
}
