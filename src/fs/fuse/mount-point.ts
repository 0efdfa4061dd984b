/**
 * Checks and preparation of a mount point before mounting: created when missing; refused when it
 * is not a directory, not empty, or already a mount; a stale FUSE mount left by a crashed daemon
 * (every access fails with ENOTCONN, "Transport endpoint is not connected") is detected and
 * explained, and cleaned up with `fusermount -uz` only when the user passed --force.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rmdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { SlicefsError } from '../../errors.js';

const run = promisify(execFile);

/** A path as the mount tables write it (space, tab, newline and backslash as octal escapes), decoded. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points listed in /proc/mounts (octal escapes decoded), with their fs types. */
export async function listMounts(): Promise<{ point: string; type: string }[]> {
  const text = await readFile('/proc/mounts', 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [, point, type] = l.split(' ');
      return { point: unescapeMountPath(point), type };
    });
}

/**
 * True when the mount of device `dev` (`major:minor`, as /proc/self/mountinfo writes it) is at `dir`:
 * this very mount, not another one mounted on the same path since (after a lazy unmount).
 */
export async function isMountedDevice(dir: string, dev: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const abs = resolve(dir);
  return text.split('\n').some((l) => {
    const f = l.split(' ');
    return f[2] === dev && f[4] !== undefined && unescapeMountPath(f[4]) === abs;
  });
}

export async function isMounted(dir: string): Promise<boolean> {
  const abs = resolve(dir);
  return (await listMounts()).some((m) => m.point === abs);
}

export async function unmountLazy(dir: string): Promise<void> {
  await run('fusermount', ['-uz', dir]);
}

export interface PreparedMountPoint {
  path: string;
  /** The first directory we created on the way to `path` (undefined: it existed). */
  createdFrom?: string;
}

/** Removes the directories prepareMountPoint created (empty ones only: rmdir, never rm -r). */
export async function removeCreated(p: PreparedMountPoint): Promise<void> {
  if (!p.createdFrom) return;
  for (let dir = p.path; dir.length >= p.createdFrom.length; dir = dirname(dir)) {
    await rmdir(dir);
    if (dir === p.createdFrom) break;
  }
}

/**
 * Makes `dir` ready to mount on: creates it (and missing parents) when absent; refuses it when it
 * is not a directory, not empty, or mounted; explains (or with `force`, cleans) a stale mount.
 */
export async function prepareMountPoint(dir: string, force: boolean): Promise<PreparedMountPoint> {
  const abs = resolve(dir);
  // fuse-native unmounts through a shell command line (`fusermount -uz <JSON-quoted path>`): refuse
  // the characters a double-quoted shell string would still interpret, and control characters,
  // which JSON escapes into a different path.
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/["`$\\\x00-\x1f\x7f]/.test(abs)) {
    throw new SlicefsError('MOUNT', `mount point ${JSON.stringify(abs)} contains a character (" \` $ \\ or a control character) that cannot be unmounted safely`);
  }
  let st;
  try {
    st = await stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN') {
      if (!force) {
        throw new SlicefsError(
          'MOUNT',
          `${abs} is a stale FUSE mount (an earlier slicefs crashed or was killed): run 'slicefs unmount ${abs}' (or 'fusermount -u ${abs}'), or mount again with --force`,
        );
      }
      await unmountLazy(abs).catch((err: Error) => {
        throw new SlicefsError('MOUNT', `${abs}: could not clean up the stale mount: ${err.message.split('\n')[0]}`);
      });
      st = await stat(abs);
    } else if (code === 'ENOENT') {
      const first = await mkdir(abs, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
        throw new SlicefsError('MOUNT', `cannot create mount point ${abs}: ${err.code ?? err.message}`);
      });
      return { path: abs, createdFrom: first ?? abs };
    } else {
      throw new SlicefsError('MOUNT', `cannot use mount point ${abs}: ${code ?? (e as Error).message}`);
    }
  }
  if (!st.isDirectory()) throw new SlicefsError('MOUNT', `mount point ${abs} is not a directory`);
  if (await isMounted(abs)) {
    const m = (await listMounts()).find((x) => x.point === abs);
    throw new SlicefsError('MOUNT', `${abs} is already a mount point (${m?.type ?? 'unknown'}); unmount it first`);
  }
  const entries = await readdir(abs);
  if (entries.length > 0) {
    throw new SlicefsError('MOUNT', `mount point ${abs} is not empty (${entries.length} entries); choose an empty directory`);
  }
  return { path: abs };
}
