/**
 * Where each manifest entry (and its index) goes under the output directory, decided before
 * anything is written: `path` (the manifest path), `filename` (its last segment) or `id` (a stable
 * id column). Two entries that land on the same name are an error naming both manifest lines. No
 * name may leave the directory: `..` and absolute paths are refused (the manifest parser already
 * refuses them in paths; ids and file names are checked here), and so is any name that
 * util/safe-fs.ts would refuse to write (`checkWritable`): a symlink already in the directory that
 * leads outside it, a symlink at the name itself, a file where a directory should be.
 */
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { SlicefsError } from '../errors.js';
import { indexNameFor } from '../manifest/index-name.js';
import type { ManifestEntry } from '../manifest/types.js';
import { UnsafePathError, type WriteRoot } from '../util/safe-fs.js';

export type OutputLayout = 'path' | 'filename' | 'id';

export interface PlannedFile {
  /** Path under the output directory, '/'-separated (as in the catalogue). */
  rel: string;
  /** Absolute path of the final file. */
  abs: string;
  url: string;
  size?: number;
  md5?: string;
  /** The manifest entry (for messages: its line). */
  entry: ManifestEntry;
  /** True for an entry's index file. */
  isIndex: boolean;
}

function badName(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return 'an empty, "." or ".." name';
  if (isAbsolute(name) || name.startsWith('/')) return 'an absolute path';
  if (name.split(/[/\\]/).some((seg) => seg === '..')) return 'a ".." segment';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f]/.test(name)) return 'a control character';
  return undefined;
}

/** The output files of `entries`, in manifest order (each entry followed by its index). */
export function planOutputs(entries: readonly ManifestEntry[], dir: string, layout: OutputLayout, withIndex: boolean, manifestFile: string, decrypt = false): PlannedFile[] {
  const root = resolve(dir);
  const out: PlannedFile[] = [];
  const byName = new Map<string, PlannedFile>();
  const add = (p: PlannedFile) => {
    const clash = byName.get(p.rel);
    if (clash) {
      throw new SlicefsError(
        'USAGE',
        `${manifestFile}:${p.entry.line}: '${p.rel}' would also be written by line ${clash.entry.line} (--output-layout ${layout}); choose another layout or download them separately`,
      );
    }
    byName.set(p.rel, p);
    out.push(p);
  };
  for (const e of entries) {
    let name: string;
    if (layout === 'path') name = e.path;
    else if (layout === 'filename') name = e.path.split('/').at(-1)!;
    else {
      if (!e.id) throw new SlicefsError('USAGE', `${manifestFile}:${e.line}: --output-layout id needs an id column (id, object_id or file_id)`);
      name = e.id;
    }
    const why = badName(name);
    if (why) throw new SlicefsError('USAGE', `${manifestFile}:${e.line}: refusing '${name}' as an output name: it has ${why}`);
    const abs = resolve(root, name);
    const rel = relative(root, abs);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new SlicefsError('USAGE', `${manifestFile}:${e.line}: '${name}' would be written outside ${dir}`);
    const relSlash = rel.split(sep).join('/');
    // An encrypted file is saved as it is (`NAME.c4gh`, the manifest's size and MD5 apply), or
    // with --decrypt as its plaintext (`NAME`, authenticated block by block instead).
    const keep = e.encryption !== undefined && !decrypt;
    const plain = e.encryption !== undefined && decrypt;
    const dataRel = keep ? `${relSlash}.c4gh` : relSlash;
    // A header served apart is put in front of the blocks: the manifest's size and MD5 (of the blocks) no longer apply.
    const unchecked = plain || (keep && e.headerUrl !== undefined);
    add({ rel: dataRel, abs: keep ? `${abs}.c4gh` : abs, url: e.url, size: unchecked ? undefined : e.size, md5: unchecked ? undefined : e.md5, entry: e, isIndex: false });
    if (withIndex && e.indexUrl) {
      const indexEncrypted = /\.c4gh$/i.test(new URL(e.indexUrl).pathname);
      const plainIndex = indexNameFor(relSlash, e.indexUrl, { indexFileName: e.indexFileName, dataFileName: e.fileName });
      const indexRel = indexEncrypted && !decrypt ? `${plainIndex}.c4gh` : plainIndex;
      add({ rel: indexRel, abs: join(root, ...indexRel.split('/')), url: e.indexUrl, entry: e, isIndex: true });
    }
  }
  return out;
}

/**
 * Refuses, before anything is written, a planned file that one of its names (`paths`: the file,
 * its part file, journal, …) could not be written safely under the output directory: a directory
 * on the way that is a symlink leading outside it, or a file; a symlink or a directory at the name
 * (util/safe-fs.ts). The message names the manifest line.
 */
export async function checkWritable(root: WriteRoot, file: PlannedFile, paths: readonly string[], manifestFile: string): Promise<void> {
  for (const p of paths) {
    try {
      await root.check(p);
    } catch (err) {
      if (err instanceof UnsafePathError) throw new UnsafePathError(`${manifestFile}:${file.entry.line}: ${err.message}`);
      throw err;
    }
  }
}
