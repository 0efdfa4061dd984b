/**
 * Sizing before the mount answers. Every file whose size the manifest does not give is probed:
 * data files without a `size`, encrypted files (their plaintext size is in their header), and every
 * index (no manifest column gives an index's size). So a mounted tree has no file that cannot be
 * listed (`ls -l` never shows `?????????`) and an `ls -l` makes no request. Data files with a
 * manifest size are not probed: their size is trusted until they are opened.
 * One probe per file (HEAD, or what the source needs), `concurrency` at a time; it also pins the
 * file's version, so its first open makes no request.
 *
 * A file that cannot be sized fails the mount, with its manifest line. With `skipMissing`, a file
 * the server says is absent (404, 410) or refuses (401, 403) is left out instead, with a warning
 * naming it: a data file together with its index, an index alone (its data file stays: samtools
 * still reads it whole, only region queries need the index). Any other failure (unreachable,
 * timeout, 5xx, a key that does not open the file) fails the mount even then: it says nothing about
 * whether the file exists, and leaving it out would mount a partial tree on a passing fault.
 */
import { SlicefsError, messageOf } from '../errors.js';
import type { ManifestEntry } from '../manifest/types.js';
import { removeFile, walkFiles, type DirNode, type FileNode } from './tree.js';

export interface SizingOptions {
  /** Probes in flight at once (`--probe-concurrency`). */
  concurrency: number;
  /** Leave out files that are absent or refused, instead of failing (`--skip-missing`). */
  skipMissing: boolean;
  /** The manifest's name, for `file:line` in messages. */
  manifestFile: string;
  warn: (msg: string) => void;
  onProgress?: (done: number, total: number) => void;
}

/** Statuses that say the file is not there for this user: what `--skip-missing` leaves out. */
function isMissing(err: unknown): boolean {
  return err instanceof SlicefsError && (err.code === 'NOT_FOUND' || err.code === 'ACCESS_DENIED');
}

/** `files.tsv:3: index d/x.bam.bai: HEAD http://h/x.bai: HTTP 404 (not found)`. */
function describe(file: FileNode, manifestFile: string, err: unknown): string {
  return `${manifestFile}:${file.entry.line}: ${file.role === 'index' ? 'index ' : ''}${file.path}: ${messageOf(err).split('\n')[0]}`;
}

/** Sizes every unsized file of the tree; leaves out (skipMissing) or throws for those that cannot be. */
export async function sizeUnsized(root: DirNode, o: SizingOptions): Promise<void> {
  const files = [...walkFiles(root)].filter((f) => f.size === undefined);
  const missing = new Map<FileNode, unknown>();
  let next = 0;
  let done = 0;
  let failed: unknown;
  const worker = async () => {
    // After a failure that ends the mount, no new probe starts.
    while (next < files.length && failed === undefined) {
      const f = files[next++];
      try {
        f.size = (await f.source.version()).size;
      } catch (err) {
        if (o.skipMissing && isMissing(err)) {
          missing.set(f, err);
        } else {
          const hint = isMissing(err) ? ' (--skip-missing mounts the rest without it)' : '';
          const code = err instanceof SlicefsError ? err.code : 'NETWORK';
          failed ??= new SlicefsError(code, describe(f, o.manifestFile, err) + hint, { status: (err as SlicefsError).status, cause: err });
          continue;
        }
      }
      o.onProgress?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, files.length) }, worker));
  if (failed !== undefined) throw failed;
  if (missing.size === 0) return;
  // One warning per entry, in manifest order; a data file left out takes its index with it.
  const byEntry = [...missing.keys()].sort((a, b) => a.entry.line - b.entry.line || (a.role === 'data' ? -1 : 1));
  const leftOut = new Set<ManifestEntry>();
  const indexOf = new Map([...walkFiles(root)].filter((f) => f.role === 'index').map((f) => [f.entry, f]));
  for (const f of byEntry) {
    if (leftOut.has(f.entry)) continue;
    const why = describe(f, o.manifestFile, missing.get(f));
    if (f.role === 'data') {
      leftOut.add(f.entry);
      removeFile(root, f.path);
      const index = indexOf.get(f.entry);
      if (index) removeFile(root, index.path);
      o.warn(`warning: ${why}: left out${index ? ', with its index' : ''}`);
    } else {
      removeFile(root, f.path);
      const data = f.entry.path;
      o.warn(`warning: ${why}: left out; ${data} is mounted without an index (samtools reads it whole; region queries fail)`);
    }
  }
  if (root.children.size === 0) throw new SlicefsError('MOUNT', `${o.manifestFile}: no file is left to mount`);
}
