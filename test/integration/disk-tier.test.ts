/**
 * The disk tier in this process, against the fixture server: chunks come from disk on a second
 * tier over the same directory (a restart: no GET), a read is widened to whole chunks and shared by
 * concurrent readers, a damaged chunk (a flipped byte, a truncated file) is dropped and fetched
 * again, a changed object never answers from the old entry, eviction keeps the budget least
 * recently used first, two tiers on one directory under load read correct bytes, encrypted objects
 * are kept as ciphertext, modes are 0700/0600, a full disk is one warning and reads stay correct,
 * a failed fetch stores nothing.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CHUNK_HEADER_BYTES } from '../../src/cache/chunk-file.js';
import { DiskTier } from '../../src/cache/disk-tier.js';
import { identityMatcher } from '../../src/cli/cache-run.js';
import { cacheRoot, diskCacheConfig } from '../../src/cli/disk-cache-options.js';
import { DEFAULT_DISK_CACHE, DEFAULT_TRANSPORT, type TransportConfig } from '../../src/config.js';
import { generateKeyPair } from '../../src/crypt4gh/keys.js';
import { Crypt4ghSource } from '../../src/source/crypt4gh-source.js';
import { HttpSource, type ObjectSource } from '../../src/source/object-source.js';
import { Stats } from '../../src/stats.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import { WorkerTransport } from '../../src/transport/worker-transport.js';
import { encryptC4gh } from '../helpers/c4gh-encrypt.js';
import { cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom, seededBytes } from '../helpers/random.js';

const MiB = 1024 * 1024;
let server: FixtureServer;
let work: string;
const transports: HttpTransport[] = [];

before(async () => {
  server = await FixtureServer.start();
  work = await tempDir('slicefs-disk-tier-');
});
after(async () => {
  for (const t of transports) await t.close().catch(() => {});
  await server?.close();
  await cleanup(work);
});

function transport(config: TransportConfig = DEFAULT_TRANSPORT): HttpTransport {
  const t = new HttpTransport(config, new Stats());
  transports.push(t);
  return t;
}

async function openTier(dir: string, opts: { budget?: number; warn?: (m: string) => void; writerThread?: boolean } = {}): Promise<DiskTier> {
  const t = await DiskTier.open({ ...DEFAULT_DISK_CACHE, dir, budgetBytes: opts.budget }, opts.warn ?? (() => {}), new Stats(), { writerThread: opts.writerThread });
  assert.ok(t, 'the tier opens');
  return t;
}

async function readRange(src: ObjectSource, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let last = start;
  await src.read(start, end, (c) => {
    parts.push(Buffer.from(c));
    last += c.length;
  });
  assert.equal(last, end, 'every byte delivered once');
  return Buffer.concat(parts);
}

const gets = (path: string) => server.requests.filter((r) => r.method === 'GET' && r.path === path);

/** Every file under `dir` with its mode and size. */
async function walk(dir: string): Promise<{ path: string; mode: number; size: number; dir: boolean }[]> {
  const out: { path: string; mode: number; size: number; dir: boolean }[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    const s = await stat(p).catch(() => undefined);
    if (s) out.push({ path: p, mode: s.mode & 0o777, size: s.size, dir: s.isDirectory() });
  }
  return out;
}

const bytesUnder = async (dir: string) => (await walk(dir)).filter((f) => !f.dir).reduce((n, f) => n + f.size, 0);
const chunkFiles = async (dir: string) => (await walk(dir)).filter((f) => /\/c\d+$/.test(f.path));

function ranges(seed: number, size: number, n: number): [number, number][] {
  const rnd = new SeededRandom(seed);
  return Array.from({ length: n }, () => {
    const a = rnd.int(0, size - 1);
    return [a, Math.min(size, a + rnd.int(1, 3 * MiB))];
  });
}

