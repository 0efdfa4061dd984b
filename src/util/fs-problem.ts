/**
 * Failed file-system calls explained: which part of a path was the cause, in words.
 *
 * Node reports the call and the path it was given (`ENOENT: no such file or directory, mkdir
 * '/proc/x'`), which often names the wrong cause: the real one is a component further up. So the
 * path is examined when a call fails (only then: the error path may be slow, the good path is not):
 *
 *   1. Walk it from the root down, `lstat` each component: the first that is not a directory (a
 *      file, or a symbolic link to a missing target) is the cause of an ENOTDIR, EEXIST or ENOENT.
 *   2. The deepest component that exists is where something was to be created; the mount it is on
 *      (the longest mount point of /proc/self/mounts that contains it, symbolic links resolved)
 *      says why creating failed: mounted read-only (`ro`), or a kernel pseudo file system (proc,
 *      sysfs, …) where nothing can be created.
 *   3. Otherwise the errno in words (errors.ts `errnoWords`).
 *
 * Everything here is synchronous: it runs once, on the way to an error message (also from an
 * `uncaughtException` handler, where awaiting is not possible).
 *
 * `makeDirs` is `mkdir -p` done one component at a time: Node's recursive mkdir loops forever when
 * the parent is a pseudo file system that answers ENOENT to mkdir (`/proc/x`), and one component at
 * a time also says which directories were created, so a failed run can remove them again.
 */
import { lstatSync, realpathSync, readFileSync, statSync, type Stats } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { errnoWords, isFsError, messageOf } from '../errors.js';

export interface MountEntry {
  source: string;
  point: string;
  type: string;
  options: string[];
}

/** The lines of /proc/mounts (or /proc/self/mounts), octal escapes (`\040` for a space) decoded. */
/** A path as the mount tables write it (space, tab, newline and backslash as octal escapes), decoded. */
export function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMounts(text: string): MountEntry[] {
  const unescape = unescapeMountPath;
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [source, point, type, options] = l.split(' ');
      return { source: unescape(source), point: unescape(point), type, options: (options ?? '').split(',') };
    });
}

/** The mount `path` is on: the longest mount point that contains it (the last mounted, if stacked). */
export function mountOf(path: string): MountEntry | undefined {
  let mounts: MountEntry[];
  try {
    mounts = parseMounts(readFileSync('/proc/self/mounts', 'utf8'));
  } catch {
    return undefined;
  }
  let real = resolve(path);
  try {
    real = realpathSync(real);
  } catch {
    // A path that cannot be resolved is judged as written.
  }
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const inside = m.point === '/' || real === m.point || real.startsWith(m.point + sep);
    if (inside && (!best || m.point.length >= best.point.length)) best = m;
  }
  return best;
}

