// slicefs benchmark: one run side by side, printed as a markdown table with ratios and written to
// .bench/results-<date>.md. Not a pass/fail test.
//
//   npm run build && node dist/test/bench/run.js [options]      (or: npm run bench)
//
// What it measures (each --runs times, median reported; MB = 10^6 bytes):
//   loopback  curl from nginx | cat of the in-memory FUSE file (the binding's ceiling) | cat through
//             slicefs  -> slicefs/curl, slicefs/ceiling
//   wan       the same through test/bench/latency-proxy (20 ms RTT, 1 Gbit/s by default): curl vs
//             cat through slicefs whose manifest points at the proxy -> slicefs/curl
//   samtools  `samtools view -c FILE REGION` (100 kb) through a slicefs mount vs samtools on the
//             http:// URL, on both links: time, HTTP requests and body bytes from nginx's access log
//   memory    peak RSS (VmHWM) of the slicefs daemon after each sequential read
//   crypt4gh  ./crypt4gh-e2e-bench.js as a child (same --size, --seed, --runs), its tables appended:
//             encrypted vs plaintext through one mount, `download --ghga --decrypt` vs `download`
//   cache-tier ./cache-tier-bench.js as a child (same --runs; --cmd-timeout when given), its table
//             appended: cold vs warm disk tier vs a shared nginx cache tier, against samtools over HTTP
//   startup   ./startup-bench.js as a child (same --runs), its table appended: `slicefs view` of a
//             1 kb region against `node -e 0` and samtools, defaults and nothing kept
//   mount-load ./mount-load-bench.js as a child (same --size, --runs, --cache-size): the mount with
//             its defaults (disk tier on) vs tier off, and random readers with and without readahead
//   thread-cpu ./thread-cpu.js as a child (same --runs): CPU seconds per thread group of `slicefs view`
//             on the local bench files (10 Mb BAM/CRAM → SAM, 10 Mb BAM → BAM, 1 kb), beside samtools
// The page cache is dropped before every run (then the origin's file is read once so nginx serves
// from memory): kernel_cache mounts must not answer from pages of an earlier run. Each slicefs run
// uses a fresh daemon (cold block cache).
//
// Everything it starts (nginx, the proxy, FUSE mounts, daemons) is stopped on exit, on error, on
// SIGINT/SIGTERM and on the global --timeout; children also get a parent-death signal.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLatencyProxy, type LatencyProxy } from './latency-proxy.js';
import { startSlicefsMount, type SlicefsMount } from './mount-daemon.js';
import { startNginx, type AccessLogSummary, type NginxServer } from './nginx.js';
import { ensureDataFile } from './prng.js';
import {
  dropCaches,
  forceUnmount,
  fuseMountsUnder,
  isFuseMounted,
  lineWatcher,
  onCleanup,
  runCleanups,
  runTimed,
  spawnChild,
  splitArgs,
  stopChild,
} from './proc.js';

// ---------------------------------------------------------------------------------------------
// Options.

interface Options {
  size: number;
  seed: number;
  runs: number;
  delayMs: number;
  rateBps: number;
  cacheSize: string;
  slicefsArgs: string[];
  slicefsVerbose: boolean;
  bam: boolean;
  region?: string;
  sections: Set<string>;
  dropCaches: boolean;
  timeoutSec: number;
  cmdTimeoutSec: number;
  /** --cmd-timeout was given (not derived from --size, which the cache-tier bench does not read). */
  cmdTimeoutGiven: boolean;
  verify: boolean;
  out?: string;
}

const USAGE = `usage: node dist/test/bench/run.js [options]
  --size N             sequential-read file size (suffix K/M/G, binary; default 512M)
  --seed S             seed of the generated file (default 1)
  --runs R             runs per measurement, median reported (default 3)
  --delay MS           WAN one-way delay in ms (default 10, i.e. 20 ms RTT)
  --rate BITS          WAN rate per direction in bit/s (default 1e9)
  --cache-size SZ      slicefs --cache-size (default 256M)
  --slicefs-args "..." extra slicefs mount arguments, e.g. "--block-size 4M --readahead-max 64M"
  --slicefs-verbose    pass --verbose to the daemon (its log is kept in the temp dir)
  --bam / --no-bam     run the samtools part (default on; builds test/helpers' bench BAM once)
  --region R           samtools region (default: 100 kb in the middle of the longest contig)
  --only LIST          comma list of sections: loopback,wan,samtools,crypt4gh,cache-tier,startup,mount-load,thread-cpu (default all)
  --no-drop-caches     do not drop the page cache between runs
  --verify             also cmp the FUSE files against the origin file once
  --timeout SEC        hard limit for the whole benchmark (default 3600)
  --cmd-timeout SEC    limit per timed command (default max(60, size / 4 MB/s))
  --out FILE           results file (default .bench/results-<date>.md)`;

