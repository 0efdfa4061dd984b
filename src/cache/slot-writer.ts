/**
 * The disk tier's writes, off the read path (write behind). DiskTier decides what to write and
 * when (one write at a time per slot, the pieces parked in memory, the budget); a SlotWriter does
 * the work of one write: it reads the slot's extent on disk, joins it with the new pieces, hashes
 * the result and writes it (a temporary file renamed into place, ./chunk-file.ts).
 *
 * Where the time went before (docs/benchmarks.md, `node --cpu-prof` of a cold 1 GiB `dd` through
 * the mount): every byte was copied three times on the FUSE thread (into a chunk record as it
 * arrived, into a second record when the write joined its pieces, and by WebCrypto, which copies
 * its input before hashing on libuv's pool), each copy into a new 1 MiB buffer (page faults, and
 * external memory that made V8 collect garbage for a fifth of the thread's time), and each chunk
 * cost a dozen file-system calls whose promises the same thread settled. Now the pieces stay the
 * transport's buffers (views, no copy; shared with the writer thread without a copy when they
 * are SharedArrayBuffers, as the fetch worker sends them), the header is hashed over the parts
 * in place, and the file is written part by part, all on the writer's thread (./slot-writer-worker.ts).
 *
 * The same SlotWriter runs in the calling thread (`InlineSlotWriter`) for commands that write
 * little (`view`, `download`), which need not pay a thread's start-up.
 */
