/**
 * Block and range arithmetic, property-tested: whatever the block size, request size, offset and
 * length, RangeReader over BlockCache returns exactly the source's bytes, and concurrent reads of
 * one cold block share one fetch. The source here is an in-memory ObjectSource (the layer below the
 * thing under test); the real HTTP path is tested in test/integration.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BlockCache } from '../../src/cache/block-cache.js';
import { DEFAULT_READER } from '../../src/config.js';
import { RangeReader } from '../../src/reader/range-reader.js';
import type { ObjectSource } from '../../src/source/object-source.js';
import { Stats } from '../../src/stats.js';
import type { ObjectVersion } from '../../src/transport/version.js';
import { deferred } from '../../src/util/deferred.js';

class MemorySource implements ObjectSource {
  readonly identity = 'mem://x';
  readonly label = 'mem://x';
  reads: [number, number][] = [];
  pinned: ObjectVersion;
  constructor(
    readonly data: Buffer,
    private readonly chunk = 7919,
  ) {
    this.pinned = { size: data.length, etag: '"v1"' };
  }
  async version() {
    return this.pinned;
  }
  async read(start: number, end: number, onData: (c: Buffer) => void) {
    this.reads.push([start, end]);
    await new Promise((r) => setImmediate(r));
    // Odd chunk sizes: block boundaries never line up with chunk boundaries.
    for (let p = start; p < end; p += this.chunk) onData(Buffer.from(this.data.subarray(p, Math.min(end, p + this.chunk))));
  }
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

test('any offset and length reads exactly the source bytes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 200_000 }),
      fc.constantFrom(4096, 8192, 65536),
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 300_000 })), { minLength: 1, maxLength: 12 }),
      async (size, blockSize, runBlocks, reads) => {
        const data = bytes(size, size + 1);
        const src = new MemorySource(data);
        const cache = new BlockCache({ blockSize, budgetBytes: blockSize * 4, failureTtlMs: 0 }, new Stats());
        const reader = new RangeReader(cache, { source: src, version: src.pinned }, {
          ...DEFAULT_READER,
          readaheadMaxBytes: blockSize * 4,
          maxRequestBytes: blockSize * runBlocks,
        });
        for (const [o, len] of reads) {
          const offset = size === 0 ? o % 10 : o % (size + 10);
          const got = await reader.read(offset, len);
          const want = data.subarray(Math.min(offset, size), Math.min(size, offset + len));
          assert.ok(got.equals(want), `read(${offset}, ${len}) of ${size} bytes, block ${blockSize}`);
        }
        for (const [s, e] of src.reads) {
          assert.equal(s % blockSize, 0, 'requests start on a block boundary');
          assert.ok(e === size || e % blockSize === 0, 'requests end on a block boundary or at EOF');
          assert.ok(e - s <= blockSize * runBlocks, 'requests respect maxRequestBytes');
        }
      },
    ),
    { numRuns: 150, seed: 42 },
  );
});

test('concurrent readers of one cold block make one fetch; a second read is a hit', async () => {
  const data = bytes(3 << 20, 7);
  const src = new MemorySource(data);
  const stats = new Stats();
  const cache = new BlockCache({ blockSize: 1 << 20, budgetBytes: 64 << 20, failureTtlMs: 0 }, stats);
  const readers = Array.from({ length: 8 }, () => new RangeReader(cache, { source: src, version: src.pinned }, DEFAULT_READER));
  const got = await Promise.all(readers.map((r, i) => r.read((1 << 20) + i * 1000, 4096)));
  got.forEach((g, i) => assert.ok(g.equals(data.subarray((1 << 20) + i * 1000, (1 << 20) + i * 1000 + 4096))));
  assert.deepEqual(src.reads, [[1 << 20, 2 << 20]]);
  await new RangeReader(cache, { source: src, version: src.pinned }, DEFAULT_READER).read(1 << 20, 10);
  assert.equal(src.reads.length, 1);
  assert.equal(stats.cacheMisses, 1);
});

test('sequential reads grow a readahead window; random reads fetch only their block', async () => {
  const MiB = 1 << 20;
  const data = bytes(64 * MiB, 3);
  const src = new MemorySource(data, 1 << 16);
  const cache = new BlockCache({ blockSize: MiB, budgetBytes: 256 * MiB, failureTtlMs: 0 }, new Stats());
  const seq = new RangeReader(cache, { source: src, version: src.pinned }, DEFAULT_READER);
  for (let off = 0; off < 8 * MiB; off += 128 * 1024) await seq.read(off, 128 * 1024);
  const fetched = src.reads.reduce((n, [s, e]) => n + (e - s), 0);
  assert.ok(fetched > 9 * MiB, `readahead fetched beyond the reads (${fetched} bytes)`);
  // A quarter of what the stream read, rounded up to the block it reaches into.
  assert.ok(fetched <= 8 * MiB + 2 * MiB + MiB, `readahead stays within a quarter of the stream (${fetched} bytes)`);
  // A long stream reaches the full window.
  for (let off = 8 * MiB; off < 60 * MiB; off += 128 * 1024) await seq.read(off, 128 * 1024);
  const fetchedLong = src.reads.reduce((n, [s, e]) => n + (e - s), 0);
  assert.equal(fetchedLong, 64 * MiB, 'at 60 MiB read the window (15 MiB) reaches the end of the file');

  // A window smaller than two requests still reads ahead (refills by halves).
  for (const max of [2 * MiB, 1 * MiB]) {
    const srcSmall = new MemorySource(data, 1 << 16);
    const cacheSmall = new BlockCache({ blockSize: MiB, budgetBytes: 256 * MiB, failureTtlMs: 0 }, new Stats());
    const small = new RangeReader(cacheSmall, { source: srcSmall, version: srcSmall.pinned }, { ...DEFAULT_READER, readaheadMaxBytes: max });
    for (let off = 0; off < 6 * MiB; off += 128 * 1024) await small.read(off, 128 * 1024);
    const beyond = srcSmall.reads.filter(([s]) => s >= 6 * MiB).length;
    assert.ok(beyond >= 1, `readahead-max ${max}: fetched ahead of the reads`);
  }

  const src2 = new MemorySource(data);
  const cache2 = new BlockCache({ blockSize: MiB, budgetBytes: 256 * MiB, failureTtlMs: 0 }, new Stats());
  const rnd = new RangeReader(cache2, { source: src2, version: src2.pinned }, DEFAULT_READER);
  for (const off of [40 * MiB, 3 * MiB + 5, 60 * MiB, 20 * MiB]) await rnd.read(off, 65536);
  assert.deepEqual(
    src2.reads.map(([s, e]) => (e - s) / MiB),
    [1, 1, 1, 1],
  );
});

test('a failed fetch rejects its waiters, is remembered briefly, then retried', async () => {
  const data = bytes(2 << 20, 9);
  let fail = true;
  const src = new MemorySource(data);
  const orig = src.read.bind(src);
  let block0Calls = 0;
  src.read = async (s, e, on) => {
    if (s === 0) block0Calls++;
    if (fail) {
      fail = false;
      throw new Error('boom');
    }
    return orig(s, e, on);
  };
  const cache = new BlockCache({ blockSize: 1 << 20, budgetBytes: 8 << 20, failureTtlMs: 200 }, new Stats());
  const r = new RangeReader(cache, { source: src, version: src.pinned }, DEFAULT_READER);
  await assert.rejects(r.read(0, 100), /boom/);
  // The kernel's immediate retry gets the same error without a second request.
  await assert.rejects(r.read(10, 100), /boom/);
  assert.equal(block0Calls, 1);
  await new Promise((res) => setTimeout(res, 250));
  assert.ok((await r.read(0, 100)).equals(data.subarray(0, 100)));
});

test('an evicted block is freed (recycled) only after its last reader is done with it', async () => {
  const bs = 4096;
  const data = bytes(8 * bs, 5);
  const src = new MemorySource(data, 1000);
  const freed: number[] = [];
  const cache = new BlockCache({ blockSize: bs, budgetBytes: bs, failureTtlMs: 0 }, new Stats(), (parts) =>
    freed.push(parts.reduce((n, p) => n + p.length, 0)),
  );
  const obj = { source: src, version: src.pinned };
  const [held] = await cache.getBlocks(obj, 0, 0, 1);
  // Fetching two more blocks evicts block 0 from a one-block budget, but it is still held.
  (await cache.getBlocks(obj, 1, 1, 1)).forEach((b) => b.release());
  (await cache.getBlocks(obj, 2, 2, 1)).forEach((b) => b.release());
  assert.equal(freed.length, 1, 'block 1 was freed when block 2 evicted it');
  const copy = Buffer.alloc(bs);
  assert.equal(held.copyTo(copy, 0, 0, bs), bs);
  assert.ok(copy.equals(data.subarray(0, bs)), 'a held block keeps its bytes after eviction');
  held.release();
  assert.equal(freed.length, 2, 'freed once released');
  assert.equal(held.copyTo(copy, 0, 0, bs), 0, 'a freed block yields nothing');
});

/**
 * A source that sends its bytes in 64 KiB chunks, one per turn of the event loop, and stops when
 * aborted. Requests that start at or past `gateFrom` send nothing until `open()`.
 */
