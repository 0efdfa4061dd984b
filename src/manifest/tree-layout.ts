/**
 * The mount's layouts (`slicefs mount --layout`), as score-client names them:
 *   - `bundle`: `<analysis_id>/<file_name>`, the default for score manifests;
 *   - `object-id`: flat, each file named by its object id (its index beside it as `<id>.bai`, …);
 *   - `path`: the manifest's own paths (the default for URL manifests).
 * A layout only renames entries; the result is checked like a parsed manifest (no two files on one
 * path). Analyses the manifest does not name (the ICGC 25K form) are filled in by the caller, from
 * the metadata service, before `bundle` is applied.
 */
import { SlicefsError } from '../errors.js';
import { checkTree } from './load.js';
import { validateTreePath } from './tree-path.js';
import type { Manifest, ManifestEntry } from './types.js';

export const TREE_LAYOUTS = ['bundle', 'object-id', 'path'] as const;
export type TreeLayout = (typeof TREE_LAYOUTS)[number];

/** The layout used when none is asked for: bundle for manifests of Score objects. */
export function defaultLayout(manifest: Manifest): TreeLayout {
  return manifest.entries.some((e) => e.objectId) ? 'bundle' : 'path';
}

/** True when `layout` needs the analysis of entries that do not say it. */
export function needsBundles(manifest: Manifest, layout: TreeLayout): boolean {
  return layout === 'bundle' && manifest.entries.some((e) => !e.bundle);
}

function pathIn(e: ManifestEntry, layout: TreeLayout, file: string): string {
  if (layout === 'path') return e.path;
  if (layout === 'object-id') {
    const id = e.objectId ?? e.id;
    if (!id) throw new SlicefsError('USAGE', `${file}:${e.line}: --layout object-id needs an object id (a score manifest, or an 'id' column)`);
    return id;
  }
  const name = e.fileName ?? e.path.split('/').at(-1)!;
  if (!e.bundle) throw new SlicefsError('USAGE', `${file}:${e.line}: --layout bundle needs the file's analysis (an 'analysis_id' column, or a score manifest with the metadata service)`);
  return `${e.bundle}/${name}`;
}

/** The manifest with its entries' paths in `layout`. */
export function applyLayout(manifest: Manifest, layout: TreeLayout): Manifest {
  if (layout === 'path') return manifest;
  const entries = manifest.entries.map((e) => {
    const raw = pathIn(e, layout, manifest.file);
    let path: string;
    try {
      path = validateTreePath(raw);
    } catch (err) {
      throw new SlicefsError('MANIFEST', `${manifest.file}:${e.line}: --layout ${layout}: ${(err as Error).message}`);
    }
    return { ...e, path };
  });
  checkTree(entries, manifest.file);
  return { ...manifest, entries };
}
