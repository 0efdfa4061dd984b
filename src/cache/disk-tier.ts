/**
 * The persistent disk tier: remote objects' bytes in a directory shared by every slicefs process of
 * the user (`<cache-dir>/blocks`, layout in ./disk-layout.ts), read before the network and kept
 * under a byte budget, least recently used first. An object is cut into aligned slots (1 MiB); a
 * slot's chunk file holds one contiguous extent of it, in whole pages (64 KiB), so a small read
 * fetches and keeps a few pages, not the whole slot, and later reads of the slot grow the extent
 * (a write merges with the extent on disk; a piece that lands before the one between it and the
 * extent waits in memory for it, `write`). It sits below the memory
 * BlockCache and below Crypt4ghSource (ARCHITECTURE.md, decision record): `wrap()` puts a
 * DiskCachedSource around a remote source, so encrypted objects are cached as ciphertext.
 *
 * Keys: a directory per object version, `sha256(cacheKey)` (object-source `cacheKey`: the identity
 * rule's number, the identity, the version tag); the identity (source/identity.ts) keeps every
 * query parameter but a URL signature's, so `dl?id=A` and `dl?id=B` have two directories and
 * presigned URLs of one object share one; the version is pinned before any byte is read, so a
 * changed object (new ETag, new size) has a new directory and can never be answered from an old
 * one. Directories keyed under an older identity rule are never read again (evicted as usual).
 *
 * Trust: the cache directory and every directory under it must be the user's alone, not symlinks
 * (util/safe-fs.ts, an `owned` root; else one warning and no tier), and a chunk file that is not
 * the user's is never read: what another local user could plant is never served. The checksums
 * are not keyed (no HMAC): a key would live in this directory, readable by exactly those who can
 * write a chunk that passes the ownership checks (the user and root), so it would stop no one
 * those checks do not stop already.
 *
 * Safety: a chunk is written whole to a temporary file and renamed into place, and every chunk file
 * carries a SHA-256 checked on every read (./chunk-file.ts): a bad or short file is deleted (if it is
 * still the same file) and fetched again, never served. A full disk (ENOSPC, EDQUOT), a directory
 * that cannot be written, or a symlink that would lead a write out of the cache directory (every
 * write goes through util/safe-fs.ts, rooted there) stops the writing with one warning; chunks
 * already on disk are still read.
 * All I/O is fs/promises and the checksums run on libuv's pool: the FUSE thread is not blocked.
 *
 * Eviction: this process counts the bytes it writes on top of its last scan of the directory; when
 * that passes the budget, or after `rescanShare` of the budget written (so other processes' writes
 * are seen too), it scans the directory and deletes the chunks with the oldest mtime down to
 * `lowWaterShare` of the budget (temporary files of writes under way are not counted: they replace
 * chunks or are counted once they land). It deletes only the file it scanned, and an object's
 * directory only when no chunk is left in it. A hit moves a chunk's mtime to now (at most once a minute). A
 * reader racing a deleter keeps the file it opened, or misses and fetches.
 */
import { createHash } from 'node:crypto';
import { chmod, lstat, rm, statfs, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DiskCacheConfig } from '../config.js';
import { recordedIdentity } from '../source/identity.js';
import { cacheKey, type ObjectSource } from '../source/object-source.js';
import type { Stats } from '../stats.js';
import { versionTag, type ObjectVersion } from '../transport/version.js';
import { redactLine } from '../util/redact.js';
import { PRIVATE_MODES, reasonOf, WriteRoot } from '../util/safe-fs.js';
import { CHUNK_HEADER_BYTES, payloadOf } from './chunk-file.js';
import { DiskCachedSource } from './disk-cached-source.js';
import { emptyTrash, holdsChunks, OBJECTS, removeObjectDir, scanTier, STATS, type ObjectMeta } from './disk-layout.js';
import { DiskStatsFile, foldEndedProcesses, zeroCounters, type DiskCounters } from './disk-stats.js';
import { InlineSlotWriter, pieceLength, readChunkFile, WorkerSlotWriter, type SlotPiece, type SlotWriterClient, type SlotWriteResult } from './slot-writer.js';

/** One object version's place in the tier. */
export interface TierObject {
  /** sha256(cacheKey), hex: the directory's name. */
  key: string;
  keyHash: Buffer;
  dir: string;
  size: number;
  meta: ObjectMeta;
}

