/**
 * The read-only filesystem core: path lookup, attributes, directory listings, open handles and
 * reads, over the tree built from the manifest. It knows nothing of FUSE (no callbacks, no errno
 * numbers): it returns values or throws SlicefsErrors, and the adapter in ./fuse/ translates.
 *
 * Sizes: known from the manifest, or probed before mounting (./size-probe.ts: unsized files and
 * every index), so `getattr` answers from memory.
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
    return { kind: 'file', size: await this.sizeOf(node), mtime: node.mtime, perm: 0o444, nlink: 1 };
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
    this.handles.get(fh)?.reader.close();
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

  /** Every size is known once mounted (./size-probe.ts); a tree used without that probes here. */
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