/** Kernel file systems that hold no user files: creating anything there fails (ENOENT, EPERM, EACCES). */
const PSEUDO_FS = new Set(['proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'securityfs', 'debugfs', 'tracefs', 'pstore', 'bpf', 'configfs', 'fusectl', 'efivarfs', 'binfmt_misc', 'mqueue']);

/** `/proc is a proc file system, …` or `/sys/x is on a sysfs file system (mounted at /sys), …`. */
const onPseudoFs = (dir: string, m: MountEntry) =>
  `${dir} ${dir === m.point ? `is a ${m.type} file system` : `is on a ${m.type} file system (mounted at ${m.point})`}, where nothing can be created`;

const describeMount = (m: MountEntry) => `${m.type} mounted at ${m.point}`;

const statOrUndefined = (p: string): Stats | undefined => {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
};

const lstatOrUndefined = (p: string): Stats | undefined => {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
};

/** What kind of thing a non-directory is, for a message. */
function kindOf(st: Stats): string {
  if (st.isFile()) return 'a file';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a directory';
}

interface Walk {
  /** The first component above the last that is not a directory, and why. */
  blocker?: { path: string; why: string };
  /** The deepest component that exists (the last one included). */
  deepest: string;
  /** The first component that does not exist, if any. */
  missing?: string;
}

function walk(path: string): Walk {
  const abs = resolve(path);
  const parts = abs.split(sep).filter(Boolean);
  let deepest: string = sep;
  for (let i = 0; i < parts.length; i++) {
    const here = sep + parts.slice(0, i + 1).join(sep);
    const last = i === parts.length - 1;
    const st = lstatOrUndefined(here);
    if (!st) return { deepest, missing: here };
    if (!last) {
      if (st.isSymbolicLink()) {
        let target: Stats | undefined;
        try {
          target = statSync(here);
        } catch {
          return { deepest, blocker: { path: here, why: `${here} is a symbolic link to a missing target` } };
        }
        if (!target.isDirectory()) return { deepest, blocker: { path: here, why: `${here} is ${kindOf(target)}, not a directory` } };
      } else if (!st.isDirectory()) {
        return { deepest, blocker: { path: here, why: `${here} is ${kindOf(st)}, not a directory` } };
      }
    }
    deepest = here;
  }
  return { deepest };
}

/** Node's error of a failed fs call; `dest` is the second path of a rename, link or copy. */
export type FsError = NodeJS.ErrnoException & { dest?: string };

/** Calls that make a new name in a directory: their failures are judged by where the name goes. */
const CREATING = new Set(['mkdir', 'open', 'rename', 'link', 'symlink', 'copyfile', 'mkdtemp']);

/**
 * Why the fs call that threw `err` failed, in words that name the path component at fault when it
 * is not the path itself (the message around it names that): `read-only file system (tmpfs mounted
 * at /data/ro)`, `/tmp/a is a file, not a directory`, `/proc is on a proc file system (mounted at
 * /proc), where nothing can be created`.
 */
export function fsProblem(err: FsError): string {
  const code = err.code ?? '';
  const words = errnoWords(code) ?? messageOf(err);
  const path = err.dest && (code === 'EROFS' || code === 'ENOSPC' || code === 'EDQUOT' || code === 'EXDEV') ? err.dest : err.path;
  if (path === undefined) return words;
  const w = walk(path);
  const target = resolve(path);
  const mount = () => mountOf(w.deepest);
  switch (code) {
    case 'ENOTDIR':
    case 'ENOENT':
    case 'ELOOP':
      if (w.blocker) return w.blocker.why;
      if (code === 'ENOTDIR') {
        const st = lstatOrUndefined(target);
        // Named when it was looked at rather than made (a directory the user gave is a file).
        if (st && !st.isDirectory()) return err.syscall === 'stat' ? `${target} is ${kindOf(st)}, not a directory` : `${kindOf(st)}, not a directory`;
        return words;
      }
      if (code === 'ENOENT' && w.missing !== undefined) {
        const m = mount();
        // The parent exists and yet a create said "no such file": a file system that holds no new entries.
        if (w.missing === target && CREATING.has(err.syscall ?? '') && m && PSEUDO_FS.has(m.type)) return onPseudoFs(w.deepest, m);
        // A path looked at (stat), not made: which of its components is missing, by name.
        return w.missing === target && err.syscall !== 'stat' ? words : `${w.missing} does not exist`;
      }
      return words;
    case 'EEXIST': {
      const st = lstatOrUndefined(target);
      if (err.syscall === 'mkdir' && st && !st.isDirectory()) return `${target} is ${kindOf(st)}, not a directory`;
      return 'already exists';
    }
    case 'EROFS': {
      const m = mount();
      return m ? `read-only file system (${describeMount(m)})` : 'read-only file system';
    }
    case 'ENOSPC':
    case 'EDQUOT': {
      const m = mount();
      return m ? `${words} (${describeMount(m)})` : words;
    }
    case 'EACCES':
    case 'EPERM': {
      const m = mount();
      if (m && PSEUDO_FS.has(m.type) && w.missing === target) return onPseudoFs(w.deepest, m);
      if (m?.options.includes('ro') && CREATING.has(err.syscall ?? '')) return `read-only file system (${describeMount(m)})`;
      // Where a new name was refused, the directory that did not allow it.
      return w.missing === target ? `${words}: cannot write in ${w.deepest}` : words;
    }
    default:
      return words;
  }
}

/** What the failed call was doing, as the start of a message. */
const VERB: Record<string, string> = {
  mkdir: 'cannot create directory',
  open: 'cannot open',
  rename: 'cannot rename',
  link: 'cannot link',
  symlink: 'cannot link',
  unlink: 'cannot remove',
  rmdir: 'cannot remove',
  rm: 'cannot remove',
  scandir: 'cannot list',
  opendir: 'cannot list',
  stat: 'cannot access',
  lstat: 'cannot access',
  access: 'cannot access',
  read: 'cannot read',
  write: 'cannot write',
  fsync: 'cannot sync',
  fdatasync: 'cannot sync',
  ftruncate: 'cannot resize',
  statfs: 'cannot check the free space of',
  copyfile: 'cannot copy',
  realpath: 'cannot resolve',
};

/** A failed fs call in one line: `cannot create directory /ro/x: read-only file system (tmpfs mounted at /ro)`. */
export function describeFsError(err: FsError): string {
  const verb = VERB[err.syscall ?? ''] ?? (err.syscall ? `${err.syscall} failed on` : 'failed:');
  const path = err.path ? ` ${err.path}${err.dest ? ` → ${err.dest}` : ''}` : '';
  return `${verb}${path}: ${fsProblem(err)}`;
}

/**
 * `err` with the path it concerns, when Node left it out (a `write` to an open file has only the
 * fd): so that `describeFsError` can name the file and judge its file system.
 */
export function errorAt<T>(err: T, path: string): T {
  if (isFsError(err) && err.path === undefined) err.path = path;
  return err;
}

/**
 * `mkdir -p dir`, one component at a time (each new one with `mode`, as `mkdir` gives it). Returns the first directory it created (undefined:
 * `dir` existed), for `removeMadeDirs`. A failure is Node's error of the component that failed.
 */
export async function makeDirs(dir: string, mode?: number): Promise<string | undefined> {
  const abs = resolve(dir);
  const missing: string[] = [];
  for (let d = abs; ; d = dirname(d)) {
    // Followed, as mkdir -p follows them: a symlink to a directory is that directory.
    const st = statOrUndefined(d) ?? lstatOrUndefined(d);
    if (st) {
      if (d === abs && st.isDirectory()) return undefined;
      break;
    }
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  // A path that exists but is not a directory (or passes through one) fails here with its own errno.
  if (missing.length === 0) await mkdir(abs, mode);
  for (const d of missing) {
    try {
      await mkdir(d, mode);
    } catch (err) {
      // Made meanwhile by another process: fine; anything else is the answer.
      if (!(isFsError(err) && err.code === 'EEXIST' && lstatOrUndefined(d)?.isDirectory())) {
        await removeMadeDirs(dirname(d), missing[0]).catch(() => {});
        throw err;
      }
    }
  }
  return missing[0];
}

/** Removes the directories `makeDirs` created, from `dir` up to `first`: empty ones only (rmdir, never rm -r). */
export async function removeMadeDirs(dir: string, first: string | undefined): Promise<void> {
  if (first === undefined) return;
  const top = resolve(first);
  for (let d = resolve(dir); d.length >= top.length; d = dirname(d)) {
    await rmdir(d);
    if (d === top) break;
  }
}
