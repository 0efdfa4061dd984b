/**
 * Every file slicefs writes goes through here, so that nothing already on disk can lead a write
 * out of the directory it belongs in (a symlink planted at `DIR/x.part`, `DIR/donor1` pointing
 * elsewhere, a file where a directory should be).
 *
 * A writer names its root: the directory the user chose (the download's output directory, the
 * cache directory, the directory of `view -o FILE`, …). The root, and every directory above it,
 * is the user's and may be a symlink; under the root:
 *   - each directory on the way is looked at with lstat: a symlink is followed only when its real
 *     path lies under the root's real path (else refused, as is a dangling one); a file where a
 *     directory should be is refused; a missing one is made (mode `dir`, set with chmod so the
 *     umask does not narrow it; directories that exist keep their modes);
 *   - a file is opened with O_NOFOLLOW (a symlink at its name is refused, never followed), with
 *     O_EXCL when it must be new; a directory at its name is refused;
 *   - a file is replaced atomically: written to a new hidden temporary file beside it (O_EXCL), then
 *     renamed over the name, after lstat says the name is not a symlink or a directory.
 * `check` does the same looking without writing, so a command can refuse every bad name before it
 * writes its first byte.
 *
 * An `owned` root is one slicefs also reads back from (the caches): what it reads there must be
 * what this user wrote, not something another local user planted. So the root is looked at with
 * lstat (a symlink is refused, not followed), and it, every directory under it on the way, and
 * every file read (`openRead`) must belong to the effective user and be writable by no one else
 * (mode & 022 = 0); a symlink anywhere under it is refused. Only the owner (and root) can then
 * create, replace or rename anything in it. Directories above the root are not checked: one
 * that others may write lets them move the root away, but not make a file the user owns, and
 * every file is checked as it is opened.
 *
 * In an owned root a directory found good (each directory from the root down to it the user's
 * alone) is remembered, and a later write there does not look again (`walked`): only the user (or
 * root) can change what is in such directories, and the checks are against other users. The disk
 * tier writes thousands of chunks into a few directories; the walk was most of a write's system
 * calls. A directory made (`mkdirs`) is always looked at.
 *
 * Refusals are `UnsafePathError`s (code USAGE: exit 2), one line naming the path and the cause.
 *
 * Limit: Node has no openat(2), so the checks and the writes are separate system calls. A link
 * planted before a command starts is always refused; one swapped in by another process between
 * the check of a directory and the open of a file in it is not seen (the final name is still
 * never followed, O_NOFOLLOW being part of the open itself).
 */
import { randomBytes } from 'node:crypto';
import { constants, lstatSync, openSync, renameSync, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, open, realpath, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { isFsError, SlicefsError } from '../errors.js';
import { fsProblem, makeDirs } from './fs-problem.js';

const { O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW } = constants;

/** Modes of the files and directories a writer creates. */
export interface Modes {
  file: number;
  dir: number;
}

/** Controlled data is readable by its owner only, unless asked otherwise (`--file-mode`, `--dir-mode`). */
export const PRIVATE_MODES: Readonly<Modes> = { file: 0o600, dir: 0o700 };

/** A write refused because of what is on disk at a path. */
export class UnsafePathError extends SlicefsError {
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UnsafePathError';
  }
}

/** A path as the user would type it: relative to the working directory when it lies under it. */
export function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** Why a write failed, for a one-line warning: a refusal's sentence, else the errno code. */
export function reasonOf(err: unknown): string {
  if (err instanceof SlicefsError) return err.message;
  if (isFsError(err)) return fsProblem(err);
  return (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);
}

const symlinkRefusal = (path: string) => new UnsafePathError(`${shownPath(path)} is a symbolic link; refusing to write through it`);
const directoryRefusal = (path: string) => new UnsafePathError(`${shownPath(path)} is a directory; refusing to write over it`);
const notDirectoryRefusal = (path: string) => new UnsafePathError(`${shownPath(path)} is not a directory; refusing to write under it`);

/**
 * Why `st` (of `path`) is not the effective user's alone: owned by another uid, or writable by
 * its group or others. Undefined when it is (and where there are no uids: Windows).
 */
