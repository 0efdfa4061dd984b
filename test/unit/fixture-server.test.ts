// Proves the test fixtures themselves: the fault-injecting HTTP server, the seeded PRNG and the
// samtools-generated sample data. Other tests trust these, so they are checked against first
// principles (the bytes we added, samtools on local files), never against hard-coded answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom, seededBytes } from '../helpers/random.js';
import { ensureSampleData, samtools } from '../helpers/sample-data.js';

interface RawResponse {
  /** 0 when no response headers arrived. */
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The whole announced body arrived. */
  complete: boolean;
  error?: string;
  reusedSocket: boolean;
}

/**
 * One request through node:http, reporting partial bodies and dropped connections instead of
 * throwing, so fault modes can be asserted precisely. `timeoutMs` gives up (destroying the
 * request) and reports whatever had arrived.
 */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; agent?: http.Agent | false; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let status = 0;
    let headers: http.IncomingHttpHeaders = {};
    let settled = false;
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false });
    const finish = (complete: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, headers, body: Buffer.concat(chunks), complete, error, reusedSocket: req.reusedSocket });
    };
    const timer = setTimeout(() => {
      finish(false, 'timeout');
      req.destroy();
    }, opts.timeoutMs ?? 10_000);
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      headers = res.headers;
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (err) => finish(false, err.message));
      res.on('close', () => finish(res.complete, res.complete ? undefined : 'closed early'));
    });
    req.on('error', (err) => finish(false, err.message));
    req.end();
  });
}

async function withServer(fn: (server: FixtureServer) => Promise<void>): Promise<void> {
  const server = await FixtureServer.start();
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

// A size that is not a multiple of anything the server or a client might chunk by.
const SIZE = 3 * 1024 * 1024 + 123;
const DATA = seededBytes(11, SIZE);
const PATH = '/bucket/dir/sample.bam';

test('seededBytes is deterministic, prefix-stable and seed-dependent', () => {
  const long = seededBytes(5, 10_001);
  assert.deepEqual(seededBytes(5, 10_001), long);
  assert.deepEqual(seededBytes(5, 4_097), long.subarray(0, 4_097));
  assert.notDeepEqual(seededBytes(6, 10_001), long);
  assert.equal(seededBytes(5, 0).length, 0);
  // Random bytes use the whole byte range roughly evenly.
  const counts = new Array<number>(256).fill(0);
  for (const b of long) counts[b]++;
  assert.ok(Math.min(...counts) > 0);
});

test('SeededRandom is reproducible and stays in range', () => {
  const a = new SeededRandom(42);
  const b = new SeededRandom(42);
  const items = ['x', 'y', 'z'];
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const x = a.next();
    assert.equal(x, b.next());
    assert.ok(x >= 0 && x < 1);
    const n = a.int(-2, 2);
    assert.equal(n, b.int(-2, 2));
    assert.ok(Number.isInteger(n) && n >= -2 && n <= 2);
    seen.add(n);
    assert.equal(a.pick(items), b.pick(items));
  }
  assert.equal(seen.size, 5, 'int(lo, hi) reaches both ends');
  assert.throws(() => a.pick([]));
});

