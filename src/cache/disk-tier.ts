/**
 * The persistent disk tier: fixed-size, aligned chunks of remote objects in a directory shared by
 * every slicefs process of the user (`<cache-dir>/blocks`, layout in ./disk-layout.ts), read before
 * the network and kept under a byte budget, least recently used first. It sits below the memory
 * BlockCache and below Crypt4ghSource (ARCHITECTURE.md, decision record): `wrap()` puts a
 * DiskCachedSource around a remote source, so encrypted objects are cached as ciphertext.
 *
 * Keys: a directory per object version, `sha256(identity@versionTag)` (object-source `cacheKey`);
 * the identity never holds a presigned URL's query and the version is pinned before any byte is
 * read, so a changed object (new ETag, new size) has a new directory and can never be answered
 * from an old one.
 *
 * Safety: a chunk is written whole to a temporary file and renamed into place, and every chunk file
 * carries a SHA-256 checked on every read (./chunk-file.ts): a bad or short file is deleted (if it is
 * still the same file) and fetched again, never served. A full disk (ENOSPC, EDQUOT) or a directory
 * that cannot be written stops the writing with one warning; chunks already on disk are still read.
 * All I/O is fs/promises and the checksums run on libuv's pool: the FUSE thread is not blocked.
 *
 * Eviction: this process counts the bytes it writes on top of its last scan of the directory; when
 * that passes the budget, or after `rescanShare` of the budget written (so other processes' writes
 * are seen too), it scans the directory and deletes the chunks with the oldest mtime down to
 * `lowWaterShare` of the budget. A hit moves a chunk's mtime to now (at most once a minute). A
 * reader racing a deleter keeps the file it opened, or misses and fetches.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, rm, stat, statfs, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskCacheConfig } from '../config.js';
import { cacheKey, type ObjectSource } from '../source/object-source.js';
import type { Stats } from '../stats.js';
import { versionTag, type ObjectVersion } from '../transport/version.js';
import { allocChunk, checkChunk, payloadOf, sealChunk } from './chunk-file.js';
import { DiskCachedSource } from './disk-cached-source.js';
import { DIR_MODE, emptyTrash, FILE_MODE, META, OBJECTS, removeObjectDir, scanTier, STATS, type ObjectMeta } from './disk-layout.js';
import { DiskStatsFile, foldEndedProcesses, zeroCounters, type DiskCounters } from './disk-stats.js';

/** One object version's place in the tier. */
export interface TierObject {
  /** sha256(identity@version), hex: the directory's name. */
  key: string;
  keyHash: Buffer;
  dir: string;
  size: number;
  meta: ObjectMeta;
  /** The directory made and meta.json written (by this process); reset when it was found gone. */
  ready?: Promise<void>;
}

const isFull = (code: string | undefined) => code === 'ENOSPC' || code === 'EDQUOT';

export class DiskTier {
  readonly dir: string;
  readonly chunkBytes: number;
  readonly counters: DiskCounters = zeroCounters();
  /** Chunks being fetched by this process: other readers of the same chunk wait for it. */
  readonly inflight = new Map<string, Promise<Buffer>>();
  private budget: number;
  private budgetFinal: boolean;
  private readonly objects = new Map<string, TierObject>();
  /** Bytes in the directory: the last scan plus what this process wrote since. */
  private estimate = 0;
  private writtenSinceScan = 0;
  private evicting?: Promise<void>;
  private evictAgain = false;
  private readonly writes = new Set<Promise<void>>();
  private pendingBytes = 0;
  private writesOff = false;
  private warnedCorrupt = false;
  private readonly statsFile: DiskStatsFile;
  private statsDirty = false;
  private readonly statsTimer: NodeJS.Timeout;
  private closed = false;
  private freeAtStart = 0;
  /** Set once this process scanned the directory (at its first write: a run that only reads never scans). */
  private scanned = false;
  private folding: Promise<void> = Promise.resolve();
  private trashEmptied = false;

  private constructor(
    private readonly config: DiskCacheConfig,
    budget: number,
    budgetFinal: boolean,
    private readonly warn: (msg: string) => void,
    private readonly stats?: Stats,
  ) {
    this.dir = config.dir;
    this.chunkBytes = config.chunkBytes;
    this.budget = budget;
    this.budgetFinal = budgetFinal;
    this.statsFile = new DiskStatsFile(this.dir);
    this.statsTimer = setInterval(() => void this.flushStats(), config.statsFlushMs);
    this.statsTimer.unref();
  }