test('a second tier on the same directory (a restart) reads every byte from disk: no GET', async () => {
  const data = seededBytes(1, 5 * MiB + 12345);
  server.addFile('/r/restart.bin', data);
  const dir = join(work, 'restart');
  const rs = ranges(7, data.length, 40);

  const t1 = await openTier(dir);
  const s1 = t1.wrap(new HttpSource(transport(), server.url('/r/restart.bin')));
  for (const [a, b] of rs) assert.ok((await readRange(s1, a, b)).equals(data.subarray(a, b)), `[${a}, ${b})`);
  await t1.close();
  assert.ok(gets('/r/restart.bin').length > 0);
  // Reads are widened to 64 KiB pages, and a piece that joins no extent of its slot once the
  // slot's fetches are done is dropped (a chunk file holds one extent): a little over the object.
  assert.ok(t1.counters.missBytes <= 1.25 * data.length, `${t1.counters.missBytes} bytes fetched for ${data.length}`);
  assert.equal((await chunkFiles(dir)).length, 6, 'one file per slot');

  server.resetLog();
  const t2 = await openTier(dir);
  const s2 = t2.wrap(new HttpSource(transport(), server.url('/r/restart.bin?X-Amz-Signature=other')));
  for (const [a, b] of rs) assert.ok((await readRange(s2, a, b)).equals(data.subarray(a, b)), `[${a}, ${b}) from disk`);
  await t2.close();
  assert.equal(gets('/r/restart.bin').length, 0, 'no data request: another query string is the same object');
  assert.equal(t2.counters.misses, 0);
  assert.ok(t2.counters.hits >= 6);
});

test('as the mount runs it (fetch worker, writer thread): concurrent reads written behind, a restart reads every byte from disk', async () => {
  const data = seededBytes(2, 9 * MiB + 777);
  server.addFile('/r/behind.bin', data);
  const dir = join(work, 'behind');
  const wt = new WorkerTransport(DEFAULT_TRANSPORT, new Stats());
  await wt.start();
  try {
    const t1 = await openTier(dir, { writerThread: true });
    const s1 = t1.wrap(new HttpSource(wt, server.url('/r/behind.bin')));
    // Whole slots, four readers at a time: every piece is written by the writer thread.
    const slots = Array.from({ length: 10 }, (_, i) => [i * MiB, Math.min(data.length, (i + 1) * MiB)] as const);
    for (let i = 0; i < slots.length; i += 4) {
      await Promise.all(slots.slice(i, i + 4).map(async ([a, b]) => assert.ok((await readRange(s1, a, b)).equals(data.subarray(a, b)), `[${a}, ${b})`)));
    }
    await t1.close();
    assert.equal((await chunkFiles(dir)).length, 10, 'one file per slot, written behind the reads');
  } finally {
    await wt.close();
  }
  server.resetLog();
  const t2 = await openTier(dir);
  const s2 = t2.wrap(new HttpSource(transport(), server.url('/r/behind.bin')));
  assert.ok((await readRange(s2, 0, data.length)).equals(data), 'every byte from disk');
  await t2.close();
  assert.equal(gets('/r/behind.bin').length, 0, 'no data request');
});

test('a freed block whose buffer a piece waiting for the disk holds is handed back only once the tier lets go of it', async () => {
  const t = await openTier(join(work, 'when-free'));
  const held = Buffer.from(new SharedArrayBuffer(4096));
  const free = Buffer.from(new SharedArrayBuffer(4096));
  t.hold([held], 1);
  const later: Buffer[] = [];
  assert.deepEqual(t.whenFree([held, free], (p) => later.push(p)), [free], 'the free one now');
  assert.equal(later.length, 0, 'the held one not yet');
  t.hold([held], -1);
  assert.deepEqual(later, [held], 'the held one once let go');
  await t.close();
});

/** The byte ranges of the GETs of `path` since the last reset, [first, last] each, in order. */
const gotRanges = (path: string) =>
  gets(path).map((r) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(r.range ?? '');
    assert.ok(m, `a closed range: ${r.range}`);
    return [Number(m[1]), Number(m[2])] as const;
  });

