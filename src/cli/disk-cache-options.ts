/**
 * The disk cache options of `mount`, `view` and `download` (declared once, here; light: the tier
 * itself, src/cache/disk-tier.ts, is loaded by the command's run):
 *
 *   --cache-dir DIR         the root of slicefs's caches: `DIR/blocks` (the disk tier), `DIR/index`
 *                           (view's whole-file index cache). Default $XDG_CACHE_HOME/slicefs, else
 *                           ~/.cache/slicefs.
 *   --disk-cache-size SIZE  the disk tier's byte budget; default 10G but at most half the free
 *                           space; 0 turns the tier off.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { DEFAULT_DISK_CACHE, type DiskCacheConfig } from '../config.js';
import { SlicefsError } from '../errors.js';
import { parseByteSize } from '../util/size.js';

export interface DiskCacheArgs {
  'cache-dir'?: string;
  'disk-cache-size'?: string;
}

export function withDiskCacheOptions<T>(y: Argv<T>, opts: { download?: boolean } = {}): Argv<T> {
  return y
    .option('cache-dir', {
      type: 'string',
      describe: `where blocks${opts.download ? ' (of index files)' : ' and indexes'} are kept between runs (default: $XDG_CACHE_HOME/slicefs or ~/.cache/slicefs)`,
    })
    .option('disk-cache-size', {
      type: 'string',
      describe: `byte budget of the disk cache${opts.download ? ' (index files only: downloaded files are written, not cached)' : ''} (default: 10G, at most half the free space; 0: off)`,
    }) as Argv<T>;
}

/** The cache root: --cache-dir, else $XDG_CACHE_HOME/slicefs, else ~/.cache/slicefs. */
export function cacheRoot(given: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (given) return given;
  // The XDG spec: a relative XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = env.XDG_CACHE_HOME;
  return xdg && isAbsolute(xdg) ? join(xdg, 'slicefs') : join(homedir(), '.cache', 'slicefs');
}

/** The disk tier's directory under a cache root. */
export const blocksDir = (root: string): string => join(root, 'blocks');

/** The disk tier's config, or undefined when `--disk-cache-size 0` turns it off. */
export function diskCacheConfig(a: DiskCacheArgs, env: NodeJS.ProcessEnv = process.env): DiskCacheConfig | undefined {
  const given = a['disk-cache-size'] !== undefined ? parseByteSize(a['disk-cache-size'], '--disk-cache-size') : undefined;
  if (given === 0) return undefined;
  if (given !== undefined && given < 4 * DEFAULT_DISK_CACHE.chunkBytes) {
    throw new SlicefsError('USAGE', `--disk-cache-size must be 0 (off) or at least ${(4 * DEFAULT_DISK_CACHE.chunkBytes) / (1024 * 1024)}M (four chunks)`);
  }
  return { ...DEFAULT_DISK_CACHE, dir: blocksDir(resolve(cacheRoot(a['cache-dir'], env))), budgetBytes: given };
}
