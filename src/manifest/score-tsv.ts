/**
 * The score manifests that portals export for score-client, read by column name:
 *
 *   - ICGC ARGO (File Repository → Download → File Manifest):
 *     `repository_code analysis_id object_id file_type file_name file_size md5sum index_object_id
 *      donor_id sample_id(s) project_id`
 *   - the ICGC 25K data portal:
 *     `repo_code file_id object_id file_format file_name file_size md5_sum index_object_id
 *      donor_id/donor_count project_id/project_count study`
 *
 * The form is told from the header (`analysis_id`/`repository_code` vs `repo_code`/`file_id`);
 * columns may come in any order and unknown ones are kept for `slicefs manifest --json`, with
 * `|`-joined cells split into lists. Each row becomes an entry whose `url` is `score:<object_id>`
 * and whose path is the bundle layout, `<analysis_id>/<file_name>` (the 25K form names no analysis:
 * the CLI asks the metadata service when a layout needs it). score-client ignores the manifest's
 * size and MD5; slicefs uses them (no request to list a mount, the MD5 to verify a download) and the
 * sources still check them against the storage service.
 *
 * A row that is another row's index (its object id is that row's `index_object_id`) is folded into
 * that row: the index appears beside its file, under the name htslib looks for, not twice.
 */
import { byteCountCell, isBlankOrComment, manifestError, md5Cell } from './manifest-error.js';
import { isValidObjectId, scoreUrl } from './score-ref.js';
import { validateTreePath } from './tree-path.js';
import type { ManifestEntry, ManifestFormat } from './types.js';
import { columnOf, lines } from './url-tsv.js';

interface Columns {
  objectId: string;
  fileName: string;
  size: string;
  md5: string;
  indexObjectId: string;
  bundle?: string;
}

const ARGO: Columns = { objectId: 'object_id', fileName: 'file_name', size: 'file_size', md5: 'md5sum', indexObjectId: 'index_object_id', bundle: 'analysis_id' };
const ICGC_25K: Columns = { objectId: 'object_id', fileName: 'file_name', size: 'file_size', md5: 'md5_sum', indexObjectId: 'index_object_id' };

function headerNames(line: string): string[] {
  return line.split('\t').map((h) => h.trim().toLowerCase());
}

/** Cells that mean "no value" in portal exports. */
const EMPTY = new Set(['', 'null', 'na', 'n/a', '-']);