test('concurrent readers of one slot share the pages being fetched: no byte is fetched twice', async () => {
  const data = seededBytes(2, 4 * MiB);
  server.addFile('/r/shared.bin', data);
  const tier = await openTier(join(work, 'shared'));
  const src = tier.wrap(new HttpSource(transport(), server.url('/r/shared.bin')));
  await src.version();
  server.resetLog();
  // Together they need pages 0–2 of slot 2 (70,000 bytes from up to 19 × 4096 in).
  const reads = Array.from({ length: 20 }, (_, i) => [2 * MiB + i * 4096, 2 * MiB + i * 4096 + 70_000] as const);
  const got = await Promise.all(reads.map(([a, b]) => readRange(src, a, b)));
  for (let i = 0; i < reads.length; i++) assert.ok(got[i].equals(data.subarray(reads[i][0], reads[i][1])));
  const g = gotRanges('/r/shared.bin').sort((x, y) => x[0] - y[0]);
  assert.ok(g.length <= 2, JSON.stringify(g));
  assert.equal(g[0][0], 2 * MiB, 'from the first page');
  for (let k = 1; k < g.length; k++) assert.equal(g[k][0], g[k - 1][1] + 1, `abutting, no overlap: ${JSON.stringify(g)}`);
  assert.equal(g[g.length - 1][1], 2 * MiB + 3 * 64 * 1024 - 1, 'to the end of the third page');
  await tier.close();
});

test('a slot is filled in pages: small reads fetch their pages, a gap is filled, the extent grows to the whole slot', async () => {
  const K = 1024;
  const data = seededBytes(21, 3 * MiB);
  server.addFile('/r/pages.bin', data);
  const dir = join(work, 'pages');
  const tier = await openTier(dir);
  const src = tier.wrap(new HttpSource(transport(), server.url('/r/pages.bin')));
  await src.version();
  const step = async (a: number, b: number, expect: [number, number][]) => {
    server.resetLog();
    assert.ok((await readRange(src, a, b)).equals(data.subarray(a, b)), `[${a}, ${b})`);
    assert.deepEqual(gotRanges('/r/pages.bin'), expect.map(([x, y]) => [x, y - 1]), `read [${a}, ${b})`);
  };
  const m = MiB; // slot 1
  await step(m + 100 * K, m + 150 * K, [[m + 64 * K, m + 192 * K]]); // its two pages only
  await step(m + 300 * K, m + 310 * K, [[m + 192 * K, m + 320 * K]]); // widened over the gap to the extent
  await step(m + 70 * K, m + 250 * K, []); // all at hand (on disk or being written)
  await step(m, m + MiB, [[m, m + 64 * K], [m + 320 * K, m + MiB]]); // only what the extent lacks
  await step(m - 10 * K, m + 2 * MiB, [[m - 64 * K, m], [m + MiB, m + 2 * MiB]]); // next to a whole slot: one piece each side
  await tier.close();

  // On disk: slot 1 whole, in one file; read again by a new tier (a restart), no request.
  const [objectDir] = await readdir(join(dir, 'objects'));
  const c1 = await readFile(join(dir, 'objects', objectDir, 'c1'));
  assert.equal(c1.readUInt32BE(44), 0, 'the extent starts at the slot');
  assert.ok(c1.subarray(CHUNK_HEADER_BYTES).equals(data.subarray(MiB, 2 * MiB)), 'and is the whole slot');
  server.resetLog();
  const t2 = await openTier(dir);
  const s2 = t2.wrap(new HttpSource(transport(), server.url('/r/pages.bin')));
  assert.ok((await readRange(s2, m - 10 * K, m + 2 * MiB)).equals(data.subarray(m - 10 * K, m + 2 * MiB)));
  await t2.close();
  assert.equal(gets('/r/pages.bin').length, 0);
});

