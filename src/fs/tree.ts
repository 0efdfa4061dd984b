/**
 * The directory tree of a mount, built once from the manifest (it does not change while mounted).
 * Which files it holds, and where, is decided by ../manifest/tree-files.ts (which also refuses a
 * tree that cannot be built): each entry's file, and its index beside it under the name
 * samtools/htslib looks for (`x.bam.bai`, `x.bam.csi`, `x.cram.crai`, `x.vcf.gz.tbi`).
 * Lookups of names that are not in the tree (htslib probes `x.bam.csi` before `x.bam.bai`) are
 * answered from this map, with no request.
 */
import { treeFiles } from '../manifest/tree-files.js';
import type { EncryptionRef, Manifest, ManifestEntry } from '../manifest/types.js';
import type { ObjectSource } from '../source/object-source.js';
import { isC4ghUrl } from '../manifest/url-tsv.js';

export interface FileNode {
  kind: 'file';
  name: string;
  /** Its path in the tree (for messages). */
  path: string;
  source: ObjectSource;
  /** Size: from the manifest, or probed before mounting. */
  size: number | undefined;
  mtime: Date;
  /** The entry's data file, or the index beside it. */
  role: 'data' | 'index';
  /** The manifest entry it comes from. */
  entry: ManifestEntry;
}

export interface DirNode {
  kind: 'dir';
  name: string;
  children: Map<string, TreeNode>;
  mtime: Date;
}

export type TreeNode = FileNode | DirNode;

export function buildTree(
  manifest: Manifest,
  sourceFor: (url: string, size: number | undefined, encryption?: EncryptionRef) => ObjectSource,
  mtime = new Date(),
): DirNode {
  const root: DirNode = { kind: 'dir', name: '', children: new Map(), mtime };
  for (const f of treeFiles(manifest)) {
    const segs = f.path.split('/');
    let dir = root;
    for (const seg of segs.slice(0, -1)) {
      let child = dir.children.get(seg);
      if (!child) {
        child = { kind: 'dir', name: seg, children: new Map(), mtime };
        dir.children.set(seg, child);
      }
      // treeFiles refused every path that needs a file to be a directory.
      dir = child as DirNode;
    }
    const e = f.entry;
    let node: FileNode;
    if (f.role === 'data') {
      // An encrypted file's size is its plaintext's, known once its header is read (probed before mounting).
      const encryption = e.encryption ? { headerUrl: e.headerUrl } : undefined;
      node = { kind: 'file', name: segs.at(-1)!, path: f.path, source: sourceFor(e.url, e.size, encryption), size: encryption ? undefined : e.size, mtime, role: 'data', entry: e };
    } else {
      node = { kind: 'file', name: segs.at(-1)!, path: f.path, source: sourceFor(f.url, undefined, isC4ghUrl(f.url) ? {} : undefined), size: undefined, mtime, role: 'index', entry: e };
    }
    dir.children.set(node.name, node);
  }
  return root;
}

/** Every file node of the tree (for size probing and stats). */
export function* walkFiles(dir: DirNode): Generator<FileNode> {
  for (const child of dir.children.values()) {
    if (child.kind === 'file') yield child;
    else yield* walkFiles(child);
  }
}

/** Takes the file at `path` out of the tree, and the directories left empty by it. */
export function removeFile(root: DirNode, path: string): void {
  const segs = path.split('/');
  const dirs: DirNode[] = [root];
  for (const seg of segs.slice(0, -1)) {
    const child = dirs.at(-1)!.children.get(seg);
    if (child?.kind !== 'dir') return;
    dirs.push(child);
  }
  dirs.at(-1)!.children.delete(segs.at(-1)!);
  for (let i = dirs.length - 1; i > 0 && dirs[i].children.size === 0; i--) dirs[i - 1].children.delete(segs[i - 1]);
}
