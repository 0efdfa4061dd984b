/**
 * What Crypt4GH costs end to end, through the CLI, side by side in one run (./crypt4gh-bench.ts
 * measures the primitives alone):
 *
 *   mount     the same seeded plaintext (default 512 MiB, `.bench/data/random-<size>-s<seed>.bin`)
 *             served by nginx on 127.0.0.1 twice: as it is, and encrypted for a generated key
 *             (`.bench/data/crypt4gh-e2e/<name>.c4gh`, made once with slicefs's own header and block
 *             writers and reused while its key in `.bench/crypt4gh-e2e/` opens it). One slicefs
 *             mount shows both (`plain/x.bin`, `encrypted/x.bin`); each is read with
 *             `dd bs=1M of=/dev/null`, alternately, N times, after one untimed read of each (the
 *             daemon's JIT warm-up). Before every read the file's pages are evicted from the page
 *             cache (`dd iflag=nocache count=0`, i.e. POSIX_FADV_DONTNEED, checked with `fincore`),
 *             so the kernel asks the daemon for every byte; the origin files stay in the page cache
 *             (nginx serves from memory, as in run.ts). The block cache (--cache-size, at most the
 *             file's size) never holds what the next read needs: the reads alternate between two
 *             files of that size, so the LRU holds the other file's tail; the daemon's own counters
 *             (SIGUSR1) show the bytes fetched per read. Reported: median MB/s of each, the ratio
 *             encrypted / plain, and the daemon's CPU seconds per read (utime + stime of the whole
 *             process from /proc/PID/stat, every thread; and of its main thread alone, which runs
 *             FUSE and the Crypt4GH layer), hence CPU seconds per GiB of decryption = (encrypted −
 *             plain) / GiB. At the end both mounted files are compared with the origin (`cmp`).
 *   download  `slicefs download --ghga --decrypt` (and `--ghga`, kept encrypted) from the GHGA
 *             fixture (test/helpers/ghga-server.ts: well-known values, WPS, DCS, envelope and the
 *             object store, in this process, holding the file in memory) against
 *             `slicefs download --url` of the same plaintext from a server of the same kind (this
 *             process, the plaintext in memory, written with the fixture's object-store writer:
 *             256 KiB slices, waiting for 'drain'); `--url` from nginx for reference. Each download is
 *             a new process (GNU time: CPU seconds, peak RSS) into a fresh directory under .bench/,
 *             runs interleaved; wall clock from spawn to exit; every output checked (SHA-256 of the
 *             plaintext; for the encrypted one, size and SHA-256 of its body) outside the timing.
 *
 * slicefs runs from a copy of bin/ and dist/ taken at the start (under .bench/), so a rebuild
 * during the run does not change what is measured; its cache root (XDG_CACHE_HOME) is in the work
 * dir, and a disk cache tier, where the CLI has one, is off in the mount (`--disk-cache-size 0`). Needs /dev/fuse (as run.ts), nginx, dd, fincore,
 * cmp and GNU time (/usr/bin/time); it drops no global cache.
 *
 *   node dist/test/bench/crypt4gh-e2e-bench.js [--size 512M] [--download-size SIZE] [--seed 1]
 *        [--runs 3] [--only mount,download] [--cache-size SIZE] [--slicefs-args "…"]
 *        [--no-verify] [--no-nginx-download] [--cmd-timeout 300] [--timeout 900] [--out FILE]
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { decryptHeader, encryptHeader } from '../../src/crypt4gh/header.js';
import { encodePrivateKey, generateKeyPair, parsePrivateKey, type C4ghKeyPair } from '../../src/crypt4gh/keys.js';
import { BLOCK_SIZE, encryptBlock, SEGMENT_SIZE } from '../../src/crypt4gh/segments.js';
import { GhgaServer } from '../helpers/ghga-server.js';
import { startSlicefsMount, type SlicefsMount } from './mount-daemon.js';
import { startNginx } from './nginx.js';
import { ensureDataFile } from './prng.js';
import { childEnv, copyCli, launchTimed, onCleanup, procMemory, runBenchMain, runCleanups, runTimed, type TimedExit } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const DATA_DIR = join(REPO, '.bench', 'data');
const C4GH_DIR = join(DATA_DIR, 'crypt4gh-e2e');
const KEY_DIR = join(REPO, '.bench', 'crypt4gh-e2e');
const execFileP = promisify(execFile);
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const MB = 1e6;
const SECTIONS = ['mount', 'download'] as const;

// ---------------------------------------------------------------------------------------------
// Small helpers.

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
const log = (msg: string) => process.stderr.write(`crypt4gh-e2e-bench: ${msg}\n`);

/** `512M`-style sizes, binary units. */
function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: ${text}`);
  return Math.round(Number(m[1]) * { '': 1, K: 1024, M: MiB, G: GiB }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G']);
}

function sizeText(n: number): string {
  return n % GiB === 0 ? `${n / GiB} GiB` : n % MiB === 0 ? `${n / MiB} MiB` : `${n} bytes`;
}

async function sha256File(path: string, from = 0): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { start: from, highWaterMark: 8 * MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Reads a file once, so nginx serves it from the page cache. */
async function warm(path: string): Promise<void> {
  for await (const _ of createReadStream(path, { highWaterMark: 8 * MiB })) {
    // discard
  }
}

/** Where slicefs keeps caches between runs during the benchmark (XDG_CACHE_HOME): under the work dir. */
let benchCacheHome = '';

/**
 * Environment for slicefs: no proxies, no key, passphrase, GHGA URL or cache tier from the caller's
 * environment, and its cache root in the benchmark's work dir (never the user's ~/.cache).
 */
function slicefsEnv(): NodeJS.ProcessEnv {
  const env = childEnv();
  for (const k of ['C4GH_SECRET_KEY', 'C4GH_PASSPHRASE', 'GHGA_CONNECTOR_WKVS_API_URL', 'SLICEFS_CACHE_PROXY']) delete env[k];
  if (benchCacheHome) env.XDG_CACHE_HOME = benchCacheHome;
  return env;
}

// ---------------------------------------------------------------------------------------------
// The encrypted copy of the data file (streamed: header, then one block per 64 KiB segment).

async function loadKey(path: string): Promise<C4ghKeyPair | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return parsePrivateKey(text, async () => '', path).catch(() => undefined);
}

/**
 * `<C4GH_DIR>/<plain name>.c4gh` encrypted for the key in `<KEY_DIR>/<plain name>.sec`: reused when
 * the key opens its header and its size is right, else both made anew (to temporary names, then
 * renamed).
 */
async function ensureEncrypted(plainPath: string, size: number): Promise<{ path: string; keyFile: string; headerBytes: number }> {
  await mkdir(C4GH_DIR, { recursive: true });
  await mkdir(KEY_DIR, { recursive: true, mode: 0o700 });
  const name = basename(plainPath);
  const path = join(C4GH_DIR, `${name}.c4gh`);
  const keyFile = join(KEY_DIR, `${name}.sec`);
  const bodySize = Math.ceil(size / SEGMENT_SIZE) * (BLOCK_SIZE - SEGMENT_SIZE) + size;
  const key = await loadKey(keyFile);
  const st = await stat(path).catch(() => null);
  if (key && st) {
    const fh = await open(path, 'r');
    try {
      const prefix = Buffer.alloc(Math.min(64 * 1024, st.size));
      await fh.read(prefix, 0, prefix.length, 0);
      const h = decryptHeader(prefix, [key]);
      if (h.dataKeys.length > 0 && st.size - bodySize > 0 && st.size - bodySize < prefix.length) return { path, keyFile, headerBytes: st.size - bodySize };
    } catch {
      // made for another key, or damaged: make it again
    } finally {
      await fh.close();
    }
  }
  log(`encrypting ${relative(REPO, plainPath)} → ${relative(REPO, path)} …`);
  const pair = generateKeyPair('slicefs crypt4gh-e2e-bench');
  const keyTmp = `${keyFile}.tmp-${process.pid}`;
  await writeFile(keyTmp, await encodePrivateKey(pair, undefined), { mode: 0o600 });
  const dataKey = randomBytes(32);
  const header = encryptHeader(dataKey, [pair.public]);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const out = createWriteStream(tmp);
    if (!out.write(header)) await once(out, 'drain');
    // 4 MiB reads are whole segments, so the blocks are cut exactly where a one-pass writer cuts them.
    for await (const chunk of createReadStream(plainPath, { highWaterMark: 64 * SEGMENT_SIZE })) {
      const buf = chunk as Buffer;
      const blocks: Buffer[] = [];
      for (let at = 0; at < buf.length; at += SEGMENT_SIZE) blocks.push(encryptBlock(buf.subarray(at, Math.min(at + SEGMENT_SIZE, buf.length)), dataKey));
      if (!out.write(Buffer.concat(blocks))) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    await rename(keyTmp, keyFile);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    await rm(keyTmp, { force: true });
    throw err;
  }
  return { path, keyFile, headerBytes: header.length };
}

// ---------------------------------------------------------------------------------------------
// CPU of a live process, whole and per thread (/proc/PID/stat, /proc/PID/task/TID/stat).

let clkTck = 100;

function ticksOf(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is the state; utime, stime are f[11], f[12]
  return f.length > 12 ? Number(f[11]) + Number(f[12]) : NaN;
}

async function cpuOf(pid: number): Promise<{ total: number; main: number }> {
  const [all, main] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''), readFile(`/proc/${pid}/task/${pid}/stat`, 'utf8').catch(() => '')]);
  return { total: ticksOf(all) / clkTck, main: ticksOf(main) / clkTck };
}

/** CPU seconds and start time (clock ticks after boot) per thread id, to see which thread a difference is in. */
async function threadCpu(pid: number): Promise<Map<number, { cpu: number; start: number }>> {
  const out = new Map<number, { cpu: number; start: number }>();
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tids) {
    const st = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    if (!st) continue;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), { cpu: ticksOf(st) / clkTck, start: Number(f[19]) });
  }
  return out;
}

/**
 * The daemon's threads in three groups: its main thread (JS: FUSE callbacks, the block cache, the
 * Crypt4GH layer); V8's platform workers, the first 4 threads Node starts (before any JS runs; they
 * do V8's concurrent and parallel garbage collection and compilation); and the threads started
 * later (fuse-native's FUSE loop, the fetch worker with its HTTP, libuv's pool).
 */
type ThreadGroup = 'main' | 'v8' | 'later';
function threadGroups(pid: number, snapshot: Map<number, { start: number }>): (tid: number) => ThreadGroup {
  const v8 = new Set(
    [...snapshot]
      .filter(([tid]) => tid !== pid)
      .sort((a, b) => a[1].start - b[1].start || a[0] - b[0])
      .slice(0, 4)
      .map(([tid]) => tid),
  );
  return (tid) => (tid === pid ? 'main' : v8.has(tid) ? 'v8' : 'later');
}

// ---------------------------------------------------------------------------------------------
// The mount section.

async function mountSlicefs(bin: string, cwd: string, work: string, rows: { url: string; path: string }[], extra: string[]): Promise<SlicefsMount> {
  const dir = join(work, 'mnt');
  await mkdir(dir, { recursive: true });
  const manifest = join(work, 'manifest.tsv');
  await writeFile(manifest, 'url\tpath\n' + rows.map((r) => `${r.url}\t${r.path}`).join('\n') + '\n');
  const args = [bin, 'mount', '--manifest', manifest, dir, ...extra];
  try {
    return await startSlicefsMount({ args, dir, cwd, env: slicefsEnv(), logFile: join(work, 'daemon.log'), mountedTimeoutMs: 120_000 });
  } catch (e) {
    throw new Error(`slicefs mount failed: ${(e as Error).message}`);
  }
}

/** Evicts a file's pages from the page cache (POSIX_FADV_DONTNEED); returns the bytes still resident. */
async function evict(file: string): Promise<number> {
  await execFileP('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { env: childEnv() });
  const r = await execFileP('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { env: childEnv() }).catch(() => ({ stdout: 'NaN' }));
  return Number(r.stdout.trim());
}

interface ReadSample {
  mbps: number;
  seconds: number;
  cpu: number;
  mainCpu: number;
  fetched: number;
  residentBefore: number;
  /** CPU seconds per thread id during the read. */
  threads: Map<number, number>;
}

async function timedRead(m: SlicefsMount, file: string, size: number, timeoutMs: number): Promise<ReadSample> {
  const residentBefore = await evict(file);
  const before = await cpuOf(m.pid);
  const threadsBefore = await threadCpu(m.pid);
  const statsBefore = await m.stats();
  const r = await runTimed('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'status=none'], { timeoutMs });
  if (r.timedOut) throw new Error(`dd ${file}: timed out after ${timeoutMs / 1000} s`);
  if (r.code !== 0) throw new Error(`dd ${file}: exit ${r.code ?? r.signal}: ${r.stderr.trim().slice(0, 300)}`);
  const after = await cpuOf(m.pid);
  const threadsAfter = await threadCpu(m.pid);
  const statsAfter = await m.stats();
  const threads = new Map<number, number>();
  for (const [tid, v] of threadsAfter) threads.set(tid, v.cpu - (threadsBefore.get(tid)?.cpu ?? 0));
  const seconds = r.wallMs / 1000;
  return {
    mbps: size / seconds / MB,
    seconds,
    cpu: after.total - before.total,
    mainCpu: after.main - before.main,
    fetched: statsBefore && statsAfter ? statsAfter.bytes - statsBefore.bytes : NaN,
    residentBefore,
    threads,
  };
}

interface MountResult {
  body: string;
  ratio: number;
  cpuPerGiB: number;
  plainMbps: number;
  encMbps: number;
}

async function mountSection(ctx: Ctx): Promise<MountResult> {
  const { size, runs } = ctx;
  const plainPath = await ensureDataFile(DATA_DIR, size, ctx.seed);
  const enc = await ensureEncrypted(plainPath, size);
  const encSize = (await stat(enc.path)).size;
  log('warming the origin files (nginx serves them from the page cache)');
  await warm(plainPath);
  await warm(enc.path);
  const nginx = ctx.nginx;
  const work = join(ctx.work, 'mount');
  await mkdir(work, { recursive: true });
  // A disk cache tier (where the CLI has one) would serve the repeated reads from disk: off.
  const help = await runTimed(process.execPath, [ctx.cli.bin, 'mount', '--help'], { timeoutMs: 60_000, cwd: ctx.cli.dir, captureStdout: true, env: slicefsEnv() });
  const noDiskTier = /--disk-cache-size\b/.test(help.stdout + help.stderr) ? ['--disk-cache-size', '0'] : [];
  const extra = ['--private-key', enc.keyFile, '--cache-size', String(ctx.cacheSize), ...noDiskTier, ...ctx.slicefsArgs];
  const m = await mountSlicefs(ctx.cli.bin, ctx.cli.dir, work, [
    { url: `${nginx.origin}/${relative(DATA_DIR, plainPath)}`, path: 'plain/x.bin' },
    { url: `${nginx.origin}/${relative(DATA_DIR, enc.path)}`, path: 'encrypted/x.bin.c4gh' },
  ], extra);
  ctx.commands.push(`slicefs mount --manifest M MNT ${extra.map((a) => (a === enc.keyFile ? 'KEY' : a)).join(' ')}` + ' (M: plain/x.bin ← URL of x.bin, encrypted/x.bin.c4gh ← URL of x.bin.c4gh)');
  const groupOf = threadGroups(m.pid, await threadCpu(m.pid));
  const files = { plain: join(m.dir, 'plain/x.bin'), encrypted: join(m.dir, 'encrypted/x.bin') };
  const samples: Record<'plain' | 'encrypted', ReadSample[]> = { plain: [], encrypted: [] };
  const warmup: Partial<Record<'plain' | 'encrypted', ReadSample>> = {};
  const notes: string[] = [];
  let peakRssMiB = NaN;
  const hwmAfterWarmup: Partial<Record<'plain' | 'encrypted', number>> = {};
  try {
    for (const [k, f] of Object.entries(files)) {
      const st = await stat(f);
      if (st.size !== size) throw new Error(`${k}: the mount shows ${st.size} bytes, expected ${size}`);
    }
    const timeoutMs = ctx.cmdTimeoutMs;
    for (const k of ['plain', 'encrypted'] as const) {
      log(`mount: warm-up read of ${k} (fresh daemon, not in the medians)`);
      warmup[k] = await timedRead(m, files[k], size, timeoutMs);
      hwmAfterWarmup[k] = (procMemory(m.pid)?.hwmKiB ?? NaN) / 1024;
    }
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? (['plain', 'encrypted'] as const) : (['encrypted', 'plain'] as const);
      for (const k of order) {
        log(`mount: run ${i + 1}/${runs}: ${k}`);
        const s = await timedRead(m, files[k], size, timeoutMs);
        samples[k].push(s);
        log(`  ${fmt(s.mbps)} MB/s, daemon CPU ${fmt(s.cpu, 2)} s (main thread ${fmt(s.mainCpu, 2)} s), fetched ${fmt(s.fetched / MB)} MB`);
      }
    }
    peakRssMiB = (procMemory(m.pid)?.hwmKiB ?? NaN) / 1024;
    for (const [k, bytes] of [['plain', size], ['encrypted', encSize]] as const) {
      const least = Math.min(...samples[k].map((x) => x.fetched));
      if (least < 0.99 * bytes) notes.push(`WARNING: a read of ${k} fetched only ${fmt(least / MB)} of ${fmt(bytes / MB)} MB: the block cache served the rest (use a larger --size or a smaller --cache-size)`);
    }
    if (ctx.verify) {
      for (const [k, f] of Object.entries(files)) {
        log(`mount: cmp ${k} with the origin file`);
        const c = await runTimed('cmp', [f, plainPath], { timeoutMs });
        notes.push(c.code === 0 ? `${k}: content equal to the origin file (cmp)` : `${k}: CONTENT MISMATCH: ${c.stderr.trim().slice(0, 200)}`);
        if (c.code !== 0) ctx.failures.push(`mount ${k}: cmp: ${c.stderr.trim().slice(0, 200)}`);
      }
    }
  } finally {
    const note = await m.stop();
    if (note) notes.push(`daemon: ${note}`);
  }

  const med = (k: 'plain' | 'encrypted', f: (s: ReadSample) => number) => median(samples[k].map(f));
  const plainMbps = med('plain', (s) => s.mbps);
  const encMbps = med('encrypted', (s) => s.mbps);
  const gib = size / GiB;
  const cpuPlain = med('plain', (s) => s.cpu);
  const cpuEnc = med('encrypted', (s) => s.cpu);
  const mainPlain = med('plain', (s) => s.mainCpu);
  const mainEnc = med('encrypted', (s) => s.mainCpu);
  const cpuPerGiB = (cpuEnc - cpuPlain) / gib;
  const resident = Math.max(...[...samples.plain, ...samples.encrypted].map((s) => s.residentBefore));
  // Which threads the extra CPU is in: median CPU per read of each group, and of the busiest later thread.
  const groupCpu = (k: 'plain' | 'encrypted', g: ThreadGroup) =>
    median(samples[k].map((x) => [...x.threads].filter(([tid]) => groupOf(tid) === g).reduce((n, [, v]) => n + v, 0)));
  const laterTids = [...new Set([...samples.plain, ...samples.encrypted].flatMap((x) => [...x.threads.keys()]))].filter((t) => groupOf(t) === 'later');
  const tidCpu = (k: 'plain' | 'encrypted', tid: number) => median(samples[k].map((x) => x.threads.get(tid) ?? 0));
  const busiest = laterTids.sort((a, b) => tidCpu('plain', b) - tidCpu('plain', a))[0];
  const groups: [ThreadGroup, string][] = [
    ['main', 'main thread (JS: FUSE callbacks, cache, Crypt4GH layer)'],
    ['v8', "V8's 4 platform workers (GC, compilation)"],
    ['later', 'threads started later (FUSE loop, fetch worker, libuv)'],
  ];
  const threadLines = groups.map(
    ([g, label]) =>
      `  - ${label}: ${fmt(groupCpu('plain', g), 2)} → ${fmt(groupCpu('encrypted', g), 2)} s per read, ` +
      `**${fmt((groupCpu('encrypted', g) - groupCpu('plain', g)) / gib, 2)} s per GiB** more` +
      (g === 'later' && busiest !== undefined ? ` (the busiest of them, tid ${busiest}: ${fmt(tidCpu('plain', busiest), 2)} → ${fmt(tidCpu('encrypted', busiest), 2)} s)` : ''),
  );
  const row = (label: string, k: 'plain' | 'encrypted', bytesOnWire: number) => {
    const xs = samples[k];
    return (
      `| ${label} | **${fmt(med(k, (s) => s.mbps))}** | ${xs.map((s) => fmt(s.mbps, 0)).join(', ')} | ${fmt(warmup[k]?.mbps ?? NaN, 0)} | ` +
      `${fmt(med(k, (s) => s.cpu), 2)} (${fmt(med(k, (s) => s.mainCpu), 2)} / ${fmt(med(k, (s) => s.cpu - s.mainCpu), 2)}) | ` +
      `${fmt(med(k, (s) => s.cpu) / gib, 2)} | ${fmt(med(k, (s) => s.fetched) / MB)} (${fmt(bytesOnWire / MB)}) |`
    );
  };
  const body = [
    `Origin: nginx on 127.0.0.1, ${relative(REPO, plainPath)} (${sizeText(size)}) and ${relative(REPO, enc.path)} (${encSize} bytes: header ${enc.headerBytes} + ${Math.ceil(size / SEGMENT_SIZE)} blocks of 65,564), both in the page cache. ` +
      `One mount, ${runs} reads of each, alternating, after one untimed read of each; \`dd if=MNT/… of=/dev/null bs=1M\`, the file's pages evicted before each read ` +
      `(resident before a read: ${Number.isFinite(resident) ? `${resident} bytes at most` : 'unknown (no fincore)'}). MB = 10^6 bytes.`,
    '',
    '| file in the mount | median MB/s | runs MB/s | warm-up read (fresh daemon) MB/s | daemon CPU s per read (main thread / other threads) | daemon CPU s per GiB read | fetched MB per read (file size) |',
    '|---|---:|---|---:|---:|---:|---:|',
    row('plain/x.bin ← x.bin', 'plain', size),
    row('encrypted/x.bin ← x.bin.c4gh', 'encrypted', encSize),
    '',
    `- encrypted / plain: **${ratio(encMbps, plainMbps)}** (target ≥ 0.8×)`,
    `- CPU of decryption in the daemon: (${fmt(cpuEnc, 2)} − ${fmt(cpuPlain, 2)}) s / ${fmt(gib, 2)} GiB = **${fmt(cpuPerGiB, 2)} CPU s per GiB** ` +
      `(main thread ${fmt((mainEnc - mainPlain) / gib, 2)}, other threads ${fmt((cpuEnc - mainEnc - (cpuPlain - mainPlain)) / gib, 2)})`,
    '- where that CPU is, by thread (/proc/PID/task/TID/stat; median per read, plain → encrypted):',
    ...threadLines,
    `- daemon peak RSS (VmHWM): ${fmt(hwmAfterWarmup.plain ?? NaN, 0)} MiB after the first read of the plain file, ` +
      `${fmt(hwmAfterWarmup.encrypted ?? NaN, 0)} MiB after the first of the encrypted one, ${fmt(peakRssMiB, 0)} MiB at the end (--cache-size ${sizeText(ctx.cacheSize)})`,
    ...notes.map((n) => `- ${n}`),
  ].join('\n');
  return { body, ratio: encMbps / plainMbps, cpuPerGiB, plainMbps, encMbps };
}

