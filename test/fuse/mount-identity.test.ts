/**
 * The object identity under the mount (real FUSE, real `slicefs mount`): two files whose URLs differ
 * only in the query (`dl?id=A`, `dl?id=B`: a portal's download endpoint), with the same size and
 * Last-Modified and no ETag, read their own bytes from the memory cache and from the disk tier
 * across mounts; one object under two presigned URLs (other signature, other date) is fetched once.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, readAt, requireFuse, startDaemon, tempDir, writeManifest } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';

let work: string;
let server: FixtureServer;
const a = Buffer.alloc(300_000, 'A');
const b = Buffer.alloc(a.length, 'B');
const shared = seededBytes(17, 3 * 1024 * 1024 + 99);
const lastModified = new Date('2024-05-01T10:00:00Z');

before(async () => {
  requireFuse();
  work = await tempDir('slicefs-identity-mount-');
  server = await FixtureServer.start();
  server.addFile('/dl?id=A', a, { etag: null, lastModified });
  server.addFile('/dl?id=B', b, { etag: null, lastModified });
  server.addFile('/bucket/shared.bin', shared, { etag: null, lastModified });
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

const presigned = (path: string, date: string, sig: string) =>
  server.url(`${path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F${date.slice(0, 8)}%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=${date}&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=${sig}`);
const dataGets = () => server.requests.filter((r) => r.method === 'GET');

test('dl?id=A and dl?id=B read their own bytes; two presigned URLs of one object are fetched once', async () => {
  const manifest = await writeManifest(work, [
    { url: server.url('/dl?id=A'), path: 'a.txt' },
    { url: server.url('/dl?id=B'), path: 'b.txt' },
    { url: presigned('/bucket/shared.bin', '20260101T000000Z', 'aaaa1111'), path: 'one.bin' },
    { url: presigned('/bucket/shared.bin', '20260102T000000Z', 'bbbb2222'), path: 'two.bin' },
  ]);
  const mnt = join(work, 'mnt');
  // The memory cache alone (no disk tier).
  const d = await startDaemon(manifest, mnt, ['--disk-cache-size', '0']);
  try {
    assert.equal((await readAt(join(mnt, 'a.txt'), 0, 5)).toString(), 'AAAAA');
    assert.equal((await readAt(join(mnt, 'b.txt'), 0, 5)).toString(), 'BBBBB');
    assert.ok((await readFile(join(mnt, 'b.txt'))).equals(b));
    assert.ok((await readFile(join(mnt, 'a.txt'))).equals(a));
    assert.ok((await readFile(join(mnt, 'one.bin'))).equals(shared));
    server.resetLog();
    assert.ok((await readFile(join(mnt, 'two.bin'))).equals(shared));
    assert.deepEqual(dataGets().map((r) => r.range), [], 'the second URL of the object is answered from the cache');
  } finally {
    assert.equal(await d.stop(), 0, d.stderr());
  }
});

test('the disk tier across mounts: each file its own bytes, read from disk under the other signature', async () => {
  const cacheDir = join(work, 'cache');
  const mnt = join(work, 'mnt-disk');
  const session = async (rows: Record<string, string>[], check: () => Promise<void>) => {
    const d = await startDaemon(await writeManifest(work, rows), mnt, ['--cache-dir', cacheDir]);
    try {
      await check();
    } finally {
      assert.equal(await d.stop(), 0, d.stderr());
    }
  };
  // First mount: only A (so nothing in memory can answer for B later).
  await session([{ url: server.url('/dl?id=A'), path: 'a.txt' }, { url: presigned('/bucket/shared.bin', '20260101T000000Z', 'aaaa1111'), path: 'one.bin' }], async () => {
    assert.ok((await readFile(join(mnt, 'a.txt'))).equals(a));
    assert.ok((await readFile(join(mnt, 'one.bin'))).equals(shared));
  });
  // Second mount, same cache directory: B must come from the server, not from A's chunks.
  server.resetLog();
  await session([{ url: server.url('/dl?id=B'), path: 'b.txt' }, { url: presigned('/bucket/shared.bin', '20260103T000000Z', 'cccc3333'), path: 'two.bin' }], async () => {
    assert.equal((await readAt(join(mnt, 'b.txt'), 0, 5)).toString(), 'BBBBB');
    assert.ok((await readFile(join(mnt, 'b.txt'))).equals(b));
    assert.ok((await readFile(join(mnt, 'two.bin'))).equals(shared));
  });
  assert.ok(dataGets().some((r) => r.query === 'id=B'), "B's bytes were fetched");
  assert.ok(!dataGets().some((r) => r.path === '/bucket/shared.bin'), 'the object under another signature came from disk');
  // Third mount: both from disk.
  server.resetLog();
  await session([{ url: server.url('/dl?id=B'), path: 'b.txt' }, { url: server.url('/dl?id=A'), path: 'a.txt' }], async () => {
    assert.ok((await readFile(join(mnt, 'b.txt'))).equals(b));
    assert.ok((await readFile(join(mnt, 'a.txt'))).equals(a));
  });
  assert.deepEqual(dataGets().map((r) => `${r.path}?${r.query}`), [], 'no data request');
});
