/**
 * `DIR/slicefs-catalogue.tsv`: every file of the directory that a download verified, with its size,
 * MD5, source (source/identity.ts `recordedIdentity`: the object's identity, its query hashed) and when it was
 * verified. Read at the start (a file listed with the same size, MD5 and source, and whose ctime is
 * not later than its `verified` time, is not downloaded again nor hashed; one changed since is
 * hashed again) and rewritten atomically at the end. A file that fails `--verify` loses its row.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WriteRoot } from '../util/safe-fs.js';

export const CATALOGUE_NAME = 'slicefs-catalogue.tsv';
const HEADER = ['path', 'size', 'md5', 'source', 'verified'];

export interface CatalogueEntry {
  path: string;
  size: number;
  md5: string;
  source: string;
  verified: string;
}

export async function readCatalogue(dir: string): Promise<Map<string, CatalogueEntry>> {
  const out = new Map<string, CatalogueEntry>();
  const text = await readFile(join(dir, CATALOGUE_NAME), 'utf8').catch(() => '');
  const lines = text.split('\n');
  if (lines[0] !== HEADER.join('\t')) return out; // none, or not ours: rebuilt at the end
  for (const line of lines.slice(1)) {
    const [path, size, md5, source, verified] = line.split('\t');
    if (!path || !/^\d+$/.test(size ?? '') || !/^[0-9a-f]{32}$/.test(md5 ?? '')) continue;
    out.set(path, { path, size: Number(size), md5, source: source ?? '', verified: verified ?? '' });
  }
  return out;
}

export async function writeCatalogue(root: WriteRoot, entries: Iterable<CatalogueEntry>): Promise<void> {
  const rows = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const text = [HEADER.join('\t'), ...rows.map((e) => [e.path, e.size, e.md5, e.source, e.verified].join('\t'))].join('\n') + '\n';
  await root.replace(join(root.dir, CATALOGUE_NAME), text);
}
