/**
 * Checks and preparation of a mount point before mounting: created when missing; refused when it
 * is not a directory, not empty, or already a mount; a stale FUSE mount left by a crashed daemon
 * (every access fails with ENOTCONN, "Transport endpoint is not connected") is detected and
 * explained, and cleaned up with `fusermount -uz` only when the user passed --force. A mount point
 * that cannot be used is bad input (`USAGE`: exit 2), with the component at fault named
 * (util/fs-problem.ts); a stale mount is not the user's mistake (`MOUNT`: exit 1).
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { SlicefsError, errnoReason } from '../../errors.js';
import { fsProblem, makeDirs, parseMounts, removeMadeDirs, unescapeMountPath } from '../../util/fs-problem.js';
import { counted } from '../../util/words.js';

const run = promisify(execFile);

/** Mount points listed in /proc/mounts (octal escapes decoded), with their fs types. */
export async function listMounts(): Promise<{ point: string; type: string }[]> {
  return parseMounts(await readFile('/proc/mounts', 'utf8').catch(() => '')).map(({ point, type }) => ({ point, type }));
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
  await removeMadeDirs(p.path, p.createdFrom);
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
    throw new SlicefsError('USAGE', `mount point ${JSON.stringify(abs)} contains a character (" \` $ \\ or a control character) that cannot be unmounted safely`);
  }
  // A dead FUSE mount answers ENOTCONN: refused with its explanation, or cleaned up with --force.
  const stale = async () => {
    if (!force) {
      throw new SlicefsError(
        'MOUNT',
        `${abs} is a stale FUSE mount (an earlier slicefs crashed or was killed): run 'slicefs unmount ${abs}' (or 'fusermount -u ${abs}'), or mount again with --force`,
      );
    }
    await unmountLazy(abs).catch((err: Error) => {
      throw new SlicefsError('MOUNT', `${abs}: could not clean up the stale mount: ${err.message.split('\n')[0]}`);
    });
    return stat(abs);
  };
  let st;
  try {
    st = await stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN') {
      st = await stale();
    } else if (code === 'ENOENT') {
      const first = await makeDirs(abs).catch((err: NodeJS.ErrnoException) => {
        throw new SlicefsError('USAGE', `cannot create mount point ${abs}: ${fsProblem(err)}`);
      });
      return { path: abs, createdFrom: first ?? abs };
    } else {
      throw new SlicefsError('USAGE', `cannot use mount point ${abs}: ${code ? fsProblem(e as NodeJS.ErrnoException) : errnoReason(e)}`);
    }
  }
  if (!st.isDirectory()) throw new SlicefsError('USAGE', `mount point ${abs} is not a directory`);
  // The kernel may answer the stat of a dead mount's root from its attribute cache (attr_timeout):
  // reading the directory asks the file system itself.
  if ((await isMounted(abs)) && (await readdir(abs).then(() => false, (e: NodeJS.ErrnoException) => e.code === 'ENOTCONN'))) st = await stale();
  if (await isMounted(abs)) {
    const m = (await listMounts()).find((x) => x.point === abs);
    throw new SlicefsError('USAGE', `${abs} is already a mount point (${m?.type ?? 'unknown'}); unmount it first`);
  }
  const entries = await readdir(abs);
  if (entries.length > 0) {
    throw new SlicefsError('USAGE', `mount point ${abs} is not empty (${counted(entries.length, 'entry', 'entries')}); choose an empty directory`);
  }
  return { path: abs };
}
