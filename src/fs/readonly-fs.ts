/**
 * The read-only filesystem core: path lookup, attributes, directory listings, open handles and
 * reads, over the tree built from the manifest. It knows nothing of FUSE (no callbacks, no errno
 * numbers): it returns values or throws SlicefsErrors, and the adapter in ./fuse/ translates.
 *
 * Sizes: known from the manifest, probed before mounting, or (index files, whose size no manifest
 * column gives) probed on the first `getattr` in their directory, one shared request per file.
 * Reads: each open handle gets its own RangeReader (its own readahead), all over one BlockCache.
 * Every read answers within `readDeadlineMs`, below fuse-native's operation timeout, even when the
 * server stalls: the fetch goes on (bounded by the transport budget) but the reader gets ETIMEDOUT.
 */
import type { BlockCache } from '../cache/block-cache.js';
import type { ReaderConfig } from '../config.js';
import { SlicefsError } from '../errors.js';
import { RangeReader } from '../reader/range-reader.js';
import type { Stats } from '../stats.js';
import { walkFiles, type DirNode, type FileNode, type TreeNode } from './tree.js';

/** Size probes run at once for one directory's index files (one connection pool's worth). */
const SIBLING_PROBES = 16;

export interface Attr {
  kind: 'file' | 'dir';
  size: number;
  mtime: Date;
  /** Permission bits (no type bits). */
  perm: number;
  nlink: number;
}

export interface FsOptions {
  reader: ReaderConfig;
  /** Longest a read may take before it fails with ETIMEDOUT. */
  readDeadlineMs: number;
}

interface Handle {
  node: FileNode;
  reader: RangeReader;
}

export class ReadOnlyFs {
  private readonly handles = new Map<number, Handle>();
  /** Directories whose unsized files are being (or were) probed as a batch. */
  private readonly probedDirs = new WeakSet<DirNode>();
  private nextFh = 1;

  constructor(
    readonly root: DirNode,
    private readonly cache: BlockCache,
    private readonly stats: Stats,
    private readonly options: FsOptions,
  ) {}

  lookup(path: string): TreeNode {
    if (path === '/' || path === '') return this.root;
    let node: TreeNode = this.root;
    for (const seg of path.split('/')) {
      if (seg === '') continue;
      if (node.kind !== 'dir') throw new SlicefsError('NOT_A_DIRECTORY', `${path}: not a directory`);
      const child: TreeNode | undefined = node.children.get(seg);
      if (!child) throw new SlicefsError('NO_SUCH_PATH', `${path}: no such file`);
      node = child;
    }
    return node;
  }

  async getattr(path: string): Promise<Attr> {
    const node = this.lookup(path);
    if (node.kind === 'dir') {
      let subdirs = 0;
      for (const c of node.children.values()) if (c.kind === 'dir') subdirs++;
      return { kind: 'dir', size: 4096, mtime: node.mtime, perm: 0o555, nlink: 2 + subdirs };
    }
    if (node.size === undefined) this.probeSiblings(path);
    return { kind: 'file', size: await this.sizeOf(node), mtime: node.mtime, perm: 0o444, nlink: 1 };
  }

  /**
   * The first stat of an unsized file (an index: no manifest column gives its size) starts the size
   * probes of every unsized file in its directory, with bounded concurrency: `ls -l` stats one file
   * after the other, and one probe per stat would cost a round trip per index file.
   */
  private probeSiblings(path: string): void {
    const dirPath = path.slice(0, Math.max(0, path.lastIndexOf('/')));
    const dir = this.lookup(dirPath || '/');
    if (dir.kind !== 'dir' || this.probedDirs.has(dir)) return;
    this.probedDirs.add(dir);
    const unsized = [...dir.children.values()].filter((c): c is FileNode => c.kind === 'file' && c.size === undefined);
    // Failures surface in the getattr of that file; here they only end the batch early.
    probeSizes(unsized, SIBLING_PROBES).catch(() => {});
  }

  readdir(path: string): string[] {
    const node = this.lookup(path);
    if (node.kind !== 'dir') throw new SlicefsError('NOT_A_DIRECTORY', `${path}: not a directory`);
    return [...node.children.keys()];
  }

  /** Opens a file for reading; `writable` opens fail with EROFS. */
  async open(path: string, writable: boolean): Promise<number> {
    const node = this.lookup(path);
    if (node.kind === 'dir') throw new SlicefsError('IS_A_DIRECTORY', `${path}: is a directory`);
    if (writable) throw new SlicefsError('READ_ONLY', `${path}: read-only filesystem`);
    // First contact pins the version (one shared request per file, none if probed at mount).
    const version = await this.withDeadline(node.source.version(), path);
    const fh = this.nextFh++;
    this.handles.set(fh, { node, reader: new RangeReader(this.cache, { source: node.source, version }, this.options.reader) });
    return fh;
  }

  /**
   * Reads up to `dest.length` bytes at `offset` into `dest` and returns how many (0 at EOF). When
   * the deadline fires first, rejects with TIMEOUT and guarantees `dest` is not written afterwards.
   */
  async readInto(fh: number, dest: Buffer, offset: number): Promise<number> {
    const h = this.handles.get(fh);
    if (!h) throw new SlicefsError('BAD_HANDLE', `bad file handle ${fh}`);
    let gaveUp = false;
    try {
      const n = await this.withDeadline(h.reader.readInto(dest, offset, dest.length, () => gaveUp), h.node.name);
      this.stats.bytesServed += n;
      return n;
    } catch (err) {
      gaveUp = true;
      throw err;
    }
  }

  release(fh: number): void {
    this.handles.delete(fh);
  }

  get openHandles(): number {
    return this.handles.size;
  }

  /** Totals for statfs / df. */
  totals(): { files: number; bytes: number } {
    let files = 0;
    let bytes = 0;
    for (const f of walkFiles(this.root)) {
      files++;
      bytes += f.size ?? 0;
    }
    return { files, bytes };
  }

  private async sizeOf(node: FileNode): Promise<number> {
    if (node.size !== undefined) return node.size;
    const v = await this.withDeadline(node.source.version(), node.name);
    node.size = v.size;
    return v.size;
  }

  private withDeadline<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new SlicefsError('TIMEOUT', `${what}: no answer from the server within ${this.options.readDeadlineMs / 1000}s`)),
        this.options.readDeadlineMs,
      );
    });
    return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
  }
}

/** Fills in unknown sizes of the tree's files (not index files: see ReadOnlyFs) with bounded concurrency. */
export async function probeSizes(
  files: FileNode[],
  concurrency: number,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++];
      const v = await f.source.version();
      f.size = v.size;
      onProgress?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
}
