/**
 * Where running mounts describe themselves, so that `slicefs status` and `slicefs unmount` find them:
 * one JSON file per mount point under `$XDG_STATE_HOME/slicefs/mounts/` (default
 * `~/.local/state/slicefs/mounts/`), written when the mount is ready, refreshed with its counters
 * every few seconds, and removed on a clean exit. A file whose process is gone is what a crash
 * leaves: `status` reports it (and whether the mount was left stale), `unmount` cleans it up.
 *
 * Files are replaced atomically (temp file + rename, never through a symlink: util/safe-fs.ts), so
 * a reader never sees half a record; the directory is 0700: manifests' paths and mount points are
 * the user's business.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { PRIVATE_MODES, WriteRoot } from '../util/safe-fs.js';

export interface MountRecord {
  pid: number;
  mountPoint: string;
  manifest: string;
  /** ISO times: when the mount became ready, and of the last refresh. */
  started: string;
  updated: string;
  daemon: boolean;
  logFile?: string;
  pidFile?: string;
  files: number;
  cache: { bytes: number; budget: number };
  counters: Record<string, number>;
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'slicefs');
}

export function registryDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), 'mounts');
}

/** A short, stable name for a mount point's files: its last segment and a hash of its path. */
export function mountKey(mountPoint: string): string {
  const abs = resolve(mountPoint);
  const base = abs.split('/').filter(Boolean).at(-1)?.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40) ?? 'root';
  return `${base}-${createHash('sha256').update(abs).digest('hex').slice(0, 12)}`;
}

export async function writeRecord(rec: MountRecord, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const root = await WriteRoot.prepare(registryDir(env), PRIVATE_MODES);
  await root.replace(join(root.dir, `${mountKey(rec.mountPoint)}.json`), JSON.stringify(rec, null, 2) + '\n');
}

export async function removeRecord(mountPoint: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await unlink(join(registryDir(env), `${mountKey(mountPoint)}.json`)).catch(() => {});
}

/** Every record (unreadable or half-written ones are skipped: a writer replaces them atomically). */
export async function readRecords(env: NodeJS.ProcessEnv = process.env): Promise<MountRecord[]> {
  const dir = registryDir(env);
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: MountRecord[] = [];
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    try {
      const rec = JSON.parse(await readFile(join(dir, n), 'utf8')) as MountRecord;
      if (typeof rec.pid === 'number' && typeof rec.mountPoint === 'string') out.push(rec);
    } catch {
      // Skipped: not ours, or being replaced.
    }
  }
  return out;
}

/**
 * True when process `pid` exists and is a slicefs (its command line names it): a crashed daemon's
 * pid may since belong to another program, which must be neither reported as the mount's owner nor
 * sent a signal.
 */
export async function slicefsAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  // Without /proc (not Linux) the signal check is all there is.
  return cmdline === undefined ? true : cmdline.includes('slicefs');
}