  /**
   * Opens the tier at `config.dir` (made if missing, 0700). A directory that cannot be made is one
   * warning and no tier (undefined): the command goes on with the memory cache only.
   */
  static async open(config: DiskCacheConfig, warn: (msg: string) => void, stats?: Stats): Promise<DiskTier | undefined> {
    let free: number;
    try {
      await mkdir(join(config.dir, OBJECTS), { recursive: true, mode: DIR_MODE });
      await mkdir(join(config.dir, STATS), { recursive: true, mode: DIR_MODE });
      // A directory made by someone (or something) else with wider modes is narrowed, if it is ours.
      const s = await stat(config.dir);
      if ((s.mode & 0o077) !== 0 && s.uid === process.getuid?.()) await chmod(config.dir, DIR_MODE);
      const fs = await statfs(config.dir);
      free = fs.bavail * fs.bsize;
    } catch (e) {
      warn(`warning: cannot use the disk cache in ${config.dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); going on without it`);
      return undefined;
    }
    const given = config.budgetBytes;
    // Until the first scan says what the tier holds already, the default counts free space only.
    const budget = given ?? Math.min(config.defaultBudgetBytes, Math.floor(free * config.freeSpaceShare));
    const tier = new DiskTier(config, budget, given !== undefined, warn, stats);
    tier.freeAtStart = free;
    tier.folding = foldEndedProcesses(config.dir).catch(() => {});
    return tier;
  }

  /** The byte budget in force (the default is settled by the first scan). */
  get budgetBytes(): number {
    return this.budget;
  }

  /** `source` read through this tier. */
  wrap(source: ObjectSource): ObjectSource {
    return new DiskCachedSource(source, this);
  }

  /** The tier's place for `source` at `version`. */
  object(source: ObjectSource, version: ObjectVersion): TierObject {
    const name = cacheKey(source, version);
    const keyHash = createHash('sha256').update(name).digest();
    const key = keyHash.toString('hex');
    let o = this.objects.get(key);
    if (!o) {
      o = {
        key,
        keyHash,
        dir: join(this.dir, OBJECTS, key),
        size: version.size,
        meta: { identity: source.identity, version: versionTag(version), size: version.size, chunkBytes: this.chunkBytes },
      };
      this.objects.set(key, o);
    }
    return o;
  }

  /** Bytes in chunk `index` of `obj` (the last chunk is shorter). */
  chunkLength(obj: TierObject, index: number): number {
    return Math.min(this.chunkBytes, obj.size - index * this.chunkBytes);
  }