// ---------------------------------------------------------------------------------------------
// The download section.

/**
 * The plaintext from memory over HTTP on 127.0.0.1, as the GHGA fixture's object store serves its
 * blocks: one path, HEAD and GET with a single Range, ETag and Last-Modified, the body written in
 * 256 KiB slices waiting for 'drain'.
 */
async function startPlainServer(path: string, body: Buffer): Promise<{ url: string; close(): Promise<void> }> {
  const etag = `"${createHash('md5').update(body).digest('hex')}"`;
  const lastModified = new Date(Math.floor(Date.now() / 1000) * 1000).toUTCString();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== path) return void res.writeHead(404, { 'content-length': '0' }).end();
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { 'content-length': '0' }).end();
    const size = body.length;
    let start = 0;
    let end = size - 1;
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range?.trim() ?? '');
    const ranged = m !== null && !(m[1] === '' && m[2] === '');
    if (ranged) {
      if (m[1] === '') start = Math.max(0, size - Number(m[2]));
      else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(Number(m[2]), size - 1);
      }
      if (start >= size || end < start) return void res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': '0' }).end();
    }
    const headers: Record<string, string> = { etag, 'last-modified': lastModified, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1) };
    if (ranged) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(ranged ? 206 : 200, headers);
    if (req.method === 'HEAD') return void res.end();
    void (async () => {
      let closed = false;
      res.once('close', () => (closed = true));
      for (let at = start; at <= end && !closed; at += 256 * 1024) {
        if (!res.write(body.subarray(at, Math.min(at + 256 * 1024, end + 1))) && !closed) {
          await new Promise<void>((r) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              r();
            };
            res.on('drain', done);
            res.on('close', done);
          });
        }
      }
      if (!closed) res.end();
    })();
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  const unregister = onCleanup('plain HTTP server', close);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    async close() {
      await close();
      unregister();
    },
  };
}