/** An extent of a slot: its bytes from `lo` (slot-relative) on. */
export interface Extent {
  lo: number;
  payload: Buffer;
}

/** An extent this process is fetching: [lo, hi) of its slot, its bytes once they are all in. */
export interface InflightExtent {
  lo: number;
  hi: number;
  payload: Promise<Buffer>;
  /**
   * Called when the extent is handed to another reader (`fetching`): its bytes are then kept for
   * that reader (copied out of the transport's buffers, which go back to the transport later).
   */
  share?(): void;
  /** Settles when the fetch ends (without asking for the bytes, as `payload` may). */
  landed?: Promise<unknown>;
}

/** Options of DiskTier.open. */
export interface DiskTierOptions {
  /**
   * Write in a thread of its own (write behind: hashing and file-system calls off this thread).
   * For the mount, whose FUSE thread is the bottleneck; one-shot commands write in this thread.
   */
  writerThread?: boolean;
}

/** Slots whose last seen extent is remembered (DiskTier.seen). */
const SEEN_SLOTS = 65_536;

const isFull = (code: string | undefined) => code === 'ENOSPC' || code === 'EDQUOT';

export class DiskTier {
  readonly dir: string;
  readonly chunkBytes: number;
  readonly pageBytes: number;
  readonly counters: DiskCounters = zeroCounters();
  /** Extents being fetched by this process, by `<object key>#<slot>`: readers they cover wait for them. */
  private readonly inflight = new Map<string, InflightExtent[]>();
  private budget: number;
  private budgetFinal: boolean;
  private readonly objects = new Map<string, TierObject>();
  /** Bytes in the directory: the last scan plus what this process wrote since. */
  private estimate = 0;
  private writtenSinceScan = 0;
  private evicting?: Promise<void>;
  private evictAgain = false;
  private readonly writes = new Set<Promise<void>>();
  private readonly slotWrites = new Map<string, Promise<void>>();
  /**
   * The last extent this process saw on disk (read or written) per slot, bounds only: a read that
   * planned before a write of its slot landed still widens its piece to touch that extent, so
   * the write merges instead of one of the two being dropped.
   */
  private readonly seen = new Map<string, { lo: number; hi: number }>();
  private pendingBytes = 0;
  /** Pieces of a slot waiting in memory for the piece that joins them to the slot's extent (`write`). */
  private readonly parked = new Map<string, SlotPiece[]>();
  /** Writes per slot queued and not yet started (slotWrites chains them). */
  private readonly queuedWrites = new Map<string, number>();
  /**
   * The buffers that pieces waiting to be written (queued, being written, parked) are views of,
   * with how many pieces hold each: the transport must not fill them again meanwhile (`holds`).
   */
  private readonly held = new Map<ArrayBufferLike, number>();
  /** What to do with a held buffer once no piece holds it (`whenFree`). */
  private readonly onFree = new Map<ArrayBufferLike, () => void>();
  private parkedBytes = 0;
  private writesOff = false;
  private warnedCorrupt = false;
  private warnedForeign = false;
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
    /** Every write goes through it: nothing under the directory leads a write outside (util/safe-fs.ts). */
    private readonly root: WriteRoot,
    private readonly config: DiskCacheConfig,
    budget: number,
    budgetFinal: boolean,
    private readonly warn: (msg: string) => void,
    private readonly stats: Stats | undefined,
    private readonly writer: SlotWriterClient,
  ) {
    this.dir = config.dir;
    this.chunkBytes = config.chunkBytes;
    this.pageBytes = config.pageBytes;
    this.budget = budget;
    this.budgetFinal = budgetFinal;
    this.statsFile = new DiskStatsFile(root, this.dir);
    this.statsTimer = setInterval(() => void this.flushStats(), config.statsFlushMs);
    this.statsTimer.unref();
  }

  /**
   * Opens the tier at `config.dir` (made if missing, 0700). A directory that cannot be made is one
   * warning and no tier (undefined): the command goes on with the memory cache only.
   */
  static async open(config: DiskCacheConfig, warn: (msg: string) => void, stats?: Stats, opts: DiskTierOptions = {}): Promise<DiskTier | undefined> {
    let free: number;
    let root: WriteRoot;
    try {
      // Rooted at the cache directory (--cache-dir), which must be the user's alone, as must be
      // `blocks` and every directory under it (util/safe-fs.ts, an `owned` root): what another
      // user could plant there is never read.
      root = await WriteRoot.prepare(dirname(config.dir), PRIVATE_MODES, { owned: true });
      await root.mkdirs(join(config.dir, OBJECTS));
      await root.mkdirs(join(config.dir, STATS));
      // Ours and writable by no one else (checked above); one readable by others is narrowed.
      const s = await lstat(config.dir);
      if ((s.mode & 0o077) !== 0) await chmod(config.dir, PRIVATE_MODES.dir);
      const fs = await statfs(config.dir);
      free = fs.bavail * fs.bsize;
    } catch (e) {
      // Worded as the index cache words it (./file-cache.ts): a refused directory is one line for both.
      warn(`warning: cannot use the cache directory ${dirname(config.dir)} (${reasonOf(e)}); going on without it`);
      return undefined;
    }
    const given = config.budgetBytes;
    // Until the first scan says what the tier holds already, the default counts free space only.
    const budget = given ?? Math.min(config.defaultBudgetBytes, Math.floor(free * config.freeSpaceShare));
    const writer = opts.writerThread ? new WorkerSlotWriter({ rootDir: dirname(config.dir) }) : new InlineSlotWriter(root);
    const tier = new DiskTier(root, config, budget, given !== undefined, warn, stats, writer);
    tier.freeAtStart = free;
    tier.folding = foldEndedProcesses(root, config.dir).catch(() => {});
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
        meta: { identity: recordedIdentity(source.identity), version: versionTag(version), size: version.size, chunkBytes: this.chunkBytes },
      };
      this.objects.set(key, o);
    }
    return o;
  }

  /** Bytes in slot `index` of `obj` (the last slot is shorter). */
  slotLength(obj: TierObject, index: number): number {
    return Math.min(this.chunkBytes, obj.size - index * this.chunkBytes);
  }

  /** The extent of slot `index` of `obj` on disk, checked; undefined when none is there or it is not good (then deleted). */
  async readChunk(obj: TierObject, index: number): Promise<Extent | undefined> {
    return this.load(obj, index);
  }

  /**
   * Reads and checks a chunk file (a reader's lookup: counted as a hit, its mtime moved). A damaged
   * file is counted, warned about once, and deleted.
   */
  private async load(obj: TierObject, index: number): Promise<Extent | undefined> {
    const read = await readChunkFile(join(obj.dir, `c${index}`), this.shape(obj, index), this.config.touchAfterMs);
    switch (read.kind) {
      case 'missing':
        return undefined;
      case 'foreign':
        // Not the user's alone (planted before the directory was: the tree is checked when opened):
        // never read; a write of the slot replaces it.
        if (!this.warnedForeign) {
          this.warnedForeign = true;
          this.warn(`warning: a cached chunk of ${redactLine(obj.meta.identity)} was ignored (${read.reason})`);
        }
        return undefined;
      case 'bad':
        this.countDamaged(obj, read.reason, read.old);
        return undefined;
      case 'good':
        this.counters.hits++;
        this.counters.hitBytes += read.payload.length;
        if (this.stats) this.stats.diskHits++;
        this.statsDirty = true;
        this.see(`${obj.key}#${index}`, read.lo, read.lo + read.payload.length);
        return { lo: read.lo, payload: read.payload };
    }
  }

  private shape(obj: TierObject, index: number) {
    return { chunkBytes: this.chunkBytes, pageBytes: this.pageBytes, index, slotLength: this.slotLength(obj, index), keyHash: obj.keyHash };
  }

  /** A damaged chunk (not one of the format before extents, which is just replaced): counted, warned about once. */
  private countDamaged(obj: TierObject, reason: string, old: boolean): void {
    if (old) return;
    this.counters.corrupt++;
    this.statsDirty = true;
    if (!this.warnedCorrupt) {
      this.warnedCorrupt = true;
      this.warn(`warning: a cached chunk of ${redactLine(obj.meta.identity)} was damaged (${reason}); it was dropped and is fetched again`);
    }
  }

  /** Counts a chunk fetched from the network. */
  countMiss(bytes: number): void {
    this.counters.misses++;
    this.counters.missBytes += bytes;
    if (this.stats) this.stats.diskMisses++;
    this.statsDirty = true;
  }

  /**
   * Writes the extent of slot `index` of `obj` starting at `lo` (`record`: header space, then the
   * payload; ./chunk-file.ts) in the background, as `storePiece`.
   */
  storeChunk(obj: TierObject, index: number, lo: number, record: Buffer): Promise<void> | undefined {
    const parts = [payloadOf(record)];
    this.hold(parts, 1);
    return this.storePiece(obj, index, lo, parts);
  }

  /**
   * Writes the extent of slot `index` of `obj` starting at `lo`, whose bytes are `parts` in order
   * (views: they are not copied; the caller has `hold`ed their buffers, and the hold passes to the
   * tier, which lets go of it once they are written or dropped), in the background
   * (write behind, ./slot-writer.ts): merged with the extent on disk and with the pieces of the
   * slot parked in memory (see `write`), sealed, written to a temporary file and renamed into
   * place. Returns the write (it never fails), or undefined when it is not written (writing
   * stopped, or too many bytes waiting for the disk: dropped rather than slowing the reader).
   */
  storePiece(obj: TierObject, index: number, lo: number, parts: Buffer[]): Promise<void> | undefined {
    const piece: SlotPiece = { lo, parts };
    const bytes = CHUNK_HEADER_BYTES + pieceLength(piece);
    if (this.writesOff || this.closed || this.pendingBytes + this.parkedBytes + bytes > this.config.maxPendingWriteBytes) {
      this.hold(parts, -1);
      return undefined;
    }
    return this.queueWrite(obj, index, piece, bytes);
  }

  /** True while a piece waiting to be written is a view of `buf`: its bytes must stay as they are. */
  holds(buf: ArrayBufferLike): boolean {
    return this.held.has(buf);
  }

  /**
   * Counts views of buffers that must keep their bytes (`by` 1), or lets go of them (-1): a piece
   * being fetched holds each part as it arrives (the block cache may drop the block meanwhile).
   */
  hold(parts: readonly Uint8Array[], by: 1 | -1): void {
    for (const p of parts) {
      const n = (this.held.get(p.buffer) ?? 0) + by;
      if (n > 0) this.held.set(p.buffer, n);
      else if (this.held.delete(p.buffer)) {
        const fn = this.onFree.get(p.buffer);
        this.onFree.delete(p.buffer);
        fn?.();
      }
    }
  }

  /**
   * Of `parts` (a freed cache block's), those no piece holds, now; `later` gets each of the others
   * once the tier lets go of it (its write done or dropped), so its memory is reused, not left to
   * the garbage collector while the transport allocates more.
   */
  whenFree(parts: readonly Buffer[], later: (part: Buffer) => void): Buffer[] {
    const now: Buffer[] = [];
    for (const p of parts) {
      if (!this.held.has(p.buffer)) now.push(p);
      else this.onFree.set(p.buffer, () => later(p));
    }
    return now;
  }

  /** One write at a time per slot: each merges with what the one before it put there. */
  private queueWrite(obj: TierObject, index: number, piece: SlotPiece | undefined, bytes: number): Promise<void> {
    this.pendingBytes += bytes;
    const slot = `${obj.key}#${index}`;
    const before = this.slotWrites.get(slot) ?? Promise.resolve();
    this.queuedWrites.set(slot, (this.queuedWrites.get(slot) ?? 0) + 1);
    const p: Promise<void> = before.then(() => {
      const left = this.queuedWrites.get(slot)! - 1;
      if (left > 0) this.queuedWrites.set(slot, left);
      else this.queuedWrites.delete(slot);
      return this.write(obj, index, piece);
    }).finally(() => {
      this.pendingBytes -= bytes;
      this.writes.delete(p);
      if (this.slotWrites.get(slot) === p) this.slotWrites.delete(slot);
    });
    this.slotWrites.set(slot, p);
    this.writes.add(p);
    return p;
  }

  /**
   * Writes a new piece of a slot (or, `piece` undefined, only the pieces parked for it), by the
   * SlotWriter (./slot-writer.ts). Pieces of one slot can complete out of order (a read ahead
   * lands before the piece between it and the disk's extent), so while other fetches of the slot
   * are under way, the run holding the disk's extent is written and the pieces apart from it come
   * back to be parked in memory: the slot's next write joins them. So do pieces apart while another
   * write of the slot is queued (the run's last pieces, landing as the tier closes). With neither,
   * the longest run is written and the others are dropped.
   */
  private async write(obj: TierObject, index: number, piece: SlotPiece | undefined): Promise<void> {
    const slot = `${obj.key}#${index}`;
    const pieces = [...(piece ? [piece] : []), ...this.takeParked(slot)];
    if (pieces.length === 0) return;
    const own = piece && { lo: piece.lo, hi: piece.lo + pieceLength(piece) };
    // A write of the slot queued behind this one joins what this one parks, closing or not (the
    // pieces of one fetch land together at the end of a run); otherwise, closing, no fetch will.
    const busy = this.queuedWrites.has(slot) || (!this.closed && this.fetchingNow(slot, own));
    let result: SlotWriteResult;
    try {
      result = await this.writer.write({ dir: obj.dir, meta: JSON.stringify(obj.meta), index, shape: this.shape(obj, index), pieces, stored: piece !== undefined, busy });
    } catch (e) {
      result = { park: [], added: -1, error: { message: (e as Error).message } };
    }
    const park = new Set(result.park);
    pieces.forEach((p, i) => (park.has(i) ? this.park(slot, p) : this.hold(p.parts, -1)));
    // A fetch that would join them may have ended while the writer worked: settle the slot now.
    if (park.size > 0 && !this.fetchingNow(slot)) this.flushParked(slot);
    if (result.damaged) this.countDamaged(obj, result.damaged.reason, result.damaged.old);
    if (result.error) {
      // Gone twice in a row (a `cache clear` at that moment): this chunk is not cached, the next are.
      if (result.error.code !== 'ENOENT') this.stopWriting(Object.assign(new Error(result.error.message), { code: result.error.code }));
      return;
    }
    if (result.extent) this.see(slot, result.extent.lo, result.extent.hi);
    if (result.added < 0) return;
    this.estimate += result.added;
    this.writtenSinceScan += Math.max(0, result.added);
    if (!this.scanned || this.estimate > this.budget || this.writtenSinceScan >= this.budget * this.config.rescanShare) this.scheduleEvict();
  }

  /** Fetches of `slot` under way, other than `own` (the one being stored). */
  private fetchingNow(slot: string, own?: { lo: number; hi: number }): boolean {
    return (this.inflight.get(slot) ?? []).some((e) => !own || e.lo !== own.lo || e.hi !== own.hi);
  }

  private park(slot: string, piece: SlotPiece): void {
    const list = this.parked.get(slot);
    if (list) list.push(piece);
    else this.parked.set(slot, [piece]);
    this.parkedBytes += pieceLength(piece);
  }

  private takeParked(slot: string): SlotPiece[] {
    const list = this.parked.get(slot) ?? [];
    this.parked.delete(slot);
    for (const p of list) this.parkedBytes -= pieceLength(p);
    return list;
  }

  /** Writes what is parked for `slot` (a write of the slot that joins or drops it). */
  private flushParked(slot: string): void {
    // A write of the slot is queued: it takes the parked pieces when it starts.
    if (this.queuedWrites.has(slot)) return;
    const obj = this.parked.has(slot) ? this.objects.get(slot.slice(0, slot.indexOf('#'))) : undefined;
    if (obj && !this.writesOff && !this.closed) void this.queueWrite(obj, Number(slot.slice(slot.indexOf('#') + 1)), undefined, 0);
    else if (this.writesOff || this.closed) for (const p of this.takeParked(slot)) this.hold(p.parts, -1);
  }

  private stopWriting(e: NodeJS.ErrnoException): void {
    if (this.writesOff) return;
    this.writesOff = true;
    this.warn(
      isFull(e.code)
        ? `warning: the disk of the disk cache (${this.dir}) is full; caching in memory only from now on`
        : `warning: cannot write the disk cache in ${this.dir} (${reasonOf(e)}); caching in memory only from now on`,
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
    // Young temporary files are writes under way (this process's or another's): each lands as a
    // chunk, replacing one counted already or counted by the next scan. They are no pressure that
    // older chunks must make room for: counted as such, a scan taken while many writes are under
    // way deleted every chunk.
    let writing = 0;
    for (const o of scan.objects) {
      for (const t of o.tmp) {
        if (now - t.mtimeMs > this.config.staleTmpMs) {
          await rm(t.path, { force: true }).catch(() => {});
          total -= t.size;
        } else writing += t.size;
      }
    }
    if (first) await emptyTrash(this.dir, this.config.staleTmpMs);
    if (total - writing > this.budget) {
      const target = this.budget * this.config.lowWaterShare;
      const chunks = scan.objects.flatMap((o) => o.chunks.map((c) => ({ ...c, o })));
      chunks.sort((a, b) => a.mtimeMs - b.mtimeMs);
      const left = new Map(scan.objects.map((o) => [o, o.chunks.length]));
      for (const c of chunks) {
        if (total - writing <= target) break;
        // The file the scan saw only: a write may have renamed a newer extent into its place since.
        const nowThere = await lstat(c.path).catch(() => undefined);
        if (nowThere?.ino !== c.ino) continue;
        await unlink(c.path).then(
          () => this.counters.evicted++,
          () => {},
        );
        total -= c.size;
        left.set(c.o, left.get(c.o)! - 1);
      }
      this.statsDirty = true;
      for (const [o, n] of left) {
        // Every chunk the scan saw is gone; one written since keeps the directory.
        if (n > 0 || (await holdsChunks(o.path))) continue;
        await removeObjectDir(this.dir, o.path).catch(() => {});
        total -= o.bytes - o.chunks.reduce((s, c) => s + c.size, 0);
      }
    }
    // Objects left without chunks (all dropped as damaged, or evicted by a process that crashed).
    for (const o of scan.objects) {
      if (o.chunks.length === 0 && o.tmp.length === 0 && o.metaMtimeMs !== undefined && now - o.metaMtimeMs > this.config.staleTmpMs && !(await holdsChunks(o.path))) {
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

  /** An extent of slot `key` being fetched that covers [lo, hi), if any (handed out: `share`). */
  fetching(key: string, lo: number, hi: number): InflightExtent | undefined {
    const e = this.inflight.get(key)?.find((x) => x.lo <= lo && x.hi >= hi);
    e?.share?.();
    return e;
  }

  /** The last extent of slot `key` this process saw on disk (it may have changed since). */
  seenExtent(key: string): { lo: number; hi: number } | undefined {
    return this.seen.get(key);
  }

  private see(key: string, lo: number, hi: number): void {
    this.seen.delete(key);
    this.seen.set(key, { lo, hi });
    // Bounds only, 2 numbers a slot: 64k slots (64 GiB read) before the oldest are forgotten.
    if (this.seen.size > SEEN_SLOTS) this.seen.delete(this.seen.keys().next().value!);
  }

  /** The extents of slot `key` being fetched (whose `payload`, if taken, is taken at once). */
  fetchingIn(key: string): readonly InflightExtent[] {
    return this.inflight.get(key) ?? [];
  }

  /** Announces a fetch, until `unannounce`: readers it covers share it. */
  announce(key: string, e: InflightExtent): void {
    const list = this.inflight.get(key);
    if (list) list.push(e);
    else this.inflight.set(key, [e]);
  }

  unannounce(key: string, e: InflightExtent): void {
    const list = this.inflight.get(key);
    const at = list?.indexOf(e) ?? -1;
    if (at < 0) return;
    list!.splice(at, 1);
    if (list!.length > 0) return;
    this.inflight.delete(key);
    // The fetch that would have joined a parked piece failed or landed apart: settle the slot now.
    if (this.parked.has(key)) this.flushParked(key);
  }

  /**
   * Waits (at most `drainMs`) for the fetches under way to land on disk: called on shutdown
   * before the connections close, so the last readahead is not fetched again by the next run.
   */
  async drain(): Promise<void> {
    const pending = [...this.inflight.values()].flat().map((e) => (e.landed ?? e.payload).catch(() => {}));
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(pending), new Promise((res) => (timer = setTimeout(res, this.config.drainMs)))]);
    clearTimeout(timer);
    await Promise.all([...this.writes]);
  }

  /** Waits for the writes under way, keeps the budget, records the counters. */
  async close(): Promise<void> {
    if (this.closed) return;
    // Pieces still parked (their slot's fetches cut short by the end of the run) are settled first.
    for (const slot of [...this.parked.keys()]) this.flushParked(slot);
    this.closed = true;
    clearInterval(this.statsTimer);
    await this.folding;
    await Promise.all([...this.writes]);
    await this.evicting;
    await this.writer.close();
    // What this process wrote since its last scan, together with what the others wrote.
    if (this.writtenSinceScan > 0 || this.estimate > this.budget) await this.evict().catch(() => {});
    await this.flushStats();
  }
}
