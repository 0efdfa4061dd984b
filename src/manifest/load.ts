/**
 * Reads a manifest file: detects its format from the first meaningful line (formats are tried in
 * order: the score manifests first, since their headers are the most specific), parses it, and
 * checks what no single row can: duplicate paths, and a path that is both a file and a directory.
 */
import { readFile } from 'node:fs/promises';
import { SlicefsError } from '../errors.js';
import { fsProblem } from '../util/fs-problem.js';
import { isBlankOrComment, manifestError } from './manifest-error.js';
import { argoManifestFormat, icgc25kManifestFormat } from './score-tsv.js';
import type { Manifest, ManifestEntry, ManifestFormat } from './types.js';
import { urlListFormat, urlTsvFormat } from './url-tsv.js';

export const FORMATS: ManifestFormat[] = [argoManifestFormat, icgc25kManifestFormat, urlTsvFormat, urlListFormat];

export async function loadManifest(file: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SlicefsError('MANIFEST', `${file}: cannot read the manifest (${fsProblem(e as NodeJS.ErrnoException)})`);
  }
  return parseManifest(text, file);
}

export function parseManifest(text: string, file: string): Manifest {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const firstIdx = lines.findIndex((l) => !isBlankOrComment(l));
  if (firstIdx < 0) throw manifestError(file, 1, undefined, 'the manifest is empty');
  const format = FORMATS.find((f) => f.detect(lines[firstIdx]));
  if (!format) {
    throw manifestError(
      file,
      firstIdx + 1,
      1,
      "unrecognised manifest: expected a TSV header with a 'url' column, a score manifest (ARGO or ICGC 25K, with 'object_id'), or one http(s) URL per line",
    );
  }
  const entries = format.parse(text, file);
  if (entries.length === 0) throw manifestError(file, firstIdx + 1, undefined, 'the manifest lists no files');
  checkTree(entries, file);
  return { file, format: format.name, entries };
}

export function checkTree(entries: ManifestEntry[], file: string): void {
  const files = new Map<string, ManifestEntry>();
  for (const e of entries) {
    const prev = files.get(e.path);
    if (prev) throw manifestError(file, e.line, undefined, `duplicate path '${e.path}' (first on line ${prev.line})`);
    files.set(e.path, e);
  }
  for (const e of entries) {
    const segs = e.path.split('/');
    for (let i = 1; i < segs.length; i++) {
      const dir = segs.slice(0, i).join('/');
      const clash = files.get(dir);
      if (clash) {
        throw manifestError(file, e.line, undefined, `path '${e.path}' needs '${dir}' to be a directory, but line ${clash.line} makes it a file`);
      }
    }
  }
}
