/**
 * The disk tier under the mount (real FUSE, real `slicefs mount` processes): mounting again with
 * the same cache directory reads regions with samtools and ranges of a large file with no data
 * request; two mounts sharing one cache directory under concurrent load read the right bytes; an
 * encrypted BAM is kept as ciphertext (no plaintext marker in any chunk file) and reads back after
 * a restart with no data request; a small budget keeps the directory under it.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodePrivateKey, generateKeyPair } from '../../src/crypt4gh/keys.js';
import { encryptC4gh } from '../helpers/c4gh-encrypt.js';
import { cleanup, readAt, requireFuse, startDaemon, tempDir, writeManifest } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom, seededBytes } from '../helpers/random.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

const MiB = 1024 * 1024;
let work: string;
let server: FixtureServer;
let sample: SampleData;
let big: Buffer;

before(async () => {
  requireFuse();
  work = await tempDir('slicefs-disk-mount-');
  server = await FixtureServer.start();
  sample = await ensureSampleData();
  server.addFile('/d/sample.bam', await readFile(sample.bam));
  server.addFile('/d/sample.bam.bai', await readFile(sample.bai));
  big = seededBytes(91, 24 * MiB + 4321);
  server.addFile('/d/big.bin', big);
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

const dataGets = () => server.requests.filter((r) => r.method === 'GET');

/** Every file under `dir` (recursively). */
async function files(dir: string): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const s = await stat(p).catch(() => undefined);
    if (s) out.push({ path: p, size: s.size });
  }
  return out;
}

function ranges(seed: number, n: number): [number, number][] {
  const rnd = new SeededRandom(seed);
  return Array.from({ length: n }, () => {
    const a = rnd.int(0, big.length - 1);
    return [a, Math.min(big.length - a, rnd.int(1, 2 * MiB))];
  });
}

test('mounting again with the same cache directory: samtools regions and file ranges with no data request', async () => {
  const manifest = await writeManifest(work, [
    { url: server.url('/d/sample.bam'), path: 'sample.bam', index_url: server.url('/d/sample.bam.bai') },
    { url: server.url('/d/big.bin'), path: 'big.bin' },
  ]);
  const cacheDir = join(work, 'cache-restart');
  const regions = sample.regions.slice(0, 6);
  const rs = ranges(5, 25);
  const session = async (): Promise<Record<string, number>> => {
    const mnt = join(work, 'mnt');
    const d = await startDaemon(manifest, mnt, ['--cache-dir', cacheDir]);
    try {
      for (const region of regions) {
        const got = await samtools(['view', join(mnt, 'sample.bam'), region]);
        assert.equal(got.code, 0, got.stderr);
        assert.ok(got.stdout.equals((await samtools(['view', sample.bam, region])).stdout), region);
      }
      for (const [pos, len] of rs) assert.ok((await readAt(join(mnt, 'big.bin'), pos, len)).equals(big.subarray(pos, pos + len)), `big.bin [${pos}, +${len})`);
      return await d.stats();
    } finally {
      assert.equal(await d.stop(), 0, d.stderr());
    }
  };
  server.resetLog();
  const cold = await session();
  assert.ok(dataGets().length > 0);
  assert.ok(cold.disk_misses > 0);
  server.resetLog();
  const warm = await session();
  assert.deepEqual(dataGets().map((r) => `${r.path} ${r.range}`), [], 'no data request on the second mount');
  assert.equal(warm.disk_misses, 0);
  assert.ok(warm.disk_hits > 0);
  assert.ok(server.requests.every((r) => r.method === 'HEAD'), 'only the version probes');
});

test('a mount stopped while its readahead is under way keeps it: the same reads on the next mount make no request', async () => {
  const slow = seededBytes(93, 40 * MiB);
  // Every GET waits 400 ms: the readahead the reads below start is still in flight at SIGTERM.
  server.addFile('/d/slow.bin', slow, { fault: { kind: 'delay-get', ms: 400 } });
  const manifest = await writeManifest(work, [{ url: server.url('/d/slow.bin'), path: 'slow.bin', size: slow.length }]);
  const cacheDir = join(work, 'cache-drain');
  const mnt = join(work, 'mnt-drain');
  const session = async () => {
    const d = await startDaemon(manifest, mnt, ['--cache-dir', cacheDir]);
    try {
      // A sequential read of 6 MiB: the reader reads ahead of it.
      for (let pos = 0; pos < 6 * MiB; pos += MiB) assert.ok((await readAt(join(mnt, 'slow.bin'), pos, MiB)).equals(slow.subarray(pos, pos + MiB)));
      return d;
    } finally {
      assert.equal(await d.stop(), 0, d.stderr());
    }
  };
  const slowGets = () => dataGets().filter((r) => r.path === '/d/slow.bin');
  server.resetLog();
  await session();
  const first = slowGets();
  assert.ok(first.some((r) => Number(/bytes=(\d+)-/.exec(r.range ?? '')?.[1]) >= 6 * MiB), `readahead past the reads: ${first.map((r) => r.range).join(' ')}`);
  assert.ok(first.every((r) => r.status === 206), `every fetch was completed, none given up: ${first.map((r) => `${r.range}:${r.status}`).join(' ')}`);
  server.resetLog();
  await session();
  // A GET is logged when it is answered or given up, 400 ms after it came: the last ones are in.
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(slowGets().map((r) => r.range), [], 'no data request on the second mount');
});

