/**
 * `slicefs download` without argv: every planned file fetched in parts over parallel Range
 * requests, written to `NAME.part`, journaled, verified and renamed into place.
 *
 * The algorithm:
 *   1. Lock the directory; read the catalogue. A file already present and listed with the same
 *      size, MD5 and source (the object's identity), and not changed since it was verified (its
 *      ctime is not later than the row's `verified` time), is skipped (`--force`: fetched again);
 *      one present but not listed so, or changed since (written, replaced, touched, chmod-ed), is
 *      hashed and kept when it checks out.
 *   2. Pin each object's version (HEAD) and read its journal: a journal of the same version
 *      resumes; a journal of another version restarts the file, with a warning (mixing the bytes of
 *      two versions is impossible: every response is checked against the pinned version too).
 *   3. Refuse to start when the directory's free space is below the bytes still to fetch.
 *   4. Cut what is missing into parts (`partSize`, aligned, so a resumed file's parts are the
 *      same) and fetch them with `parallel` streams in all, file after file: a large file gets every
 *      stream, small files run several at once. Bytes are written at their offsets through a 1 MiB
 *      buffer; a rate limiter, when set, is awaited per chunk (real backpressure on the socket).
 *   5. What a stream has written is checkpointed: synced (fdatasync), then added to the journal
 *      (written atomically), at the end of each part and, within a part, every CHECKPOINT_MS or
 *      CHECKPOINT_BYTES, whichever comes first (in the background: the stream reads on meanwhile). So
 *      a crash at any point, SIGKILL included, loses at most about a second of each stream's transfer
 *      (or CHECKPOINT_BYTES), and the next run asks only for the rest of each part. A part that stops
 *      (Ctrl-C, a failure) checkpoints what it wrote before it ends.
 *   6. The MD5 is computed as the contiguous prefix grows, on a worker thread that reads back the
 *      bytes just written (from the page cache, not the network); a resumed file re-reads its
 *      prefix from disk once. A job may ask for its plaintext's SHA-256 as well (GHGA), from
 *      the same reads (decrypting a Crypt4GH file on that worker), not in a second pass.
 *   7. A complete file is checked against the manifest's MD5: a mismatch is set aside as
 *      `NAME.md5-mismatch` and reported (the next run fetches it anew); a match is renamed to NAME
 *      (atomic) and catalogued. `--verify` sets aside a present file that fails the same way, and
 *      drops its catalogue row, so the next run fetches it again instead of skipping it.
 *   8. Ctrl-C stops the streams, checkpoints what they wrote, keeps the journals and says how to
 *      resume; a full disk stops everything the same way; any other failure stops only its file.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { open, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { C4ghKeyPair } from '../crypt4gh/keys.js';
import { SlicefsError, messageOf, type ErrorCode } from '../errors.js';
import { recordedIdentity } from '../source/identity.js';
import type { ObjectSource } from '../source/object-source.js';
import { versionMismatch, type ObjectVersion } from '../transport/version.js';
import { PRIVATE_MODES, WriteRoot, type Modes } from '../util/safe-fs.js';
import { formatBytes } from '../util/size.js';
import { CATALOGUE_NAME, readCatalogue, writeCatalogue, type CatalogueEntry } from './catalogue.js';
import { loadJournal, removeJournal, saveJournal, JOURNAL_FORMAT } from './journal.js';
import { checkWritable, type PlannedFile } from './layout.js';
import { lockDir } from './lock.js';
import { Md5Hasher } from './md5-hasher.js';
import type { PlainDigest, PlainSha256Spec } from './md5-worker.js';
import type { ProgressReporter } from './progress.js';
import { RangeSet } from './range-set.js';

export interface DownloadJob {
  file: PlannedFile;
  source: ObjectSource;
  /**
   * Also hash the plaintext with SHA-256 while the file is written (GHGA states that checksum), in
   * the MD5's pass on the hashing worker: the bytes as written, or with `crypt4gh` what decrypting
   * the Crypt4GH file gives. Its digest is handed to `verify`; a decryption that fails fails the file
   * as `verify` throwing would.
   */
  plainSha256?: { crypt4gh?: { keys: C4ghKeyPair[] } };
  /**
   * A check of the finished file beyond its MD5 (GHGA: the plaintext's SHA-256), run on the
   * complete `.part` before it is renamed into place; throwing keeps the bytes aside and fails it.
   */
  verify?: (partFile: string, digests: { plainSha256?: string }) => Promise<void>;
}