const SECTIONS = ['loopback', 'wan', 'samtools', 'crypt4gh', 'cache-tier', 'startup', 'mount-load', 'thread-cpu'];

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}'`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    size: 512 * 2 ** 20,
    seed: 1,
    runs: 3,
    delayMs: 10,
    rateBps: 1e9,
    cacheSize: '256M',
    slicefsArgs: [],
    slicefsVerbose: false,
    bam: true,
    sections: new Set(SECTIONS),
    dropCaches: true,
    timeoutSec: 3600,
    cmdTimeoutSec: 0,
    cmdTimeoutGiven: false,
    verify: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    const num = (x: string) => {
      const n = Number(x);
      if (!Number.isFinite(n)) throw new Error(`${a}: not a number: ${x}`);
      return n;
    };
    switch (a) {
      case '--size':
        o.size = parseSize(v());
        break;
      case '--seed':
        o.seed = num(v());
        break;
      case '--runs':
        o.runs = Math.max(1, Math.floor(num(v())));
        break;
      case '--delay':
        o.delayMs = num(v());
        break;
      case '--rate':
        o.rateBps = num(v());
        break;
      case '--cache-size':
        o.cacheSize = v();
        break;
      case '--slicefs-args':
        o.slicefsArgs.push(...splitArgs(v()));
        break;
      case '--slicefs-verbose':
        o.slicefsVerbose = true;
        break;
      case '--bam':
        o.bam = true;
        break;
      case '--no-bam':
        o.bam = false;
        break;
      case '--region':
        o.region = v();
        break;
      case '--only':
        o.sections = new Set(v().split(',').map((x) => x.trim()).filter(Boolean));
        break;
      case '--no-drop-caches':
        o.dropCaches = false;
        break;
      case '--verify':
        o.verify = true;
        break;
      case '--timeout':
        o.timeoutSec = num(v());
        break;
      case '--cmd-timeout':
        o.cmdTimeoutSec = num(v());
        o.cmdTimeoutGiven = true;
        break;
      case '--out':
        o.out = v();
        break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}\n${USAGE}`);
    }
  }
  for (const s of o.sections) {
    if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section '${s}' (known: ${SECTIONS.join(', ')})`);
  }
  if (o.size < 1 || o.size % 4 !== 0) throw new Error('--size must be a positive multiple of 4 bytes');
  if (!o.cmdTimeoutSec) o.cmdTimeoutSec = Math.max(60, Math.ceil(o.size / 4e6));
  return o;
}

// ---------------------------------------------------------------------------------------------
// Paths.

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root');
    dir = parent;
  }
  return dir;
}