test('a flipped byte and a truncated chunk are detected, dropped and fetched again, never served', async () => {
  const data = seededBytes(3, 4 * MiB + 100);
  server.addFile('/r/corrupt.bin', data);
  const dir = join(work, 'corrupt');
  const t1 = await openTier(dir);
  assert.ok((await readRange(t1.wrap(new HttpSource(transport(), server.url('/r/corrupt.bin'))), 0, data.length)).equals(data));
  await t1.close();
  const [objectDir] = await readdir(join(dir, 'objects'));
  const c1 = join(dir, 'objects', objectDir, 'c1');
  const c3 = join(dir, 'objects', objectDir, 'c3');
  const bytes = await readFile(c1);
  bytes[CHUNK_HEADER_BYTES + 5000] ^= 0x01;
  await writeFile(c1, bytes);
  await truncate(c3, CHUNK_HEADER_BYTES + 1000);

  server.resetLog();
  const warnings: string[] = [];
  const t2 = await openTier(dir, { warn: (m) => warnings.push(m) });
  const s2 = t2.wrap(new HttpSource(transport(), server.url('/r/corrupt.bin')));
  assert.ok((await readRange(s2, 0, data.length)).equals(data), 'the right bytes');
  await t2.close();
  assert.deepEqual(gets('/r/corrupt.bin').map((r) => r.range).sort(), [`bytes=${MiB}-${2 * MiB - 1}`, `bytes=${3 * MiB}-${4 * MiB - 1}`]);
  assert.equal(t2.counters.corrupt, 2);
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0], /damaged .*fetched again/);

  // Both were written again, good: a third run fetches nothing.
  server.resetLog();
  const t3 = await openTier(dir);
  assert.ok((await readRange(t3.wrap(new HttpSource(transport(), server.url('/r/corrupt.bin'))), 0, data.length)).equals(data));
  await t3.close();
  assert.equal(gets('/r/corrupt.bin').length, 0);
  assert.equal(t3.counters.corrupt, 0);
});

test('an object changed on the server (new ETag, same size; then a new size) is never answered from the old entry', async () => {
  const dir = join(work, 'changed');
  const v1 = seededBytes(4, 3 * MiB);
  server.addFile('/r/changed.bin', v1);
  const t1 = await openTier(dir);
  assert.ok((await readRange(t1.wrap(new HttpSource(transport(), server.url('/r/changed.bin'))), 0, v1.length)).equals(v1));
  await t1.close();

  const v2 = seededBytes(5, 3 * MiB);
  server.addFile('/r/changed.bin', v2);
  const t2 = await openTier(dir);
  assert.ok((await readRange(t2.wrap(new HttpSource(transport(), server.url('/r/changed.bin'))), 0, v2.length)).equals(v2), 'the new bytes');
  await t2.close();
  assert.equal(t2.counters.hits, 0);

  const v3 = seededBytes(6, 2 * MiB + 7);
  server.addFile('/r/changed.bin', v3, { etag: null });
  const t3 = await openTier(dir);
  assert.ok((await readRange(t3.wrap(new HttpSource(transport(), server.url('/r/changed.bin'))), 0, v3.length)).equals(v3), 'no ETag: size and Last-Modified');
  await t3.close();
  assert.equal(t3.counters.hits, 0);
  assert.equal((await readdir(join(dir, 'objects'))).length, 3, 'one directory per version');
});

test('eviction keeps the directory under its budget, least recently used first', async () => {
  const dir = join(work, 'evict');
  const budget = 8 * MiB;
  const a = seededBytes(7, 4 * MiB);
  const b = seededBytes(8, 6 * MiB);
  server.addFile('/r/evict-a.bin', a);
  server.addFile('/r/evict-b.bin', b);
  const t1 = await openTier(dir, { budget });
  assert.ok((await readRange(t1.wrap(new HttpSource(transport(), server.url('/r/evict-a.bin'))), 0, a.length)).equals(a));
  await t1.close();
  // A's chunks were last used an hour ago, its c3 a little later than the others.
  const [aDir] = await readdir(join(dir, 'objects'));
  const hourAgo = Date.now() / 1000 - 3600;
  for (let i = 0; i < 4; i++) await utimes(join(dir, 'objects', aDir, `c${i}`), hourAgo + i, hourAgo + i);
  // A hit on c0 makes it the most recently used of A's chunks.
  const t2 = await openTier(dir, { budget });
  const a2 = t2.wrap(new HttpSource(transport(), server.url('/r/evict-a.bin')));
  assert.ok((await readRange(a2, 0, 1000)).equals(a.subarray(0, 1000)));
  assert.ok((await readRange(t2.wrap(new HttpSource(transport(), server.url('/r/evict-b.bin'))), 0, b.length)).equals(b));
  await t2.close();
  const total = await bytesUnder(dir);
  assert.ok(total <= budget, `${total} bytes > budget ${budget}`);
  const left = new Set((await readdir(join(dir, 'objects', aDir)).catch(() => [])).filter((n) => /^c\d+$/.test(n)));
  assert.ok(left.has('c0'), `the chunk just used stays: ${[...left].join(' ')}`);
  assert.ok(!left.has('c1') && !left.has('c2'), `the least recently used go first: ${[...left].join(' ')}`);
  assert.ok(t2.counters.evicted >= 2);
  // B, the newest, is whole: a read fetches nothing.
  server.resetLog();
  const t3 = await openTier(dir, { budget });
  assert.ok((await readRange(t3.wrap(new HttpSource(transport(), server.url('/r/evict-b.bin'))), 0, b.length)).equals(b));
  await t3.close();
  assert.equal(gets('/r/evict-b.bin').length, 0);
});