export interface DownloadConfig {
  /** Bytes per Range request and per journal entry. */
  partSize: number;
  /** Range requests in flight, all files together. */
  parallel: number;
}

export interface DownloadOptions {
  dir: string;
  jobs: DownloadJob[];
  config: DownloadConfig;
  force: boolean;
  /** Only check the files already present (no download). */
  verifyOnly: boolean;
  limiter?: { take(n: number): Promise<void> | undefined };
  progress: ProgressReporter;
  /** Aborted by Ctrl-C: the streams stop, journals stay. */
  signal: AbortSignal;
  warn: (line: string) => void;
  manifestFile: string;
  /** Modes of the files and directories made (default 0600/0700: util/safe-fs.ts). */
  modes?: Modes;
}

export type FileStatus = 'done' | 'skipped' | 'verified' | 'failed' | 'missing' | 'interrupted';

export interface FileOutcome {
  path: string;
  status: FileStatus;
  size?: number;
  md5?: string;
  error?: string;
}

export interface DownloadSummary {
  files: FileOutcome[];
  /** Body bytes received in this run (parts re-fetched after an interruption included). */
  bytesFetched: number;
  /** `--verify`: bytes of the files present that were hashed. */
  bytesHashed?: number;
  seconds: number;
  interrupted: boolean;
  diskFull: boolean;
}

/** Where a file's bytes go until it is verified, and its journal. */
export const partPath = (abs: string) => `${abs}.part`;
export const journalPath = (abs: string) => `${abs}.part.journal`;
/** Where bytes that failed their MD5 (or another check) are kept. */
const asidePath = (abs: string, why: 'md5' | 'checksum' | 'size') => `${abs}.${why}-mismatch`;
/** Every name a download of `abs` may write: each is checked before the first byte is written. */
const namesOf = (abs: string) => [abs, partPath(abs), journalPath(abs), asidePath(abs, 'md5'), asidePath(abs, 'checksum'), asidePath(abs, 'size')];

/** Bytes collected from a stream before one write: fewer, larger writes. */
const WRITE_BUFFER = 1024 * 1024;
/** Bytes read per step when hashing a file already present. */
const HASH_STEP = 4 * 1024 * 1024;
/** HEAD requests in flight while planning. */
const PROBE_CONCURRENCY = 16;
/**
 * A stream checkpoints its part in flight (sync, then journal) once this long has passed since its
 * last checkpoint: a kill then loses at most about a second of each stream's transfer, where a whole
 * part could be a minute of it on a slow link (8 MiB at 1 Mbit/s). A checkpoint costs an fdatasync
 * and a journal rewrite (two fsyncs, a rename): milliseconds, once a second per stream.
 */
const CHECKPOINT_MS = 1000;
/**
 * ... or once this many bytes were written since: on a fast link this bounds what a kill loses and
 * what Ctrl-C must still sync before it exits (--parallel x 4 MiB, 32 MiB by default: well within
 * its one second on a disk that writes a few hundred MB/s). 4 MiB is 4 write buffers and half a
 * default part: at 25 MB/s a stream (200 MB/s over 8) checkpoints about 6 times a second.
 */
const CHECKPOINT_BYTES = 4 * 1024 * 1024;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function md5OfFile(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const h = createHash('md5');
    const buf = Buffer.allocUnsafe(HASH_STEP);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return h.digest('hex');
  } finally {
    await fh.close();
  }
}

