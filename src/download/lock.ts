/**
 * One `slicefs download` per output directory: a lock file created with O_EXCL holds the owner's
 * pid and host. A second run on the same directory is refused with a message naming the owner; a
 * lock left by a process that no longer exists (killed, crashed) is taken over, since a dead owner
 * cannot be writing. On another host (a shared filesystem) liveness cannot be checked, so the lock
 * is respected and the message says how to remove it.
 */
import { hostname } from 'node:os';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SlicefsError } from '../errors.js';
import type { WriteRoot } from '../util/safe-fs.js';
import { errorAt, fsProblem } from '../util/fs-problem.js';

export const LOCK_NAME = '.slicefs-download.lock';

/** Whether `pid` is a running process. A zombie (dead, not yet reaped by its parent) is not. */
async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // /proc/PID/stat: "pid (comm) STATE ..."; comm may hold spaces and parentheses, STATE follows the last ')'.
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  const state = stat?.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

export interface DirLock {
  release(): Promise<void>;
}

/** Locks `root`'s directory (the lock is made there O_EXCL, never through a symlink: util/safe-fs.ts). */
export async function lockDir(root: WriteRoot): Promise<DirLock> {
  const dir = root.dir;
  const path = join(dir, LOCK_NAME);
  const me = `${process.pid} ${hostname()}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await root.open(path, 'create');
      const failed = await fh.writeFile(me).then(
        () => undefined,
        (err: unknown) => err,
      );
      await fh.close().catch(() => {});
      if (failed !== undefined) {
        // A lock that could not be written (a full disk) is not left behind to block the next run.
        await rm(path, { force: true });
        throw failed;
      }
      return {
        release: async () => {
          // Only our own lock is removed (a takeover after we were presumed dead is not undone).
          const now = await readFile(path, 'utf8').catch(() => '');
          if (now === me) await rm(path, { force: true });
        },
      };
    } catch (err) {
      // The directory cannot hold the lock (a full disk): an output directory that cannot be used.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new SlicefsError('USAGE', `cannot lock ${dir}: ${fsProblem(errorAt(err as NodeJS.ErrnoException, path))}`, { cause: err });
    }
    const [pidText, host] = (await readFile(path, 'utf8').catch(() => '')).trim().split(/\s+/);
    const pid = Number(pidText);
    if (host === hostname() && Number.isInteger(pid) && pid > 0 && !(await alive(pid))) {
      await rm(path, { force: true }); // stale: its owner is gone
      continue;
    }
    if (host && host !== hostname()) {
      throw new SlicefsError('USAGE', `${dir} is being downloaded into by slicefs pid ${pidText} on ${host}; if that is not so, remove ${path}`);
    }
    if (Number.isInteger(pid) && pid > 0) throw new SlicefsError('USAGE', `${dir} is being downloaded into by another slicefs download (pid ${pid}); wait for it to finish`);
    // An empty lock: its owner is between creating and writing it, or died there. Try again.
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new SlicefsError('USAGE', `${dir} is locked by ${path}; remove it if no slicefs download is running`);
}
