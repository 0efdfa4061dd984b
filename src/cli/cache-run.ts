/**
 * The work of `slicefs cache stats` and `slicefs cache clear` (see ./cache.ts).
 *
 * stats: a scan of `<cache-dir>/blocks` (objects, chunk files, bytes) and the hit and miss counters
 * every process that used it recorded there (cache/disk-stats.ts), plus the view's index cache.
 * The hit rate is chunks read from disk over chunks read from disk or fetched, since the last clear.
 *
 * clear: without --url, everything (every object directory, view's index cache, the counters of
 * processes that have ended); with --url, every version of the objects named, found by the identity
 * in each object's meta.json. Running slicefs processes may keep using the directory: a chunk they
 * were writing lands in a fresh directory, a chunk they were reading is read to the end.
 */
import { readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_DISK_CACHE } from '../config.js';
import { readAllCounters, clearCounters } from '../cache/disk-stats.js';
import { removeObjectDir, scanTier, type ScannedObject } from '../cache/disk-layout.js';
import { SlicefsError } from '../errors.js';
import { objectIdentity, recordedIdentity } from '../source/identity.js';
import { redactLine, safeUrl } from '../util/redact.js';
import { formatBytes } from '../util/size.js';
import { counted } from '../util/words.js';
import type { CacheCommandArgs } from './cache.js';
import { say } from './common.js';
import { blocksDir, cacheRoot } from './disk-cache-options.js';

/** Files and bytes under `dir` (recursively); zero when it is missing. */
async function tally(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const s = await stat(join(e.parentPath, e.name)).catch(() => undefined);
    if (!s) continue;
    files++;
    bytes += s.size;
  }
  return { files, bytes };
}

/**
 * Whether an object's identity is the one `given` names: a URL (its identity, source/identity.ts:
 * any signature in its query is ignored, every other parameter counts), score:ID, ghga:ACCESSION,
 * or an identity.
 */
export function identityMatcher(given: string): (identity: string) => boolean {
  if (/^https?:\/\//i.test(given)) {
    let id: string;
    try {
      id = objectIdentity(given);
    } catch {
      throw new SlicefsError('USAGE', `--url: not a URL: '${safeUrl(given)}'`);
    }
    // meta.json records the identity with its query hashed (older entries: as it is).
    const recorded = recordedIdentity(id);
    return (i) => i === recorded || i === id;
  }
  // `score:ID` and `ghga:ACCESSION` name the object on whichever service it came from.
  const m = /^(score|ghga):([^/]+)$/.exec(given);
  if (m) return (i) => i === given || (i.startsWith(`${m[1]}:`) && i.endsWith(`/${m[2]}`));
  return (i) => i === given;
}

/** The cache root, refused when it exists and is not a directory (a missing one is an empty cache). */
async function checkedRoot(args: CacheCommandArgs): Promise<string> {
  const root = cacheRoot(args['cache-dir']);
  const st = await stat(root).catch(() => undefined);
  if (st && !st.isDirectory()) throw new SlicefsError('USAGE', `--cache-dir ${root}: not a directory`);
  return root;
}

export async function runCacheStats(args: CacheCommandArgs): Promise<void> {
  const root = await checkedRoot(args);
  const dir = blocksDir(root);
  const [scan, counters, index] = await Promise.all([scanTier(dir, { meta: true }), readAllCounters(dir), tally(join(root, 'index'))]);
  const chunks = scan.objects.reduce((n, o) => n + o.chunks.length, 0);
  const looked = counters.hits + counters.misses;
  const hitRate = looked > 0 ? counters.hits / looked : null;
  const fs = await statfs(root).catch(() => undefined);
  const free = fs ? fs.bavail * fs.bsize : undefined;
  const defaultBudget = free === undefined ? DEFAULT_DISK_CACHE.defaultBudgetBytes : Math.min(DEFAULT_DISK_CACHE.defaultBudgetBytes, Math.floor((free + scan.totalBytes) * DEFAULT_DISK_CACHE.freeSpaceShare));
  const lastUsed = (o: ScannedObject) => Math.max(0, ...o.chunks.map((c) => c.mtimeMs));
  if (args.json) {
    const out = {
      dir,
      objects: scan.objects.length,
      entries: chunks,
      bytes: scan.totalBytes,
      defaultBudget,
      ...counters,
      hitRate,
      index: { dir: join(root, 'index'), entries: index.files, bytes: index.bytes },
      items: scan.objects
        .sort((a, b) => lastUsed(b) - lastUsed(a))
        .map((o) => ({
          // An identity may hold query parameters (a portal's own token, too): never shown.
          identity: o.meta ? redactLine(o.meta.identity) : null,
          version: o.meta?.version ?? null,
          size: o.meta?.size ?? null,
          entries: o.chunks.length,
          bytes: o.bytes,
          lastUsed: o.chunks.length > 0 ? new Date(lastUsed(o)).toISOString() : null,
        })),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ['directory', dir],
    ['objects', String(scan.objects.length)],
    ['entries', `${chunks} chunk files (extents of ${formatBytes(DEFAULT_DISK_CACHE.chunkBytes)} slots)`],
    ['bytes', `${formatBytes(scan.totalBytes)} (default budget here: ${formatBytes(defaultBudget)})`],
    ['hits', `${counters.hits} chunk reads (${formatBytes(counters.hitBytes)})`],
    ['misses', `${counters.misses} pieces fetched (${formatBytes(counters.missBytes)})`],
    ['hit rate', hitRate === null ? '-' : `${(hitRate * 100).toFixed(1)} %`],
    ['damaged', `${counters.corrupt} chunks dropped and fetched again`],
    ['evicted', `${counters.evicted} chunks`],
    ['index cache', `${index.files} files, ${formatBytes(index.bytes)} (${join(root, 'index')})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  process.stdout.write(rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}\n`).join(''));
}

export async function runCacheClear(args: CacheCommandArgs): Promise<void> {
  const root = await checkedRoot(args);
  const dir = blocksDir(root);
  if (!args.url || args.url.length === 0) {
    const before = await scanTier(dir);
    const index = await tally(join(root, 'index'));
    for (const o of before.objects) await removeObjectDir(dir, o.path);
    await rm(join(root, 'index'), { recursive: true, force: true });
    await clearCounters(dir);
    say(`cleared ${counted(before.objects.length, 'object')} (${formatBytes(before.totalBytes)}) and ${counted(index.files, 'cached index file')} from ${root}`);
    return;
  }
  const matchers = args.url.map(identityMatcher);
  const scan = await scanTier(dir, { meta: true });
  let objects = 0;
  let bytes = 0;
  for (const o of scan.objects) {
    const id = o.meta?.identity;
    if (id === undefined || !matchers.some((m) => m(id))) continue;
    await removeObjectDir(dir, o.path);
    objects++;
    bytes += o.bytes;
  }
  // Each object named as its identity (a signature dropped), shown through the redaction.
  const what = args.url.map((u) => (/^https?:\/\//i.test(u) ? safeUrl(objectIdentity(u)) : u)).join(', ');
  say(objects > 0 ? `cleared ${objects} cached version${objects > 1 ? 's' : ''} of ${what} (${formatBytes(bytes)})` : `nothing cached for ${what}`);
}
