/**
 * `slicefs unmount MOUNTPOINT`: ends a mount cleanly. Processes still using the mount (a shell
 * inside it, samtools with a file open) would make a plain unmount fail, and a lazy one would hide
 * them, so they are waited for (`--wait` seconds) and, if they stay, named with what they hold; the
 * mount is left alone unless `--lazy` asks to detach it anyway. The mount's own slicefs process
 * (found in the registry, ./mount-registry.ts) is asked to stop with SIGTERM, exactly as Ctrl-C
 * would, and waited for; a mount whose process is gone (a crash) is removed with `fusermount -u`.
 * A lazy unmount of a mount still in use is `fusermount -uz` instead of SIGTERM: the mount leaves
 * the tree at once, its process goes on serving the files still open (a reader half way through
 * a file finishes it) and exits by itself when the last user is gone (./mount.ts).
 */
import { execFile } from 'node:child_process';
import { unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Argv, CommandModule } from 'yargs';
import { SlicefsError } from '../errors.js';
import { listMounts } from '../fs/fuse/mount-point.js';
import { processesUsing, type PathUser } from '../util/path-users.js';
import { reportError, say } from './common.js';
import { readRecords, removeRecord, slicefsAlive } from './mount-registry.js';

const run = promisify(execFile);

interface UnmountArgs {
  mountpoint: string;
  wait: number;
  lazy: boolean;
}

/** How often the users of a busy mount, and the exit of its process, are checked. */
const POLL_MS = 200;
/** How long the mount's process may take to unmount and exit after SIGTERM. */
const STOP_WAIT_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function describe(users: PathUser[]): string {
  return users
    .slice(0, 5)
    .map((u) => `pid ${u.pid} (${u.command}: ${u.holds.slice(0, 2).join(', ')}${u.holds.length > 2 ? ', …' : ''})`)
    .join('; ') + (users.length > 5 ? `; and ${users.length - 5} more` : '');
}

async function isFuseMount(point: string): Promise<{ mounted: boolean; fuse: boolean }> {
  const m = (await listMounts()).find((x) => x.point === point);
  return { mounted: m !== undefined, fuse: m !== undefined && /^fuse/.test(m.type) };
}

export const unmountCommand: CommandModule<object, UnmountArgs> = {
  command: 'unmount <mountpoint>',
  aliases: ['umount'],
  describe: 'Unmount a slicefs mount: waits for processes using it, names them if they stay',
  builder: (y: Argv) =>
    y
      .positional('mountpoint', { type: 'string', demandOption: true, describe: 'the mount point' })
      .option('wait', { type: 'number', default: 10, describe: 'seconds to wait for processes using the mount to finish' })
      .option('lazy', { type: 'boolean', default: false, describe: 'detach the mount even while in use (it goes once they close their files)' }) as unknown as Argv<UnmountArgs>,
  handler: async (args) => {
    try {
      await runUnmount(args);
    } catch (err) {
      reportError(err);
    }
  },
};

async function fusermount(point: string, lazy: boolean): Promise<void> {
  try {
    await run('fusermount', [lazy ? '-uz' : '-u', point]);
  } catch (err) {
    const why = ((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n')[0];
    throw new SlicefsError('MOUNT', `fusermount could not unmount ${point}: ${why}`);
  }
}

async function runUnmount(args: UnmountArgs): Promise<void> {
  if (!(args.wait >= 0 && args.wait <= 3600)) throw new SlicefsError('USAGE', '--wait must be between 0 and 3600 seconds');
  const point = resolve(args.mountpoint);
  const record = (await readRecords()).find((r) => r.mountPoint === point);
  const owner = record && (await slicefsAlive(record.pid)) ? record.pid : undefined;
  const state = await isFuseMount(point);
  if (!state.mounted) {
    if (record) await removeRecord(point);
    if (record?.pidFile && owner === undefined) await unlink(record.pidFile).catch(() => {});
    if (owner !== undefined) {
      // Mounted no more (an external fusermount -u) but its process still runs: it exits on its own within 2 s.
      process.kill(owner, 'SIGTERM');
    }
    throw new SlicefsError('MOUNT', `${point} is not mounted`);
  }
  if (!state.fuse) throw new SlicefsError('MOUNT', `${point} is not a FUSE mount: not slicefs's to unmount`);

  // Wait for the mount's users to finish; name them if they do not.
  const deadline = Date.now() + args.wait * 1000;
  let users = await processesUsing(point, owner !== undefined ? [owner] : []);
  if (users.length > 0 && args.wait > 0) say(`${point} is in use by ${describe(users)}; waiting up to ${args.wait} s`);
  while (users.length > 0 && Date.now() < deadline) {
    await sleep(POLL_MS);
    users = await processesUsing(point, owner !== undefined ? [owner] : []);
  }
  if (users.length > 0 && !args.lazy) {
    throw new SlicefsError('MOUNT', `${point} is busy: ${describe(users)}; close them, or use --lazy to detach it now`);
  }
  if (users.length > 0) say(`warning: detaching ${point} while in use by ${describe(users)}`);

  if (owner !== undefined && users.length > 0) {
    // Not SIGTERM: that would end the process and cut its readers off (ENOTCONN). Detached, the
    // mount stays alive for them; its process notices (within 2 s), serves them and then exits.
    await fusermount(point, true);
    say(`detached ${point}; slicefs pid ${owner} serves the files still open and exits when the last user is gone`);
    return;
  }
  if (owner !== undefined) {
    // The mount's process unmounts (lazily, which with no user left is a full unmount) and exits.
    process.kill(owner, 'SIGTERM');
    const stopBy = Date.now() + STOP_WAIT_MS;
    while ((await slicefsAlive(owner)) && Date.now() < stopBy) await sleep(POLL_MS);
    if (!(await slicefsAlive(owner)) && !(await isFuseMount(point)).mounted) {
      say(`unmounted ${point} (slicefs pid ${owner} stopped)`);
      return;
    }
    say(`warning: slicefs pid ${owner} did not stop in ${STOP_WAIT_MS / 1000} s; unmounting with fusermount`);
  } else if (record) {
    say(`the slicefs process of ${point} (pid ${record.pid}) is gone: removing the stale mount`);
  } else {
    say(`${point} was not mounted by a slicefs this user ran (or its record is gone): unmounting with fusermount`);
  }
  await fusermount(point, args.lazy);
  await removeRecord(point);
  if (record?.pidFile && owner === undefined) await unlink(record.pidFile).catch(() => {});
  say(`unmounted ${point}`);
}
