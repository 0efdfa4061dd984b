/**
 * The files a manifest puts in the mount's tree: each entry's data file at its path, and its index
 * beside it under the name samtools/htslib looks for (./index-name.ts). The one place that decides
 * them and refuses a tree that cannot be built (two files on one path, a file where a directory
 * must be, an index name taken by another entry's file), so `slicefs manifest` (also `--offline`)
 * and `slicefs mount` accept and refuse the same manifests with the same message.
 * Data files are placed first, then indexes, each in manifest order: a clash is reported on the
 * line of the file placed second.
 */
import { indexNameFor } from './index-name.js';
import { manifestError } from './manifest-error.js';
import type { Manifest, ManifestEntry } from './types.js';

export interface TreeFile {
  /** Its path in the tree ('/'-separated, relative). */
  path: string;
  /** Where its bytes come from: the entry's url, or its indexUrl. */
  url: string;
  role: 'data' | 'index';
  entry: ManifestEntry;
}

/** The index's path in the tree, beside its data file; undefined when the entry has no index. */
export function indexPathOf(e: ManifestEntry): string | undefined {
  if (!e.indexUrl) return undefined;
  const segs = e.path.split('/');
  const name = indexNameFor(segs.at(-1)!, e.indexUrl, { indexFileName: e.indexFileName, dataFileName: e.fileName });
  return [...segs.slice(0, -1), name].join('/');
}

/** Every file of the tree, data files first; throws a MANIFEST error (file:line) for a tree that cannot be built. */
export function treeFiles(manifest: Manifest): TreeFile[] {
  const files: TreeFile[] = manifest.entries.map((e) => ({ path: e.path, url: e.url, role: 'data', entry: e }));
  for (const e of manifest.entries) {
    const path = indexPathOf(e);
    if (path !== undefined) files.push({ path, url: e.indexUrl!, role: 'index', entry: e });
  }
  // What each path already is: a directory, or a file placed before.
  const taken = new Map<string, 'dir' | TreeFile>();
  for (const f of files) {
    const segs = f.path.split('/');
    for (let i = 1; i < segs.length; i++) {
      const dir = segs.slice(0, i).join('/');
      if (taken.get(dir) === undefined) taken.set(dir, 'dir');
      else if (taken.get(dir) !== 'dir') {
        throw manifestError(manifest.file, f.entry.line, undefined, `path '${f.path}' needs '${segs[i - 1]}' to be a directory, but it is a file`);
      }
    }
    const existing = taken.get(f.path);
    if (existing !== undefined) {
      const what = existing === 'dir' ? 'a directory' : `the file from line ${existing.entry.line}`;
      throw manifestError(manifest.file, f.entry.line, undefined, `'${f.path}' is already ${what}`);
    }
    taken.set(f.path, f);
  }
  return files;
}
