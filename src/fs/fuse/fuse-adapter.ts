/**
 * The thin FUSE adapter: fuse-native callbacks in, ReadOnlyFs calls out, errno numbers back. The
 * only module that knows fuse-native's callback shapes and errno values (errors.ts names the
 * errno, `Fuse[name]` gives fuse-native's negative number).
 *
 * fuse-native runs every handler on the one Node thread and waits for its callback: handlers never
 * block, reads copy into the kernel's `buf` before calling back and never keep it, and any
 * exception becomes an errno (EIO) instead of reaching the event loop.
 * Writes of any kind answer EROFS: the mount is read-only.
 */
import Fuse, { type FuseOps, type FuseStat } from 'fuse-native';
import { constants as fsConstants, existsSync } from 'node:fs';
import { readdir, readlink, stat } from 'node:fs/promises';
import type { MountConfig } from '../../config.js';
import { SlicefsError, errnoName } from '../../errors.js';
import type { Attr, ReadOnlyFs } from '../readonly-fs.js';
import { isMounted, isMountedDevice } from './mount-point.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const W_OK = 2;
const X_OK = 1;
/** 512-byte units of `st_blocks`, so `du` reports the real size. */
const STAT_BLOCK = 512;

/** fuse-native's (negative) errno for an error thrown by the core. */
export function fuseErrno(err: unknown): number {
  return Fuse[errnoName(err)] ?? Fuse.EIO;
}

const WRITE_OPS = [
  'write',
  'create',
  'unlink',
  'rename',
  'link',
  'symlink',
  'mkdir',
  'rmdir',
  'truncate',
  'ftruncate',
  'chmod',
  'chown',
  'utimens',
  'mknod',
  'setxattr',
  'removexattr',
] as const;

export interface AdapterHooks {
  /** Called with each failed operation (for --verbose and stats). */
  onError?: (op: string, path: string, err: unknown) => void;
}

/**
 * `group`: the only group (besides the owner) that may read the mount (MountConfig.group): every
 * node is of that group and loses the permissions of others (files 0440, directories 0550).
 */
export function makeFuseOps(fs: ReadOnlyFs, hooks: AdapterHooks = {}, opts: { group?: number } = {}): FuseOps {
  const uid = process.getuid?.() ?? 0;
  const gid = opts.group ?? process.getgid?.() ?? 0;
  const permMask = opts.group === undefined ? 0o777 : 0o770;
  const toStat = (a: Attr): FuseStat => ({
    mode: (a.kind === 'dir' ? S_IFDIR : S_IFREG) | (a.perm & permMask),
    size: a.size,
    nlink: a.nlink,
    uid,
    gid,
    mtime: a.mtime,
    atime: a.mtime,
    ctime: a.mtime,
    blocks: Math.ceil(a.size / STAT_BLOCK),
    blksize: 1024 * 1024,
  });
  const fail = (op: string, path: string, err: unknown): number => {
    hooks.onError?.(op, path, err);
    return fuseErrno(err);
  };

  const ops: FuseOps = {
    getattr(path, cb) {
      fs.getattr(path).then(
        (a) => cb(0, toStat(a)),
        (e) => cb(fail('getattr', path, e)),
      );
    },
    readdir(path, cb) {
      try {
        cb(0, ['.', '..', ...fs.readdir(path)]);
      } catch (e) {
        cb(fail('readdir', path, e));
      }
    },
    open(path, flags, cb) {
      const mode = flags & O_ACCMODE;
      fs.open(path, mode === O_WRONLY || mode === O_RDWR || (flags & fsConstants.O_TRUNC) !== 0).then(
        (fh) => cb(0, fh),
        (e) => cb(fail('open', path, e)),
      );
    },
    read(path, fd, buf, len, pos, cb) {
      // The core copies into `buf` before resolving (never after a timeout): fuse-native hands
      // `buf` back to the kernel when we call back.
      fs.readInto(fd, len < buf.length ? buf.subarray(0, len) : buf, pos).then(
        (n) => cb(n),
        (e) => cb(fail('read', path, e)),
      );
    },
    release(_path, fd, cb) {
      fs.release(fd);
      cb(0);
    },
    access(path, mode, cb) {
      try {
        const node = fs.lookup(path);
        // Files are 0444 (0440 with a group): not executable. Directories are 0555 (0550).
        cb(mode & W_OK ? Fuse.EROFS : mode & X_OK && node.kind === 'file' ? Fuse.EACCES : 0);
      } catch (e) {
        cb(fail('access', path, e));
      }
    },
    statfs(_path, cb) {
      const { files, bytes } = fs.totals();
      const bsize = 4096;
      cb(0, {
        bsize,
        frsize: bsize,
        blocks: Math.min(0xffffffff, Math.ceil(bytes / bsize)),
        bfree: 0,
        bavail: 0,
        files: Math.min(0xffffffff, files),
        ffree: 0,
        favail: 0,
        fsid: 0,
        flag: 1, // ST_RDONLY
        namemax: 255,
      });
    },
  };
  for (const op of WRITE_OPS) {
    ops[op] = ((...args: unknown[]) => {
      const cb = args[args.length - 1] as (err: number) => void;
      cb(fail(op, typeof args[0] === 'string' ? args[0] : '?', new SlicefsError('READ_ONLY', 'read-only filesystem')));
    }) as never;
  }
  return ops;
}