test('two tiers (as two processes) on one directory under load: correct bytes', async () => {
  const data = seededBytes(9, 9 * MiB + 333);
  server.addFile('/r/two.bin', data);
  const dir = join(work, 'two');
  const tiers = await Promise.all([openTier(dir), openTier(dir)]);
  const rs = ranges(11, data.length, 60);
  await Promise.all(
    tiers.map(async (t, k) => {
      const src = t.wrap(new HttpSource(transport(), server.url('/r/two.bin')));
      await Promise.all(
        rs.map(async ([a, b], i) => {
          if ((i + k) % 3 === 0) await new Promise((r) => setTimeout(r, i));
          assert.ok((await readRange(src, a, b)).equals(data.subarray(a, b)), `tier ${k} [${a}, ${b})`);
        }),
      );
    }),
  );
  await Promise.all(tiers.map((t) => t.close()));
  // Every chunk on disk is whole and good: a third tier reads all without a request.
  server.resetLog();
  const t3 = await openTier(dir);
  assert.ok((await readRange(t3.wrap(new HttpSource(transport(), server.url('/r/two.bin'))), 0, data.length)).equals(data));
  await t3.close();
  assert.equal(gets('/r/two.bin').length, 0);
  assert.equal(t3.counters.corrupt, 0);
  assert.ok((await walk(dir)).every((f) => !f.path.endsWith('.tmp')), 'no temporary file left');
});

test('Crypt4GH: the tier sits below decryption, so what is on disk is ciphertext', async () => {
  const marker = 'SLICEFS-PLAINTEXT-MARKER-';
  const plain = Buffer.from(marker.repeat(Math.ceil((2.5 * MiB) / marker.length)));
  const key = generateKeyPair();
  const enc = encryptC4gh(plain, [key.public]);
  server.addFile('/r/secret.bam.c4gh', enc.file);
  const dir = join(work, 'c4gh');
  const tier = await openTier(dir);
  const src = new Crypt4ghSource(tier.wrap(new HttpSource(transport(), server.url('/r/secret.bam.c4gh'))), { keys: async () => [key] });
  assert.ok((await readRange(src, 0, plain.length)).equals(plain), 'the plaintext');
  assert.ok((await readRange(src, 1_000_000, 1_200_000)).equals(plain.subarray(1_000_000, 1_200_000)));
  await tier.close();
  const files = (await walk(dir)).filter((f) => !f.dir);
  assert.ok(files.length > 0);
  for (const f of files) assert.equal((await readFile(f.path)).includes(marker), false, `${f.path} holds plaintext`);
  const [objectDir] = await readdir(join(dir, 'objects'));
  const c0 = await readFile(join(dir, 'objects', objectDir, 'c0'));
  const lo = c0.readUInt32BE(44);
  assert.ok(c0.length > CHUNK_HEADER_BYTES + 64 * 1024);
  assert.ok(c0.subarray(CHUNK_HEADER_BYTES).equals(enc.file.subarray(lo, lo + c0.length - CHUNK_HEADER_BYTES)), 'chunk 0 is the encrypted file');
});

