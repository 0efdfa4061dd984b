// The slicefs mount daemon as the benchmark scripts run it (test/bench only). The CLI contract:
// `mounted` on stderr once the mount is up, SIGUSR1 prints `slicefs stats: k=v ...`, SIGTERM
// unmounts and exits.
import { type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { childEnv, forceUnmount, isFuseMounted, lineWatcher, onCleanup, procMemory, sleep, spawnChild, stopChild } from './proc.js';

export interface SlicefsMount {
  dir: string;
  pid: number;
  /** The daemon's counters (SIGUSR1), or null when it has exited or did not answer in 3 s. */
  stats(): Promise<Record<string, number> | null>;
  /** Peak RSS (VmHWM) of the daemon in KiB, undefined when it is gone. */
  peakRssKiB(): number | undefined;
  /** Stops the daemon; returns a note when it did not stop cleanly. */
  stop(): Promise<string | undefined>;
}

/** The `k=v` pairs of a `slicefs stats:` line. */
export function parseStats(line: string): Record<string, number> {
  const out: Record<string, number> = {};
  const at = line.indexOf('slicefs stats:');
  for (const m of line.slice(at + 'slicefs stats:'.length).matchAll(/(\w+)=(\d+(?:\.\d+)?)/g)) out[m[1]] = Number(m[2]);
  return out;
}

/**
 * Starts `node <args>` (a `slicefs mount` command line whose mount point is `dir`, which must
 * exist) with a parent-death SIGTERM, its stdout and stderr written to `logFile`, and waits up to
 * `mountedTimeoutMs` for `mounted` on stderr, then up to 5 s for the FUSE mount at `dir`. Stopping
 * (also by the cleanups): SIGTERM, SIGKILL after 15 s, then a lazy unmount of whatever is left
 * mounted, each noted. On failure the daemon is stopped and the error names why, with the last
 * lines of its stderr. `env` defaults to `childEnv()`.
 */
export async function startSlicefsMount(opts: {
  args: string[];
  dir: string;
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
  mountedTimeoutMs: number;
}): Promise<SlicefsMount> {
  const { dir } = opts;
  const logFile = createWriteStream(opts.logFile);
  logFile.on('error', () => {});
  const child: ChildProcess = spawnChild(process.execPath, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    deathSignal: 'SIGTERM',
  });
  child.stdout!.on('data', (d: Buffer) => logFile.write(d));
  const err = lineWatcher(child.stderr!, (l) => logFile.write(l + '\n'));
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const stop = async (): Promise<string | undefined> => {
    const how = await stopChild(child, 15_000);
    let note: string | undefined;
    if (how === 'killed') note = 'daemon did not exit on SIGTERM (killed)';
    else if (child.exitCode !== 0) note = `daemon exit ${child.exitCode ?? child.signalCode}`;
    if (isFuseMounted(dir)) {
      forceUnmount(dir);
      note = `${note ? note + '; ' : ''}left mounted (lazy-unmounted)`;
    }
    logFile.end();
    return note;
  };
  const unregister = onCleanup(`slicefs mount ${dir}`, async () => {
    await stop();
  });
  try {
    await Promise.race([
      err.waitFor((l) => /\bmounted\b/.test(l), opts.mountedTimeoutMs),
      once(child, 'exit').then(([code, sig]) => {
        throw new Error(`exited (${code ?? sig}) before mounting`);
      }),
      once(child, 'error').then(([e]) => {
        throw e as Error;
      }),
    ]);
    const deadline = Date.now() + 5_000;
    while (!isFuseMounted(dir)) {
      if (Date.now() > deadline || exited) throw new Error('said mounted, but nothing is mounted');
      await sleep(20);
    }
  } catch (e) {
    await stop();
    unregister();
    const tail = err.tail().split('\n').slice(-5).join(' / ');
    const why = exited ? `daemon exited (${child.exitCode ?? child.signalCode}) before mounting` : (e as Error).message;
    throw new Error(`${why}${tail ? `: ${tail}` : ''}`);
  }
  return {
    dir,
    pid: child.pid!,
    async stats() {
      if (exited) return null;
      const line = err.waitFor((l) => l.includes('slicefs stats:'), 3_000);
      child.kill('SIGUSR1');
      try {
        return parseStats(await line);
      } catch {
        return null;
      }
    },
    peakRssKiB: () => procMemory(child.pid!)?.hwmKiB,
    async stop() {
      const note = await stop();
      unregister();
      return note;
    },
  };
}