interface Variant {
  key: string;
  label: string;
  server: string;
  args: (dir: string) => string[];
  /** The file it writes, in `dir`. */
  output: string;
  /** Checks the output (outside the timing); a problem, or undefined. */
  check: (path: string) => Promise<string | undefined>;
  samples: TimedExit[];
  bytes: number;
}

interface DownloadResult {
  body: string;
  decryptRatio: number;
  encryptedRatio: number;
}

async function downloadSection(ctx: Ctx): Promise<DownloadResult> {
  const size = ctx.downloadSize;
  const plainPath = await ensureDataFile(DATA_DIR, size, ctx.seed);
  const plain = await readFile(plainPath);
  await warm(plainPath); // nginx's reference row serves it from the page cache
  const sha = createHash('sha256').update(plain).digest('hex');
  const pair = generateKeyPair('slicefs crypt4gh-e2e-bench');
  const work = join(ctx.work, 'download');
  await mkdir(work, { recursive: true });
  const keyFile = join(work, 'me.sec');
  await writeFile(keyFile, await encodePrivateKey(pair, undefined), { mode: 0o600 });
  log(`download: the GHGA fixture encrypts ${sizeText(size)} in memory …`);
  const ghga = await GhgaServer.start({ userPublicKey: pair.public });
  const unregisterGhga = onCleanup('GHGA fixture', () => ghga.close());
  const accession = 'GHGAF00000000000001';
  const added = ghga.addFile(accession, '.bin', plain);
  const bodySha = createHash('sha256').update(added.body).digest('hex');
  const bodyLength = added.body.length;
  const tokenFile = join(work, 'token.txt');
  await writeFile(tokenFile, ghga.downloadToken() + '\n', { mode: 0o600 });
  const server = await startPlainServer('/x.bin', plain);
  const name = basename(plainPath);
  const checkPlain = async (path: string) => {
    const st = await stat(path).catch(() => null);
    if (!st) return 'no output file';
    if (st.size !== size) return `size ${st.size} != ${size}`;
    return (await sha256File(path)) === sha ? undefined : 'SHA-256 differs from the plaintext';
  };
  const ghgaArgs = (dir: string) => ['download', '--ghga', '--ghga-url', ghga.wkvsUrl, '--private-key', keyFile, '--download-token-file', tokenFile, '-d', dir, '-q', '--json', ...ctx.slicefsDownloadArgs];
  const variants: Variant[] = [
    {
      key: 'plain',
      label: '`download --url` (plaintext)',
      server: 'Node server, plaintext in memory (the fixture object store\'s writer)',
      args: (dir) => ['download', '--url', server.url, '-d', dir, '-q', '--json', ...ctx.slicefsDownloadArgs],
      output: 'x.bin',
      check: checkPlain,
      samples: [],
      bytes: size,
    },
    {
      key: 'decrypt',
      label: '`download --ghga --decrypt`',
      server: 'GHGA fixture (blocks in memory)',
      args: (dir) => [...ghgaArgs(dir), '--decrypt'],
      output: `${accession}.bin`,
      check: checkPlain,
      samples: [],
      bytes: size,
    },
    {
      key: 'encrypted',
      label: '`download --ghga` (kept encrypted)',
      server: 'GHGA fixture (blocks in memory)',
      args: ghgaArgs,
      output: `${accession}.bin.c4gh`,
      check: async (path) => {
        const st = await stat(path).catch(() => null);
        if (!st) return 'no output file';
        if (st.size <= bodyLength || st.size > bodyLength + 64 * 1024) return `size ${st.size}: not an envelope + ${bodyLength} bytes of blocks`;
        return (await sha256File(path, st.size - bodyLength)) === bodySha ? undefined : 'the blocks differ from the fixture\'s';
      },
      samples: [],
      bytes: NaN, // set from the first output's size
    },
  ];
  if (ctx.nginxDownload) {
    variants.push({
      key: 'nginx',
      label: '`download --url` (plaintext), reference',
      server: 'nginx (sendfile, page cache)',
      args: (dir) => ['download', '--url', `${ctx.nginx.origin}/${relative(DATA_DIR, plainPath)}`, '-d', dir, '-q', '--json', ...ctx.slicefsDownloadArgs],
      output: name,
      check: checkPlain,
      samples: [],
      bytes: size,
    });
  }
  ctx.commands.push(
    `slicefs download --url URL -d DIR -q --json${ctx.slicefsDownloadArgs.length ? ' ' + ctx.slicefsDownloadArgs.join(' ') : ''}`,
    `slicefs download --ghga --ghga-url WKVS --private-key KEY --download-token-file TOKEN -d DIR -q --json [--decrypt]${ctx.slicefsDownloadArgs.length ? ' ' + ctx.slicefsDownloadArgs.join(' ') : ''}`,
  );
  let seq = 0;
  try {
    for (let i = 0; i < ctx.runs; i++) {
      for (const v of variants) {
        const dir = join(work, `out-${++seq}`);
        log(`download: run ${i + 1}/${ctx.runs}: ${v.key}`);
        const e = await launchTimed(process.execPath, [ctx.cli.bin, ...v.args(dir)], { cwd: ctx.cli.dir, timeoutMs: ctx.cmdTimeoutMs, env: slicefsEnv(), owner: 'crypt4gh-e2e-bench' }).done;
        const out = join(dir, v.output);
        let problem: string | undefined;
        if (e.timedOut) problem = `timed out after ${ctx.cmdTimeoutMs / 1000} s`;
        else if (e.code !== 0) problem = `exit ${e.code}: ${e.stderr.trim().slice(-400)}`;
        else problem = await v.check(out);
        if (problem) {
          ctx.failures.push(`download ${v.key} run ${i + 1}: ${problem}`);
          log(`  FAILED: ${problem}`);
        } else {
          if (!Number.isFinite(v.bytes)) v.bytes = (await stat(out)).size;
          v.samples.push(e);
          log(`  ${fmt(v.bytes / e.wallS / MB)} MB/s, ${fmt(e.wallS, 2)} s, CPU ${fmt(e.cpuS, 2)} s`);
        }
        await rm(dir, { recursive: true, force: true });
        await execFileP('sync', []).catch(() => {});
      }
    }
  } finally {
    await server.close();
    await ghga.close();
    unregisterGhga();
  }
  const mbps = (v: Variant) => median(v.samples.map((s) => v.bytes / s.wallS / MB));
  const byKey = (k: string) => variants.find((v) => v.key === k)!;
  const gib = size / GiB;
  const rows = variants.map(
    (v) =>
      `| ${v.label} | ${v.server} | **${fmt(mbps(v))}** | ${v.samples.map((s) => fmt(v.bytes / s.wallS / MB, 0)).join(', ') || 'failed'} | ${fmt(median(v.samples.map((s) => s.wallS)), 2)} | ` +
      `${fmt(median(v.samples.map((s) => s.cpuS)), 2)} | ${fmt(median(v.samples.map((s) => s.cpuS)) / gib, 2)} | ${fmt(median(v.samples.map((s) => s.rssMiB)), 0)} | ${Number.isFinite(v.bytes) ? v.bytes : '–'} |`,
  );
  const plainV = byKey('plain');
  const decV = byKey('decrypt');
  const encV = byKey('encrypted');
  const cpuDec = median(decV.samples.map((s) => s.cpuS));
  const cpuPlain = median(plainV.samples.map((s) => s.cpuS));
  const body = [
    `${sizeText(size)} of seeded plaintext (${relative(REPO, plainPath)}, SHA-256 ${sha.slice(0, 16)}…); each download a new process into a fresh directory under .bench/ (removed, then \`sync\`, after each), ` +
      `${ctx.runs} runs each, interleaved, median; MB/s = bytes written / wall clock from spawn to exit (CLI start-up, and for GHGA the well-known values, WPS, DCS and envelope requests, included); ` +
      'CPU = user + sys of the slicefs process (GNU time). Every output checked after its run: the plaintext\'s SHA-256, or the encrypted file\'s blocks.',
    '',
    '| download | server | median MB/s | runs MB/s | s | CPU s | CPU s per GiB | peak RSS MiB | bytes written |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `- \`--ghga --decrypt\` / \`--url\` plaintext: **${ratio(mbps(decV), mbps(plainV))}**; CPU (${fmt(cpuDec, 2)} − ${fmt(cpuPlain, 2)}) s / ${fmt(gib, 2)} GiB = ${fmt((cpuDec - cpuPlain) / gib, 2)} CPU s per GiB more`,
    `- \`--ghga\` kept encrypted / \`--url\` plaintext: ${ratio(mbps(encV), mbps(plainV))}`,
    ...(ctx.nginxDownload ? [`- \`--url\` from the Node server / from nginx: ${ratio(mbps(plainV), mbps(byKey('nginx')))}`] : []),
  ].join('\n');
  return { body, decryptRatio: mbps(decV) / mbps(plainV), encryptedRatio: mbps(encV) / mbps(plainV) };
}