import { Worker } from 'node:worker_threads';
import { constants } from 'node:fs';
import { open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { notOwnedReason, type WriteRoot } from '../util/safe-fs.js';
import { allocChunk, checkChunk, chunkHeader, CHUNK_HEADER_BYTES, isOldFormat, payloadOf, type ChunkShape } from './chunk-file.js';
import { META } from './disk-layout.js';

/** What reading a chunk file gave. A bad file (`bad`) has been deleted, if it was still the same file. */
export type ChunkFileRead =
  | { kind: 'missing' }
  | { kind: 'foreign'; reason: string }
  | { kind: 'good'; lo: number; payload: Buffer; mtimeMs: number }
  | { kind: 'bad'; reason: string; old: boolean };

/**
 * Reads and checks chunk file `path` (never through a symlink, never one that is not the user's
 * alone). `touchAfterMs`: a good file older than this gets a new mtime (its "last used" time).
 */
export async function readChunkFile(path: string, shape: ChunkShape, touchAfterMs?: number): Promise<ChunkFileRead> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return { kind: 'missing' };
  }
  let bad: string;
  let old = false;
  let ino = 0;
  try {
    const s = await fh.stat();
    ino = s.ino;
    const notOwned = notOwnedReason(path, s);
    if (notOwned) return { kind: 'foreign', reason: notOwned };
    if (s.size <= CHUNK_HEADER_BYTES || s.size > CHUNK_HEADER_BYTES + shape.slotLength) {
      bad = `${s.size} bytes, at most ${CHUNK_HEADER_BYTES + shape.slotLength} expected`;
    } else {
      const record = allocChunk(s.size - CHUNK_HEADER_BYTES);
      let got = 0;
      while (got < record.length) {
        const { bytesRead } = await fh.read(record, got, record.length - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      const checked = got < record.length ? 'short read' : await checkChunk(record, shape);
      if (typeof checked !== 'string') {
        const now = Date.now();
        if (touchAfterMs !== undefined && now - s.mtimeMs > touchAfterMs) await fh.utimes(now / 1000, now / 1000).catch(() => {});
        return { kind: 'good', lo: checked.lo, payload: payloadOf(record), mtimeMs: s.mtimeMs };
      }
      bad = checked;
      old = isOldFormat(record);
    }
  } catch {
    return { kind: 'missing' };
  } finally {
    await fh.close().catch(() => {});
  }
  // Only the file that was read: another process may have put a good one in its place since.
  const now = await stat(path).catch(() => undefined);
  if (now?.ino === ino) await unlink(path).catch(() => {});
  return { kind: 'bad', reason: bad, old };
}

/** A piece of a slot to write: its bytes from `lo` (slot-relative) on, in parts (views, not joined). */
export interface SlotPiece {
  lo: number;
  parts: Uint8Array[];
}

export const pieceLength = (p: SlotPiece) => p.parts.reduce((n, b) => n + b.length, 0);

export interface SlotWriteRequest {
  /** The object's directory, its meta.json text, and the slot. */
  dir: string;
  meta: string;
  index: number;
  shape: ChunkShape;
  /** New pieces: the one being stored (if any) first, then the pieces parked for the slot. */
  pieces: SlotPiece[];
  /** `pieces[0]` is the piece being stored (else all are parked ones being settled). */
  stored: boolean;
  /** Other fetches of the slot are under way: pieces apart from the disk's extent wait for them. */
  busy: boolean;
}

export interface SlotWriteResult {
  /** Indexes (in `pieces`) of the pieces to park again: apart from what was written, and `busy`. */
  park: number[];
  /** The extent now on disk (written, or found and kept). */
  extent?: { lo: number; hi: number };
  /** Bytes the directory grew by (negative: none; the header of a new file counted). */
  added: number;
  /** The extent found on disk was damaged (and deleted); `old`: only of the format before extents. */
  damaged?: { reason: string; old: boolean };
  /** The write failed: errno code (ENOENT twice: the directory was removed under it). */
  error?: { code?: string; message: string };
}

interface Run {
  lo: number;
  hi: number;
  /** Indexes into the pieces; -1 for the disk's extent. */
  members: number[];
}

/** Pieces joined where they overlap or touch (ordered by `lo`). */
function joinRuns(extents: { lo: number; hi: number; id: number }[]): Run[] {
  const sorted = [...extents].sort((a, b) => a.lo - b.lo);
  const runs: Run[] = [];
  for (const e of sorted) {
    const last = runs[runs.length - 1];
    if (last && e.lo <= last.hi) {
      last.hi = Math.max(last.hi, e.hi);
      last.members.push(e.id);
    } else runs.push({ lo: e.lo, hi: e.hi, members: [e.id] });
  }
  return runs;
}

/**
 * Does one write of a slot. The extent on disk and the new pieces are joined into runs where they
 * overlap or touch. While other fetches of the slot are under way (`busy`), the run holding the
 * disk's extent (else the stored piece) is written and the pieces apart from it go back to be
 * parked: the slot's next write joins them. Otherwise the longest run is written and the others
 * are dropped: a chunk file holds one extent.
 */
export class SlotWriter {
  /** Object directories made (with meta.json) by this writer. */
  private readonly ready = new Set<string>();

  constructor(private readonly root: WriteRoot) {}

  async write(req: SlotWriteRequest): Promise<SlotWriteResult> {
    const path = join(req.dir, `c${req.index}`);
    const result: SlotWriteResult = { park: [], added: -1 };
    try {
      const read = await readChunkFile(path, req.shape);
      const have = read.kind === 'good' ? read : undefined;
      if (read.kind === 'bad') result.damaged = { reason: read.reason, old: read.old };
      if (req.pieces.length === 0) return result;
      const extents = req.pieces.map((p, id) => ({ lo: p.lo, hi: p.lo + pieceLength(p), id }));
      if (have) extents.push({ lo: have.lo, hi: have.lo + have.payload.length, id: -1 });
      const runs = joinRuns(extents);
      let target: Run | undefined;
      if (req.busy) {
        const anchor = have ? -1 : req.stored ? 0 : undefined;
        target = runs.find((r) => anchor !== undefined && r.members.includes(anchor));
        for (const r of runs) if (r !== target) for (const id of r.members) if (id >= 0) result.park.push(id);
      } else {
        for (const r of runs) if (!target || r.hi - r.lo > target.hi - target.lo || (r.hi - r.lo === target.hi - target.lo && r.members.includes(-1))) target = r;
      }
      if (have) result.extent = { lo: have.lo, hi: have.lo + have.payload.length };
      // Nothing the disk lacks.
      if (!target || (have && target.lo === have.lo && target.hi === have.lo + have.payload.length)) return result;
      // The run's bytes in order, each member's beyond what the ones before it gave (views only).
      const members = target.members.map((id) => (id < 0 ? { lo: have!.lo, parts: [have!.payload as Uint8Array] } : req.pieces[id])).sort((a, b) => a.lo - b.lo);
      const parts: Uint8Array[] = [];
      let at = target.lo;
      for (const m of members) {
        let pos = m.lo;
        for (const part of m.parts) {
          const end = pos + part.length;
          if (end > at) {
            parts.push(pos >= at ? part : part.subarray(at - pos));
            at = end;
          }
          pos = end;
        }
      }
      const header = chunkHeader(parts, req.shape.chunkBytes, req.index, target.lo, req.shape.keyHash);
      for (let attempt = 0; ; attempt++) {
        try {
          if (!this.ready.has(req.dir)) {
            await this.root.mkdirs(req.dir);
            await this.root.replace(join(req.dir, META), req.meta);
            this.ready.add(req.dir);
          }
          await this.root.replace(path, [header, ...parts]);
          break;
        } catch (e) {
          // The directory was evicted or cleared meanwhile (by any process): make it again, once.
          if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt === 0) {
            this.ready.delete(req.dir);
            continue;
          }
          throw e;
        }
      }
      result.extent = { lo: target.lo, hi: target.hi };
      result.added = CHUNK_HEADER_BYTES + target.hi - target.lo - (have ? CHUNK_HEADER_BYTES + have.payload.length : 0);
      return result;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      result.error = { code: err.code, message: err.message ?? String(e) };
      return result;
    }
  }
}

