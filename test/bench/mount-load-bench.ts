/**
 * The mount as users get it (defaults: disk tier on, readahead on) against tuned configurations,
 * in one run (issue 18). Origin: nginx on loopback serving a seeded file (./prng.ts).
 *
 * - **seq**: a cold sequential `dd bs=1M` of the whole file through a fresh mount, alternately
 *   with the defaults (disk tier on, an empty `--cache-dir`) and with `--disk-cache-size 0`;
 *   then a new mount on the same `--cache-dir` reads it again (it must fetch nothing). MB/s
 *   (median of --runs), ratio tier on / off, bytes fetched (daemon counter), peak RSS.
 * - **random**: --readers readers (one child process, test/bench/random-readers.py), for --seconds each
 *   load: `open, read L bytes at a random offset, close`, L uniform in 1-8 MiB, and L = 1 MiB;
 *   with the defaults, with `--readahead-max 0` and with `--disk-cache-size 0`, each on a fresh
 *   mount (empty `--cache-dir`).
 *   Each read's range is dropped from the page cache after it (else the 1 GiB file soon sits in
 *   the page cache and the load measures the kernel, not the daemon). Reported: bytes fetched /
 *   bytes the daemon served, the readers' MB/s, the daemon's peak RSS against `--cache-size`, and
 *   wrong bytes (every read is compared with the origin's file).
 *
 * The page cache is dropped before each mount (root). `uptime`'s load is printed with each table
 * (2 shared cores: note it with the numbers).
 *
 *   node dist/test/bench/mount-load-bench.js [--size 1G] [--runs 3] [--readers 8] [--seconds 20]
 *        [--cache-size 256M] [--only seq,random] [--slicefs-args "..."] [--node-args="--cpu-prof ..."]
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startSlicefsMount, type SlicefsMount } from './mount-daemon.js';
import { startNginx } from './nginx.js';
import { ensureDataFile } from './prng.js';
import { dropCaches, onCleanup, runBenchMain, runCleanups, runTimed } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SLICEFS_BIN = join(REPO, 'bin', 'slicefs.js');
// A Python script (it needs posix_fadvise), read from the source tree.
const READERS_PY = join(REPO, 'test', 'bench', 'random-readers.py');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const MiB = 1 << 20;

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  return Math.round(Number(m[1]) * { '': 1, K: 1024, M: MiB, G: 1 << 30 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G']);
}

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    runs: { type: 'string', default: '3' },
    readers: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '20' },
    'cache-size': { type: 'string', default: '256M' },
    only: { type: 'string', default: 'seq,random' },
    'slicefs-args': { type: 'string', default: '' },
    seed: { type: 'string', default: '7' },
    /** Node options for the daemon, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (a profile per daemon). */
    'node-args': { type: 'string', default: '' },
  },
});
const SIZE = parseSize(values.size!);
const RUNS = Number(values.runs);
const READERS = Number(values.readers);
const SECONDS = Number(values.seconds);
const CACHE_SIZE = values['cache-size']!;
const SEED = Number(values.seed);
const EXTRA = values['slicefs-args']!.split(/\s+/).filter(Boolean);
const ONLY = new Set(values.only!.split(','));
const NODE_ARGS = values['node-args']!.split(/\s+/).filter(Boolean);

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'slicefs-mount-load-'));
  onCleanup('temp dir', () => rm(tmp, { recursive: true, force: true }));
  const dataDir = join(REPO, '.bench', 'data');
  const file = await ensureDataFile(dataDir, SIZE, SEED);
  const nginx = await startNginx(dataDir);
  onCleanup('nginx', () => nginx.stop());
  const manifest = join(tmp, 'manifest.tsv');
  await writeFile(manifest, `url\tpath\tsize\n${nginx.origin}/${basename(file)}\tdata.bin\t${SIZE}\n`);
  let n = 0;

  const mount = async (args: string[]): Promise<SlicefsMount> => {
    const dir = join(tmp, `mnt-${++n}`);
    await mkdir(dir);
    dropCaches();
    // The origin's file in the page cache: nginx serves from memory, as a remote server would not slow us.
    spawnSync('cat', [file], { stdio: 'ignore' });
    return startSlicefsMount({
      args: [...NODE_ARGS, SLICEFS_BIN, 'mount', '--manifest', manifest, '--mount-point', dir, '--cache-size', CACHE_SIZE, ...args, ...EXTRA],
      dir,
      cwd: REPO,
      logFile: join(tmp, `daemon-${n}.log`),
      mountedTimeoutMs: 60_000,
    });
  };
  const out: string[] = [`# mount-load-bench: ${(SIZE / MiB).toFixed(0)} MiB file, --cache-size ${CACHE_SIZE}${EXTRA.length ? `, ${EXTRA.join(' ')}` : ''}`, ''];

  if (ONLY.has('seq')) {
    const rows: Record<string, { mbs: number[]; fetched: number[]; rss: number[] }> = {};
    const add = (k: string, mbs: number, fetched: number, rss: number) => {
      rows[k] ??= { mbs: [], fetched: [], rss: [] };
      rows[k].mbs.push(mbs);
      rows[k].fetched.push(fetched);
      rows[k].rss.push(rss);
    };
    const seqRead = async (m: SlicefsMount, label: string) => {
      const r = await runTimed('dd', [`if=${join(m.dir, 'data.bin')}`, 'of=/dev/null', 'bs=1M'], { timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`dd (${label}): ${r.stderr.trim()}`);
      const st = (await m.stats()) ?? {};
      add(label, SIZE / 1e6 / (r.wallMs / 1000), st.bytes ?? NaN, (m.peakRssKiB() ?? NaN) / 1024);
      process.stderr.write(`seq ${label}: ${(SIZE / 1e6 / (r.wallMs / 1000)).toFixed(0)} MB/s (load ${load()})\n`);
    };
    for (let i = 0; i < RUNS; i++) {
      const cacheDir = join(tmp, `cache-${i}`);
      let m = await mount(['--cache-dir', cacheDir]);
      await seqRead(m, 'cold, defaults (disk tier on)');
      await m.stop();
      m = await mount(['--disk-cache-size', '0']);
      await seqRead(m, 'cold, --disk-cache-size 0');
      await m.stop();
      m = await mount(['--cache-dir', cacheDir]);
      await seqRead(m, '2nd mount, same --cache-dir');
      await m.stop();
      await rm(cacheDir, { recursive: true, force: true });
    }
    const on = median(rows['cold, defaults (disk tier on)'].mbs);
    const off = median(rows['cold, --disk-cache-size 0'].mbs);
    out.push(`## Sequential read (dd bs=1M), median of ${RUNS}; load after: ${load()}`, '');
    out.push('| read | MB/s (runs) | MB fetched | peak RSS MiB |', '|---|---|---|---|');
    for (const [k, r] of Object.entries(rows)) {
      out.push(`| ${k} | ${median(r.mbs).toFixed(0)} (${r.mbs.map((x) => x.toFixed(0)).join(', ')}) | ${(median(r.fetched) / 1e6).toFixed(1)} | ${Math.max(...r.rss).toFixed(0)} |`);
    }
    out.push('', `tier on / tier off: **${(on / off).toFixed(2)}×** (target ≥ 0.9×)`, '');
  }

  if (ONLY.has('random')) {
    out.push(`## Random reads: ${READERS} readers, ${SECONDS} s each, open/read/close; load before: ${load()}`, '');
    out.push('| load | config | fetched / served | reader MB/s | served MB | fetched MB | peak RSS MiB (budget ' + CACHE_SIZE + ') | wrong bytes |', '|---|---|---|---|---|---|---|---|');
    for (const [loadName, lens] of [
      ['random 1-8 MiB', ['1048576', '8388608']],
      ['read 1 MiB', ['1048576', '1048576']],
    ] as const) {
      const ratios: Record<string, number> = {};
      for (const [config, args] of [
        ['defaults', []],
        ['--readahead-max 0', ['--readahead-max', '0']],
        ['--disk-cache-size 0', ['--disk-cache-size', '0']],
      ] as const) {
        const m = await mount(['--cache-dir', join(tmp, `rcache-${n}`), ...args]);
        const r = await runTimed('python3', [READERS_PY, join(m.dir, 'data.bin'), file, String(SIZE), String(SEED), String(READERS), String(SECONDS), lens[0], lens[1]], {
          timeoutMs: (SECONDS + 120) * 1000,
          captureStdout: true,
        });
        const st = (await m.stats()) ?? {};
        const rss = (m.peakRssKiB() ?? NaN) / 1024;
        await m.stop();
        if (r.code !== 0) throw new Error(`readers: ${r.stderr.trim()}`);
        const res = JSON.parse(r.stdout) as { bytes: number; seconds: number; wrong: number; errors: number };
        const ratio = st.bytes / st.served;
        ratios[config] = res.bytes / res.seconds;
        out.push(
          `| ${loadName} | ${config} | **${ratio.toFixed(2)}** | ${(res.bytes / 1e6 / res.seconds).toFixed(0)} | ${(st.served / 1e6).toFixed(0)} | ${(st.bytes / 1e6).toFixed(0)} | ${rss.toFixed(0)} | ${res.wrong}${res.errors ? `, ${res.errors} errors` : ''} |`,
        );
        process.stderr.write(`random ${loadName} ${config}: ratio ${ratio.toFixed(2)}, ${(res.bytes / 1e6 / res.seconds).toFixed(0)} MB/s, RSS ${rss.toFixed(0)} MiB (load ${load()})\n`);
      }
      out.push(`| ${loadName} | throughput defaults / readahead off | | **${(ratios.defaults / ratios['--readahead-max 0']).toFixed(2)}×** | | | | |`);
    }
    out.push('');
  }
  process.stdout.write(out.join('\n') + '\n');
  await runCleanups();
}

runBenchMain('mount-load-bench', main);