function scoreFormat(name: string, cols: Columns, detect: (names: string[]) => boolean): ManifestFormat {
  return {
    name,
    detect: (firstLine) => {
      const names = headerNames(firstLine);
      return names.includes('object_id') && detect(names);
    },
    parse(text, file) {
      const all = lines(text);
      const headerIdx = all.findIndex((l) => !isBlankOrComment(l));
      const rawHeader = all[headerIdx].split('\t');
      const header = headerNames(all[headerIdx]);
      const at = new Map<string, number>();
      header.forEach((h, i) => {
        if (h === '') return;
        if (at.has(h)) throw manifestError(file, headerIdx + 1, columnOf(rawHeader, i), `column '${h}' appears twice`);
        at.set(h, i);
      });
      for (const required of [cols.objectId, cols.fileName]) {
        if (!at.has(required)) throw manifestError(file, headerIdx + 1, 1, `a ${name} manifest needs a '${required}' column`);
      }
      const used = new Set<string>(Object.values(cols));
      const entries: ManifestEntry[] = [];
      for (let i = headerIdx + 1; i < all.length; i++) {
        const raw = all[i];
        if (isBlankOrComment(raw)) continue;
        const line = i + 1;
        const fields = raw.split('\t');
        if (fields.length > header.length) {
          throw manifestError(file, line, columnOf(fields, header.length), `${fields.length} fields, but the header has ${header.length}`);
        }
        const colOf = (c: string) => columnOf(fields, Math.min(at.get(c) ?? 0, fields.length));
        const get = (c: string | undefined): string | undefined => {
          const idx = c === undefined ? undefined : at.get(c);
          if (idx === undefined) return undefined;
          const v = (fields[idx] ?? '').trim();
          return EMPTY.has(v.toLowerCase()) ? undefined : v;
        };
        const fail = (c: string, msg: string) => manifestError(file, line, colOf(c), `column '${c}': ${msg}`);

        const objectId = get(cols.objectId);
        if (!objectId) throw fail(cols.objectId, 'empty');
        if (!isValidObjectId(objectId)) throw fail(cols.objectId, `'${objectId.slice(0, 80)}' is not an object id`);
        const fileName = get(cols.fileName);
        if (!fileName) throw fail(cols.fileName, 'empty');
        if (fileName.includes('/')) throw fail(cols.fileName, `'${fileName}' is a path, not a file name`);
        const bundle = get(cols.bundle);
        let path: string;
        try {
          validateTreePath(fileName);
          path = validateTreePath(bundle ? `${bundle}/${fileName}` : fileName);
        } catch (e) {
          throw fail(bundle && !validName(bundle) ? cols.bundle! : cols.fileName, (e as Error).message);
        }
        const entry: ManifestEntry = { path, url: scoreUrl(objectId), objectId, id: objectId, fileName, line };
        if (/\.c4gh$/i.test(fileName) && fileName.length > 5) {
          // A Crypt4GH file: shown (and, with --decrypt, saved) as its plaintext.
          entry.encryption = 'crypt4gh';
          entry.path = path.slice(0, -5);
        }
        if (bundle) entry.bundle = bundle;
        const cell = <T>(c: string, value: string, parse: (v: string) => T): T => {
          try {
            return parse(value);
          } catch (e) {
            throw fail(c, (e as Error).message);
          }
        };
        const size = get(cols.size);
        if (size !== undefined) entry.size = cell(cols.size, size, byteCountCell);
        const md5 = get(cols.md5);
        if (md5 !== undefined) entry.md5 = cell(cols.md5, md5, md5Cell);
        const indexId = get(cols.indexObjectId);
        if (indexId !== undefined) {
          if (!isValidObjectId(indexId)) throw fail(cols.indexObjectId, `'${indexId.slice(0, 80)}' is not an object id`);
          if (indexId === objectId) throw fail(cols.indexObjectId, 'the file cannot be its own index');
          entry.indexUrl = scoreUrl(indexId);
        }
        const extra: Record<string, string | string[]> = {};
        header.forEach((h, idx) => {
          if (h === '' || used.has(h)) return;
          const v = (fields[idx] ?? '').trim();
          if (v !== '') extra[h] = v.includes('|') ? v.split('|').map((x) => x.trim()) : v;
        });
        if (Object.keys(extra).length > 0) entry.columns = extra;
        entries.push(entry);
      }
      return foldIndexRows(entries, file);
    },
  };
}

function validName(seg: string): boolean {
  try {
    return validateTreePath(seg) === seg && !seg.includes('/');
  } catch {
    return false;
  }
}

/** Drops the rows that are other rows' indexes, keeping their file names to name the index. */
function foldIndexRows(entries: ManifestEntry[], file: string): ManifestEntry[] {
  const byObject = new Map<string, ManifestEntry>();
  for (const e of entries) {
    const prev = byObject.get(e.objectId!);
    if (prev) throw manifestError(file, e.line, undefined, `object ${e.objectId} is listed twice (first on line ${prev.line})`);
    byObject.set(e.objectId!, e);
  }
  const folded = new Set<ManifestEntry>();
  for (const e of entries) {
    const indexId = e.indexUrl?.slice('score:'.length);
    const row = indexId ? byObject.get(indexId) : undefined;
    if (row) {
      e.indexFileName = row.fileName;
      folded.add(row);
    }
  }
  return entries.filter((e) => !folded.has(e));
}

export const argoManifestFormat = scoreFormat('argo', ARGO, (n) => n.includes('analysis_id') || n.includes('repository_code'));
export const icgc25kManifestFormat = scoreFormat('icgc-25k', ICGC_25K, (n) => n.includes('repo_code') || n.includes('file_id'));