const ROOT = findRepoRoot();
const BENCH_DIR = join(ROOT, '.bench');
const DATA_DIR = join(BENCH_DIR, 'data');
const SLICEFS_BIN = join(ROOT, 'bin', 'slicefs.js');
const MEMFS_JS = fileURLToPath(new URL('./memfs-mount.js', import.meta.url));
const CRYPT4GH_JS = fileURLToPath(new URL('./crypt4gh-e2e-bench.js', import.meta.url));
const CACHE_TIER_JS = fileURLToPath(new URL('./cache-tier-bench.js', import.meta.url));
const STARTUP_JS = fileURLToPath(new URL('./startup-bench.js', import.meta.url));
const MOUNT_LOAD_JS = fileURLToPath(new URL('./mount-load-bench.js', import.meta.url));
const THREAD_CPU_JS = fileURLToPath(new URL('./thread-cpu.js', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Samples and rows.

interface Sample {
  ok: boolean;
  error?: string;
  seconds?: number;
  /** Payload bytes the reader got (for MB/s). */
  bytes?: number;
  log?: AccessLogSummary;
  /** WAN only: response bytes that crossed the emulated link (nginx's count includes what was
   * still buffered in sockets and the proxy when a client aborted a response). */
  linkBytes?: number;
  rssKiB?: number;
  stats?: Record<string, number>;
  count?: number;
  note?: string;
}

interface Row {
  section: 'seq' | 'samtools';
  link: string;
  reader: string;
  samples: Sample[];
  /** Set when the whole row could not run (e.g. slicefs not available). */
  unavailable?: string;
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const okSamples = (r: Row) => r.samples.filter((s) => s.ok);
const mbps = (s: Sample) => (s.bytes ?? 0) / (s.seconds ?? Infinity) / 1e6;
const medianOf = (r: Row, f: (s: Sample) => number | undefined) =>
  median(okSamples(r).map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));

function fmt(x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  if (Math.abs(x) >= 100) return x.toFixed(0);
  return x.toFixed(digits);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
  return `${(a / b).toFixed(2)}x`;
}

function rowNotes(r: Row): string {
  if (r.unavailable) return r.unavailable;
  const notes = new Set<string>();
  for (const s of r.samples) {
    if (!s.ok) notes.add(`failed: ${s.error}`);
    if (s.note) notes.add(s.note);
    if (s.stats && ((s.stats.retries ?? 0) > 0 || (s.stats.errors ?? 0) > 0)) {
      notes.add(`retries=${s.stats.retries ?? 0} errors=${s.stats.errors ?? 0}`);
    }
  }
  return [...notes].join('; ').replace(/\|/g, '\\|').replace(/\n/g, ' ').slice(0, 400);
}

// ---------------------------------------------------------------------------------------------
// Per-run helpers.

let opts: Options;
let tmpRoot = '';
/** Daemon logs are kept here (git-ignored .bench/), one file per mount. */
let logDir = '';
let slicefsUnavailable: string | null = null;
let mountSeq = 0;
/** Set once cleanup has started (signal, timeout, error or the normal end). */
let finishing = false;

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

/** Stops the measurement flow from starting anything new once cleanup has begun. */
function checkAborted(): void {
  if (finishing) throw new Error('aborted');
}

/** Reads a file once (so nginx serves it from the page cache). */
async function warm(path: string): Promise<void> {
  const s = createReadStream(path, { highWaterMark: 8 << 20 });
  for await (const _ of s) {
    // discard
  }
}

/** Drops the page cache (when allowed) and re-warms the origin files. */
async function coldClientWarmOrigin(originFiles: string[]): Promise<void> {
  checkAborted();
  if (opts.dropCaches) dropCaches();
  for (const f of originFiles) await warm(f);
}

const cmdTimeoutMs = () => opts.cmdTimeoutSec * 1000;

/** Times `cat file > /dev/null`. */
async function timeCat(file: string, expectBytes: number): Promise<Sample> {
  checkAborted();
  const r = await runTimed('cat', [file], { timeoutMs: cmdTimeoutMs() });
  if (r.timedOut) return { ok: false, error: `timed out after ${opts.cmdTimeoutSec} s` };
  if (r.code !== 0) return { ok: false, error: `cat exit ${r.code ?? r.signal}: ${r.stderr.trim().slice(0, 200)}` };
  return { ok: true, seconds: r.wallMs / 1000, bytes: expectBytes };
}

/** Times `curl -s -o /dev/null URL`. */
async function timeCurl(url: string, expectBytes: number): Promise<Sample> {
  checkAborted();
  const r = await runTimed('curl', ['-s', '-S', '-f', '-o', '/dev/null', '-w', '%{size_download}', url], {
    timeoutMs: cmdTimeoutMs(),
    captureStdout: true,
  });
  if (r.timedOut) return { ok: false, error: `timed out after ${opts.cmdTimeoutSec} s` };
  if (r.code !== 0) return { ok: false, error: `curl exit ${r.code}: ${r.stderr.trim().slice(0, 200)}` };
  const got = Number(r.stdout.trim());
  if (got !== expectBytes) return { ok: false, error: `curl got ${got} bytes, expected ${expectBytes}` };
  return { ok: true, seconds: r.wallMs / 1000, bytes: got };
}

// ---------------------------------------------------------------------------------------------
// The FUSE ceiling: test/bench/memfs-mount.js as a child.

interface MemfsMount {
  file: string;
  stop(): Promise<void>;
}

async function startMemfs(size: number, seed: number): Promise<MemfsMount> {
  checkAborted();
  const dir = join(tmpRoot, 'memfs');
  await mkdir(dir, { recursive: true });
  const child = spawnChild(
    process.execPath,
    [MEMFS_JS, '--dir', dir, '--size', String(size), '--seed', String(seed), '--name', 'data.bin', '--watch-stdin'],
    { stdio: ['pipe', 'pipe', 'pipe'], deathSignal: 'SIGTERM' },
  );
  const out = lineWatcher(child.stdout!);
  const err = lineWatcher(child.stderr!);
  const stop = async () => {
    await stopChild(child, 10_000);
    forceUnmount(dir);
  };
  const unregister = onCleanup('memfs mount', stop);
  try {
    const ready = await Promise.race([
      out.waitFor((l) => l.startsWith('ready '), 120_000),
      once(child, 'exit').then(() => {
        throw new Error('exited');
      }),
    ]);
    if (!isFuseMounted(dir)) throw new Error('reported ready but nothing is mounted');
    return {
      file: ready.slice('ready '.length),
      async stop() {
        await stop();
        unregister();
      },
    };
  } catch (e) {
    await stop();
    unregister();
    throw new Error(`memfs mount failed: ${(e as Error).message}: ${err.tail().slice(-500)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// slicefs daemon (./mount-daemon.ts; the manifest is a TSV url/path/size).

interface ManifestRow {
  url: string;
  path: string;
  size?: number;
}

async function mountSlicefs(rows: ManifestRow[]): Promise<SlicefsMount> {
  checkAborted();
  if (slicefsUnavailable) throw new Error(slicefsUnavailable);
  const n = ++mountSeq;
  const base = join(tmpRoot, `slicefs-${n}`);
  const dir = join(base, 'mnt');
  await mkdir(dir, { recursive: true });
  const manifest = join(base, 'manifest.tsv');
  await writeFile(
    manifest,
    'url\tpath\tsize\n' + rows.map((r) => `${r.url}\t${r.path}\t${r.size ?? ''}`).join('\n') + '\n',
  );
  // A fresh daemon is a cold one: the persistent disk tier (on by default) is turned off here.
  const args = [SLICEFS_BIN, 'mount', '--manifest', manifest, '--mount-point', dir, '--cache-size', opts.cacheSize, '--disk-cache-size', '0'];
  if (opts.slicefsVerbose) args.push('--verbose');
  args.push(...opts.slicefsArgs);
  return startSlicefsMount({ args, dir, cwd: ROOT, logFile: join(logDir, `slicefs-${n}.log`), mountedTimeoutMs: 60_000 });
}

/** Mounts, or records why slicefs is not available (and then stays unavailable for the run). */
async function tryMount(rows: ManifestRow[]): Promise<SlicefsMount | string> {
  checkAborted();
  try {
    return await mountSlicefs(rows);
  } catch (e) {
    const msg = `slicefs: not available (${(e as Error).message.slice(0, 300)})`;
    if (!slicefsUnavailable) log(msg);
    slicefsUnavailable = msg;
    return msg;
  }
}

// ---------------------------------------------------------------------------------------------
// Sections.

interface Link {
  name: string;
  origin: string;
  describe: string;
  proxy?: LatencyProxy;
}

/**
 * Starts counting: clears nginx's access log and snapshots the proxy's counters. The returned
 * function adds the requests/bytes seen since to a sample.
 */
async function startMeter(nginx: NginxServer, link: Link): Promise<(s: Sample) => Promise<Sample>> {
  await nginx.resetLog();
  const before = link.proxy?.stats();
  return async (s) => {
    s.log = await nginx.accessLog();
    if (before && link.proxy) s.linkBytes = link.proxy.stats().deliveredDown - before.deliveredDown;
    return s;
  };
}

/**
 * One daemon, two timed reads: the first in a fresh daemon, the second after dropping the page
 * cache again, in the now running (JIT-warm) daemon. With a file of at least twice the cache
 * budget the second read is cold too (an LRU scanned in order keeps nothing the next scan can use;
 * its request count shows it).
 */
async function seqSlicefsRun(nginx: NginxServer, link: Link, file: { path: string; rel: string; size: number }): Promise<{ first: Sample; second?: Sample }> {
  // Caches are dropped before the daemon starts: a mounted daemon is resident, and dropping them
  // after would time the reloading of node's own code pages, not the read path. The new mount's
  // page cache starts empty either way.
  await coldClientWarmOrigin([file.path]);
  const m = await tryMount([{ url: `${link.origin}/${file.rel}`, path: 'data.bin', size: file.size }]);
  if (typeof m === 'string') return { first: { ok: false, error: m } };
  try {
    const meter = await startMeter(nginx, link);
    const s = await meter(await timeCat(join(m.dir, 'data.bin'), file.size));
    s.stats = (await m.stats()) ?? undefined;
    s.rssKiB = m.peakRssKiB();
    await coldClientWarmOrigin([file.path]);
    const meter2 = await startMeter(nginx, link);
    const second = await meter2(await timeCat(join(m.dir, 'data.bin'), file.size));
    second.rssKiB = m.peakRssKiB();
    if (opts.verify && s.ok) {
      const c = await runTimed('cmp', [join(m.dir, 'data.bin'), file.path], { timeoutMs: cmdTimeoutMs() });
      s.note = c.code === 0 ? 'content verified (cmp)' : `CONTENT MISMATCH: ${c.stderr.trim().slice(0, 120)}`;
    }
    return { first: s, second };
  } finally {
    const note = await m.stop();
    if (note) log(`slicefs ${link.name}: ${note}`);
  }
}

async function sequentialSection(nginx: NginxServer, link: Link, file: { path: string; rel: string; size: number }, memfs: MemfsMount | string | null): Promise<Row[]> {
  const curl: Row = { section: 'seq', link: link.name, reader: `curl (${link.describe})`, samples: [] };
  const ceiling: Row = { section: 'seq', link: link.name, reader: 'cat, in-memory FUSE file (ceiling)', samples: [] };
  const slicefs: Row = { section: 'seq', link: link.name, reader: 'cat through slicefs', samples: [] };
  const slicefs2: Row = { section: 'seq', link: link.name, reader: 'cat through slicefs, 2nd read in the running daemon', samples: [] };
  const url = `${link.origin}/${file.rel}`;
  for (let i = 0; i < opts.runs; i++) {
    log(`${link.name} run ${i + 1}/${opts.runs}: curl`);
    await coldClientWarmOrigin([file.path]);
    const meter = await startMeter(nginx, link);
    curl.samples.push(await meter(await timeCurl(url, file.size)));

    if (memfs !== null) {
      if (typeof memfs === 'string') {
        ceiling.unavailable = memfs;
      } else {
        log(`${link.name} run ${i + 1}/${opts.runs}: memfs ceiling`);
        if (opts.dropCaches) dropCaches();
        const s = await timeCat(memfs.file, file.size);
        if (opts.verify && i === 0 && s.ok) {
          const c = await runTimed('cmp', [memfs.file, file.path], { timeoutMs: cmdTimeoutMs() });
          s.note = c.code === 0 ? 'content verified (cmp)' : `CONTENT MISMATCH: ${c.stderr.trim().slice(0, 120)}`;
        }
        ceiling.samples.push(s);
      }
    }

    log(`${link.name} run ${i + 1}/${opts.runs}: slicefs`);
    if (slicefsUnavailable) {
      slicefs.unavailable = slicefsUnavailable;
    } else {
      const s = await seqSlicefsRun(nginx, link, file);
      if (slicefsUnavailable) slicefs.unavailable = slicefsUnavailable;
      else {
        slicefs.samples.push(s.first);
        if (s.second) slicefs2.samples.push(s.second);
      }
    }
  }
  return memfs !== null ? [curl, ceiling, slicefs, slicefs2] : [curl, slicefs, slicefs2];
}

interface Bam {
  bam: string;
  bytes: number;
  bai: string;
  region: string;
  expected: number;
}

/**
 * The bench-scale BAM of test/helpers/sample-data.ts, built once into .bench/data/sample-bench (under
 * the nginx root). Imported lazily so a failure there only disables the samtools part.
 */
async function loadBam(): Promise<Bam> {
  const { ensureSampleData } = await import('../helpers/sample-data.js');
  log('samtools: ensuring the bench BAM (the first build takes a minute or so)');
  const res = await ensureSampleData(join(DATA_DIR, 'sample-bench'), { scale: 'bench' });
  const bam = res.bam;
  if (!bam || !existsSync(bam)) throw new Error('ensureSampleData returned no BAM');
  const bai = res.bai && existsSync(res.bai) ? res.bai : `${bam}.bai`;
  if (!existsSync(bai)) throw new Error(`no index beside ${bam}`);
  if (relative(DATA_DIR, bam).startsWith('..')) throw new Error(`${bam} is outside ${DATA_DIR} (nginx root)`);
  let region = opts.region;
  if (!region) {
    let contigs = res.contigs;
    if (contigs.length === 0) {
      const h = spawnSync('samtools', ['view', '-H', bam], { encoding: 'utf8', timeout: 60_000 });
      contigs = [...(h.stdout ?? '').matchAll(/^@SQ\tSN:(\S+)\tLN:(\d+)/gm)].map((m) => ({ name: m[1], length: Number(m[2]) }));
    }
    const longest = [...contigs].sort((a, b) => b.length - a.length)[0];
    if (!longest) throw new Error('no contigs in the BAM header');
    const start = Math.max(1, Math.floor(longest.length / 2) - 50_000);
    region = `${longest.name}:${start}-${start + 99_999}`;
  }
  const c = await runTimed('samtools', ['view', '-c', bam, region], { timeoutMs: 120_000, captureStdout: true });
  if (c.code !== 0) throw new Error(`samtools view -c on the local BAM failed: ${c.stderr.trim().slice(0, 200)}`);
  return { bam, bytes: (await stat(bam)).size, bai, region, expected: Number(c.stdout.trim()) };
}

async function timeSamtools(target: string, region: string, expected: number): Promise<Sample> {
  // A fresh working directory per run: htslib may download a remote index into the cwd.
  const cwd = await mkdtemp(join(tmpRoot, 'samtools-'));
  try {
    checkAborted();
    const r = await runTimed('samtools', ['view', '-c', target, region], { timeoutMs: cmdTimeoutMs(), cwd, captureStdout: true });
    if (r.timedOut) return { ok: false, error: `timed out after ${opts.cmdTimeoutSec} s` };
    if (r.code !== 0) return { ok: false, error: `samtools exit ${r.code}: ${r.stderr.trim().slice(0, 200)}` };
    const count = Number(r.stdout.trim());
    const s: Sample = { ok: true, seconds: r.wallMs / 1000, count };
    if (count !== expected) s.note = `COUNT MISMATCH: ${count} != ${expected}`;
    return s;
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

async function samtoolsSection(nginx: NginxServer, link: Link, b: Bam): Promise<Row[]> {
  const relBam = relative(DATA_DIR, b.bam);
  const relBai = relative(DATA_DIR, b.bai);
  const direct: Row = { section: 'samtools', link: link.name, reader: `samtools on the http:// URL (${link.describe})`, samples: [] };
  const mount: Row = { section: 'samtools', link: link.name, reader: 'samtools through slicefs', samples: [] };
  const files = [b.bam, b.bai];
  const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
  for (let i = 0; i < opts.runs; i++) {
    log(`samtools ${link.name} run ${i + 1}/${opts.runs}: direct`);
    await coldClientWarmOrigin(files);
    const meter = await startMeter(nginx, link);
    direct.samples.push(await meter(await timeSamtools(`${link.origin}/${relBam}`, b.region, b.expected)));

    log(`samtools ${link.name} run ${i + 1}/${opts.runs}: slicefs`);
    if (slicefsUnavailable) {
      mount.unavailable = slicefsUnavailable;
      continue;
    }
    // As in seqSlicefsRun: caches dropped before the daemon starts (a mount is resident).
    await coldClientWarmOrigin(files);
    const m = await tryMount([
      { url: `${link.origin}/${relBam}`, path: basename(b.bam), size: sizes[0] },
      { url: `${link.origin}/${relBai}`, path: basename(b.bai), size: sizes[1] },
    ]);
    if (typeof m === 'string') {
      mount.unavailable = m;
      continue;
    }
    try {
      const meter = await startMeter(nginx, link);
      const s = await meter(await timeSamtools(join(m.dir, basename(b.bam)), b.region, b.expected));
      s.stats = (await m.stats()) ?? undefined;
      s.rssKiB = m.peakRssKiB();
      mount.samples.push(s);
    } finally {
      const note = await m.stop();
      if (note) log(`slicefs samtools ${link.name}: ${note}`);
    }
  }
  return [direct, mount];
}

/**
 * A benchmark script as a child (its own nginx, mounts and servers; stopped with it), run after the
 * other sections; its markdown, headings one level down, is appended to the report. `title` heads a
 * failure, and the output of a script that prints no heading of its own.
 */
async function childSection(name: string, script: string, args: string[], title: string): Promise<string> {
  checkAborted();
  log(`${name}: node ${relative(ROOT, script)} ${args.join(' ')}`);
  const child = spawnChild(process.execPath, [script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], deathSignal: 'SIGTERM' });
  const unregister = onCleanup(basename(script, '.js'), async () => void (await stopChild(child, 30_000)));
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const err = lineWatcher(child.stderr!, (l) => process.stderr.write(`${l}\n`));
  const [code] = (await once(child, 'close')) as [number | null];
  unregister();
  const body = out.replace(/^#/gm, '##').trim();
  if (code !== 0) return `\n## ${title}\n\nfailed (exit ${code}): ${err.tail().split('\n').slice(-5).join(' / ')}\n${body ? `\n${body}\n` : ''}`;
  return body.startsWith('#') ? `\n${body}\n` : `\n## ${title}\n\n${body}\n`;
}

/** ./crypt4gh-e2e-bench.js: encrypted vs plaintext through a mount, and GHGA downloads. */
function crypt4ghSection(): Promise<string> {
  const args = ['--size', String(opts.size), '--seed', String(opts.seed), '--runs', String(opts.runs), '--cmd-timeout', String(opts.cmdTimeoutSec)];
  return childSection('crypt4gh', CRYPT4GH_JS, args, 'Crypt4GH and GHGA');
}

/**
 * ./cache-tier-bench.js: the disk tier and a shared nginx tier. It reads the bench BAM, not the
 * seeded file, so it takes no --size or --seed; --cmd-timeout only when given, since run.ts's
 * default is derived from --size. Its origin access logs are kept with the daemon logs.
 */
function cacheTierSection(): Promise<string> {
  const args = ['--runs', String(opts.runs), '--log-dir', join(logDir, 'cache-tier')];
  if (opts.cmdTimeoutGiven) args.push('--cmd-timeout', String(opts.cmdTimeoutSec));
  return childSection('cache-tier', CACHE_TIER_JS, args, 'Disk and shared cache tiers');
}

/** ./startup-bench.js: `slicefs view` of a 1 kb region against `node -e 0` and samtools. */
function startupSection(): Promise<string> {
  return childSection('startup', STARTUP_JS, ['--runs', String(opts.runs)], 'Start-up of view');
}

/** ./mount-load-bench.js: the mount as users get it (disk tier on) against tuned configurations. */
function mountLoadSection(): Promise<string> {
  const args = ['--size', String(opts.size), '--seed', String(opts.seed), '--runs', String(opts.runs), '--cache-size', opts.cacheSize];
  return childSection('mount-load', MOUNT_LOAD_JS, args, 'The mount with its defaults, and random readers');
}

/** ./thread-cpu.js: where `slicefs view`'s CPU goes, per thread group, on the local bench files. */
function threadCpuSection(): Promise<string> {
  return childSection('thread-cpu', THREAD_CPU_JS, ['--runs', String(opts.runs)], 'CPU per thread of view');
}

// ---------------------------------------------------------------------------------------------
// Report.

function seqTable(rows: Row[]): string {
  const out = [
    '| link | reader | median MB/s | runs MB/s | HTTP requests | origin MB | link MB | TCP conns | daemon peak RSS MiB | notes |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const ok = okSamples(r);
    const isFuseOnly = r.reader.includes('ceiling');
    out.push(
      `| ${r.link} | ${r.reader} | ${r.unavailable || ok.length === 0 ? '–' : fmt(medianOf(r, mbps))} | ` +
        `${r.samples.map((s) => (s.ok ? fmt(mbps(s)) : 'fail')).join(', ') || '–'} | ` +
        `${isFuseOnly ? '–' : fmt(medianOf(r, (s) => s.log?.requests), 0)} | ` +
        `${isFuseOnly ? '–' : fmt(medianOf(r, (s) => (s.log ? s.log.bytes / 1e6 : undefined)))} | ` +
        `${fmt(medianOf(r, (s) => (s.linkBytes === undefined ? undefined : s.linkBytes / 1e6)))} | ` +
        `${isFuseOnly ? '–' : fmt(medianOf(r, (s) => s.log?.connections), 0)} | ` +
        `${fmt(medianOf(r, (s) => (s.rssKiB === undefined ? undefined : s.rssKiB / 1024)), 0)} | ${rowNotes(r)} |`,
    );
  }
  return out.join('\n');
}

function samtoolsTable(rows: Row[]): string {
  const out = [
    '| link | access | median s | runs s | HTTP requests | origin MB | link MB | TCP conns | reads counted | daemon peak RSS MiB | notes |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const ok = okSamples(r);
    out.push(
      `| ${r.link} | ${r.reader} | ${r.unavailable || ok.length === 0 ? '–' : fmt(medianOf(r, (s) => s.seconds), 3)} | ` +
        `${r.samples.map((s) => (s.ok ? fmt(s.seconds, 3) : 'fail')).join(', ') || '–'} | ` +
        `${fmt(medianOf(r, (s) => s.log?.requests), 0)} | ${fmt(medianOf(r, (s) => (s.log ? s.log.bytes / 1e6 : undefined)), 2)} | ` +
        `${fmt(medianOf(r, (s) => (s.linkBytes === undefined ? undefined : s.linkBytes / 1e6)), 2)} | ` +
        `${fmt(medianOf(r, (s) => s.log?.connections), 0)} | ${fmt(medianOf(r, (s) => s.count), 0)} | ` +
        `${fmt(medianOf(r, (s) => (s.rssKiB === undefined ? undefined : s.rssKiB / 1024)), 0)} | ${rowNotes(r)} |`,
    );
  }
  return out.join('\n');
}

function find(rows: Row[], link: string, part: string): Row | undefined {
  return rows.find((r) => r.link === link && r.reader.includes(part));
}

function ratiosSeq(rows: Row[]): string[] {
  const lines: string[] = [];
  const m = (r: Row | undefined) => (r && !r.unavailable ? medianOf(r, mbps) : undefined);
  for (const link of [...new Set(rows.map((r) => r.link))]) {
    const curl = m(find(rows, link, 'curl'));
    const sl = m(rows.find((r) => r.link === link && r.reader === 'cat through slicefs'));
    const sl2 = m(find(rows, link, '2nd read'));
    const ceil = m(find(rows, link, 'ceiling'));
    lines.push(`- ${link}: slicefs / curl = **${ratio(sl, curl)}** (fresh daemon), **${ratio(sl2, curl)}** (running daemon)`);
    if (find(rows, link, 'ceiling')) {
      lines.push(
        `- ${link}: slicefs / FUSE ceiling = **${ratio(sl, ceil)}** (fresh daemon), **${ratio(sl2, ceil)}** (running daemon); ceiling / curl = ${ratio(ceil, curl)}`,
      );
    }
  }
  return lines;
}

function ratiosSamtools(rows: Row[]): string[] {
  const lines: string[] = [];
  for (const link of [...new Set(rows.map((r) => r.link))]) {
    const d = find(rows, link, 'http://');
    const s = find(rows, link, 'slicefs');
    if (!d || !s) continue;
    const t = (r: Row) => (r.unavailable ? undefined : medianOf(r, (x) => x.seconds));
    const q = (r: Row) => (r.unavailable ? undefined : medianOf(r, (x) => x.log?.requests));
    const by = (r: Row) => (r.unavailable ? undefined : medianOf(r, (x) => x.linkBytes ?? x.log?.bytes));
    lines.push(
      `- ${link}: slicefs / direct: time **${ratio(t(s), t(d))}**, requests ${ratio(q(s), q(d))}, ` +
        `${s.samples.some((x) => x.linkBytes !== undefined) ? 'link' : 'origin'} bytes ${ratio(by(s), by(d))}`,
    );
  }
  return lines;
}

function rssLines(rows: Row[]): string[] {
  const lines: string[] = [];
  for (const r of rows) {
    if (!r.reader.includes('slicefs') || r.unavailable) continue;
    const xs = okSamples(r)
      .map((s) => s.rssKiB)
      .filter((x): x is number => x !== undefined);
    if (xs.length === 0) continue;
    const st = okSamples(r).find((s) => s.stats)?.stats;
    lines.push(
      `- ${r.link}, ${r.reader}: peak RSS median ${fmt(median(xs)! / 1024, 0)} MiB, max ${fmt(Math.max(...xs) / 1024, 0)} MiB` +
        (st ? `; daemon stats (run 1): ${Object.entries(st).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''),
    );
  }
  return lines;
}

function gitRev(): string {
  const r = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 });
  const rev = r.status === 0 ? r.stdout.trim() : 'no commit';
  const d = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', timeout: 5000 });
  return rev + (d.status === 0 && d.stdout.trim() ? ' (dirty)' : '');
}

function report(started: Date, seqRows: Row[], samRows: Row[], bam: Bam | string | null, elapsedSec: number): string {
  const mib = (opts.size / 2 ** 20).toFixed(opts.size % 2 ** 20 ? 1 : 0);
  const parts: string[] = [];
  parts.push(`# slicefs benchmark ${started.toISOString()}`);
  parts.push('');
  parts.push(
    [
      `- host: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}`,
      `- slicefs: ${gitRev()}; mount args: --cache-size ${opts.cacheSize} ${opts.slicefsArgs.join(' ')}`.trimEnd(),
      `- sequential file: ${mib} MiB seeded random (seed ${opts.seed}); ${opts.runs} runs each, median; MB = 10^6 bytes`,
      `- WAN link: test/bench/latency-proxy, ${2 * opts.delayMs} ms RTT, ${opts.rateBps / 1e6} Mbit/s per direction, aggregate`,
      `- origin: Debian nginx (sendfile) on 127.0.0.1; page cache ${opts.dropCaches ? 'dropped before each run (origin re-warmed)' : 'NOT dropped'}`,
      '- HTTP requests / origin MB / TCP conns: nginx access log ($body_bytes_sent, which also counts bytes of aborted ' +
        'responses still in socket buffers); link MB: response bytes that crossed the emulated WAN link',
      `- total time ${elapsedSec.toFixed(0)} s`,
    ].join('\n'),
  );
  if (seqRows.length) {
    parts.push('', `## Sequential read of ${mib} MiB`, '', seqTable(seqRows), '', ...ratiosSeq(seqRows));
  }
  if (bam !== null) {
    parts.push('', '## samtools view -c, 100 kb region', '');
    if (typeof bam === 'string') {
      parts.push(`samtools: not available (${bam})`);
    } else {
      parts.push(
        `BAM ${relative(ROOT, bam.bam)} (${fmt(bam.bytes / 1e6)} MB), region ${bam.region}, ${bam.expected} reads in the local file.`,
        '',
        samtoolsTable(samRows),
        '',
        ...ratiosSamtools(samRows),
      );
    }
  }
  const rss = rssLines([...seqRows, ...samRows]);
  if (rss.length) parts.push('', '## slicefs daemon memory', '', ...rss);
  return parts.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Main.

/**
 * Leftovers of a benchmark that was SIGKILLed (its children died with it through the parent-death
 * signal, but its temp dirs, and possibly a lazy mount, stayed): /tmp/slicefs-bench-<pid>-* whose
 * pid is gone. Lazy-unmounts FUSE mounts below them, then removes them.
 */
async function sweepStale(): Promise<void> {
  const tmp = os.tmpdir();
  let names: string[] = [];
  try {
    names = await readdir(tmp);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^slicefs-bench-(?:nginx-)?(\d+)-/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // still running
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    const dir = join(tmp, name);
    for (const mnt of fuseMountsUnder(dir)) forceUnmount(mnt);
    if (fuseMountsUnder(dir).length > 0) continue;
    log(`removing stale ${dir}`);
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

let cleanupDone: Promise<void> | null = null;
let firstExitCode = 0;
/** Cleans up everything once (later callers wait for the same cleanup), then exits. */
async function abort(why: string, code: number): Promise<never> {
  if (!cleanupDone) {
    finishing = true;
    firstExitCode = code;
    if (why) log(`${why}: cleaning up`);
    cleanupDone = runCleanups();
  }
  await cleanupDone;
  process.exit(firstExitCode);
}

async function main(): Promise<void> {
  opts = parseOptions(process.argv.slice(2));
  const started = new Date();
  const t0 = Date.now();
  process.on('SIGINT', () => void abort('SIGINT', 130));
  process.on('SIGTERM', () => void abort('SIGTERM', 143));
  process.on('SIGHUP', () => void abort('SIGHUP', 129));
  process.on('uncaughtException', (e) => void abort(`uncaught exception: ${e.stack ?? e}`, 1));
  process.on('unhandledRejection', (e) => void abort(`unhandled rejection: ${(e as Error)?.stack ?? String(e)}`, 1));
  const watchdog = setTimeout(() => void abort(`global timeout (${opts.timeoutSec} s)`, 124), opts.timeoutSec * 1000);

  await mkdir(DATA_DIR, { recursive: true });
  await sweepStale();
  tmpRoot = await mkdtemp(join(os.tmpdir(), `slicefs-bench-${process.pid}-`));
  logDir = join(BENCH_DIR, 'logs', started.toISOString().replace(/[:.]/g, '-'));
  await mkdir(logDir, { recursive: true });
  onCleanup('temp dir', () => rm(tmpRoot, { recursive: true, force: true }));

  log(`data: ensuring ${opts.size} bytes in ${relative(ROOT, DATA_DIR)}`);
  const dataPath = await ensureDataFile(DATA_DIR, opts.size, opts.seed);
  const file = { path: dataPath, rel: relative(DATA_DIR, dataPath), size: opts.size };

  const nginx = await startNginx(DATA_DIR);
  log(`nginx on ${nginx.origin}`);
  const proxy = await startLatencyProxy({ upstreamPort: nginx.port, oneWayDelayMs: opts.delayMs, rateBitsPerSec: opts.rateBps });
  onCleanup('latency proxy', () => proxy.close());
  log(`latency proxy on 127.0.0.1:${proxy.port} (${2 * opts.delayMs} ms RTT, ${opts.rateBps / 1e6} Mbit/s)`);
  const loopback: Link = { name: 'loopback', origin: nginx.origin, describe: 'nginx direct' };
  const wan: Link = {
    name: `wan ${2 * opts.delayMs}ms/${opts.rateBps >= 1e9 ? `${opts.rateBps / 1e9}G` : `${opts.rateBps / 1e6}M`}`,
    origin: `http://127.0.0.1:${proxy.port}`,
    describe: 'via latency proxy',
    proxy,
  };

  if (!existsSync(SLICEFS_BIN) || !existsSync(join(ROOT, 'dist', 'src', 'cli', 'main.js'))) {
    slicefsUnavailable = 'slicefs: not available (bin/slicefs.js or dist/src/cli/main.js missing: npm run build)';
    log(slicefsUnavailable);
  }

  const seqRows: Row[] = [];
  if (opts.sections.has('loopback')) {
    let memfs: MemfsMount | string;
    try {
      memfs = await startMemfs(opts.size, opts.seed);
      log(`memfs ceiling mounted: ${memfs.file}`);
    } catch (e) {
      memfs = `FUSE ceiling: not available (${(e as Error).message.slice(0, 200)})`;
      log(memfs);
    }
    seqRows.push(...(await sequentialSection(nginx, loopback, file, memfs)));
    if (typeof memfs !== 'string') await memfs.stop();
  }
  if (opts.sections.has('wan')) seqRows.push(...(await sequentialSection(nginx, wan, file, null)));

  const samRows: Row[] = [];
  let bam: Bam | string | null = null;
  if (opts.sections.has('samtools') && opts.bam) {
    try {
      bam = await loadBam();
      log(`samtools: ${relative(ROOT, bam.bam)} region ${bam.region} (${bam.expected} reads)`);
    } catch (e) {
      bam = (e as Error).message.slice(0, 300);
      log(`samtools: not available (${bam})`);
    }
    if (typeof bam !== 'string') {
      samRows.push(...(await samtoolsSection(nginx, loopback, bam)));
      samRows.push(...(await samtoolsSection(nginx, wan, bam)));
    }
  }

  await proxy.close();
  await nginx.stop();
  const c4gh = opts.sections.has('crypt4gh') ? await crypt4ghSection() : '';
  const tiers = opts.sections.has('cache-tier') ? await cacheTierSection() : '';
  const startup = opts.sections.has('startup') ? await startupSection() : '';
  const mountLoad = opts.sections.has('mount-load') ? await mountLoadSection() : '';
  const threadCpu = opts.sections.has('thread-cpu') ? await threadCpuSection() : '';
  clearTimeout(watchdog);
  const text = report(started, seqRows, samRows, bam, (Date.now() - t0) / 1000) + c4gh + tiers + startup + mountLoad + threadCpu;
  await mkdir(BENCH_DIR, { recursive: true });
  const out = resolve(opts.out ?? join(BENCH_DIR, `results-${started.toISOString().replace(/[:.]/g, '-')}.md`));
  await writeFile(out, text);
  process.stdout.write('\n' + text);
  log(`written to ${relative(process.cwd(), out) || out}; daemon logs in ${relative(process.cwd(), logDir)}`);
}

main()
  .then(() => abort('', 0))
  .catch((e: unknown) => abort(`failed: ${(e as Error)?.stack ?? String(e)}`, 1));