test('serves exact byte ranges with Content-Range, validators and a request log', async () => {
  await withServer(async (server) => {
    server.addFile(PATH, DATA);
    assert.match(server.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    const url = server.url(PATH);
    const cases: { range: string; start: number; end: number }[] = [
      { range: 'bytes=0-0', start: 0, end: 0 },
      { range: 'bytes=1048570-2097160', start: 1048570, end: 2097160 },
      { range: `bytes=${SIZE - 10}-`, start: SIZE - 10, end: SIZE - 1 },
      { range: 'bytes=-77', start: SIZE - 77, end: SIZE - 1 },
      { range: `bytes=${SIZE - 5}-${SIZE + 1000}`, start: SIZE - 5, end: SIZE - 1 },
      { range: `bytes=-${SIZE * 2}`, start: 0, end: SIZE - 1 },
    ];
    for (const c of cases) {
      const res = await fetch(url, { headers: { Range: c.range } });
      assert.equal(res.status, 206, c.range);
      assert.equal(res.headers.get('content-range'), `bytes ${c.start}-${c.end}/${SIZE}`);
      assert.equal(res.headers.get('content-length'), String(c.end - c.start + 1));
      assert.equal(res.headers.get('accept-ranges'), 'bytes');
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), DATA.subarray(c.start, c.end + 1), c.range);
    }

    const full = await fetch(`${url}?X-Amz-Signature=abc&x=1`);
    assert.equal(full.status, 200);
    const etag = full.headers.get('etag');
    assert.equal(etag, `"${createHash('md5').update(DATA).digest('hex')}"`);
    assert.equal(etag, server.etag(PATH));
    assert.ok(full.headers.get('last-modified'));
    assert.deepEqual(Buffer.from(await full.arrayBuffer()), DATA);

    const head = await fetch(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(SIZE));
    assert.equal(head.headers.get('etag'), etag);

    assert.equal(server.count(), cases.length + 2);
    assert.equal(server.count({ method: 'HEAD' }), 1);
    assert.equal(server.count({ path: PATH, method: 'GET' }), cases.length + 1);
    const logged = server.requests[cases.length];
    assert.equal(logged.query, 'X-Amz-Signature=abc&x=1');
    assert.equal(logged.path, PATH);
    assert.equal(logged.file, PATH);
    assert.equal(logged.status, 200);
    assert.equal(logged.bytesSent, SIZE);
    assert.equal(server.requests[1].range, cases[1].range);
    assert.equal(server.requests[1].bytesSent, cases[1].end - cases[1].start + 1);
    assert.equal(server.requests.at(-1)?.bytesSent, 0, 'HEAD sends no body');
    server.resetLog();
    assert.equal(server.count(), 0);
  });
});

test('416, 404, 405 and If-Match/412 follow the HTTP rules', async () => {
  await withServer(async (server) => {
    server.addFile(PATH, DATA);
    server.addFile('/empty', Buffer.alloc(0));
    const url = server.url(PATH);

    for (const range of [`bytes=${SIZE}-`, `bytes=${SIZE + 10}-${SIZE + 20}`, 'bytes=-0']) {
      const res = await fetch(url, { headers: { Range: range } });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers.get('content-range'), `bytes */${SIZE}`);
      await res.arrayBuffer();
    }
    const emptyRange = await fetch(server.url('/empty'), { headers: { Range: 'bytes=0-' } });
    assert.equal(emptyRange.status, 416);
    await emptyRange.arrayBuffer();
    // Multi-range is not supported: the whole body is a legal answer.
    const multi = await fetch(url, { headers: { Range: 'bytes=0-1,5-6' } });
    assert.equal(multi.status, 200);
    await multi.arrayBuffer();

    const missing = await fetch(server.url('/nope.bam'));
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    assert.equal(server.requests.at(-1)?.file, undefined);

    const post = await fetch(url, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    await post.arrayBuffer();

    const etag = server.etag(PATH)!;
    const stale = await fetch(url, { headers: { Range: 'bytes=0-9', 'If-Match': '"not-the-etag"' } });
    assert.equal(stale.status, 412);
    await stale.arrayBuffer();
    assert.equal(server.requests.at(-1)?.ifMatch, '"not-the-etag"');
    const current = await fetch(url, { headers: { Range: 'bytes=0-9', 'If-Match': etag } });
    assert.equal(current.status, 206);
    assert.deepEqual(Buffer.from(await current.arrayBuffer()), DATA.subarray(0, 10));
  });
});

test('etag and lastModified options are served as given; etag null sends none', async () => {
  await withServer(async (server) => {
    const lastModified = new Date('2024-03-01T12:34:56Z');
    server.addFile('/a', DATA.subarray(0, 100), { etag: 'abc123', lastModified });
    server.addFile('/b', DATA.subarray(0, 100), { etag: null });
    const a = await fetch(server.url('/a'), { method: 'HEAD' });
    assert.equal(a.headers.get('etag'), '"abc123"');
    assert.equal(a.headers.get('last-modified'), lastModified.toUTCString());
    const b = await fetch(server.url('/b'), { method: 'HEAD' });
    assert.equal(b.headers.get('etag'), null);
    const bMatch = await fetch(server.url('/b'), { headers: { 'If-Match': '"anything"' } });
    assert.equal(bMatch.status, 412, 'no current ETag can match');
    await bMatch.arrayBuffer();
  });
});

