/**
 * `slicefs mount`: mounts a manifest read-only and serves it until SIGINT/SIGTERM (or an external
 * `fusermount -u`, or `slicefs unmount`), then unmounts and prints the stats. After a lazy unmount
 * (`slicefs unmount --lazy`, `fusermount -uz`) it goes on serving the processes that still use the
 * detached mount, and exits when the kernel lets go of it. SIGUSR1 prints the stats. In the
 * foreground by default; `--daemon` detaches once the mount is ready (./daemonize.ts).
 * Every mount registers itself for `slicefs status` and `slicefs unmount` (./mount-registry.ts).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { DEFAULT_MOUNT, DEFAULT_PROBE_CONCURRENCY } from '../config.js';
import { SlicefsError, errnoName, messageOf } from '../errors.js';
import { loadManifest } from '../manifest/load.js';
import { TREE_LAYOUTS, type TreeLayout } from '../manifest/tree-layout.js';
import type { Manifest } from '../manifest/types.js';
import type { MountSessionOptions } from '../mount-session.js';
import type { ScoreEndpoint } from '../source/score-source.js';
import { execFile } from 'node:child_process';
import { readFile, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PRIVATE_MODES, WriteRoot } from '../util/safe-fs.js';
import { counted } from '../util/words.js';
import {
  applyConfigCacheProxy,
  cacheConfig,
  emit,
  keepRunningOnRejection,
  readerConfig,
  reportError,
  say,
  setLogSink,
  timestamped,
  transportConfig,
  userPathError,
  withCacheProxyOption,
  type CacheArgs,
  type TransportArgs,
} from './common.js';
import { cliEnv, DAEMON_CHILD_ENV, notifyParent, receiveSecrets } from './daemon-protocol.js';
import { diskCacheConfig, withDiskCacheOptions, type DiskCacheArgs } from './disk-cache-options.js';
import { LogFile } from './log-file.js';
import { readRecords, removeRecord, writeRecord, type MountRecord } from './mount-registry.js';
import { profileLoader } from './settings.js';
import { sourceSettingsOf, withSourceOptions, type SourceArgs } from './source-registry.js';

interface MountArgs extends TransportArgs, CacheArgs, SourceArgs, DiskCacheArgs {
  manifest?: string;
  layout?: string;
  'mount-point'?: string;
  mountpoint?: string;
  'allow-other': boolean;
  group?: string;
  force: boolean;
  'probe-concurrency': number;
  'skip-missing': boolean;
  'debug-fuse': boolean;
  'fetch-worker': boolean;
  daemon: boolean;
  'log-file'?: string;
  'pid-file'?: string;
}

/** How often the daemon checks that its mount still exists (an external `fusermount -u`), or, once detached, is still in use. */
const MOUNT_WATCH_MS = 2000;

