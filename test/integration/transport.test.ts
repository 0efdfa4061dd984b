/**
 * HttpTransport against a real HTTP server on 127.0.0.1 (test/helpers/fixture-server) in every
 * fault mode: the bytes are right after retries, or the error is the typed one, within the budget.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_TRANSPORT, type TransportConfig } from '../../src/config.js';
import { SlicefsError } from '../../src/errors.js';
import { Stats } from '../../src/stats.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import type { Transport } from '../../src/transport/transport.js';
import { WorkerTransport } from '../../src/transport/worker-transport.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';

let server: FixtureServer;
const DATA = seededBytes(11, 3 * 1024 * 1024 + 17);

before(async () => {
  server = await FixtureServer.start();
});
after(async () => {
  await server.close();
});

/** Short timeouts so fault tests finish quickly; the policy is the same as the defaults'. */
type Kind = 'thread' | 'worker';

function make(kind: Kind, cfg: TransportConfig, stats: Stats, warn?: (w: string) => void): Transport {
  return kind === 'worker' ? new WorkerTransport(cfg, stats, warn) : new HttpTransport(cfg, stats, warn);
}

function transport(kind: Kind, over: Partial<TransportConfig> = {}, log?: string[]): { t: Transport; stats: Stats } {
  const stats = new Stats();
  const cfg: TransportConfig = {
    ...DEFAULT_TRANSPORT,
    headersTimeoutMs: 800,
    bodyIdleTimeoutMs: 800,
    retry: { ...DEFAULT_TRANSPORT.retry, baseDelayMs: 20, maxDelayMs: 200, budgetMs: 3000 },
    log: log ? (l) => log.push(l) : undefined,
    ...over,
  };
  return { t: make(kind, cfg, stats), stats };
}

async function fetchAll(t: Transport, url: string, start: number, end: number): Promise<Buffer> {
  const version = await t.probe(url);
  const parts: Buffer[] = [];
  await t.fetchRange(url, start, end, { version, onData: (c) => void parts.push(c) });
  return Buffer.concat(parts);
}

function code(err: unknown): string | undefined {
  return err instanceof SlicefsError ? err.code : undefined;
}

let n = 0;
function file(fault?: Parameters<FixtureServer['addFile']>[2]): string {
  const path = `/f${n++}.bin`;
  server.addFile(path, DATA, fault);
  return server.url(path);
}