/**
 * Whether a file is as it was when the catalogue says it was verified: its ctime (set by the
 * kernel on any write, truncate, rename, chmod or utimes, and by nothing a user can fake) is not
 * later than the `verified` time, to the millisecond that column keeps. A file replaced or written
 * in place since, even to the same size and mtime, is hashed again rather than trusted. An
 * unreadable `verified` is not trusted either.
 */
function unchangedSince(st: Stats, verified: string): boolean {
  const at = Date.parse(verified);
  return Number.isFinite(at) && Math.floor(st.ctimeMs) <= at;
}

/** Runs `fn` over `items` with at most `n` at a time. */
async function forEachLimited<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** One file being downloaded. */
class FileTask {
  version!: ObjectVersion;
  done = new RangeSet();
  fh?: FileHandle;
  private opening?: Promise<FileHandle>;
  private md5?: ReturnType<Md5Hasher['file']>;
  private hashing: Promise<unknown> = Promise.resolve();
  private journaling: Promise<void> = Promise.resolve();
  private journalDirty = false;
  failed?: Error;
  outcome?: FileOutcome;
  inFlight = 0;
  partsLeft = 0;

  constructor(
    readonly job: DownloadJob,
    readonly id: string,
    private readonly hasher: Md5Hasher,
    private readonly root: WriteRoot,
  ) {}

  get rel(): string {
    return this.job.file.rel;
  }
  get abs(): string {
    return this.job.file.abs;
  }

  /** Opens (creating and sizing) the part file, once. */
  open(): Promise<FileHandle> {
    this.opening ??= (async () => {
      await this.root.mkdirs(dirname(this.abs));
      const fh = await this.root.open(partPath(this.abs), 'update');
      if ((await fh.stat()).size !== this.version.size) await fh.truncate(this.version.size);
      this.fh = fh;
      return fh;
    })();
    return this.opening;
  }

  /** Records a synced part in the journal; saves are serialized and coalesced. */
  journal(): Promise<void> {
    this.journalDirty = true;
    this.journaling = this.journaling.then(async () => {
      if (!this.journalDirty) return;
      this.journalDirty = false;
      await saveJournal(this.root, journalPath(this.abs), { format: JOURNAL_FORMAT, identity: recordedIdentity(this.job.source.identity), version: this.version, done: this.done.toJSON() });
    });
    return this.journaling;
  }

  /**
   * Makes [start, end) of the part file (written by the caller) durable, then records it: the
   * fdatasync comes first, so the journal never names a byte that is not on disk; then the MD5
   * moves on over the grown prefix. Safe to call for a range already recorded.
   */
  async record(start: number, end: number): Promise<void> {
    if (end <= start || !this.fh) return;
    await this.fh.datasync();
    this.done.add(start, end);
    await this.journal();
    void this.advanceHash().catch(() => {});
  }

  /** The hashing worker's handle of the part file (asking for the plaintext's SHA-256 where the job does). */
  private hashHandle(): ReturnType<Md5Hasher['file']> {
    if (this.md5) return this.md5;
    const want = this.job.plainSha256;
    const c = want?.crypt4gh;
    const spec: PlainSha256Spec | undefined = want && { crypt4gh: c && { keys: c.keys.map((k) => ({ secret: k.secret, public: k.public })), size: this.version.size, label: this.rel } };
    this.md5 = this.hasher.file(partPath(this.abs), spec);
    return this.md5;
  }

  /** Asks the hashing worker to hash the contiguous prefix (it reads the bytes back from disk). */
  advanceHash(): Promise<unknown> {
    const md5 = this.hashHandle();
    const to = this.done.prefixEnd();
    this.hashing = this.hashing.then(() => md5.advance(to));
    return this.hashing;
  }