test('a file registered with a query answers requests with those parameters; the plain path the rest', async () => {
  await withServer(async (server) => {
    server.addFile('/dl?id=A', Buffer.from('AAAAA'), { etag: null });
    server.addFile('/dl?id=B', Buffer.from('BBBBB'), { etag: null });
    server.addFile('/dl', Buffer.from('plain'));
    const body = async (path: string) => {
      const r = await fetch(server.url(path));
      return `${r.status} ${await r.text()}`;
    };
    assert.equal(await body('/dl?id=A'), '200 AAAAA');
    assert.equal(await body('/dl?X-Amz-Signature=s&id=B'), '200 BBBBB', 'other parameters may come too');
    assert.equal(await body('/dl?id=C'), '200 plain');
    assert.equal(await body('/dl'), '200 plain');
    assert.deepEqual(server.requests.map((r) => r.file), ['/dl?id=A', '/dl?id=B', '/dl', '/dl']);
    assert.equal(server.count({ path: '/dl' }), 4);
    assert.equal(server.content('/dl?id=B').toString(), 'BBBBB');
  });
});

test('keep-alive: consecutive requests reuse one socket', async () => {
  await withServer(async (server) => {
    server.addFile(PATH, DATA);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await request(server.url(PATH), { agent, headers: { Range: 'bytes=0-99' } });
      const second = await request(server.url(PATH), { agent, headers: { Range: 'bytes=100-199' } });
      assert.equal(first.status, 206);
      assert.equal(second.status, 206);
      assert.equal(second.reusedSocket, true);
      assert.deepEqual(second.body, DATA.subarray(100, 200));
    } finally {
      agent.destroy();
    }
  });
});

test('fault status-then-ok and retry-after answer errors `times` times, then serve; setFault resets', async () => {
  await withServer(async (server) => {
    server.addFile(PATH, DATA, { fault: { kind: 'status-then-ok', status: 503, times: 2 } });
    const range = { Range: 'bytes=10-19' };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(server.url(PATH), { headers: range });
      statuses.push(res.status);
      if (res.ok) assert.deepEqual(Buffer.from(await res.arrayBuffer()), DATA.subarray(10, 20));
      else await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [503, 503, 206]);

    server.setFault(PATH, { kind: 'retry-after', times: 1, seconds: 7 });
    const throttled = await fetch(server.url(PATH), { headers: range });
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get('retry-after'), '7');
    await throttled.arrayBuffer();
    const after = await fetch(server.url(PATH), { headers: range });
    assert.equal(after.status, 206);
    await after.arrayBuffer();

    // Setting the same fault again starts its count from zero.
    server.setFault(PATH, { kind: 'retry-after', times: 1, seconds: 7 });
    const again = await fetch(server.url(PATH), { headers: range });
    assert.equal(again.status, 429);
    await again.arrayBuffer();
    server.setFault(PATH, undefined);
    const cleared = await fetch(server.url(PATH), { headers: range });
    assert.equal(cleared.status, 206);
    await cleared.arrayBuffer();
  });
});

test('fault drop-mid-body sends headers and afterBytes, then closes the connection', async () => {
  await withServer(async (server) => {
    const afterBytes = 300_000;
    server.addFile(PATH, DATA, { fault: { kind: 'drop-mid-body', times: 1, afterBytes } });
    const start = 1000;
    const end = 1_000_999;
    const dropped = await request(server.url(PATH), { headers: { Range: `bytes=${start}-${end}` } });
    assert.equal(dropped.status, 206);
    assert.equal(dropped.headers['content-length'], String(end - start + 1));
    assert.equal(dropped.complete, false);
    assert.deepEqual(dropped.body, DATA.subarray(start, start + afterBytes));
    assert.equal(server.requests[0].bytesSent, afterBytes);

    // undici (fetch) sees the same truncation as an error while reading the body.
    server.setFault(PATH, { kind: 'drop-mid-body', times: 1, afterBytes: 0 });
    const res = await fetch(server.url(PATH), { headers: { Range: `bytes=${start}-${end}` } });
    assert.equal(res.status, 206);
    await assert.rejects(res.arrayBuffer());

    const healed = await request(server.url(PATH), { headers: { Range: `bytes=${start}-${end}` } });
    assert.equal(healed.complete, true);
    assert.deepEqual(healed.body, DATA.subarray(start, end + 1));
  });
});

