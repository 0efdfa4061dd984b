/**
 * A small on-disk cache of whole files (indexes), so a second `view` of the same object fetches no
 * index. Keyed by the object's `cacheKey` (identity and pinned version, never a URL signature): a
 * changed object can never be served from an old entry, nor `dl?id=B` from `dl?id=A`'s. Safe for
 * several processes: entries are written to a temporary file and renamed into place.
 *
 * Trust: the cache root (`--cache-dir`) and everything under it must be the user's alone
 * (util/safe-fs.ts, an `owned` root): a root that is a symlink, belongs to another user or is
 * writable by others is refused with one warning, and the view goes on without the cache, neither
 * reading nor writing it; so is a directory or an entry under it that is not the user's. What
 * another local user could plant is therefore never read. Each entry also carries its key's hash
 * and its bytes' SHA-256 (below): one renamed to another key's name, truncated or damaged is a
 * miss and is fetched again. Modes 0700/0600: cached controlled data is readable by its owner only.
 * A cache that cannot be written (read-only or full disk) is skipped with one warning.
 *
 * Entry format: magic "SFI1" (4 bytes), SHA-256 of the key (32), SHA-256 of the bytes (32), the
 * bytes. Entries of the older format (the bytes alone) are misses and are replaced.
 */
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { PRIVATE_MODES, reasonOf, UnsafePathError, WriteRoot } from '../util/safe-fs.js';

const MAGIC = Buffer.from('SFI1');
const HEADER_BYTES = MAGIC.length + 32 + 32;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest();

export class FileCache {
  private warned = false;
  /** Off for the rest of the run (a refusal, or a write that failed). */
  private off = false;
  private root?: Promise<WriteRoot | undefined>;

  constructor(
    readonly dir: string,
    private readonly warn: (msg: string) => void = () => {},
  ) {}

  private pathFor(keyHash: Buffer): string {
    const h = keyHash.toString('hex');
    return join(this.dir, h.slice(0, 2), h);
  }

  private stop(e: unknown): void {
    this.off = true;
    if (this.warned) return;
    this.warned = true;
    this.warn(`warning: cannot use the cache directory ${dirname(this.dir)} (${reasonOf(e)}); going on without it`);
  }

  /** The cache root (`--cache-dir`, which holds this one), looked at once; undefined when refused. */
  private rootOf(): Promise<WriteRoot | undefined> {
    this.root ??= WriteRoot.prepare(dirname(this.dir), PRIVATE_MODES, { owned: true }).catch((e: unknown) => {
      this.stop(e);
      return undefined;
    });
    return this.root;
  }

  /** The entry's bytes if it is there, whole, for this key and at most `maxBytes` long. */
  private async read(root: WriteRoot, keyHash: Buffer, maxBytes: number): Promise<Buffer | undefined> {
    const fh = await root.openRead(this.pathFor(keyHash));
    if (!fh) return undefined;
    try {
      // The file's size is checked first: it must not decide what is allocated.
      const { size } = await fh.stat();
      if (size < HEADER_BYTES || size > HEADER_BYTES + maxBytes) return undefined;
      const file = await fh.readFile();
      const bytes = file.subarray(HEADER_BYTES);
      const whole = file.subarray(0, 4).equals(MAGIC) && file.subarray(4, 36).equals(keyHash) && file.subarray(36, 68).equals(sha256(bytes));
      return whole ? bytes : undefined;
    } finally {
      await fh.close().catch(() => {});
    }
  }

  /**
   * The cached bytes for `key`, or `fetch()`'s, which are then stored. An entry longer than
   * `maxBytes` is not read (a miss): no file decides how much is allocated.
   */
  async getOrFetch(key: string, fetch: () => Promise<Buffer>, maxBytes: number): Promise<{ bytes: Buffer; hit: boolean }> {
    const keyHash = sha256(key);
    const root = await this.rootOf();
    if (root && !this.off) {
      try {
        const cached = await this.read(root, keyHash, maxBytes);
        if (cached) return { bytes: cached, hit: true };
      } catch (e) {
        // Something under the root is not the user's: nothing of it is read or written. Any other
        // failure to read an entry is a miss.
        if (e instanceof UnsafePathError) this.stop(e);
      }
    }
    const bytes = await fetch();
    if (root && !this.off) {
      try {
        const path = this.pathFor(keyHash);
        await root.mkdirs(dirname(path));
        await root.replace(path, Buffer.concat([MAGIC, keyHash, sha256(bytes), bytes]));
      } catch (e) {
        this.stop(e);
      }
    }
    return { bytes, hit: false };
  }
}