// The same behaviour from the transport on this thread and from the one in a worker thread.
for (const kind of ['thread', 'worker'] as const) {
  test(`${kind}: probe gives size and version; a ranged GET gives exactly those bytes with If-Match`, async () => {
    const { t } = transport(kind);
    const url = file();
    const v = await t.probe(url);
    assert.equal(v.size, DATA.length);
    assert.match(v.etag ?? '', /^"/);
    const got = await fetchAll(t, url, 1000, 2_500_000);
    assert.ok(got.equals(DATA.subarray(1000, 2_500_000)));
    const get = server.requests.filter((r) => r.method === 'GET' && url.endsWith(r.path)).at(-1);
    assert.equal(get?.range, 'bytes=1000-2499999');
    assert.equal(get?.ifMatch, v.etag);
    await t.close();
  });

  test(`${kind}: 503 twice then ok: right bytes after two retries`, async () => {
    const { t, stats } = transport(kind);
    const url = file();
    const v = await t.probe(url);
    server.setFault(new URL(url).pathname, { kind: 'status-then-ok', status: 503, times: 2 });
    const parts: Buffer[] = [];
    await t.fetchRange(url, 0, 100_000, { version: v, onData: (c) => void parts.push(c) });
    assert.ok(Buffer.concat(parts).equals(DATA.subarray(0, 100_000)));
    assert.equal(stats.retries, 2);
    await t.close();
  });

  test(`${kind}: 429 with Retry-After is honoured`, async () => {
    const { t, stats } = transport(kind);
    const url = file();
    const v = await t.probe(url);
    server.setFault(new URL(url).pathname, { kind: 'retry-after', times: 1, seconds: 1 });
    const t0 = Date.now();
    const parts: Buffer[] = [];
    await t.fetchRange(url, 5, 50, { version: v, onData: (c) => void parts.push(c) });
    assert.ok(Date.now() - t0 >= 950, 'waited for Retry-After');
    assert.ok(Buffer.concat(parts).equals(DATA.subarray(5, 50)));
    assert.equal(stats.retries, 1);
    await t.close();
  });

  test(`${kind}: a body dropped mid-way is resumed from the first missing byte`, async () => {
    const { t, stats } = transport(kind);
    const url = file();
    const v = await t.probe(url);
    const path = new URL(url).pathname;
    server.setFault(path, { kind: 'drop-mid-body', times: 1, afterBytes: 300_000 });
    const parts: Buffer[] = [];
    await t.fetchRange(url, 100, 2_000_000, { version: v, onData: (c) => void parts.push(c) });
    assert.ok(Buffer.concat(parts).equals(DATA.subarray(100, 2_000_000)));
    const ranges = server.requests.filter((r) => r.path === path && r.method === 'GET').map((r) => r.range);
    assert.equal(ranges[0], 'bytes=100-1999999');
    // The resumed request starts where the delivered bytes ended (at or after byte 100 + what arrived).
    const resumedAt = Number(/bytes=(\d+)-/.exec(ranges[1] ?? '')?.[1]);
    assert.ok(resumedAt > 100 && resumedAt <= 300_100, `resumed at ${resumedAt}`);
    assert.ok(stats.retries >= 1);
    await t.close();
  });

  test(`${kind}: a stalled server fails with TIMEOUT inside the budget`, async () => {
    const { t } = transport(kind);
    const url = file();
    const v = await t.probe(url);
    server.setFault(new URL(url).pathname, { kind: 'stall' });
    const t0 = Date.now();
    await assert.rejects(
      t.fetchRange(url, 0, 10, { version: v, onData: () => {} }),
      (e) => code(e) === 'TIMEOUT' || code(e) === 'NETWORK',
    );
    assert.ok(Date.now() - t0 < 3000 + 1500, `gave up in ${Date.now() - t0} ms`);
    await t.close();
  });

  test(`${kind}: a body that stalls mid-way is resumed (idle timeout)`, async () => {
    const { t } = transport(kind);
    const url = file();
    const v = await t.probe(url);
    server.setFault(new URL(url).pathname, { kind: 'stall-body', times: 1, afterBytes: 65536 });
    const parts: Buffer[] = [];
    await t.fetchRange(url, 0, 1_000_000, { version: v, onData: (c) => void parts.push(c) });
    assert.ok(Buffer.concat(parts).equals(DATA.subarray(0, 1_000_000)));
    await t.close();
  });

  test(`${kind}: 404, 403 and 401 are final, typed, and not retried`, async () => {
    for (const [status, want] of [
      [404, 'NOT_FOUND'],
      [403, 'ACCESS_DENIED'],
      [401, 'ACCESS_DENIED'],
    ] as const) {
      const { t, stats } = transport(kind);
      const url = file({ fault: { kind: 'status', status } });
      await assert.rejects(t.probe(url), (e) => code(e) === want);
      assert.equal(stats.retries, 0);
      await t.close();
    }
  });

  test(`${kind}: 500 forever fails with HTTP_STATUS after the attempts`, async () => {
    const { t, stats } = transport(kind);
    const url = file();
    const v = await t.probe(url);
    server.setFault(new URL(url).pathname, { kind: 'status', status: 500 });
    await assert.rejects(t.fetchRange(url, 0, 10, { version: v, onData: () => {} }), (e) => code(e) === 'HTTP_STATUS' || code(e) === 'TIMEOUT');
    assert.ok(stats.retries >= 1);
    await t.close();
  });

  test(`${kind}: an object that changes after pinning is STALE, never mixed bytes`, async () => {
    const { t } = transport(kind);
    const url = file({ fault: { kind: 'etag-change', afterRequests: 1 } });
    const v = await t.probe(url);
    await assert.rejects(
      t.fetchRange(url, 0, 10, { version: v, onData: () => assert.fail('no bytes of a new version') }),
      (e) => code(e) === 'STALE',
    );
    await t.close();
  });

  test(`${kind}: a changed object without ETag (Last-Modified only) is STALE too`, async () => {
    const { t } = transport(kind);
    const url = file({ etag: null, lastModified: new Date('2024-01-01T00:00:00Z'), fault: { kind: 'etag-change', afterRequests: 1 } });
    const v = await t.probe(url);
    assert.equal(v.etag, undefined);
    await assert.rejects(
      t.fetchRange(url, 0, 10, { version: v, onData: () => assert.fail('no bytes of a new version') }),
      (e) => code(e) === 'STALE',
    );
    await t.close();
  });

  test(`${kind}: a server that ignores Range (200) still yields exactly the asked bytes`, async () => {
    const warnings: string[] = [];
    const stats = new Stats();
    const t = make(kind, { ...DEFAULT_TRANSPORT }, stats, (w) => warnings.push(w));
    const url = file({ fault: { kind: 'ignore-range' } });
    const got = await fetchAll(t, url, 1_234_567, 1_300_000);
    assert.ok(got.equals(DATA.subarray(1_234_567, 1_300_000)));
    assert.equal(stats.rangeIgnored, 1);
    assert.match(warnings[0] ?? '', /ignores Range/);
    await t.close();
  });

  test(`${kind}: a wrong Content-Range is refused, not served`, async () => {
    const { t } = transport(kind);
    const url = file({ fault: { kind: 'wrong-content-range' } });
    const v = await t.probe(url);
    await assert.rejects(
      t.fetchRange(url, 10, 20, { version: v, onData: () => assert.fail('no bytes of a wrong range') }),
      (e) => code(e) === 'BAD_RESPONSE',
    );
    await t.close();
  });

  test(`${kind}: where HEAD is refused, a 1-byte ranged GET gives the size`, async () => {
    const { t } = transport(kind);
    const url = file({ fault: { kind: 'no-head' } });
    const v = await t.probe(url);
    assert.equal(v.size, DATA.length);
    const path = new URL(url).pathname;
    assert.deepEqual(
      server.requests.filter((r) => r.path === path).map((r) => [r.method, r.range ?? '-']),
      [
        ['HEAD', '-'],
        ['GET', 'bytes=0-0'],
      ],
    );
    await t.close();
  });

  test(`${kind}: logs and errors never contain the query string of a presigned URL`, async () => {
    const log: string[] = [];
    const { t } = transport(kind, {}, log);
    const url = file({ fault: { kind: 'status', status: 403 } }) + '?X-Amz-Signature=SECRETSIG&token=SECRETTOKEN';
    const err = await t.probe(url).catch((e: Error) => e);
    assert.ok(err instanceof SlicefsError);
    assert.doesNotMatch(`${err.message} ${log.join('\n')}`, /SECRET/);
    assert.ok(log.length > 0, 'verbose log was written');
    assert.match(server.requests.at(-1)?.query ?? '', /SECRETSIG/, 'the server did get the query string');
    await t.close();
  });
}