// ---------------------------------------------------------------------------------------------
// Main.

interface Ctx {
  cli: { dir: string; bin: string };
  nginx: { origin: string };
  work: string;
  size: number;
  downloadSize: number;
  seed: number;
  runs: number;
  cacheSize: number;
  slicefsArgs: string[];
  slicefsDownloadArgs: string[];
  verify: boolean;
  nginxDownload: boolean;
  cmdTimeoutMs: number;
  commands: string[];
  failures: string[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '512M' },
      'download-size': { type: 'string' },
      seed: { type: 'string', default: '1' },
      runs: { type: 'string', default: '3' },
      only: { type: 'string', default: SECTIONS.join(',') },
      'cache-size': { type: 'string' },
      'slicefs-args': { type: 'string', default: '' },
      'download-args': { type: 'string', default: '' },
      'no-verify': { type: 'boolean', default: false },
      'no-nginx-download': { type: 'boolean', default: false },
      'cmd-timeout': { type: 'string', default: '300' },
      timeout: { type: 'string', default: '900' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: node dist/test/bench/crypt4gh-e2e-bench.js [--size 512M] [--download-size SIZE (default: --size)] [--seed 1] [--runs 3]\n' +
        '         [--only mount,download] [--cache-size SIZE (default: min(256M, --size))] [--slicefs-args "…" (mount)]\n' +
        '         [--download-args "…"] [--no-verify] [--no-nginx-download] [--cmd-timeout 300] [--timeout 900] [--out FILE]\n',
    );
    return;
  }
  const size = parseSize(values.size);
  if (size < SEGMENT_SIZE || size % 4 !== 0) throw new Error('--size must be at least 64K and a multiple of 4 bytes');
  const downloadSize = values['download-size'] ? parseSize(values['download-size']) : size;
  if (downloadSize < 1 || downloadSize % 4 !== 0) throw new Error('--download-size must be a positive multiple of 4 bytes');
  const cacheSize = values['cache-size'] ? parseSize(values['cache-size']) : Math.min(256 * MiB, size);
  if (cacheSize > size) log(`--cache-size ${cacheSize} > --size ${size}: the block cache may serve reads from the previous one`);
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  if (!Number.isFinite(runs)) throw new Error(`--runs: not a number: ${values.runs}`);
  const only = new Set(values.only.split(',').map((s) => s.trim()).filter(Boolean));
  for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section ${s} (${SECTIONS.join(', ')})`);
  const cmdTimeoutMs = Number(values['cmd-timeout']) * 1000;
  if (!(cmdTimeoutMs > 0)) throw new Error(`--cmd-timeout: not a positive number of seconds: ${values['cmd-timeout']}`);
  const words = (s: string) => s.split(/\s+/).filter(Boolean);
  for (const tool of ['dd', 'cmp', 'fincore', 'sync']) {
    if (!(await execFileP('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false))) throw new Error(`${tool} not found`);
  }
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time (GNU time) not found');
  const globalTimer = setTimeout(() => {
    log(`--timeout ${values.timeout} s reached, stopping`);
    void runCleanups().finally(() => process.exit(124));
  }, Number(values.timeout) * 1000);
  globalTimer.unref();
  clkTck = Number((await execFileP('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }))).stdout.trim()) || 100;

  const t0 = performance.now();
  const started = new Date();
  const cli = await copyCli(REPO, 'crypt4gh-e2e-bench');
  const check = await runTimed(process.execPath, [cli.bin, '--version'], { timeoutMs: 60_000, cwd: cli.dir, captureStdout: true });
  if (check.code !== 0) throw new Error(`the CLI copy in ${cli.dir} does not run (is dist/ built?):\n${check.stderr.slice(-2000)}`);
  const work = join(REPO, '.bench', `crypt4gh-e2e-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const unregisterWork = onCleanup('crypt4gh-e2e-bench work dir', () => rm(work, { recursive: true, force: true }));
  benchCacheHome = join(work, 'xdg-cache');
  await mkdir(benchCacheHome, { recursive: true });
  await mkdir(DATA_DIR, { recursive: true });
  const nginx = await startNginx(DATA_DIR);
  const ctx: Ctx = {
    cli,
    nginx,
    work,
    size,
    downloadSize,
    seed: Number(values.seed),
    runs,
    cacheSize,
    slicefsArgs: words(values['slicefs-args']),
    slicefsDownloadArgs: words(values['download-args']),
    verify: !values['no-verify'],
    nginxDownload: !values['no-nginx-download'],
    cmdTimeoutMs,
    commands: [],
    failures: [],
  };
  // The 1-minute load average at the start and end: on a shared 2-core host it says how far the ratios can be trusted.
  const loadAtStart = os.loadavg()[0]!;
  const parts: string[] = [];
  let mount: MountResult | undefined;
  let download: DownloadResult | undefined;
  try {
    if (only.has('mount')) {
      mount = await mountSection(ctx);
      parts.push(`## Sequential read through one mount, encrypted vs plaintext (${sizeText(size)})\n\n${mount.body}`);
    }
    if (only.has('download')) {
      download = await downloadSection(ctx);
      parts.push(`## \`download --ghga --decrypt\` vs plain \`download\` (${sizeText(downloadSize)})\n\n${download.body}`);
    }
  } finally {
    await nginx.stop();
    await rm(work, { recursive: true, force: true });
    unregisterWork();
    await cli.remove();
    await runCleanups();
  }
  const summary: string[] = [];
  if (mount) summary.push(`- mount, sequential read: encrypted / plain **${ratio(mount.encMbps, mount.plainMbps)}** (${fmt(mount.encMbps)} vs ${fmt(mount.plainMbps)} MB/s; target ≥ 0.8×); decryption **${fmt(mount.cpuPerGiB, 2)} CPU s per GiB** in the daemon`);
  if (download) summary.push(`- download: \`--ghga --decrypt\` / \`--url\` plaintext **${fmt(download.decryptRatio, 2)}×**; \`--ghga\` kept encrypted ${fmt(download.encryptedRatio, 2)}×`);
  const cpus = os.cpus();
  const text =
    `# Crypt4GH and GHGA: encrypted vs plaintext through the CLI (${started.toISOString()})\n\n` +
    `\`node dist/test/bench/crypt4gh-e2e-bench.js${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}\`\n\n` +
    `Host: ${cpus.length} CPUs (${cpus[0]?.model ?? '?'}), ${(os.totalmem() / GiB).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}; load average (1 min) ${loadAtStart.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end. ` +
    `Commands (slicefs = \`node bin/slicefs.js\`, from a copy of bin/ and dist/):\n\n${ctx.commands.map((c) => `- \`${c}\``).join('\n')}\n\n` +
    `${summary.join('\n')}\n\n` +
    parts.join('\n\n') +
    `\n\n${((performance.now() - t0) / 60_000).toFixed(1)} min in all.\n`;
  process.stdout.write(text);
  if (values.out) await writeFile(resolve(values.out), text);
  if (ctx.failures.length > 0) throw new Error(`${ctx.failures.length} failure(s):\n${ctx.failures.join('\n')}`);
}

runBenchMain('crypt4gh-e2e-bench', main);