test('fault stall never answers; stall-body hangs after afterBytes; close() tears both down', async () => {
  await withServer(async (server) => {
    server.addFile(PATH, DATA, { fault: { kind: 'stall', times: 1 } });
    const stalled = await request(server.url(PATH), { headers: { Range: 'bytes=0-9' }, timeoutMs: 300 });
    assert.equal(stalled.status, 0);
    assert.equal(stalled.error, 'timeout');
    assert.equal(server.requests[0].status, 0);
    const next = await request(server.url(PATH), { headers: { Range: 'bytes=0-9' } });
    assert.equal(next.status, 206);

    server.setFault(PATH, { kind: 'stall-body', afterBytes: 1234 });
    const partial = await request(server.url(PATH), { headers: { Range: 'bytes=0-99999' }, timeoutMs: 300 });
    assert.equal(partial.status, 206);
    assert.equal(partial.error, 'timeout');
    assert.deepEqual(partial.body, DATA.subarray(0, 1234));
  });

  // close() must not wait for stalled responses: it destroys their sockets.
  const server = await FixtureServer.start();
  server.addFile(PATH, DATA, { fault: { kind: 'stall' } });
  server.addFile('/body', DATA, { fault: { kind: 'stall-body', afterBytes: 10 } });
  const headerless = request(server.url(PATH));
  const bodiless = request(server.url('/body'));
  while (server.count() < 2) await new Promise((r) => setTimeout(r, 5));
  const started = Date.now();
  await server.close();
  assert.ok(Date.now() - started < 1000);
  const [a, b] = await Promise.all([headerless, bodiless]);
  assert.equal(a.status, 0);
  assert.notEqual(a.error, 'timeout');
  assert.equal(b.status, 200);
  assert.equal(b.complete, false);
  assert.notEqual(b.error, 'timeout');
  await assert.rejects(fetch(server.url(PATH)), 'no longer listening');
});

test('fault status answers that status to every GET and HEAD', async () => {
  await withServer(async (server) => {
    for (const status of [404, 403, 401, 500]) {
      server.addFile(PATH, DATA, { fault: { kind: 'status', status } });
      for (const method of ['GET', 'HEAD', 'GET']) {
        const res = await fetch(server.url(PATH), { method, headers: { Range: 'bytes=0-9' } });
        assert.equal(res.status, status, `${method} ${status}`);
        await res.arrayBuffer();
      }
    }
  });
});

test('fault etag-change switches content, ETag and Last-Modified after N requests', async () => {
  await withServer(async (server) => {
    const afterRequests = 2;
    server.addFile(PATH, DATA, { fault: { kind: 'etag-change', afterRequests } });
    const url = server.url(PATH);
    const before = await fetch(url, { method: 'HEAD' });
    const oldEtag = before.headers.get('etag')!;
    const oldModified = Date.parse(before.headers.get('last-modified')!);
    const second = await fetch(url, { headers: { Range: 'bytes=0-99', 'If-Match': oldEtag } });
    assert.equal(second.status, 206);
    assert.deepEqual(Buffer.from(await second.arrayBuffer()), DATA.subarray(0, 100));

    const third = await fetch(url, { headers: { Range: 'bytes=0-99' } });
    assert.equal(third.status, 206);
    const newEtag = third.headers.get('etag')!;
    assert.notEqual(newEtag, oldEtag);
    assert.ok(Date.parse(third.headers.get('last-modified')!) > oldModified);
    const flipped = Buffer.from(DATA.subarray(0, 100).map((b) => b ^ 0xff));
    assert.deepEqual(Buffer.from(await third.arrayBuffer()), flipped);
    assert.equal(newEtag, `"${createHash('md5').update(server.content(PATH)).digest('hex')}"`);

    const stale = await fetch(url, { headers: { Range: 'bytes=0-99', 'If-Match': oldEtag } });
    assert.equal(stale.status, 412);
    await stale.arrayBuffer();
  });
});