  async digest(): Promise<{ md5: string; plain?: PlainDigest }> {
    const md5 = this.hashHandle();
    await this.hashing.catch(() => {});
    this.md5 = undefined;
    return md5.digest(this.version.size);
  }

  async close(): Promise<void> {
    await this.journaling.catch(() => {});
    await this.hashing.catch(() => {});
    this.md5?.forget();
    this.md5 = undefined;
    const fh = this.fh;
    this.fh = undefined;
    this.opening = undefined;
    await fh?.close().catch(() => {});
  }
}

interface Part {
  task: FileTask;
  start: number;
  end: number;
}

function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export async function runDownload(o: DownloadOptions): Promise<DownloadSummary> {
  const t0 = performance.now();
  const root = await WriteRoot.prepare(o.dir, o.modes ?? PRIVATE_MODES);
  const lock = await lockDir(root);
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  o.signal.addEventListener('abort', onAbort);
  let bytesFetched = 0;
  let diskFull = false;
  const hasher = new Md5Hasher();
  const tasks = o.jobs.map((job, i) => new FileTask(job, String(i), hasher, root));
  try {
    await root.check(join(root.dir, CATALOGUE_NAME));
    for (const t of tasks) await checkWritable(root, t.job.file, namesOf(t.abs), o.manifestFile);
    const catalogue = await readCatalogue(o.dir);
    const now = () => new Date().toISOString();
    const catalogueEntry = (t: FileTask, size: number, md5: string): CatalogueEntry => ({ path: t.rel, size, md5, source: recordedIdentity(t.job.source.identity), verified: now() });

    // 1. What is already there.
    const toFetch: FileTask[] = [];
    for (const t of tasks) {
      const present = await stat(t.abs).catch(() => undefined);
      const expectedMd5 = t.job.file.md5;
      if (o.verifyOnly) {
        if (!present) {
          t.outcome = { path: t.rel, status: 'missing', error: 'not downloaded' };
          continue;
        }
        const md5 = await md5OfFile(t.abs);
        const listed = catalogue.get(t.rel);
        // A file listed from another object (the manifest names another URL for this path) is that
        // object's: no measure of this one.
        const foreign = listed !== undefined && listed.source !== recordedIdentity(t.job.source.identity);
        const want = expectedMd5 ?? (foreign ? undefined : listed?.md5);
        const sizeWant = t.job.file.size;
        const wrong = want && md5 !== want ? { why: `MD5 ${md5}, expected ${want}`, kind: 'md5' as const } : sizeWant !== undefined && sizeWant !== present.size ? { why: `${present.size} bytes, expected ${sizeWant}`, kind: 'size' as const } : undefined;
        if (foreign && !expectedMd5) t.outcome = { path: t.rel, status: 'failed', size: present.size, md5, error: 'listed from another source (or by an older slicefs) and no MD5 to check: a download fetches it again' };
        else if (wrong) {
          // Set aside and forgotten, so that the next run fetches it anew instead of skipping it.
          await root.rename(t.abs, asidePath(t.abs, wrong.kind));
          catalogue.delete(t.rel);
          t.outcome = { path: t.rel, status: 'failed', size: present.size, md5, error: `${wrong.why}; set aside as ${t.rel}.${wrong.kind}-mismatch; run again to fetch it anew` };
        } else {
          t.outcome = { path: t.rel, status: 'verified', size: present.size, md5, ...(want ? {} : { error: 'no MD5 to check against: size only' }) };
          catalogue.set(t.rel, catalogueEntry(t, present.size, md5));
        }
        continue;
      }
      if (present && !o.force) {
        const listed = catalogue.get(t.rel);
        const skip = (md5: string) => {
          t.outcome = { path: t.rel, status: 'skipped', size: present.size, md5 };
          o.progress.fileStarted(t.id, t.rel, present.size, present.size);
          o.progress.fileDone(t.id, 'skipped');
        };
        // Listed from another object (the manifest names another URL for this path): not trusted.
        const sameObject = listed?.source === recordedIdentity(t.job.source.identity);
        const sameSize = listed?.size === present.size && (t.job.file.size === undefined || t.job.file.size === present.size);
        if (listed && sameObject && sameSize && (!expectedMd5 || listed.md5 === expectedMd5) && unchangedSince(present, listed.verified)) {
          skip(listed.md5);
          continue;
        }
        // Changed since it was verified, or not listed: hashed against the manifest's MD5, or else
        // the one it was verified with.
        const want = expectedMd5 ?? (listed && sameObject && sameSize ? listed.md5 : undefined);
        if (want) {
          const md5 = await md5OfFile(t.abs);
          if (md5 === want) {
            skip(md5);
            catalogue.set(t.rel, catalogueEntry(t, present.size, md5));
            continue;
          }
        }
      }
      toFetch.push(t);
    }
    if (o.verifyOnly) {
      await writeCatalogue(root, catalogue.values());
      const bytesHashed = tasks.reduce((n, t) => n + (t.outcome?.status !== 'missing' ? (t.outcome?.size ?? 0) : 0), 0);
      return { files: tasks.map((t) => t.outcome!), bytesFetched: 0, bytesHashed, seconds: (performance.now() - t0) / 1000, interrupted: false, diskFull: false };
    }

    // 2. Versions and journals.
    await forEachLimited(toFetch, PROBE_CONCURRENCY, async (t) => {
      if (stop.signal.aborted) return;
      try {
        t.version = await t.job.source.version();
      } catch (err) {
        t.failed = err as Error;
        return;
      }
      const jp = journalPath(t.abs);
      if (o.force) {
        await rm(partPath(t.abs), { force: true });
        await removeJournal(jp);
        return;
      }
      const { data, problem } = await loadJournal(jp);
      if (problem) o.warn(`warning: ${t.rel}: ${problem}; starting it again`);
      if (!data) return;
      // Journals written before identities were recorded hashed name the identity itself.
      const ofThis = data.identity === recordedIdentity(t.job.source.identity) || data.identity === t.job.source.identity;
      const why = !ofThis ? 'the journal is of another URL' : versionMismatch(data.version, t.version);
      const part = await stat(partPath(t.abs)).catch(() => undefined);
      if (why) {
        o.warn(`warning: ${t.rel} changed on the server since the last run (${why}); starting it again`);
      } else if (!part || part.size !== t.version.size) {
        o.warn(`warning: ${t.rel}: ${partPath(t.rel)} is missing or has the wrong size; starting it again`);
      } else {
        t.done = new RangeSet(data.done);
        return;
      }
      await rm(partPath(t.abs), { force: true });
      await removeJournal(jp);
    });

    // 3. Free space.
    const live = toFetch.filter((t) => !t.failed);
    const remaining = live.reduce((n, t) => n + (t.version.size - t.done.bytes()), 0);
    const fs = await statfs(o.dir);
    const free = fs.bavail * fs.bsize;
    if (remaining > free) {
      throw new SlicefsError('USAGE', `not enough space in ${o.dir}: ${formatBytes(remaining)} still to download, ${formatBytes(free)} free`);
    }
    const present = live.reduce((n, t) => n + t.done.bytes(), 0);
    if (present > 0) o.progress.note(`resuming: ${formatBytes(present)} of ${formatBytes(present + remaining)} already here`);

    // 4. Parts, file after file.
    const parts: Part[] = [];
    for (const t of live) {
      for (const [a, b] of t.done.missing(t.version.size)) {
        // Part boundaries on multiples of partSize: the same cut in every run.
        for (let s = a; s < b; s = Math.min(b, (Math.floor(s / o.config.partSize) + 1) * o.config.partSize)) {
          parts.push({ task: t, start: s, end: Math.min(b, (Math.floor(s / o.config.partSize) + 1) * o.config.partSize) });
          t.partsLeft++;
        }
      }
    }
    for (const t of toFetch) {
      if (t.failed) {
        t.outcome = { path: t.rel, status: 'failed', error: messageOf(t.failed) };
        o.progress.fileStarted(t.id, t.rel, t.job.file.size ?? 0, 0);
        o.progress.fileDone(t.id, 'failed');
      }
    }

    const started = new Set<FileTask>();
    const finish = async (t: FileTask) => {
      try {
        const fh = await t.open();
        await fh.datasync();
        const { md5, plain } = await t.digest();
        await t.close();
        // The manifest's MD5, and the server's where it states one (Content-MD5, x-goog-hash).
        const checks: [string, string | undefined][] = [
          ["the manifest's", t.job.file.md5],
          ["the server's", t.version.md5],
        ];
        for (const [whose, expected] of checks) {
          if (!expected || md5 === expected) continue;
          const aside = asidePath(t.abs, 'md5');
          await root.rename(partPath(t.abs), aside);
          await removeJournal(journalPath(t.abs));
          throw new SlicefsError('BAD_RESPONSE', `MD5 ${md5} is not ${whose} ${expected}; set aside as ${t.rel}.md5-mismatch; run again to fetch it anew`);
        }
        if (t.job.verify) {
          try {
            if (plain && 'error' in plain) throw plain.error.code ? new SlicefsError(plain.error.code as ErrorCode, plain.error.message) : new Error(plain.error.message);
            await t.job.verify(partPath(t.abs), { plainSha256: plain?.sha256 });
          } catch (err) {
            const aside = asidePath(t.abs, 'checksum');
            await root.rename(partPath(t.abs), aside);
            await removeJournal(journalPath(t.abs));
            throw new SlicefsError(err instanceof SlicefsError ? err.code : 'BAD_RESPONSE', `${messageOf(err)}; set aside as ${t.rel}.checksum-mismatch; run again to fetch it anew`);
          }
        }
        await root.rename(partPath(t.abs), t.abs);
        await removeJournal(journalPath(t.abs));
        catalogue.set(t.rel, catalogueEntry(t, t.version.size, md5));
        t.outcome = { path: t.rel, status: 'done', size: t.version.size, md5 };
        o.progress.fileDone(t.id, 'done');
      } catch (err) {
        t.failed = err as Error;
        t.outcome = { path: t.rel, status: 'failed', error: messageOf(err) };
        o.progress.message(`${t.rel}: ${messageOf(err)}`);
        o.progress.fileDone(t.id, 'failed');
      }
    };
    const begin = async (t: FileTask) => {
      if (started.has(t)) return;
      started.add(t);
      o.progress.fileStarted(t.id, t.rel, t.version.size, t.done.bytes());
      await t.open();
      // A resumed file hashes the prefix it already has (the one second read of a resume).
      if (t.done.prefixEnd() > 0) void t.advanceHash().catch(() => {});
    };
    // Files with nothing left to fetch (empty, or complete before an interruption at the rename).
    for (const t of live) {
      if (t.partsLeft === 0) {
        await begin(t);
        await finish(t);
      }
    }

    const fetchPart = async (p: Part) => {
      const t = p.task;
      const fh = await t.open();
      const buf = Buffer.allocUnsafe(Math.min(WRITE_BUFFER, p.end - p.start));
      let fill = 0;
      // [p.start, bufStart) is written to the part file; [p.start, recorded) is recorded or being so.
      let bufStart = p.start;
      let recorded = p.start;
      let lastCheckpoint = performance.now();
      let checkpointing: Promise<void> | undefined;
      let checkpointError: unknown;
      const flush = async () => {
        let off = 0;
        while (off < fill) {
          const { bytesWritten } = await fh.write(buf, off, fill - off, bufStart + off);
          off += bytesWritten;
        }
        bufStart += fill;
        fill = 0;
      };
      // Records what is written so far, in the background (one at a time per stream).
      const checkpoint = () => {
        lastCheckpoint = performance.now();
        if (bufStart <= recorded) return;
        recorded = bufStart;
        checkpointing = t
          .record(p.start, recorded)
          .catch((err: unknown) => {
            checkpointError ??= err;
          })
          .finally(() => (checkpointing = undefined));
      };
      try {
        await t.job.source.read(
          p.start,
          p.end,
          async (chunk) => {
            if (checkpointError) throw checkpointError;
            bytesFetched += chunk.length;
            o.progress.bytes(t.id, chunk.length);
            for (let off = 0; off < chunk.length; ) {
              const n = Math.min(chunk.length - off, buf.length - fill);
              chunk.copy(buf, fill, off, off + n);
              fill += n;
              off += n;
              if (fill === buf.length) await flush();
            }
            if (!checkpointing && (performance.now() - lastCheckpoint >= CHECKPOINT_MS || bufStart + fill - recorded >= CHECKPOINT_BYTES)) {
              await flush(); // the buffer too: on a slow link it holds seconds of transfer
              checkpoint();
            }
            const wait = o.limiter?.take(chunk.length);
            if (wait) await wait;
          },
          stop.signal,
        );
        await flush();
      } catch (err) {
        // Stopped (Ctrl-C, a full disk, a failure): what the stream wrote is kept for the next run.
        if (!isDiskFull(err)) await flush().catch(() => {});
        await checkpointing;
        await t.record(p.start, bufStart).catch(() => {});
        throw err;
      }
      await checkpointing;
      if (checkpointError) throw checkpointError;
      if (bufStart !== p.end) throw new SlicefsError('BAD_RESPONSE', `${t.job.source.label}: ${bufStart - p.start} bytes of a ${p.end - p.start}-byte range`);
      await t.record(p.start, p.end);
    };

    let next = 0;
    const worker = async () => {
      while (!stop.signal.aborted && next < parts.length) {
        const p = parts[next++];
        const t = p.task;
        if (t.failed) continue;
        t.inFlight++;
        try {
          await begin(t);
          await fetchPart(p);
          t.partsLeft--;
          if (t.partsLeft === 0 && !t.failed) await finish(t);
        } catch (err) {
          if (isDiskFull(err)) {
            diskFull = true;
            stop.abort();
          } else if (stop.signal.aborted) {
            // Interrupted (Ctrl-C, or a full disk met by another stream): the journal has what the
            // part's stream wrote (fetchPart checkpointed it).
          } else if (!t.failed) {
            t.failed = err as Error;
            t.outcome = { path: t.rel, status: 'failed', error: messageOf(err) };
            o.progress.message(`${t.rel}: ${messageOf(err)}`);
            o.progress.fileDone(t.id, 'failed');
          }
        } finally {
          t.inFlight--;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.config.parallel) }, worker));
    const interrupted = stop.signal.aborted;
    for (const t of toFetch) {
      await t.close();
      if (!t.outcome) {
        t.outcome = { path: t.rel, status: 'interrupted', size: t.version?.size, error: diskFull ? 'disk full' : 'interrupted' };
        o.progress.fileDone(t.id, 'interrupted');
      }
    }
    // Everything present and verified: entries of files since removed are dropped.
    const kept: CatalogueEntry[] = [];
    for (const e of catalogue.values()) if (e.path !== CATALOGUE_NAME && (await exists(join(o.dir, ...e.path.split('/'))))) kept.push(e);
    try {
      await writeCatalogue(root, kept);
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      diskFull = true; // the next run writes it
    }
    return { files: tasks.map((t) => t.outcome!), bytesFetched, seconds: (performance.now() - t0) / 1000, interrupted, diskFull };
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    for (const t of tasks) await t.close();
    await hasher.close();
    await lock.release();
  }
}
