/**
 * The journal of one download in progress, beside its `NAME.part`: which object version the bytes
 * belong to and which byte ranges of the part file are complete.
 *
 * Crash safety rests on one ordering: a range is added to the journal only after its bytes were
 * written and the part file was synced (fdatasync), and the journal is replaced atomically (a
 * temporary file, synced, renamed over the old one; then the directory synced). After a crash at
 * any instant, SIGKILL included, the journal on disk names only bytes that are on disk, so a
 * resume re-fetches only what was written after the last checkpoint of each part in flight. A
 * journal that cannot be parsed, or names another object, is not trusted: the file starts again.
 *
 * Ranges need not fall on part boundaries (a part in flight is checkpointed mid-way, about once a
 * second). That is still format 1: the meaning of a range is unchanged (bytes synced), and every
 * version that reads format 1 cuts its parts from the missing ranges, whatever their ends, and
 * hashes only the contiguous prefix; so a journal of either version resumes right in the other.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ObjectVersion } from '../transport/version.js';
import type { ByteRange } from './range-set.js';

export const JOURNAL_FORMAT = 1;

export interface JournalData {
  format: typeof JOURNAL_FORMAT;
  /** The object (URL without query string, or a stable id): a journal of another object is ignored. */
  identity: string;
  version: ObjectVersion;
  /** Complete byte ranges of the part file. */
  done: ByteRange[];
}

/** The journal at `path`, or undefined when there is none or it cannot be trusted (with why). */
export async function loadJournal(path: string): Promise<{ data?: JournalData; problem?: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    return { problem: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  try {
    const d = JSON.parse(text) as JournalData;
    const okRange = (r: unknown) => Array.isArray(r) && r.length === 2 && Number.isSafeInteger(r[0]) && Number.isSafeInteger(r[1]) && r[0] >= 0 && r[1] > r[0];
    if (d.format !== JOURNAL_FORMAT || typeof d.identity !== 'string' || !d.version || !Number.isSafeInteger(d.version.size) || !Array.isArray(d.done) || !d.done.every(okRange)) {
      return { problem: `${path} is not a journal this version of slicefs wrote` };
    }
    if (d.done.some(([, b]) => b > d.version.size)) return { problem: `${path} names bytes past the end of the file` };
    return { data: d };
  } catch {
    return { problem: `${path} is damaged (not JSON)` };
  }
}

/** Syncs a directory so a rename in it survives a crash (best effort where directories cannot be opened). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync().catch(() => {});
  } finally {
    await fh.close();
  }
}

/** Writes the journal atomically: temporary file, fsync, rename, directory fsync. */
export async function saveJournal(path: string, data: JournalData): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(data));
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
}

export async function removeJournal(path: string): Promise<void> {
  await rm(path, { force: true });
}
