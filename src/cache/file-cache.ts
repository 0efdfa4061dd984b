/**
 * A small on-disk cache of whole files (indexes), so a second `view` of the same object fetches no
 * index. Keyed by the object's identity and pinned version (never by a presigned URL): a changed
 * object can never be served from an old entry. Safe for several processes: entries are written to
 * a temporary file and renamed into place; an entry that cannot be read is fetched again. Modes
 * 0700/0600: cached controlled data is readable only by its owner. A cache that cannot be written
 * (read-only or full disk) is skipped with one warning.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsProblem, makeDirs } from '../util/fs-problem.js';

export class FileCache {
  private warned = false;

  constructor(
    readonly dir: string,
    private readonly warn: (msg: string) => void = () => {},
  ) {}

  private pathFor(key: string): string {
    const h = createHash('sha256').update(key).digest('hex');
    return join(this.dir, h.slice(0, 2), h);
  }

  /** The cached bytes for `key`, or `fetch()`'s, which are then stored. */
  async getOrFetch(key: string, fetch: () => Promise<Buffer>): Promise<{ bytes: Buffer; hit: boolean }> {
    const path = this.pathFor(key);
    const cached = await readFile(path).catch(() => undefined);
    if (cached) return { bytes: cached, hit: true };
    const bytes = await fetch();
    try {
      await makeDirs(join(path, '..'), 0o700);
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(tmp, bytes, { mode: 0o600 });
      await rename(tmp, path).catch(async (e) => {
        await rm(tmp, { force: true });
        throw e;
      });
    } catch (e) {
      if (!this.warned) {
        this.warned = true;
        this.warn(`warning: cannot write the cache in ${this.dir} (${fsProblem(e as NodeJS.ErrnoException)}); going on without it`);
      }
    }
    return { bytes, hit: false };
  }
}