export interface MountHandle {
  unmount(): Promise<void>;
  /**
   * True while this mount is in the mount table at its mount point. Known by its device number, so
   * a new mount on the same path (after a lazy unmount of this one) is not taken for it.
   */
  attached(): Promise<boolean>;
  /**
   * True while the kernel still talks to this mount. A mount detached lazily (`fusermount -uz`)
   * leaves the mount table at once but lives on while a process has a file (or its working
   * directory) in it; when the last goes, the kernel ends the connection, libfuse's loop ends and
   * closes its `/dev/fuse` descriptor. That descriptor is what this looks for (one mount per process).
   */
  connected(): Promise<boolean>;
}

/** True when this process holds a `/dev/fuse` descriptor (Linux: /proc/self/fd). */
async function holdsFuseDevice(): Promise<boolean> {
  const dir = '/proc/self/fd';
  for (const fd of await readdir(dir).catch(() => [])) {
    if ((await readlink(`${dir}/${fd}`).catch(() => '')) === '/dev/fuse') return true;
  }
  return false;
}

/** Mounts `fs` at `mountPoint` (which the caller checked: exists, empty, not stale). */
export function mountFuse(fs: ReadOnlyFs, mountPoint: string, config: MountConfig, hooks: AdapterHooks = {}): Promise<MountHandle> {
  const fuse = new Fuse(mountPoint, makeFuseOps(fs, hooks, { group: config.group }), {
    timeout: config.opTimeoutMs,
    mkdir: false,
    force: false,
    // With a group, others must be able to reach the mount (allow_other) and the kernel must check
    // the modes (default_permissions: without it a FUSE mount answers every user it lets in).
    allowOther: config.allowOther || config.group !== undefined,
    defaultPermissions: config.group !== undefined,
    debug: config.debug,
    // The content of a pinned version never changes: let the kernel keep pages across opens.
    kernelCache: true,
    attrTimeout: config.attrTimeoutSec,
    entryTimeout: config.entryTimeoutSec,
    // fuse-native whitelists its options and has neither `ro` nor `max_background`; it joins them
    // with commas, so both ride along after the fsname. With `ro` the kernel refuses writes itself
    // (EROFS before any request reaches us), statvfs reports ST_RDONLY and /proc/mounts says `ro`.
    // `max_background` lifts the kernel's default of 12 page-cache READs in flight per mount
    // (native-notes/threading.md: 40 files read in parallel took 4.0 s at 12, 1.1 s at 64).
    fsname: `slicefs,ro,max_background=${config.maxBackground}`,
    subtype: 'slicefs',
  });
  return new Promise((resolve, reject) => {
    fuse.mount(async (err) => {
      if (err) return reject(mountError(mountPoint, err));
      let unmounting: Promise<void> | undefined;
      // The mount's device (`major:minor`); answered from memory (getattr of the root).
      const st = await stat(mountPoint, { bigint: true }).catch(() => undefined);
      const dev = st ? `${(st.dev >> 8n) & 0xfffn}:${(st.dev & 0xffn) | ((st.dev >> 12n) & 0xfff00n)}` : undefined;
      resolve({
        attached: () => (dev ? isMountedDevice(mountPoint, dev) : isMounted(mountPoint)),
        unmount: () =>
          (unmounting ??= new Promise<void>((res, rej) => fuse.unmount((e) => (e ? rej(e) : res())))),
        connected: holdsFuseDevice,
      });
    });
  });
}

/**
 * fuse-native reports a refused mount as a bare "fuse failed": say what usually causes it. In a
 * container that is a missing device or capability; on a host, a missing fusermount or /dev/fuse.
 */
function mountError(mountPoint: string, err: Error): SlicefsError {
  const hint = !existsSync('/dev/fuse')
    ? '/dev/fuse is missing (in Docker: --device /dev/fuse)'
    : 'check that fusermount is installed, and in a container run with --device /dev/fuse --cap-add SYS_ADMIN --security-opt apparmor:unconfined';
  return new SlicefsError('MOUNT', `cannot mount ${mountPoint}: ${err.message.split('\n')[0]}; ${hint}`);
}