test('two mounts sharing one cache directory, read at once under load: the right bytes', async () => {
  const manifest = await writeManifest(work, [{ url: server.url('/d/big.bin'), path: 'big.bin' }]);
  const cacheDir = join(work, 'cache-shared');
  const a = await startDaemon(manifest, join(work, 'mnt-a'), ['--cache-dir', cacheDir, '--cache-size', '8M']);
  const b = await startDaemon(manifest, join(work, 'mnt-b'), ['--cache-dir', cacheDir, '--cache-size', '8M']);
  try {
    for (let round = 0; round < 2; round++) {
      await Promise.all(
        [a, b].flatMap((d, k) =>
          ranges(100 + round * 2 + k, 30).map(async ([pos, len]) => {
            assert.ok((await readAt(join(d.mountPoint, 'big.bin'), pos, len)).equals(big.subarray(pos, pos + len)), `mount ${k} [${pos}, +${len})`);
          }),
        ),
      );
    }
    // Whole-file reads through both, each after the other's chunks landed.
    assert.ok((await readFile(join(a.mountPoint, 'big.bin'))).equals(big));
    assert.ok((await readFile(join(b.mountPoint, 'big.bin'))).equals(big));
  } finally {
    assert.equal(await a.stop(), 0, a.stderr());
    assert.equal(await b.stop(), 0, b.stderr());
  }
  assert.doesNotMatch(a.stderr() + b.stderr(), /damaged|warning/);
  const chunkFiles = (await files(join(cacheDir, 'blocks', 'objects'))).filter((f) => /\/c\d+$/.test(f.path));
  assert.equal(chunkFiles.length, 25, 'one file per chunk of the 24 MiB file');
});

test('an encrypted BAM is kept as ciphertext, and reads back after a restart with no data request', async () => {
  const pair = generateKeyPair();
  const keyFile = join(work, 'c4gh.sec');
  await writeFile(keyFile, await encodePrivateKey(pair, undefined), { mode: 0o600 });
  const marker = 'SLICEFS-PLAINTEXT-MARKER-';
  const plain = Buffer.concat([await readFile(sample.bam), Buffer.from(marker.repeat(100_000))]);
  server.addFile('/e/x.bin.c4gh', encryptC4gh(plain, [pair.public]).file);
  const manifest = await writeManifest(work, [{ url: server.url('/e/x.bin.c4gh'), path: 'x.bin.c4gh' }]);
  const cacheDir = join(work, 'cache-c4gh');
  for (let round = 0; round < 2; round++) {
    server.resetLog();
    const d = await startDaemon(manifest, join(work, 'mnt-c4gh'), ['--cache-dir', cacheDir, '--private-key', keyFile], { C4GH_SECRET_KEY: undefined });
    try {
      assert.ok((await readFile(join(d.mountPoint, 'x.bin'))).equals(plain));
    } finally {
      assert.equal(await d.stop(), 0, d.stderr());
    }
    if (round === 1) assert.equal(dataGets().length, 0, 'the second mount reads the ciphertext from disk');
  }
  const all = await files(cacheDir);
  assert.ok(all.length > 3);
  for (const f of all) assert.equal((await readFile(f.path)).includes(marker), false, `${f.path} holds plaintext`);
});

test('a small budget: the directory stays under it after a mount read more than it', async () => {
  const manifest = await writeManifest(work, [{ url: server.url('/d/big.bin'), path: 'big.bin' }]);
  const cacheDir = join(work, 'cache-small');
  const d = await startDaemon(manifest, join(work, 'mnt-small'), ['--cache-dir', cacheDir, '--disk-cache-size', '8M']);
  try {
    assert.ok((await readFile(join(d.mountPoint, 'big.bin'))).equals(big));
  } finally {
    assert.equal(await d.stop(), 0, d.stderr());
  }
  const total = (await files(join(cacheDir, 'blocks'))).reduce((n, f) => n + f.size, 0);
  assert.ok(total <= 8 * MiB, `${total} bytes on disk, budget 8 MiB`);
  assert.ok(total > 4 * MiB, `${total} bytes: the most recent chunks stay`);
});