test('modes: directories 0700, files 0600', async () => {
  const data = seededBytes(10, MiB + 1);
  server.addFile('/r/modes.bin', data);
  const dir = join(work, 'modes', 'blocks');
  const tier = await openTier(dir);
  await readRange(tier.wrap(new HttpSource(transport(), server.url('/r/modes.bin'))), 0, data.length);
  await tier.close();
  const all = await walk(dir);
  assert.ok(all.some((f) => !f.dir && f.path.endsWith('meta.json')));
  assert.ok(all.some((f) => !f.dir && f.path.includes('/stats/')));
  for (const f of all) assert.equal(f.mode, f.dir ? 0o700 : 0o600, `${f.path}: ${f.mode.toString(8)}`);
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
});

test('a full disk: one warning, memory only, every read still correct', async () => {
  const mnt = join(work, 'tmpfs');
  await mkdir(mnt, { recursive: true });
  // 0700: a cache directory must be the user's alone (a tmpfs is 1777 by default).
  const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0700', 'tmpfs', mnt]);
  assert.equal(m.code, 0, `mount tmpfs (the tests run as root): ${m.stderr}`);
  try {
    const data = seededBytes(12, 8 * MiB);
    server.addFile('/r/full.bin', data);
    const warnings: string[] = [];
    // An explicit budget above the space there is: the disk fills before eviction would start.
    const tier = await openTier(join(mnt, 'blocks'), { budget: 64 * MiB, warn: (w) => warnings.push(w) });
    const src = tier.wrap(new HttpSource(transport(), server.url('/r/full.bin')));
    for (let round = 0; round < 2; round++) {
      for (const [a, b] of ranges(13 + round, data.length, 20)) assert.ok((await readRange(src, a, b)).equals(data.subarray(a, b)));
    }
    assert.ok((await readRange(src, 0, data.length)).equals(data));
    await tier.close();
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /is full; caching in memory only/);
    assert.ok((await walk(mnt)).every((f) => !f.path.endsWith('.tmp')), 'no temporary file left');
  } finally {
    await run('umount', ['-l', mnt]);
  }
});

test('a failed fetch reaches the reader and stores nothing; the next read fetches', async () => {
  const data = seededBytes(14, 2 * MiB);
  server.addFile('/r/fail.bin', data);
  const dir = join(work, 'fail');
  const tier = await openTier(dir);
  // One attempt, and a body silent for 300 ms fails it.
  const once = { ...DEFAULT_TRANSPORT, bodyIdleTimeoutMs: 300, retry: { ...DEFAULT_TRANSPORT.retry, maxAttempts: 1 } };
  const src = tier.wrap(new HttpSource(transport(once), server.url('/r/fail.bin')));
  await src.version();
  server.setFault('/r/fail.bin', { kind: 'stall-body', times: 1, afterBytes: 300_000 });
  server.resetLog();
  const failed = assert.rejects(readRange(src, 0, data.length));
  while (gets('/r/fail.bin').length === 0) await new Promise((r) => setTimeout(r, 5));
  // A reader sharing a chunk of that fetch fetches the chunk on its own once the fetch fails.
  const concurrent = readRange(src, MiB + 10, MiB + 5000);
  await failed;
  assert.ok((await concurrent).equals(data.subarray(MiB + 10, MiB + 5000)));
  assert.equal(gets('/r/fail.bin').length, 2);
  assert.equal(gets('/r/fail.bin')[1].range, `bytes=${MiB}-${2 * MiB - 1}`);
  assert.ok((await readRange(src, 0, data.length)).equals(data));
  await tier.close();
  for (const f of await chunkFiles(dir)) assert.equal(f.size, CHUNK_HEADER_BYTES + MiB);
});

