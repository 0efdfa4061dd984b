/**
 * A small on-disk cache of whole files (indexes), so a second `view` of the same object fetches no
 * index. Keyed by the object's `cacheKey` (identity and pinned version, never a URL signature): a
 * changed object can never be served from an old entry, nor `dl?id=B` from `dl?id=A`'s. Safe for several processes: entries are written to
 * a temporary file and renamed into place; an entry that cannot be read is fetched again. Modes
 * 0700/0600: cached controlled data is readable only by its owner. Writes go through
 * util/safe-fs.ts rooted at the directory (nothing under it leads a write outside). A cache that
 * cannot be written (read-only or full disk, a symlink refused) is skipped with one warning.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PRIVATE_MODES, reasonOf, WriteRoot } from '../util/safe-fs.js';

/** The file's bytes when it is at most `maxBytes` long; undefined when it is missing, longer or unreadable. */
async function readUpTo(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const { size } = await fh.stat();
    return size <= maxBytes ? await fh.readFile() : undefined;
  } catch {
    return undefined;
  } finally {
    await fh.close().catch(() => {});
  }
}

export class FileCache {
  private warned = false;
  private root?: Promise<WriteRoot>;

  constructor(
    readonly dir: string,
    private readonly warn: (msg: string) => void = () => {},
  ) {}

  private pathFor(key: string): string {
    const h = createHash('sha256').update(key).digest('hex');
    return join(this.dir, h.slice(0, 2), h);
  }

  /**
   * The cached bytes for `key`, or `fetch()`'s, which are then stored. An entry longer than
   * `maxBytes` is not read (a miss): no file decides how much is allocated.
   */
  async getOrFetch(key: string, fetch: () => Promise<Buffer>, maxBytes: number): Promise<{ bytes: Buffer; hit: boolean }> {
    const path = this.pathFor(key);
    const cached = await readUpTo(path, maxBytes);
    if (cached) return { bytes: cached, hit: true };
    const bytes = await fetch();
    try {
      // Rooted at the cache directory (--cache-dir) that holds this one.
      const root = await (this.root ??= WriteRoot.prepare(dirname(this.dir), PRIVATE_MODES));
      await root.mkdirs(dirname(path));
      await root.replace(path, bytes);
    } catch (e) {
      if (!this.warned) {
        this.warned = true;
        this.warn(`warning: cannot write the cache in ${this.dir} (${reasonOf(e)}); going on without it`);
      }
    }
    return { bytes, hit: false };
  }
}