  /** Chunk `index` of `obj` from disk, checked; undefined when it is not there or not good (then deleted). */
  async readChunk(obj: TierObject, index: number): Promise<Buffer | undefined> {
    const length = this.chunkLength(obj, index);
    const path = join(obj.dir, `c${index}`);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch {
      return undefined;
    }
    let bad: string | undefined;
    let ino = 0;
    try {
      const s = await fh.stat();
      ino = s.ino;
      const record = allocChunk(length);
      if (s.size !== record.length) {
        bad = `${s.size} bytes, expected ${record.length}`;
      } else {
        let got = 0;
        while (got < record.length) {
          const { bytesRead } = await fh.read(record, got, record.length - got, got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        bad = got < record.length ? 'short read' : await checkChunk(record, this.chunkBytes, index, length, obj.keyHash);
        if (bad === undefined) {
          const now = Date.now();
          // Its "last used" time for eviction.
          if (now - s.mtimeMs > this.config.touchAfterMs) await fh.utimes(now / 1000, now / 1000).catch(() => {});
          this.counters.hits++;
          this.counters.hitBytes += length;
          if (this.stats) this.stats.diskHits++;
          this.statsDirty = true;
          return payloadOf(record);
        }
      }
    } catch {
      return undefined;
    } finally {
      await fh.close().catch(() => {});
    }
    this.counters.corrupt++;
    this.statsDirty = true;
    if (!this.warnedCorrupt) {
      this.warnedCorrupt = true;
      this.warn(`warning: a cached chunk of ${obj.meta.identity} was damaged (${bad}); it was dropped and is fetched again`);
    }
    // Only the file that was read: another process may have put a good one in its place since.
    const now = await stat(path).catch(() => undefined);
    if (now?.ino === ino) await unlink(path).catch(() => {});
    return undefined;
  }

  /** Counts a chunk fetched from the network. */
  countMiss(bytes: number): void {
    this.counters.misses++;
    this.counters.missBytes += bytes;
    if (this.stats) this.stats.diskMisses++;
    this.statsDirty = true;
  }

  /**
   * Writes chunk `index` of `obj` (`record`: header space, then the payload; ./chunk-file.ts) in the
   * background: sealed, written to a temporary file and renamed into place. Returns the write
   * (it never fails), or undefined when the chunk is not written (writing stopped, or too many
   * bytes waiting for the disk).
   */
  storeChunk(obj: TierObject, index: number, record: Buffer): Promise<void> | undefined {
    if (this.writesOff || this.closed || this.pendingBytes + record.length > this.config.maxPendingWriteBytes) return undefined;
    this.pendingBytes += record.length;
    const p = this.write(obj, index, record).finally(() => {
      this.pendingBytes -= record.length;
      this.writes.delete(p);
    });
    this.writes.add(p);
    return p;
  }

  private async write(obj: TierObject, index: number, record: Buffer): Promise<void> {
    try {
      await sealChunk(record, this.chunkBytes, index, obj.keyHash);
      for (let attempt = 0; ; attempt++) {
        try {
          await this.ensureObjectDir(obj);
          await this.writeAtomic(join(obj.dir, `c${index}`), record);
          break;
        } catch (e) {
          // The directory was evicted or cleared meanwhile (by any process): make it again, once.
          if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt === 0) {
            obj.ready = undefined;
            continue;
          }
          throw e;
        }
      }
    } catch (e) {
      // Gone twice in a row (a `cache clear` at that moment): this chunk is not cached, the next are.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.stopWriting(e as NodeJS.ErrnoException);
      return;
    }
    this.estimate += record.length;
    this.writtenSinceScan += record.length;
    if (!this.scanned || this.estimate > this.budget || this.writtenSinceScan >= this.budget * this.config.rescanShare) this.scheduleEvict();
  }

  private ensureObjectDir(obj: TierObject): Promise<void> {
    obj.ready ??= (async () => {
      await mkdir(obj.dir, { recursive: true, mode: DIR_MODE });
      await this.writeAtomic(join(obj.dir, META), Buffer.from(JSON.stringify(obj.meta)));
    })().catch((e: unknown) => {
      obj.ready = undefined;
      throw e;
    });
    return obj.ready;
  }

  private async writeAtomic(path: string, data: Buffer): Promise<void> {
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, data, { mode: FILE_MODE, flag: 'wx' });
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => {});
      throw e;
    }
  }

  private stopWriting(e: NodeJS.ErrnoException): void {
    if (this.writesOff) return;
    this.writesOff = true;
    this.warn(
      isFull(e.code)
        ? `warning: the disk of the disk cache (${this.dir}) is full; caching in memory only from now on`
        : `warning: cannot write the disk cache in ${this.dir} (${e.code ?? e.message}); caching in memory only from now on`,
    );
  }

  /** Starts an eviction pass (one at a time; a request meanwhile runs another after it). */
  private scheduleEvict(): void {
    this.scanned = true;
    if (this.evicting) {
      this.evictAgain = true;
      return;
    }
    this.evicting = this.evict()
      .catch(() => {})
      .finally(() => {
        this.evicting = undefined;
        if (this.evictAgain && !this.closed) {
          this.evictAgain = false;
          this.scheduleEvict();
        }
      });
  }

  /** Scans the directory and deletes the least recently used chunks while it is over the budget. */
  private async evict(): Promise<void> {
    const written = this.writtenSinceScan;
    const scan = await scanTier(this.dir);
    let total = scan.totalBytes;
    const first = !this.trashEmptied;
    this.trashEmptied = true;
    if (!this.budgetFinal) {
      // The default budget counts what the tier held as free: it stays the same from run to run.
      this.budget = Math.min(this.config.defaultBudgetBytes, Math.floor((this.freeAtStart + total - written) * this.config.freeSpaceShare));
      this.budgetFinal = true;
    }
    const now = Date.now();
    for (const o of scan.objects) {
      for (const t of o.tmp) {
        if (now - t.mtimeMs > this.config.staleTmpMs) {
          await rm(t.path, { force: true }).catch(() => {});
          total -= t.size;
        }
      }
    }
    if (first) await emptyTrash(this.dir, this.config.staleTmpMs);
    if (total > this.budget) {
      const target = this.budget * this.config.lowWaterShare;
      const chunks = scan.objects.flatMap((o) => o.chunks.map((c) => ({ ...c, o })));
      chunks.sort((a, b) => a.mtimeMs - b.mtimeMs);
      const left = new Map(scan.objects.map((o) => [o, o.chunks.length]));
      for (const c of chunks) {
        if (total <= target) break;
        await unlink(c.path).then(
          () => this.counters.evicted++,
          () => {},
        );
        total -= c.size;
        left.set(c.o, left.get(c.o)! - 1);
      }
      this.statsDirty = true;
      for (const [o, n] of left) {
        if (n > 0) continue;
        await removeObjectDir(this.dir, o.path).catch(() => {});
        total -= o.bytes - o.chunks.reduce((s, c) => s + c.size, 0);
      }
    }
    // Objects left without chunks (all dropped as damaged, or evicted by a process that crashed).
    for (const o of scan.objects) {
      if (o.chunks.length === 0 && o.tmp.length === 0 && o.metaMtimeMs !== undefined && now - o.metaMtimeMs > this.config.staleTmpMs) {
        await removeObjectDir(this.dir, o.path).catch(() => {});
      }
    }
    this.estimate = Math.max(0, total) + (this.writtenSinceScan - written);
    this.writtenSinceScan -= written;
  }

  private async flushStats(): Promise<void> {
    if (!this.statsDirty) return;
    this.statsDirty = false;
    await this.statsFile.write(this.counters).catch(() => {});
  }

  /** Waits for the writes under way, keeps the budget, records the counters. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.statsTimer);
    await this.folding;
    await Promise.all([...this.writes]);
    await this.evicting;
    // What this process wrote since its last scan, together with what the others wrote.
    if (this.writtenSinceScan > 0 || this.estimate > this.budget) await this.evict().catch(() => {});
    await this.flushStats();
  }
}