test('options: 0 turns the tier off, a tiny budget is refused, the default root follows XDG', async () => {
  assert.equal(diskCacheConfig({ 'disk-cache-size': '0' }), undefined);
  assert.throws(() => diskCacheConfig({ 'disk-cache-size': '1M' }), /at least 4M/);
  assert.equal(diskCacheConfig({ 'cache-dir': '/x', 'disk-cache-size': '2G' })?.budgetBytes, 2 * 1024 * MiB);
  assert.equal(diskCacheConfig({ 'cache-dir': '/x' })?.dir, '/x/blocks');
  assert.equal(cacheRoot(undefined, { XDG_CACHE_HOME: '/c' }), '/c/slicefs');
  assert.match(cacheRoot(undefined, { XDG_CACHE_HOME: 'relative' }), /\/\.cache\/slicefs$/);
  const url = identityMatcher('https://h.example/a/b.bam?X-Amz-Signature=s');
  assert.ok(url('https://h.example/a/b.bam'));
  assert.ok(!url('https://h.example/a/b.bam.bai'));
  const score = identityMatcher('score:abc-1');
  assert.ok(score('score:storage.example/abc-1'));
  assert.ok(!score('score:storage.example/abc-12'));
  assert.ok(identityMatcher('ghga:GHGAF1')('ghga:api.example/GHGAF1'));
});

test('a budget smaller than what is there at start is enforced by the first write', async () => {
  const dir = join(work, 'shrink');
  const data = seededBytes(15, 12 * MiB);
  server.addFile('/r/shrink.bin', data);
  const t1 = await openTier(dir);
  await readRange(t1.wrap(new HttpSource(transport(), server.url('/r/shrink.bin'))), 0, data.length);
  await t1.close();
  assert.ok((await bytesUnder(dir)) > 12 * MiB);
  const other = seededBytes(16, MiB);
  server.addFile('/r/shrink-2.bin', other);
  const t2 = await openTier(dir, { budget: 6 * MiB });
  await readRange(t2.wrap(new HttpSource(transport(), server.url('/r/shrink-2.bin'))), 0, other.length);
  await t2.close();
  assert.ok((await bytesUnder(dir)) <= 6 * MiB);
  await rm(dir, { recursive: true, force: true });
});

test('a slow consumer (a transport that waits) gets every byte in order, and a reader sharing its chunks too', async () => {
  const data = seededBytes(17, 12 * MiB + 99);
  server.addFile('/r/slow.bin', data);
  const tier = await openTier(join(work, 'slow'));
  const src = tier.wrap(new HttpSource(transport(), server.url('/r/slow.bin')));
  const parts: Buffer[] = [];
  const slow = src.read(100, data.length, async (c) => {
    parts.push(Buffer.from(c));
    await new Promise((r) => setTimeout(r, 2));
  });
  while (gets('/r/slow.bin').length === 0) await new Promise((r) => setTimeout(r, 5));
  const shared = readRange(src, 9 * MiB, 11 * MiB);
  await slow;
  assert.ok(Buffer.concat(parts).equals(data.subarray(100)));
  assert.ok((await shared).equals(data.subarray(9 * MiB, 11 * MiB)));
  // A consumer that fails stops the read; the fetch is aborted, nothing waits forever.
  const failing = tier.wrap(new HttpSource(transport(), server.url('/r/slow.bin?again')));
  await rm(join(work, 'slow'), { recursive: true, force: true });
  await assert.rejects(
    failing.read(0, data.length, async () => {
      await new Promise((r) => setTimeout(r, 1));
      throw new Error('consumer gave up');
    }),
    /consumer gave up/,
  );
  await tier.close();
});