class GatedSource extends MemorySource {
  delivered = 0;
  readonly running = new Set<Promise<void>>();
  private gate = deferred<void>();
  constructor(
    data: Buffer,
    private readonly gateFrom: number,
  ) {
    super(data);
  }
  open() {
    this.gate.resolve();
  }
  override async read(start: number, end: number, onData: (c: Buffer) => void, signal?: AbortSignal) {
    this.reads.push([start, end]);
    const run = (async () => {
      if (start >= this.gateFrom) {
        const aborted = new Promise<void>((r) => signal?.addEventListener('abort', () => r(), { once: true }));
        await Promise.race([this.gate.promise, aborted]);
      }
      for (let p = start; p < end; p += 65536) {
        await new Promise((r) => setImmediate(r));
        signal?.throwIfAborted();
        const c = Buffer.from(this.data.subarray(p, Math.min(end, p + 65536)));
        this.delivered += c.length;
        onData(c);
      }
    })();
    this.running.add(run);
    try {
      await run;
    } finally {
      this.running.delete(run);
    }
  }
}

test('closing a handle cancels its readahead nobody waits for; a reader that joined it gets its bytes', async () => {
  const MiB = 1 << 20;
  const data = bytes(64 * MiB, 11);
  // The readahead past the stream's 24 MiB is held back until the handle is closed.
  const src = new GatedSource(data, 24 * MiB);
  const cache = new BlockCache({ blockSize: MiB, budgetBytes: 256 * MiB, failureTtlMs: 0 }, new Stats());
  const obj = { source: src, version: src.pinned };
  const a = new RangeReader(cache, obj, DEFAULT_READER);
  for (let off = 0; off < 24 * MiB; off += 128 * 1024) await a.read(off, 128 * 1024);
  const requested = src.reads.reduce((n, [s, e]) => n + (e - s), 0);
  assert.ok(requested > 25 * MiB && requested <= 24 * MiB + 6 * MiB + MiB, `readahead of a quarter of the stream (${requested} bytes requested)`);
  // Another handle waits for the last block the readahead asked for: that request is not cancelled.
  const lastAhead = Math.max(...src.reads.map(([, e]) => e)) - MiB;
  const joinedRequest = src.reads.find(([s, e]) => s <= lastAhead && lastAhead < e)!;
  const b = new RangeReader(cache, obj, DEFAULT_READER);
  const joined = b.read(lastAhead, 1000);
  a.close();
  src.open();
  assert.ok((await joined).equals(data.subarray(lastAhead, lastAhead + 1000)), 'the joined block arrives');
  await Promise.allSettled([...src.running]);
  // What arrived: the stream's requests (those that started before 24 MiB, whole) and the joined one.
  const started = src.reads.filter(([s]) => s < 24 * MiB).reduce((n, [s, e]) => n + (e - s), 0);
  assert.equal(src.delivered, started + joinedRequest[1] - joinedRequest[0], 'the other readahead requests were cancelled');
  // A block whose readahead was cancelled is fetched again when read, with the right bytes.
  const cancelled = src.reads.find(([s]) => s >= 24 * MiB && s !== joinedRequest[0]);
  assert.ok(cancelled, 'some readahead request was cancelled');
  const c = new RangeReader(cache, obj, DEFAULT_READER);
  assert.ok((await c.read(cancelled[0], 5000)).equals(data.subarray(cancelled[0], cancelled[0] + 5000)));
});