export function notOwnedReason(path: string, st: Stats): string | undefined {
  const uid = process.geteuid?.();
  if (uid === undefined) return undefined;
  if (st.uid !== uid) return `${shownPath(path)} belongs to uid ${st.uid}, not to this user (uid ${uid}); a cache must be the user's alone`;
  if (st.mode & 0o022) {
    return `${shownPath(path)} is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}); a cache must be the user's alone`;
  }
  return undefined;
}

/**
 * How a file is opened: `create` must make it (O_EXCL); `update` opens or makes it, keeping its
 * bytes (a download's part file); `truncate` opens or makes it empty; `append` adds to its end.
 */
export type OpenHow = 'create' | 'update' | 'truncate' | 'append';

const FLAGS: Record<OpenHow, number> = {
  create: O_WRONLY | O_CREAT | O_EXCL,
  update: O_RDWR | O_CREAT,
  truncate: O_WRONLY | O_CREAT | O_TRUNC,
  append: O_WRONLY | O_CREAT | O_APPEND,
};

async function lstatIfAny(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The refusal an open's failure means (a symlink or a directory at the name), if it means one. */
async function refusalFor(path: string, err: unknown): Promise<UnsafePathError | undefined> {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EISDIR') return directoryRefusal(path);
  // ELOOP: O_NOFOLLOW met a symlink; EEXIST: O_EXCL met one (or a file, which is the caller's case).
  if (code === 'ELOOP' || code === 'EEXIST') {
    const st = await lstat(path).catch(() => undefined);
    if (st?.isSymbolicLink()) return symlinkRefusal(path);
    if (st?.isDirectory()) return directoryRefusal(path);
  }
  return undefined;
}

/** fsyncs a directory so that a rename in it survives a crash (best effort where directories cannot be opened). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync().catch(() => {});
  } finally {
    await fh.close();
  }
}

/** Directories of an owned root remembered as good (WriteRoot.walked); forgotten all at once when full. */
const WALKED_DIRS = 4096;

/** A directory that a command writes under, and the modes of what it creates there. */
export class WriteRoot {
  /** Owned roots: directories found good by a walk (see the module header). */
  private readonly walked = new Set<string>();

  private constructor(
    /** The root, absolute, as the user named it. */
    readonly dir: string,
    /** Its real path (symlinks above and at the root resolved). */
    readonly real: string,
    readonly modes: Readonly<Modes>,
    /** The user's alone, everything under it too (see the module header). */
    private readonly owned: boolean,
  ) {}

  /**
   * The root at `dir`: made with its missing parents (each with `modes.dir`) unless `create` is
   * false; it must be a directory (a symlink to one is fine: the user chose it), and with `owned`
   * a directory that is the user's alone, not a symlink (see the module header).
   */
  static async prepare(dir: string, modes: Readonly<Modes> = PRIVATE_MODES, opts: { create?: boolean; owned?: boolean } = {}): Promise<WriteRoot> {
    const abs = resolve(dir);
    const symlinkRefusal = () => new UnsafePathError(`${shownPath(abs)} is a symbolic link; a cache directory must be a directory of the user's, not a link to one`);
    // An owned root (a cache) is never a link, not even to a directory that exists.
    if (opts.owned && (await lstat(abs).catch(() => undefined))?.isSymbolicLink()) throw symlinkRefusal();
    if (opts.create !== false) {
      // Errors about the root itself stay errno errors, with its path: the user chose it, and
      // util/fs-problem.ts says what is wrong with it (which component, which mount) in words.
      await makeDirsWithMode(abs, modes.dir);
    }
    const st = await (opts.owned ? lstat : stat)(abs);
    if (st.isSymbolicLink()) throw symlinkRefusal();
    if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, '${abs}'`), { code: 'ENOTDIR', errno: -20, syscall: 'stat', path: abs });
    const notOwned = opts.owned ? notOwnedReason(abs, st) : undefined;
    if (notOwned) throw new UnsafePathError(notOwned);
    return new WriteRoot(abs, await realpath(abs), modes, opts.owned === true);
  }

  /** True when real path `p` is the root or lies under it. */
  private inside(p: string): boolean {
    return p === this.real || p.startsWith(this.real.endsWith(sep) ? this.real : this.real + sep);
  }

  /** `path` made absolute; it must name something under the root (not the root itself). */
  private under(path: string): string {
    const abs = resolve(path);
    const rel = relative(this.dir, abs);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new UnsafePathError(`${shownPath(abs)} is not under ${shownPath(this.dir)}; refusing to write it`);
    return abs;
  }

  /**
   * Looks at each directory from the root down to `dir` (see the module header); with `make`, a
   * missing one is made. Returns false when one is missing and `make` is not set.
   */
  private async walk(dir: string, make: boolean): Promise<boolean> {
    const rel = relative(this.dir, dir);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new UnsafePathError(`${shownPath(dir)} is not under ${shownPath(this.dir)}; refusing to write there`);
    if (!make && this.walked.has(dir)) return true;
    let cur = this.dir;
    for (const seg of rel === '' ? [] : rel.split(sep)) {
      cur = join(cur, seg);
      let st = await lstatIfAny(cur);
      if (!st) {
        if (!make) return false;
        try {
          await mkdir(cur, { mode: this.modes.dir });
          await chmod(cur, this.modes.dir);
        } catch (e) {
          // Made by another process meanwhile: looked at below like any other.
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        st = await lstat(cur);
      }
      if (st.isSymbolicLink()) {
        const target = await realpath(cur).catch(() => undefined);
        if (target === undefined || !this.inside(target)) {
          throw new UnsafePathError(`${shownPath(cur)} is a symbolic link that leads ${target === undefined ? 'nowhere' : `outside ${shownPath(this.dir)}`}; refusing to write through it`);
        }
        if (this.owned) throw new UnsafePathError(`${shownPath(cur)} is a symbolic link; a cache follows none`);
        st = await stat(target);
      }
      if (!st.isDirectory()) throw notDirectoryRefusal(cur);
      const notOwned = this.owned ? notOwnedReason(cur, st) : undefined;
      if (notOwned) throw new UnsafePathError(notOwned);
    }
    if (this.owned) {
      if (this.walked.size >= WALKED_DIRS) this.walked.clear();
      this.walked.add(dir);
    }
    return true;
  }

  /**
   * Opens file `path` under the root for reading, never through a symlink, after looking at each
   * directory on the way as a write would; undefined when it (or a directory on the way) is
   * missing. In an `owned` root the file must be the user's alone too (UnsafePathError otherwise).
   */
  async openRead(path: string): Promise<FileHandle | undefined> {
    const abs = this.under(path);
    if (!(await this.walk(dirname(abs), false))) return undefined;
    let fh: FileHandle;
    try {
      fh = await open(abs, constants.O_RDONLY | O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      // O_NOFOLLOW met a symlink at the name.
      if (code === 'ELOOP') throw new UnsafePathError(`${shownPath(abs)} is a symbolic link; refusing to read through it`);
      throw e;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new UnsafePathError(`${shownPath(abs)} is not a regular file`);
      const notOwned = this.owned ? notOwnedReason(abs, st) : undefined;
      if (notOwned) throw new UnsafePathError(notOwned);
      return fh;
    } catch (e) {
      await fh.close().catch(() => {});
      throw e;
    }
  }

  /** Makes directory `dir` under the root with its missing parents (`modes.dir`), refusing as `walk` does. */
  async mkdirs(dir: string): Promise<void> {
    await this.walk(resolve(dir), true);
  }

  /**
   * Refuses (UnsafePathError) a file name that could not be written safely: a directory on the
   * way that leads outside the root or is not a directory; a symlink or a directory at the name.
   * Writes nothing.
   */
  async check(path: string): Promise<void> {
    const abs = this.under(path);
    if (!(await this.walk(dirname(abs), false))) return; // the rest is missing: it will be made inside
    const st = await lstatIfAny(abs);
    if (st?.isSymbolicLink()) throw symlinkRefusal(abs);
    if (st?.isDirectory()) throw directoryRefusal(abs);
  }

  /**
   * Opens file `path` under the root for writing, never through a symlink. A file it creates gets
   * `mode` (default `modes.file`) exactly; so does an existing regular file of ours opened to be
   * rewritten (`update`, `truncate`: its bytes are now ours). `append` leaves an existing file's
   * mode alone. EEXIST (`create`) and other errno errors are passed on as they are.
   */
  async open(path: string, how: OpenHow, mode = this.modes.file): Promise<FileHandle> {
    const abs = this.under(path);
    await this.walk(dirname(abs), false);
    let fh: FileHandle;
    try {
      fh = await open(abs, FLAGS[how] | O_NOFOLLOW, mode);
    } catch (e) {
      throw (await refusalFor(abs, e)) ?? e;
    }
    try {
      if (how !== 'append') {
        const st = await fh.stat();
        if (st.isFile() && (st.mode & 0o7777) !== mode && st.uid === process.getuid?.()) await fh.chmod(mode);
      }
    } catch (e) {
      await fh.close().catch(() => {});
      throw e;
    }
    return fh;
  }

  /**
   * Replaces file `path` by `data` (or its parts, in order) atomically (a hidden `.NAME.PID.RANDOM.tmp` beside it, renamed
   * over it). `sync`: the bytes and the rename are made durable (fsync of the file, then of the
   * directory) before it returns.
   */
  async replace(path: string, data: string | Uint8Array | readonly Uint8Array[], opts: { sync?: boolean; mode?: number } = {}): Promise<void> {
    const abs = this.under(path);
    const tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const fh = await this.open(tmp, 'create', opts.mode);
    try {
      try {
        if (typeof data === 'string' || !Array.isArray(data)) await fh.writeFile(data as string | Uint8Array);
        // Parts written one after the other (a header and the payload's pieces, not joined first).
        else for (const part of data as readonly Uint8Array[]) for (let off = 0; off < part.length; ) off += (await fh.write(part, off, part.length - off)).bytesWritten;
        if (opts.sync) await fh.sync();
      } finally {
        await fh.close();
      }
      // The directory was walked by the open just now: only the name is looked at again.
      await this.renameOver(tmp, abs);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => {});
      throw e;
    }
    if (opts.sync) await syncDir(dirname(abs));
  }

  /** Renames `from` to `to` (both under the root), after making sure `to` is not a symlink or a directory. */
  async rename(from: string, to: string): Promise<void> {
    const src = this.under(from);
    const abs = this.under(to);
    await this.walk(dirname(abs), false);
    await this.renameOver(src, abs);
  }

  private async renameOver(src: string, abs: string): Promise<void> {
    const st = await lstatIfAny(abs);
    if (st?.isSymbolicLink()) throw symlinkRefusal(abs);
    if (st?.isDirectory()) throw directoryRefusal(abs);
    await rename(src, abs);
  }
}

/**
 * For a writer that must stay synchronous (the log file: a line is written before the process may
 * die): opens `path` to append, never through a symlink. Its directory is the user's choice.
 */
export function openAppendSync(path: string, mode: number = PRIVATE_MODES.file): number {
  try {
    return openSync(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw directoryRefusal(resolve(path));
    if (code === 'ELOOP' && lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink()) throw symlinkRefusal(resolve(path));
    throw e;
  }
}

/** `renameSync(from, to)` unless `to` is a symlink or a directory (then refused, nothing renamed). */
export function renameOverSync(from: string, to: string): void {
  const st = lstatSync(to, { throwIfNoEntry: false });
  if (st?.isSymbolicLink()) throw symlinkRefusal(resolve(to));
  if (st?.isDirectory()) throw directoryRefusal(resolve(to));
  renameSync(from, to);
}

/**
 * `mkdir -p dir` one component at a time (util/fs-problem.ts `makeDirs`: Node's recursive mkdir
 * never returns under /proc), each directory made here set to `mode` exactly (mkdir's mode passes
 * through the umask), and only those. Returns the first directory made, as makeDirs does.
 */
export async function makeDirsWithMode(dir: string, mode: number): Promise<string | undefined> {
  const abs = resolve(dir);
  const first = await makeDirs(abs, mode);
  if (first !== undefined) {
    for (let p = abs; ; p = dirname(p)) {
      await chmod(p, mode);
      if (p === first || p === dirname(p)) break;
    }
  }
  return first;
}
