/**
 * `slicefs status`: the slicefs mounts of this user (from the registry, ./mount-registry.ts): mount
 * point, process, state, manifest, cache use and counters (refreshed by each mount every 2 s), as
 * a table or `--json`. A record whose process is gone is what a crash leaves: it is shown as
 * `stale` when the mount is still there (every access fails with ENOTCONN; `slicefs unmount`
 * removes it) and dropped when nothing is left.
 *
 * `--health` (the Docker image's HEALTHCHECK) checks instead that every live mount answers a
 * `stat` within a few seconds: exit 0 when all do (or there is none), 1 naming those that do not.
 * The stat runs in a child process, so a hung mount costs a timeout, not a hung status command.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { unlink } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { listMounts } from '../fs/fuse/mount-point.js';
import { formatBytes } from '../util/size.js';
import { EXIT_FAILURE, reportError, say } from './common.js';
import { readRecords, removeRecord, slicefsAlive, type MountRecord } from './mount-registry.js';

interface StatusArgs {
  json: boolean;
  health: boolean;
  'mount-point'?: string[];
}

/** A mount that takes longer than this to answer a stat is unhealthy (fuse-native's own timeout is 15 s). */
const HEALTH_TIMEOUT_MS = 5000;

type State = 'mounted' | 'stale' | 'not mounted';

interface MountStatus extends MountRecord {
  state: State;
  alive: boolean;
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe: 'List the slicefs mounts of this user: state, manifest, cache use, counters',
  builder: (y: Argv) =>
    y
      .option('json', { type: 'boolean', default: false, describe: 'JSON on stdout' })
      .option('health', { type: 'boolean', default: false, describe: 'exit 0 when every mount answers (a container HEALTHCHECK)' })
      .option('mount-point', { type: 'string', array: true, describe: 'with --health: these must be mounted too (repeatable)' }) as unknown as Argv<StatusArgs>,
  handler: async (args) => {
    try {
      await runStatus(args);
    } catch (err) {
      reportError(err);
    }
  },
};

async function collect(): Promise<MountStatus[]> {
  const mounts = await listMounts();
  const out: MountStatus[] = [];
  for (const rec of await readRecords()) {
    const alive = await slicefsAlive(rec.pid);
    const mounted = mounts.some((m) => m.point === rec.mountPoint && /^fuse/.test(m.type));
    if (!alive && !mounted) {
      // A crash that left nothing behind (or a mount removed by hand): forget it.
      await removeRecord(rec.mountPoint);
      if (rec.pidFile) await unlink(rec.pidFile).catch(() => {});
      continue;
    }
    out.push({ ...rec, alive, state: alive && mounted ? 'mounted' : alive ? 'not mounted' : 'stale' });
  }
  return out;
}

/** `stat` of the mount point in a child process, bounded by HEALTH_TIMEOUT_MS. */
function answers(point: string): Promise<string | undefined> {
  return new Promise((res) => {
    execFile('stat', ['-c', '%i', point], { timeout: HEALTH_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, _out, stderr) => {
      if (!err) return res(undefined);
      res((err as { killed?: boolean }).killed ? `no answer in ${HEALTH_TIMEOUT_MS / 1000} s` : (stderr || err.message).trim().split('\n')[0]);
    });
  });
}

async function runStatus(args: StatusArgs): Promise<void> {
  const all = await collect();
  if (args.health) {
    let bad = 0;
    for (const wanted of (args['mount-point'] ?? []).map((p) => resolve(p))) {
      if (!all.some((m) => m.mountPoint === wanted)) {
        bad++;
        say(`unhealthy: ${wanted}: not mounted by slicefs`);
      }
    }
    for (const m of all) {
      const why = m.state === 'mounted' ? await answers(m.mountPoint) : `${m.state} (pid ${m.pid}${m.alive ? '' : ', gone'})`;
      if (why) {
        bad++;
        say(`unhealthy: ${m.mountPoint}: ${why}`);
      }
    }
    if (bad > 0) process.exitCode = EXIT_FAILURE;
    else if (!args.json) say(all.length === 0 ? 'no mounts' : `${all.length} mount${all.length > 1 ? 's' : ''} answering`);
    return;
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({ mounts: all }, null, 2) + '\n');
    return;
  }
  if (all.length === 0) {
    say('no slicefs mounts');
    return;
  }
  const rows = [['MOUNT POINT', 'PID', 'STATE', 'FILES', 'CACHE', 'REQUESTS', 'FETCHED', 'HITS', 'MISSES', 'ERRORS', 'MANIFEST']];
  for (const m of all) {
    const c = m.counters;
    rows.push([
      m.mountPoint,
      String(m.pid),
      m.state,
      String(m.files),
      `${formatBytes(m.cache.bytes)}/${formatBytes(m.cache.budget)}`,
      String(c.requests ?? 0),
      formatBytes(c.bytesFetched ?? 0),
      String(c.cacheHits ?? 0),
      String(c.cacheMisses ?? 0),
      String(c.errors ?? 0),
      m.manifest,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  process.stdout.write(rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]))).join('  ')).join('\n') + '\n');
  for (const m of all.filter((x) => x.state === 'stale')) {
    say(`${m.mountPoint}: its slicefs (pid ${m.pid}) is gone and the mount is stale; run 'slicefs unmount ${m.mountPoint}'`);
  }
}