export const mountCommand: CommandModule<object, MountArgs> = {
  command: 'mount [mountpoint]',
  describe: 'Mount a manifest as a read-only directory tree (foreground; Ctrl-C unmounts)',
  builder: (y: Argv) =>
    withDiskCacheOptions(withCacheProxyOption(withSourceOptions(y, 'mount')))
      .positional('mountpoint', { type: 'string', describe: 'directory to mount on (created if missing; must be empty)' })
      .option('manifest', { alias: 'm', type: 'string', describe: 'manifest file (TSV with a url column, an ARGO or ICGC 25K score manifest, or one URL per line)' })
      .option('layout', { type: 'string', choices: TREE_LAYOUTS, describe: 'tree of a score manifest: bundle (analysis_id/file_name, default), object-id (flat), or path (the manifest paths)' })
      .option('mount-point', { type: 'string', describe: 'same as the positional mountpoint' })
      .option('cache-size', { type: 'string', default: '256M', describe: 'memory budget of the block cache' })
      .option('block-size', { type: 'string', default: '1M', describe: 'cache block (and minimum request) size' })
      .option('readahead-max', { type: 'string', default: '16M', describe: 'largest readahead window per open file (0: none)' })
      .option('connections', { type: 'number', default: 32, describe: 'HTTP connections per server' })
      .option('timeout', { type: 'number', default: 15, describe: 'seconds before a FUSE operation fails (retries fit inside)' })
      .option('probe-concurrency', { type: 'number', default: DEFAULT_PROBE_CONCURRENCY, describe: 'parallel HEAD requests for sizes missing from the manifest' })
      .option('skip-missing', { type: 'boolean', default: false, describe: 'leave out files (and indexes) the server says are absent or refused (404, 403), with a warning, instead of failing' })
      .option('allow-other', { type: 'boolean', default: false, describe: 'let every local user read the mount (needs user_allow_other in /etc/fuse.conf); see --group' })
      .option('group', { type: 'string', describe: "let only this group's members (a name or a number) read the mount: files 0440, directories 0550, checked by the kernel; implies --allow-other" })
      .option('force', { type: 'boolean', default: false, describe: 'clean up a stale mount left by a crashed slicefs first' })
      .option('fetch-worker', { type: 'boolean', default: true, describe: 'fetch in a worker thread (--no-fetch-worker: on the FUSE thread)' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log every HTTP request (no query strings, no tokens)' })
      .option('debug-fuse', { type: 'boolean', default: false, describe: "libfuse's own debug log" })
      .option('daemon', { type: 'boolean', default: false, describe: 'detach once mounted (returns 0 only then), logging to a file' })
      .option('log-file', { type: 'string', describe: 'log to this file instead of stderr (--daemon: default under ~/.local/state/slicefs/logs/)' })
      .option('pid-file', { type: 'string', describe: "write the daemon's pid here (--daemon: default under ~/.local/state/slicefs/mounts/)" }) as unknown as Argv<MountArgs>,
  handler: async (args) => {
    try {
      // Said where the user sees it: in the foreground, or by the parent of a --daemon.
      if (args['allow-other'] && args.group === undefined && process.env[DAEMON_CHILD_ENV] !== '1') {
        say('warning: --allow-other lets every local user read the files of this mount (0444); give --group NAME to let only that group read them');
      }
      if (args.daemon && process.env[DAEMON_CHILD_ENV] !== '1') {
        const { startDetached } = await import('./daemonize.js');
        await startDetached(args);
        return;
      }
      // A detached mount: its secrets come over the channel, not in its argv or environment.
      const handed = await receiveSecrets();
      if (handed.token !== undefined) args.token = handed.token;
      await runMount(args);
    } catch (err) {
      reportError(err);
      notifyParent({ kind: 'failed', message: messageOf(err).split('\n')[0], exitCode: Number(process.exitCode ?? 1) });
    }
  },
};

/** A gid, or a group name looked up as the system does (`getent`: /etc/group, LDAP, SSSD). */
async function groupId(given: string): Promise<number> {
  if (/^\d+$/.test(given)) {
    const gid = Number(given);
    if (gid > 0xfffffffe) throw new SlicefsError('USAGE', `--group ${given}: not a group id`);
    return gid;
  }
  const line = await new Promise<string | undefined>((res) => execFile('getent', ['group', given], (err, stdout) => res(err ? undefined : stdout)));
  const gid = line?.split(':')[2];
  if (gid === undefined || !/^\d+$/.test(gid)) throw new SlicefsError('USAGE', `--group ${given}: no such group`);
  return Number(gid);
}

async function runMount(args: ArgumentsCamelCase<MountArgs>): Promise<void> {
  const target = args.mountpoint ?? args['mount-point'];
  if (!target) throw new SlicefsError('USAGE', 'give a mount point: slicefs mount --manifest FILE DIR');
  if (args.mountpoint && args['mount-point'] && args.mountpoint !== args['mount-point']) {
    throw new SlicefsError('USAGE', 'two different mount points given');
  }
  if (!(args.timeout >= 2 && args.timeout <= 600)) throw new SlicefsError('USAGE', '--timeout must be between 2 and 600 seconds');
  if (args['log-file']) {
    let logFile: LogFile;
    try {
      logFile = new LogFile(args['log-file']);
    } catch (err) {
      throw userPathError(err, '--log-file', args['log-file']);
    }
    setLogSink((level, msg) => logFile.write(level, msg), LogFile.levelOf);
  }
  const probes = args['probe-concurrency'];
  if (!Number.isInteger(probes) || probes < 1 || probes > 1024) throw new SlicefsError('USAGE', '--probe-concurrency must be an integer from 1 to 1024');
  if ((args.manifest === undefined) === !args.ghga) throw new SlicefsError('USAGE', 'give one of --manifest FILE or --ghga (a GHGA work package)');
  // The sources' settings and the cache tier from one reading of the config file (./settings.ts).
  const env = cliEnv();
  const profile = profileLoader(args, env);
  await applyConfigCacheProxy(args, env, profile);
  const sources = sourceSettingsOf(args, env, profile);
  const group = args.group === undefined ? undefined : await groupId(args.group);
  const tc = transportConfig(args, (l) => timestamped(l));
  const disk = diskCacheConfig(args);
  let manifest: Manifest;
  let endpoint: ScoreEndpoint | undefined;
  let ghga: MountSessionOptions['ghga'];
  let keys: MountSessionOptions['keys'];
  if (args.ghga) {
    // A work package: every file staged first (the mount lists them all), then mounted decrypted.
    const { openGhga, stageWorkPackage, workPackageManifest } = await import('./ghga-run.js');
    const s = await openGhga(sources.ghga!, sources.keyFiles, transportConfig(args, say), say);
    try {
      const staged = await stageWorkPackage(s, [...s.workPackage.files.keys()], say);
      manifest = workPackageManifest(s);
      ghga = { drs: s.drs, staged, close: () => s.api.close() };
      keys = s.keys;
    } catch (err) {
      await s.api.close().catch(() => {});
      throw err;
    }
  } else {
    const loaded = await loadManifest(args.manifest!);
    // Score objects: the token and storage service, and analyses the layout needs, before mounting.
    // Loaded here, not at the top: main.ts imports this module, and undici costs every command's start-up.
    const [{ HttpTransport }, { Stats }, { prepareManifest }] = await Promise.all([import('../transport/http-transport.js'), import('../stats.js'), import('./score-manifest.js')]);
    const api = new HttpTransport(tc, new Stats(), say);
    ({ manifest, endpoint } = await prepareManifest(loaded, args.layout as TreeLayout | undefined, sources.score, api, say).finally(() => api.close()));
  }
  // Loaded on use: fuse-native's native addon and the worker code cost other commands' start-up.
  const [{ openMountSession }, { keysFrom }] = await Promise.all([import('../mount-session.js'), import('./keys.js')]);
  keys ??= keysFrom(sources.keyFiles);
  const log = (l: string) => timestamped(l);
  const tty = process.stderr.isTTY && !args['log-file'];
  let lastProgress = 0;

  const session = await openMountSession({
    manifest,
    mountPoint: target,
    force: args.force,
    transport: tc,
    score: endpoint,
    keys,
    ghga,
    cache: cacheConfig(args),
    disk,
    reader: readerConfig(args),
    mount: { ...DEFAULT_MOUNT, allowOther: args['allow-other'], group, debug: args['debug-fuse'], opTimeoutMs: args.timeout * 1000 },
    probeConcurrency: args['probe-concurrency'],
    skipMissing: args['skip-missing'],
    fetchWorker: args['fetch-worker'],
    warn: say,
    onFsError: args.verbose ? (op, path, err) => log(`${op} ${path}: ${errnoName(err)}: ${messageOf(err)}`) : undefined,
    onProbeProgress: (done, total) => {
      const now = Date.now();
      if (done === total || now - lastProgress > (tty ? 100 : 5000)) {
        lastProgress = now;
        const files = `${done}/${counted(total, 'file')}`;
        if (tty) process.stderr.write(`\rslicefs: sizing ${files}${done === total ? '\n' : ''}`);
        else say(`sized ${files}`);
      }
    },
  });

  const detached = process.env[DAEMON_CHILD_ENV] === '1';
  say(
    `mounted ${counted(session.files, 'file')} at ${session.mountPoint} (read-only); ` +
      `unmount with ${detached ? '' : 'Ctrl-C, '}'slicefs unmount ${session.mountPoint}' or 'kill ${process.pid}'`,
  );
  const started = new Date().toISOString();
  const pidFile = args['pid-file'] ? resolve(args['pid-file']) : undefined;
  const record = (): MountRecord => ({
    pid: process.pid,
    mountPoint: session.mountPoint,
    manifest: args.manifest ? resolve(args.manifest) : 'GHGA work package',
    started,
    updated: new Date().toISOString(),
    daemon: detached,
    ...(args['log-file'] ? { logFile: resolve(args['log-file']) } : {}),
    ...(pidFile ? { pidFile } : {}),
    files: session.files,
    cache: session.cacheUsage(),
    counters: { ...session.stats },
  });
  // What status and unmount read; a failure to write it costs those commands, not the mount.
  let registering: Promise<void> = Promise.resolve();
  const register = () =>
    (registering = registering.then(() => writeRecord(record())).catch((err: Error) => say(`warning: cannot record the mount for 'slicefs status': ${err.message}`)));

  // The daemon must outlive any single failure: log, count, keep serving.
  keepRunningOnRejection((reason) => {
    session.stats.errors++;
    say(`internal error (kept running): ${messageOf(reason)}`);
  });

  await new Promise<void>((resolve) => {
    let stopping = false;
    // Times the watch found the mount out of the mount table but still connected (a lazy unmount).
    let detachedSeen = 0;
    const stop = async (why: string, alreadyUnmounted = false) => {
      if (stopping) {
        say('second signal: exiting now (the mount may be left stale; slicefs mount --force cleans it up)');
        process.exit(1);
      }
      stopping = true;
      clearInterval(watch);
      // Out of the mount table: the mount point is no longer ours to unmount (something else may be mounted there now).
      const detached = detachedSeen > 0 || (!alreadyUnmounted && !(await session.attached()));
      if (alreadyUnmounted || detached) {
        if (!alreadyUnmounted) say(`${why}: ${session.mountPoint} is detached; ending its open files (${session.openFiles()}) and exiting`);
        else if (detachedSeen > 1) say(`${session.mountPoint}: the last user of the detached mount is gone: exiting`);
        else say(`${session.mountPoint} was unmounted from outside: exiting`);
        await session.abandon();
      } else {
        say(`${why}: unmounting ${session.mountPoint}`);
        try {
          await session.unmount();
        } catch (err) {
          say(`error: unmount failed: ${messageOf(err).split('\n')[0]}; try 'fusermount -uz ${session.mountPoint}'`);
          process.exitCode = 1;
        }
      }
      emit(session.stats.line());
      await registering;
      // Ours only: after a lazy unmount, a new mount may have taken the mount point, its record and pid file.
      if ((await readRecords()).find((r) => r.mountPoint === session.mountPoint)?.pid === process.pid) await removeRecord(session.mountPoint);
      if (pidFile && (await readFile(pidFile, 'utf8').catch(() => '')).trim() === String(process.pid)) await unlink(pidFile).catch(() => {});
      // fuse-native keeps a native handle alive until its own unmount ran; after an external
      // unmount (or a failed one) that never happens, so leave explicitly.
      if (alreadyUnmounted || detached || process.exitCode) process.exit();
      resolve();
    };
    const check = async () => {
      if (stopping) return;
      // Once detached, only the connection counts: the mount point may hold a new mount by now.
      if (detachedSeen === 0 && (await session.attached())) return void register();
      // Out of the mount table. A lazy unmount (`slicefs unmount --lazy`, `fusermount -uz`) keeps the
      // mount alive while processes use it: serve them until the kernel lets go, then exit.
      if (await session.connected()) {
        // A plain unmount ends the connection at once: seen twice, the mount is in use.
        if (detachedSeen++ === 1) say(`${session.mountPoint} was detached while in use: serving its open files (${session.openFiles()} now) until the last user is gone`);
        return;
      }
      if (!stopping) void stop('unmounted from outside', true);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGHUP', () => void stop('SIGHUP'));
    process.on('SIGUSR1', () => emit(session.stats.line()));
    const watch = setInterval(() => void check(), MOUNT_WATCH_MS);
    // Only now, with the signals handled (a SIGTERM in between would kill the process and leave a
    // stale mount): the record, the pid file, and "ready" for a --daemon parent.
    void (async () => {
      await register();
      // In the same chain as the record, so that a stop (which awaits it) removes the file after it was written.
      // Replaced atomically, never through a symlink (util/safe-fs.ts); 0644 like any pid file.
      const writePid = async (file: string) => (await WriteRoot.prepare(dirname(file), PRIVATE_MODES, { create: false })).replace(file, `${process.pid}\n`, { mode: 0o644 });
      if (pidFile) await (registering = registering.then(() => writePid(pidFile)).catch((err: Error) => say(`warning: cannot write the pid file: ${err.message}`)));
      if (!stopping) notifyParent({ kind: 'ready', mountPoint: session.mountPoint, files: session.files, pid: process.pid });
    })();
  });
}