test('the budget covers blocks being fetched: a fetch evicts cached blocks to make room for its own', async () => {
  const bs = 4096;
  const data = bytes(16 * bs, 13);
  // Blocks from 8 on are held back until the gate opens.
  const src = new GatedSource(data, 8 * bs);
  let freed = 0;
  const cache = new BlockCache({ blockSize: bs, budgetBytes: 4 * bs, failureTtlMs: 0 }, new Stats(), () => freed++);
  const obj = { source: src, version: src.pinned };
  for (let i = 0; i < 4; i++) (await cache.getBlocks(obj, i, i, 1)).forEach((b) => b.release());
  assert.equal(cache.cachedBytes, 4 * bs);
  // Three blocks in flight (one read, two readahead): three cached blocks make room for them.
  const pending = cache.getBlocks(obj, 8, 8, 1);
  cache.prefetch(obj, 9, 10, 1);
  assert.equal(cache.cachedBytes, 1 * bs, 'cached + in flight stay within the budget');
  assert.equal(freed, 3);
  src.open();
  const [b8] = await pending;
  const copy = Buffer.alloc(bs);
  b8.copyTo(copy, 0, 0, bs);
  assert.ok(copy.equals(data.subarray(8 * bs, 9 * bs)));
  b8.release();
  await Promise.allSettled([...src.running]);
  assert.ok(cache.cachedBytes <= 4 * bs);
});
