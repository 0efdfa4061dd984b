/**
 * The directory tree of a mount, built once from the manifest (it does not change while mounted).
 * Directories come from entry paths; an entry's index appears beside its file under the name
 * samtools/htslib looks for: `x.bam.bai`, `x.bam.csi`, `x.cram.crai`, `x.vcf.gz.tbi`.
 * Lookups of names that are not in the tree (htslib probes `x.bam.csi` before `x.bam.bai`) are
 * answered from this map, with no request.
 */
import { manifestError } from '../manifest/manifest-error.js';
import type { EncryptionRef, Manifest, ManifestEntry } from '../manifest/types.js';
import type { ObjectSource } from '../source/object-source.js';
import { indexNameFor } from '../manifest/index-name.js';
import { isC4ghUrl } from '../manifest/url-tsv.js';

export interface FileNode {
  kind: 'file';
  name: string;
  source: ObjectSource;
  /** Size: from the manifest, or probed before mounting. */
  size: number | undefined;
  mtime: Date;
  /** The manifest entry (for the main file) or undefined for an index beside it. */
  entry?: ManifestEntry;
}

export interface DirNode {
  kind: 'dir';
  name: string;
  children: Map<string, TreeNode>;
  mtime: Date;
}

export type TreeNode = FileNode | DirNode;

/** Extensions of index files, and the suffix the index takes after the data file's own name. */
export function buildTree(
  manifest: Manifest,
  sourceFor: (url: string, size: number | undefined, encryption?: EncryptionRef) => ObjectSource,
  mtime = new Date(),
): DirNode {
  const root: DirNode = { kind: 'dir', name: '', children: new Map(), mtime };
  const add = (path: string, node: FileNode, line: number) => {
    const segs = path.split('/');
    let dir = root;
    for (const seg of segs.slice(0, -1)) {
      let child = dir.children.get(seg);
      if (!child) {
        child = { kind: 'dir', name: seg, children: new Map(), mtime };
        dir.children.set(seg, child);
      } else if (child.kind !== 'dir') {
        throw manifestError(manifest.file, line, undefined, `path '${path}' needs '${seg}' to be a directory, but it is a file`);
      }
      dir = child;
    }
    const name = segs.at(-1)!;
    const existing = dir.children.get(name);
    if (existing) {
      const what = existing.kind === 'dir' ? 'a directory' : `the file from line ${existing.entry?.line ?? '?'}`;
      throw manifestError(manifest.file, line, undefined, `'${path}' is already ${what}`);
    }
    dir.children.set(name, node);
  };
  for (const e of manifest.entries) {
    // An encrypted file's size is its plaintext's, known once its header is read (probed before mounting).
    const encryption = e.encryption ? { headerUrl: e.headerUrl } : undefined;
    add(e.path, { kind: 'file', name: e.path.split('/').at(-1)!, source: sourceFor(e.url, e.size, encryption), size: encryption ? undefined : e.size, mtime, entry: e }, e.line);
  }
  for (const e of manifest.entries) {
    if (!e.indexUrl) continue;
    const dataName = e.path.split('/').at(-1)!;
    const indexName = indexNameFor(dataName, e.indexUrl, { indexFileName: e.indexFileName, dataFileName: e.fileName });
    const dirPart = e.path.split('/').slice(0, -1);
    const indexPath = [...dirPart, indexName].join('/');
    add(indexPath, { kind: 'file', name: indexName, source: sourceFor(e.indexUrl, undefined, isC4ghUrl(e.indexUrl) ? {} : undefined), size: undefined, mtime }, e.line);
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