test('faults ignore-range, wrong-content-range and no-head', async () => {
  await withServer(async (server) => {
    server.addFile(PATH, DATA, { fault: { kind: 'ignore-range' } });
    const whole = await fetch(server.url(PATH), { headers: { Range: 'bytes=100-199' } });
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-range'), null);
    assert.deepEqual(Buffer.from(await whole.arrayBuffer()), DATA);

    server.setFault(PATH, { kind: 'wrong-content-range' });
    const off = await fetch(server.url(PATH), { headers: { Range: 'bytes=100-199' } });
    assert.equal(off.status, 206);
    assert.equal(off.headers.get('content-range'), `bytes 101-200/${SIZE}`);
    assert.deepEqual(Buffer.from(await off.arrayBuffer()), DATA.subarray(101, 201));
    const tail = await fetch(server.url(PATH), { headers: { Range: 'bytes=-10' } });
    const tailRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(tail.headers.get('content-range') ?? '');
    assert.ok(tailRange);
    assert.notEqual(Number(tailRange[1]), SIZE - 10);
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), DATA.subarray(Number(tailRange[1]), Number(tailRange[2]) + 1));

    server.setFault(PATH, { kind: 'no-head' });
    const head = await fetch(server.url(PATH), { method: 'HEAD' });
    assert.equal(head.status, 405);
    const get = await fetch(server.url(PATH), { headers: { Range: 'bytes=0-9' } });
    assert.equal(get.status, 206);
    assert.equal(get.headers.get('content-range'), `bytes 0-9/${SIZE}`);
    await get.arrayBuffer();
  });
});

test('large bodies stream intact, and a client abort is logged as a partial send', async () => {
  const size = 128 * 1024 * 1024 + 7;
  const big = seededBytes(99, size);
  const expected = createHash('md5').update(big).digest('hex');
  await withServer(async (server) => {
    server.addFile('/big.bin', big, { etag: 'big' });
    const res = await fetch(server.url('/big.bin'));
    const hash = createHash('md5');
    let received = 0;
    for await (const chunk of res.body!) {
      hash.update(chunk);
      received += chunk.length;
    }
    assert.equal(received, size);
    assert.equal(hash.digest('hex'), expected);

    const controller = new AbortController();
    const partial = await fetch(server.url('/big.bin'), { signal: controller.signal });
    const reader = partial.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => undefined);
    // The server notices the abort asynchronously.
    const deadline = Date.now() + 5000;
    while (server.requests[1].bytesSent === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(server.requests[1].bytesSent < size, `sent ${server.requests[1].bytesSent} of ${size}`);

    const after = await fetch(server.url('/big.bin'), { headers: { Range: `bytes=${size - 5}-` } });
    assert.deepEqual(Buffer.from(await after.arrayBuffer()), big.subarray(size - 5));
  });
});

test('ensureSampleData: BAM, BAM+CSI and CRAM hold the same reads, over several MiB blocks', async () => {
  const data = await ensureSampleData();
  assert.ok(statSync(data.bam).size > 1024 * 1024, 'BAM spans more than one 1 MiB block');
  for (const file of [data.ref, data.fai, data.bai, data.csi, data.cram, data.crai]) assert.ok(statSync(file).size > 0, file);

  const count = async (args: string[]): Promise<number> => {
    const r = await samtools(['view', '-c', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return Number(r.stdout.toString().trim());
  };
  const total = await count([data.bam]);
  assert.ok(total > 1000, `${total} reads`);
  assert.equal(await count([data.csiBam]), total);
  assert.equal(await count(['-T', data.ref, data.cram]), total);

  // Region queries go through each index; the set must include an empty region and a busy one.
  const regionCounts: number[] = [];
  for (const region of data.regions) {
    const n = await count([data.bam, region]);
    assert.equal(await count([data.csiBam, region]), n, `CSI ${region}`);
    assert.equal(await count(['-T', data.ref, data.cram, region]), n, `CRAM ${region}`);
    regionCounts.push(n);
  }
  assert.ok(regionCounts.includes(0), 'some region has no reads');
  assert.ok(Math.max(...regionCounts) > 1000, 'some region spans many reads');
  // The reported contigs are the reference's, as samtools indexed it.
  const faiContigs = readFileSync(data.fai, 'utf8').trim().split('\n').map((line) => {
    const [name, length] = line.split('\t');
    return { name, length: Number(length) };
  });
  assert.deepEqual(data.contigs, faiContigs);

  // The second call reuses the files (same paths, untouched).
  const mtime = statSync(data.bam).mtimeMs;
  const again = await ensureSampleData();
  assert.deepEqual(again, data);
  assert.equal(statSync(again.bam).mtimeMs, mtime);
});
