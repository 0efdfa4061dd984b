/**
 * `DIR/slicefs-catalogue.tsv`: every file of the directory that a download verified, with its size,
 * MD5, source (`catalogueSource`: the object's identity, its query hashed) and when it was
 * verified. Read at the start (a file listed with the same size, MD5 and source, and whose ctime is
 * not later than its `verified` time, is not downloaded again nor hashed; one changed since is
 * hashed again) and rewritten atomically at the end. A file that fails `--verify` loses its row.
 */
import { createHash } from 'node:crypto';
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

/**
 * The catalogue's `source` of an object (source/identity.ts): the identity as it is when it has no
 * query (a plain URL, `score:…`, `ghga:…`), else its part before the query plus a SHA-256 of the
 * rest. Equal exactly when the identities are, so a file listed from `dl?id=A` is not taken for
 * `dl?id=B`; and a query's values never land in this file, which others may read (a portal's own
 * token there is not a recognised signature and stays in the identity).
 */
export function catalogueSource(identity: string): string {
  const q = identity.indexOf('?');
  return q < 0 ? identity : `${identity.slice(0, q)}?sha256=${createHash('sha256').update(identity.slice(q + 1)).digest('hex')}`;
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