/** Where the tier's writes run: in this thread or in the writer thread. */
export interface SlotWriterClient {
  write(req: SlotWriteRequest): Promise<SlotWriteResult>;
  close(): Promise<void>;
}

export class InlineSlotWriter implements SlotWriterClient {
  private readonly writer: SlotWriter;
  constructor(root: WriteRoot) {
    this.writer = new SlotWriter(root);
  }
  write(req: SlotWriteRequest): Promise<SlotWriteResult> {
    return this.writer.write(req);
  }
  async close(): Promise<void> {}
}

/** Messages to and from ./slot-writer-worker.ts. */
export type ToSlotWriter = { type: 'write'; id: number; req: SlotWriteRequest };
export type FromSlotWriter = { type: 'done'; id: number; result: SlotWriteResult };
export interface SlotWriterInit {
  /** The root every write goes through (WriteRoot.prepare with an owned root, as DiskTier.open). */
  rootDir: string;
}

/**
 * The writer thread. Started at the first write (a run that only reads never starts it). Pieces in
 * SharedArrayBuffers (the fetch worker's) reach it without a copy; others are copied by
 * postMessage. If the thread dies, its writes fail (not cached) and the next write starts another.
 */
export class WorkerSlotWriter implements SlotWriterClient {
  private worker?: Worker;
  private nextId = 1;
  private readonly calls = new Map<number, (r: SlotWriteResult) => void>();

  constructor(private readonly init: SlotWriterInit) {}

  write(req: SlotWriteRequest): Promise<SlotWriteResult> {
    const w = this.ensure();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.calls.set(id, resolve);
      w.ref();
      w.postMessage({ type: 'write', id, req } satisfies ToSlotWriter);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.fail(w, 'closed');
    if (w) await w.terminate();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./slot-writer-worker.js', import.meta.url), { workerData: this.init });
    w.on('message', (m: FromSlotWriter) => {
      const done = this.calls.get(m.id);
      this.calls.delete(m.id);
      if (this.calls.size === 0) w.unref();
      done?.(m.result);
    });
    w.on('error', (e) => this.fail(w, e.message));
    w.on('exit', (code) => this.fail(w, `exit ${code}`));
    this.worker = w;
    return w;
  }

  private fail(w: Worker | undefined, why: string): void {
    if (w && this.worker === w) this.worker = undefined;
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const c of calls) c({ park: [], added: -1, error: { message: `the disk cache's writer thread stopped (${why})` } });
  }
}
