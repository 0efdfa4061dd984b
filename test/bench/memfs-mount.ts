// The ceiling of the FUSE binding: fuse-native serving one file of N seeded bytes from an in-memory
// Buffer (no network, no cache logic), with the mount options slicefs uses. Run it as its own
// process so the reader and this FUSE JS thread do not share an event loop:
//
//   node dist/test/bench/memfs-mount.js --dir D --size N [--seed S] [--name data.bin] [--watch-stdin]
//                                       [--no-kernel-cache]
//
// Prints `ready <path-of-file>` on stdout once mounted. SIGTERM/SIGINT (and, with --watch-stdin,
// EOF on stdin: the parent went away) unmount and exit 0.
// Types: src/types/fuse-native.d.ts (the package ships none).
import Fuse, { type FuseOps, type FuseStat } from 'fuse-native';
import { parseArgs } from 'node:util';
import { fillSeeded } from './prng.js';

/**
 * The options slicefs mounts with (src/fs/fuse/fuse-adapter.ts), in fuse-native 2.2.6 terms
 * (index.js `_fuseOptions` turns them into -o flags): `attrTimeout`/`entryTimeout` -> attr_timeout /
 * entry_timeout, `kernelCache` -> kernel_cache (pages kept across opens: the benchmark drops the
 * page cache between runs), `force` (lazy-unmount a dead mount first) and `mkdir` are handled in JS.
 * fuse-native has no max_read/max_readahead/big_writes knobs beyond `maxRead`, so the kernel's
 * defaults (128 KiB reads for libfuse2) apply to both.
 */
function fuseOptions(kernelCache: boolean) {
  return { force: true, mkdir: true, kernelCache, attrTimeout: 3600, entryTimeout: 3600, fsname: 'memfs', subtype: 'memfs' };
}

function parse(argv: string[]) {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      dir: { type: 'string', default: '' },
      size: { type: 'string', default: '0' },
      seed: { type: 'string', default: '1' },
      name: { type: 'string', default: 'data.bin' },
      'watch-stdin': { type: 'boolean', default: false },
      'no-kernel-cache': { type: 'boolean', default: false },
    },
  });
  const o = {
    dir: v.dir!,
    size: Number(v.size),
    seed: Number(v.seed),
    name: v.name!,
    watchStdin: v['watch-stdin']!,
    kernelCache: !v['no-kernel-cache'],
  };
  if (!o.dir || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw new Error('usage: memfs-mount --dir D --size N [--seed S] [--name F] [--watch-stdin] [--no-kernel-cache]');
  }
  return o;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const data = Buffer.allocUnsafeSlow(o.size);
  const chunk = 8 << 20;
  for (let off = 0; off < o.size; off += chunk) {
    fillSeeded(data.subarray(off, Math.min(o.size, off + chunk)), o.seed, off);
  }
  const filePath = `/${o.name}`;
  const now = new Date();
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const dirStat: FuseStat = { mode: 0o40555, size: 4096, uid, gid, nlink: 2, mtime: now, atime: now, ctime: now };
  const fileStat: FuseStat = { mode: 0o100444, size: o.size, uid, gid, nlink: 1, mtime: now, atime: now, ctime: now };

  const ops: FuseOps = {
    readdir(path, cb) {
      if (path === '/') return cb(0, [o.name]);
      return cb(Fuse.ENOENT);
    },
    getattr(path, cb) {
      if (path === '/') return cb(0, dirStat);
      if (path === filePath) return cb(0, fileStat);
      return cb(Fuse.ENOENT);
    },
    open(path, _flags, cb) {
      if (path === filePath) return cb(0, 42);
      if (path === '/') return cb(Fuse.EISDIR);
      return cb(Fuse.ENOENT);
    },
    release(_path, _fd, cb) {
      cb(0);
    },
    read(_path, _fd, buf, len, pos, cb) {
      if (pos >= o.size) return cb(0);
      const end = Math.min(o.size, pos + len);
      cb(data.copy(buf, 0, pos, end));
    },
  };

  const fuse = new Fuse(o.dir, ops, fuseOptions(o.kernelCache));
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));

  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => {
      process.stderr.write(`memfs-mount: unmount timed out (${why}); lazy unmount\n`);
      Fuse.unmount(o.dir, () => process.exit(1));
      setTimeout(() => process.exit(1), 2000).unref();
    }, 5000);
    fuse.unmount((err) => {
      clearTimeout(force);
      if (err) {
        process.stderr.write(`memfs-mount: unmount failed: ${err.message}\n`);
        Fuse.unmount(o.dir, () => process.exit(1));
        return;
      }
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => stop('SIGHUP'));
  if (o.watchStdin) {
    process.stdin.on('end', () => stop('stdin closed'));
    process.stdin.on('error', () => stop('stdin error'));
    process.stdin.resume();
  }
  process.stdout.write(`ready ${o.dir.replace(/\/$/, '')}${filePath}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`memfs-mount: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
