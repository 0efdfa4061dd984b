/**
 * The disk tier's hit and miss counters, kept in its directory so that `slicefs cache stats` can
 * report them for every process that used it. Each process writes only its own file
 * (`stats/<host>-<pid>-<random>.json`, replaced atomically with its running totals), so no count
 * is lost to two processes updating one file. Files of processes that have ended are added into
 * `stats/total.json` by the next process that starts, under an exclusive lock file (`wx`), and
 * then deleted; a lock older than a minute was left by a crash and is broken.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { WriteRoot } from '../util/safe-fs.js';
import { STATS } from './disk-layout.js';

export interface DiskCounters {
  /** Chunks served from disk, and their bytes. */
  hits: number;
  hitBytes: number;
  /** Chunks fetched from the network (and then written), and their bytes. */
  misses: number;
  missBytes: number;
  /** Chunk files that failed their check (dropped, fetched again). */
  corrupt: number;
  /** Chunk files deleted to keep the budget. */
  evicted: number;
}

export const zeroCounters = (): DiskCounters => ({ hits: 0, hitBytes: 0, misses: 0, missBytes: 0, corrupt: 0, evicted: 0 });

const KEYS = Object.keys(zeroCounters()) as (keyof DiskCounters)[];
const TOTAL = 'total.json';
const LOCK = 'fold.lock';
const STALE_LOCK_MS = 60_000;
/** A file of another host (a directory on a shared filesystem) is folded once it is this old. */
const FOREIGN_STALE_MS = 24 * 3600_000;

export function addCounters(into: DiskCounters, c: Partial<DiskCounters>): DiskCounters {
  for (const k of KEYS) into[k] += Number.isFinite(c[k]) ? Number(c[k]) : 0;
  return into;
}

async function readCounters(path: string): Promise<Partial<DiskCounters> | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Partial<DiskCounters>;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `<host>-<pid>-<random>.json` → host and pid. */
function ownerOf(name: string): { host: string; pid: number } | undefined {
  const m = /^(.*)-(\d+)-[0-9a-f]+\.json$/.exec(name);
  return m ? { host: m[1], pid: Number(m[2]) } : undefined;
}

/** One process's counters file. */
export class DiskStatsFile {
  readonly path: string;

  /** In the tier's directory `dir`, written under `root` (util/safe-fs.ts). */
  constructor(
    private readonly root: WriteRoot,
    dir: string,
  ) {
    this.path = join(dir, STATS, `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}.json`);
  }

  write(c: DiskCounters): Promise<void> {
    return this.root.replace(this.path, JSON.stringify(c));
  }
}

/** Adds the files of ended processes into total.json and deletes them (skipped if another process is at it). */
export async function foldEndedProcesses(root: WriteRoot, dir: string): Promise<void> {
  const statsDir = join(dir, STATS);
  const lock = join(statsDir, LOCK);
  try {
    const fh = await root.open(lock, 'create');
    await fh.writeFile(String(process.pid)).finally(() => fh.close());
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return;
    const s = await stat(lock).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > STALE_LOCK_MS) await rm(lock, { force: true });
    return;
  }
  try {
    const host = hostname();
    const total = addCounters(zeroCounters(), (await readCounters(join(statsDir, TOTAL))) ?? {});
    const ended: string[] = [];
    for (const name of await readdir(statsDir).catch(() => [] as string[])) {
      const owner = ownerOf(name);
      if (!owner) continue;
      const path = join(statsDir, name);
      const gone = owner.host === host ? !alive(owner.pid) : Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? Date.now()) > FOREIGN_STALE_MS;
      if (!gone) continue;
      const c = await readCounters(path);
      if (c) addCounters(total, c);
      ended.push(path);
    }
    if (ended.length === 0) return;
    // total.json first: a crash between the two steps counts those processes twice, never loses them.
    await root.replace(join(statsDir, TOTAL), JSON.stringify(total));
    for (const p of ended) await rm(p, { force: true });
  } finally {
    await rm(lock, { force: true });
  }
}

/** The counters of every process that used the directory: ended (total.json) and running. */
export async function readAllCounters(dir: string): Promise<DiskCounters> {
  const statsDir = join(dir, STATS);
  const sum = zeroCounters();
  for (const name of await readdir(statsDir).catch(() => [] as string[])) {
    if (name !== TOTAL && !ownerOf(name)) continue;
    const c = await readCounters(join(statsDir, name));
    if (c) addCounters(sum, c);
  }
  return sum;
}

/** Forgets the counters of processes that have ended (`cache clear`); running ones keep theirs. */
export async function clearCounters(dir: string): Promise<void> {
  const statsDir = join(dir, STATS);
  const host = hostname();
  for (const name of await readdir(statsDir).catch(() => [] as string[])) {
    const owner = ownerOf(name);
    if (name === TOTAL || (owner && (owner.host !== host || !alive(owner.pid)))) await rm(join(statsDir, name), { force: true });
  }
}
