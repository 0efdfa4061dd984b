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
import { readFile, rm } from 'node:fs/promises';
import type { ObjectVersion } from '../transport/version.js';
import type { WriteRoot } from '../util/safe-fs.js';
import type { ByteRange } from './range-set.js';

/**
 * 2: the identity is source/identity.ts's rule 2 (a URL's query kept, its signature dropped). A
 * format-1 journal named a URL without its query, so it could belong to `dl?id=A` as well as
 * `dl?id=B`: it is not trusted, and the file starts again.
 */
export const JOURNAL_FORMAT = 2;

export interface JournalData {
  format: typeof JOURNAL_FORMAT;
  /** The object's identity as recorded (source/identity.ts `recordedIdentity`: a query hashed): a journal of another object is ignored. */
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

/** Writes the journal atomically: temporary file, fsync, rename, directory fsync (util/safe-fs.ts). */
export async function saveJournal(root: WriteRoot, path: string, data: JournalData): Promise<void> {
  await root.replace(path, JSON.stringify(data), { sync: true });
}

export async function removeJournal(path: string): Promise<void> {
  await rm(path, { force: true });
}
