/**
 * The disk tier's directory (`<cache-dir>/blocks`), shared by every slicefs process of the user:
 *
 *     objects/<sha256(cacheKey)>/meta.json   the object's identity, version and size
 *     objects/<sha256(cacheKey)>/c<index>     one chunk file each (./chunk-file.ts)
 *     objects/<…>/.c<index>.<pid>.<random>.tmp        a chunk being written (renamed into place)
 *     stats/<host>-<pid>-<random>.json                one process's hit/miss counters
 *     stats/total.json                                the counters of processes that have ended
 *     trash/<random>/                                 an object directory being deleted
 *
 * (`cacheKey`, source/object-source.ts: identity rule, identity and version.)
 *
 * Everything that another process may see is put in place by rename (atomic): a chunk file is
 * whole or absent, an object directory is removed by renaming it into trash/ first. Directories
 * 0700, files 0600: cached controlled data is readable by its owner only. Every write goes through
 * util/safe-fs.ts, rooted at the directory: nothing planted under it leads a write outside.
 *
 * This module lists and removes; ./disk-tier.ts reads, writes and evicts.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_MODES, WriteRoot } from '../util/safe-fs.js';

export const OBJECTS = 'objects';
export const STATS = 'stats';
export const TRASH = 'trash';
export const META = 'meta.json';

/** What meta.json says about an object directory. */
export interface ObjectMeta {
  /** The source's identity as recorded (source/identity.ts `recordedIdentity`: a URL without its signature, its query hashed; `score:host/path/id`, `ghga:host/accession`). */
  identity: string;
  /** The pinned version's tag (transport/version.ts `versionTag`). */
  version: string;
  size: number;
  chunkBytes: number;
}

export const isChunkName = (name: string): boolean => /^c\d+$/.test(name);
export const isTmpName = (name: string): boolean => name.endsWith('.tmp');

export interface ScannedFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** Which file it was: an eviction deletes that file only, not one renamed into its place since. */
  ino: number;
}

export interface ScannedObject {
  /** The directory's name: sha256 of the object version's `cacheKey`, hex. */
  key: string;
  path: string;
  meta?: ObjectMeta;
  chunks: ScannedFile[];
  /** Temporary files (chunks being written, or left by a crashed process). */
  tmp: ScannedFile[];
  /** Bytes of all its files. */
  bytes: number;
  /** When meta.json was written (the directory's age), if it is there. */
  metaMtimeMs?: number;
}

export interface Scan {
  objects: ScannedObject[];
  /** Bytes of every file under the directory (objects, their meta and temporary files, stats). */
  totalBytes: number;
}

async function statOf(path: string): Promise<ScannedFile | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? { path, size: s.size, mtimeMs: s.mtimeMs, ino: s.ino } : undefined;
  } catch {
    // Deleted meanwhile by another process's eviction: not there.
    return undefined;
  }
}

async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch {
    return [];
  }
}

/** Runs `fn` over `items`, `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

export async function readMeta(objectDir: string): Promise<ObjectMeta | undefined> {
  try {
    const m = JSON.parse(await readFile(join(objectDir, META), 'utf8')) as Partial<ObjectMeta>;
    return typeof m.identity === 'string' && typeof m.version === 'string' && typeof m.size === 'number' ? (m as ObjectMeta) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every object directory with its chunk and temporary files (sizes and mtimes), and the bytes of
 * the whole directory. Files that vanish while it looks (another process evicting) are left out.
 */
export async function scanTier(dir: string, opts: { meta?: boolean } = {}): Promise<Scan> {
  const objectsDir = join(dir, OBJECTS);
  const objects: ScannedObject[] = [];
  let totalBytes = 0;
  await eachLimited(await listDir(objectsDir), 8, async (key) => {
    const path = join(objectsDir, key);
    const names = await listDir(path);
    const o: ScannedObject = { key, path, chunks: [], tmp: [], bytes: 0 };
    await Promise.all(
      names.map(async (name) => {
        const f = await statOf(join(path, name));
        if (!f) return;
        o.bytes += f.size;
        if (isChunkName(name)) o.chunks.push(f);
        else if (isTmpName(name)) o.tmp.push(f);
        else if (name === META) o.metaMtimeMs = f.mtimeMs;
      }),
    );
    if (opts.meta) o.meta = await readMeta(path);
    totalBytes += o.bytes;
    objects.push(o);
  });
  for (const name of await listDir(join(dir, STATS))) totalBytes += (await statOf(join(dir, STATS, name)))?.size ?? 0;
  return { objects, totalBytes };
}

/**
 * Removes an object directory as one step for everyone else: renamed into trash/ (atomic), then
 * deleted. A writer racing it finds its directory gone and makes it again; a reader that opened a
 * chunk already reads it to the end (POSIX keeps an open file).
 */
/** Whether an object directory holds a chunk or a chunk being written (listed now). */
export async function holdsChunks(objectDir: string): Promise<boolean> {
  return (await listDir(objectDir)).some((name) => isChunkName(name) || isTmpName(name));
}

export async function removeObjectDir(dir: string, objectDir: string): Promise<void> {
  // trash/ is made, and the directory renamed into it, only under `dir` (util/safe-fs.ts).
  const root = await WriteRoot.prepare(dir, PRIVATE_MODES, { create: false });
  const trash = join(dir, TRASH);
  await root.mkdirs(trash);
  const aside = join(trash, `${process.pid}.${randomBytes(6).toString('hex')}`);
  try {
    await root.rename(objectDir, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await rm(aside, { recursive: true, force: true });
}

/** Removes what crashed processes left in trash/ (a rename done, the delete not). */
export async function emptyTrash(dir: string, olderThanMs: number): Promise<void> {
  const trash = join(dir, TRASH);
  for (const name of await listDir(trash)) {
    const p = join(trash, name);
    const s = await stat(p).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > olderThanMs) await rm(p, { recursive: true, force: true }).catch(() => {});
  }
}
