/**
 * The plain-URL manifest: a TSV with a header row naming its columns (`url` required; `path`,
 * `size`, `md5`, `index_url`, `id`, `encryption`, `header_url` optional, any order, unknown columns
 * ignored), or a list of bare URLs, one per line. Blank lines and lines starting with '#' are
 * skipped in both. A Crypt4GH object (`encryption` = `crypt4gh`, a `header_url`, or a URL ending in
 * `.c4gh`) is listed under its plaintext name: `path` without `.c4gh`.
 */
import { byteCountCell, isBlankOrComment, manifestError, md5Cell } from './manifest-error.js';
import { urlBasename, validateTreePath } from './tree-path.js';
import type { ManifestEntry, ManifestFormat } from './types.js';

const KNOWN = ['url', 'path', 'size', 'md5', 'index_url', 'id', 'encryption', 'header_url'] as const;

/** `x.bam.c4gh` → `x.bam`: the name an encrypted file's plaintext takes. */
export function withoutC4gh(name: string): string {
  return /\.c4gh$/i.test(name) && name.length > 5 ? name.slice(0, -5) : name;
}

/** True when a URL's path names a Crypt4GH file. */
export function isC4ghUrl(url: string): boolean {
  try {
    return /\.c4gh$/i.test(new URL(url).pathname);
  } catch {
    return false;
  }
}

function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function checkUrl(file: string, line: number, col: number, value: string, column: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw manifestError(file, line, col, `column '${column}': not a URL: '${value.slice(0, 80)}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw manifestError(file, line, col, `column '${column}': only http and https URLs are supported, got '${u.protocol}'`);
  }
  return value;
}

/** The 1-based column (in characters) where field `index` of a tab-separated line starts. */
export function columnOf(fields: string[], index: number): number {
  let col = 1;
  for (let i = 0; i < index; i++) col += fields[i].length + 1;
  return col;
}

export function lines(text: string): string[] {
  return text.replace(/^\uFEFF/, '').split(/\r?\n/);
}

export const urlTsvFormat: ManifestFormat = {
  name: 'url-tsv',
  detect(firstLine) {
    return firstLine.split('\t').some((c) => c.trim().toLowerCase() === 'url');
  },
  parse(text, file) {
    const all = lines(text);
    const headerIdx = all.findIndex((l) => !isBlankOrComment(l));
    if (headerIdx < 0) throw manifestError(file, 1, undefined, 'the manifest is empty');
    const header = all[headerIdx].split('\t').map((h) => h.trim().toLowerCase());
    const col: Partial<Record<(typeof KNOWN)[number], number>> = {};
    header.forEach((name, i) => {
      if ((KNOWN as readonly string[]).includes(name)) {
        const key = name as (typeof KNOWN)[number];
        if (col[key] !== undefined) {
          throw manifestError(file, headerIdx + 1, columnOf(all[headerIdx].split('\t'), i), `column '${name}' appears twice`);
        }
        col[key] = i;
      }
    });
    if (col.url === undefined) throw manifestError(file, headerIdx + 1, 1, "the header has no 'url' column");
    const entries: ManifestEntry[] = [];
    for (let i = headerIdx + 1; i < all.length; i++) {
      const raw = all[i];
      if (isBlankOrComment(raw)) continue;
      const line = i + 1;
      const fields = raw.split('\t');
      if (fields.length > header.length) {
        throw manifestError(file, line, columnOf(fields, header.length), `${fields.length} fields, but the header has ${header.length}`);
      }
      const get = (key: (typeof KNOWN)[number]) => {
        const idx = col[key];
        if (idx === undefined) return undefined;
        const v = (fields[idx] ?? '').trim();
        return v === '' ? undefined : v;
      };
      const at = (key: (typeof KNOWN)[number]) => columnOf(fields, Math.min(col[key] ?? 0, fields.length));
      const url = get('url');
      if (!url) throw manifestError(file, line, at('url'), "column 'url' is empty");
      checkUrl(file, line, at('url'), url, 'url');
      const entry: ManifestEntry = { path: '', url, line };
      let path = get('path');
      if (path === undefined) {
        try {
          path = urlBasename(url);
        } catch (e) {
          throw manifestError(file, line, at('url'), (e as Error).message);
        }
      }
      try {
        entry.path = validateTreePath(path);
      } catch (e) {
        throw manifestError(file, line, col.path !== undefined ? at('path') : at('url'), (e as Error).message);
      }
      const cell = <T>(key: (typeof KNOWN)[number], value: string, parse: (v: string) => T): T => {
        try {
          return parse(value);
        } catch (e) {
          throw manifestError(file, line, at(key), `column '${key}': ${(e as Error).message}`);
        }
      };
      const size = get('size');
      if (size !== undefined) entry.size = cell('size', size, byteCountCell);
      const md5 = get('md5');
      if (md5 !== undefined) entry.md5 = cell('md5', md5, md5Cell);
      const indexUrl = get('index_url');
      if (indexUrl !== undefined) entry.indexUrl = checkUrl(file, line, at('index_url'), indexUrl, 'index_url');
      const id = get('id');
      if (id !== undefined) entry.id = id;
      const encryption = get('encryption')?.toLowerCase();
      if (encryption !== undefined && encryption !== 'crypt4gh' && encryption !== 'none') {
        throw manifestError(file, line, at('encryption'), `column 'encryption': '${encryption}' is not 'crypt4gh' or 'none'`);
      }
      const headerUrl = get('header_url');
      if (headerUrl !== undefined) entry.headerUrl = checkUrl(file, line, at('header_url'), headerUrl, 'header_url');
      if (encryption === 'crypt4gh' || (encryption === undefined && (isC4ghUrl(url) || headerUrl !== undefined))) {
        entry.encryption = 'crypt4gh';
        // The tree shows the plaintext: `x.bam.c4gh` appears as `x.bam`.
        const segs = entry.path.split('/');
        segs[segs.length - 1] = withoutC4gh(segs[segs.length - 1]);
        entry.path = segs.join('/');
      }
      entries.push(entry);
    }
    return entries;
  },
};

export const urlListFormat: ManifestFormat = {
  name: 'url-list',
  detect(firstLine) {
    return isHttpUrl(firstLine.trim()) && !firstLine.includes('\t');
  },
  parse(text, file) {
    const entries: ManifestEntry[] = [];
    lines(text).forEach((raw, i) => {
      const line = i + 1;
      if (isBlankOrComment(raw)) return;
      const v = raw.trim();
      if (raw.includes('\t')) throw manifestError(file, line, raw.indexOf('\t') + 1, 'a list of URLs has one URL per line (use a header row for columns)');
      const col = raw.indexOf(v) + 1;
      checkUrl(file, line, col, v, 'url');
      let path: string;
      try {
        path = validateTreePath(urlBasename(v));
      } catch (e) {
        throw manifestError(file, line, col, (e as Error).message);
      }
      entries.push(isC4ghUrl(v) ? { path: withoutC4gh(path), url: v, line, encryption: 'crypt4gh' } : { path, url: v, line });
    });
    return entries;
  },
};