test('pieces of a slot that land out of order (the one next to the extent on disk last) all join the extent', async () => {
  const K = 1024;
  const data = seededBytes(31, 2 * MiB);
  server.addFile('/r/order.bin', data);
  const dir = join(work, 'order');
  const tier = await openTier(dir);
  const source = new HttpSource(transport(), server.url('/r/order.bin'));
  const obj = tier.object(source, await source.version());
  const key = `${obj.key}#1`;
  const record = (lo: number, hi: number) => {
    const r = Buffer.alloc(CHUNK_HEADER_BYTES + hi - lo);
    data.copy(r, CHUNK_HEADER_BYTES, MiB + lo, MiB + hi);
    return r;
  };
  await tier.storeChunk(obj, 1, 0, record(0, 64 * K));
  // Three abutting pieces fetched after it, announced as DiskCachedSource announces them; they
  // complete from the farthest to the nearest, each shared until its write is done.
  const pieces = [64, 128, 192].map((lo) => ({ lo: lo * K, hi: (lo + 64) * K, payload: new Promise<Buffer>(() => {}) }));
  for (const p of pieces) tier.announce(key, p);
  const writes: Promise<void>[] = [];
  for (const p of [...pieces].reverse()) {
    const w = tier.storeChunk(obj, 1, p.lo, record(p.lo, p.hi));
    assert.ok(w);
    writes.push(w.finally(() => tier.unannounce(key, p)));
    await new Promise((res) => setTimeout(res, 20));
  }
  await Promise.all(writes);
  await tier.close();
  const got = await (await openTier(dir)).readChunk(obj, 1);
  assert.ok(got, 'slot 1 is on disk');
  assert.deepEqual([got.lo, got.lo + got.payload.length], [0, 256 * K], 'one extent with every piece');
  assert.ok(got.payload.equals(data.subarray(MiB, MiB + 256 * K)));
});

test('a piece that nothing joins is written once its slot has no fetch under way, or when the tier closes', async () => {
  const K = 1024;
  const data = seededBytes(32, 2 * MiB);
  server.addFile('/r/apart.bin', data);
  const dir = join(work, 'apart');
  const tier = await openTier(dir);
  const source = new HttpSource(transport(), server.url('/r/apart.bin'));
  const obj = tier.object(source, await source.version());
  const key = `${obj.key}#0`;
  const record = (lo: number, hi: number) => {
    const r = Buffer.alloc(CHUNK_HEADER_BYTES + hi - lo);
    data.copy(r, CHUNK_HEADER_BYTES, lo, hi);
    return r;
  };
  await tier.storeChunk(obj, 0, 0, record(0, 64 * K));
  // A fetch between them is under way, then fails (unannounced, nothing stored): the parked piece,
  // longer than the extent on disk, replaces it.
  const between = { lo: 64 * K, hi: 512 * K, payload: new Promise<Buffer>(() => {}) };
  tier.announce(key, between);
  await tier.storeChunk(obj, 0, 512 * K, record(512 * K, 640 * K));
  tier.unannounce(key, between);
  await new Promise((res) => setTimeout(res, 100));
  let got = await tier.readChunk(obj, 0);
  assert.deepEqual(got && [got.lo, got.lo + got.payload.length], [512 * K, 640 * K], 'the longer extent stays');
  // Parked while a fetch is under way, then the tier closes first: written by close.
  tier.announce(key, between);
  await tier.storeChunk(obj, 0, 768 * K, record(768 * K, MiB));
  await tier.close();
  got = await (await openTier(dir)).readChunk(obj, 0);
  assert.ok(got, 'slot 0 is on disk');
  assert.deepEqual([got.lo, got.lo + got.payload.length], [768 * K, MiB]);
  assert.ok(got.payload.equals(data.subarray(768 * K, MiB)));
});

test('eviction during many writes under way keeps the newest chunks: temporary files are not pressure', async () => {
  const dir = join(work, 'evict-writing');
  const budget = 8 * MiB;
  const data = seededBytes(33, 6 * MiB);
  server.addFile('/r/writing.bin', data);
  const t1 = await openTier(dir, { budget });
  assert.ok((await readRange(t1.wrap(new HttpSource(transport(), server.url('/r/writing.bin'))), 0, data.length)).equals(data));
  await t1.close();
  const [objectDir] = await readdir(join(dir, 'objects'));
  // Writes of other processes under way: 9 MiB of young temporary files.
  for (let i = 0; i < 9; i++) await writeFile(join(dir, 'objects', objectDir, `.c${i}.99999.${i}.tmp`), Buffer.alloc(MiB));
  const other = seededBytes(34, MiB);
  server.addFile('/r/writing-2.bin', other);
  const t2 = await openTier(dir, { budget });
  await readRange(t2.wrap(new HttpSource(transport(), server.url('/r/writing-2.bin'))), 0, other.length);
  await t2.close();
  const chunks = (await chunkFiles(dir)).length;
  assert.equal(chunks, 7, 'no chunk evicted: the chunks alone are under the budget');
});
