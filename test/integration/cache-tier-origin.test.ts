/**
 * What the shared cache tier (docker/cache-tier/nginx.conf, a real nginx) sends to an origin, and
 * which version of an object it serves (issue 16, findings 2 and 3):
 *
 * - No header of the caller reaches the origin: an origin that also accepts a header credential
 *   (X-Api-Key) never sees it from the tier, so one caller's key cannot make the tier's cached
 *   access check and slices serve another caller; Authorization, Cookie, Proxy-Authorization,
 *   X-Amz-Security-Token and the caller's Accept-Encoding do not arrive either. slicefs sends a
 *   request with such a header to the origin directly.
 * - A replaced object is never served from its old slices once its URL is checked again: the
 *   version (strong ETag, else Last-Modified, and the size) is part of the slice key, slices are
 *   fetched with If-Match / If-Unmodified-Since of that version, and a slice whose answer is of
 *   another version is not kept. A reader pinned to the old version gets 412 (slicefs: STALE).
 *
 * The main tier reuses an access check for 30 s, so that "within the check's lifetime" is not a
 * race in these tests; a second tier with 1 s shows the bound for one URL. nginx must be installed:
 * without it these tests fail, saying so.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { DEFAULT_TRANSPORT } from '../../src/config.js';
import { SlicefsError } from '../../src/errors.js';
import { Stats } from '../../src/stats.js';
import { CacheProxyRouter, viaCacheProxy } from '../../src/transport/cache-proxy.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import type { ObjectVersion } from '../../src/transport/version.js';
import { CacheTier } from '../helpers/cache-tier.js';
import { FixtureServer, type RequestRecord } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';

const MiB = 1024 * 1024;
/** Credentials a caller may send besides the URL's own signature: none may reach an origin from the tier. */
const CALLER_CREDENTIALS = {
  'x-api-key': 'k',
  authorization: 'Bearer caller-token',
  cookie: 'session=caller',
  'proxy-authorization': 'Basic Y2FsbGVyOnB3',
  'x-amz-security-token': 'caller-sts-token',
};
/** A caller's headers: its credentials and an encoding the tier must not ask for in its name. */
const CALLER_HEADERS = { ...CALLER_CREDENTIALS, 'accept-encoding': 'gzip, br' };

let server: FixtureServer;
/** Access checks reused for 30 s: "within a check's lifetime" is not a race. */
let tier: CacheTier;
/** Access checks reused for 1 s: the bound for one URL. */
let brief: CacheTier;

before(async () => {
  server = await FixtureServer.start();
  const origins = `^${server.origin.replace(/\./g, '\\.')}$`;
  tier = await CacheTier.start({ origins, authValid: '30s' });
  brief = await CacheTier.start({ origins, authValid: '1s' });
});
after(async () => {
  await tier?.close();
  await brief?.close();
  await server?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /**
   * False when the connection ended before the body did: nginx cuts a response whose next slice
   * failed (status 0: before the headers were sent).
   */
  complete: boolean;
}

/** `bytes=from-to` of `url` through `via`, as slicefs would send it, with `headers`. */
async function viaTier(via: CacheTier, url: string, from: number, to: number, headers: Record<string, string> = {}): Promise<Answer> {
  const opts = { headers: { range: `bytes=${from}-${to}`, ...headers }, headersTimeout: 10_000, bodyTimeout: 10_000 };
  const res = await request(viaCacheProxy(url, via.url)!, opts).catch((err: unknown) => {
    if ((err as { code?: string }).code === 'UND_ERR_SOCKET') return undefined;
    throw err;
  });
  if (res === undefined) return { status: 0, headers: {}, body: Buffer.alloc(0), complete: false };
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) h[k] = Array.isArray(v) ? v.join(', ') : (v ?? '');
  const chunks: Buffer[] = [];
  let complete = true;
  try {
    for await (const chunk of res.body) chunks.push(Buffer.from(chunk as Buffer));
  } catch {
    complete = false;
  }
  return { status: res.statusCode, headers: h, body: Buffer.concat(chunks), complete };
}

/** A presigned-style URL of `path` (S3 V4 form): a new `signature` is a URL the tier has not checked. */
const signed = (path: string, signature: string) => server.url(`${path}?X-Amz-Signature=${signature}`);

/** The origin saw none of a caller's credentials from the tier, and only `Accept-Encoding: identity`. */
function assertOnlyTierHeaders(records: RequestRecord[]): void {
  assert.ok(records.length > 0, 'the origin saw no request');
  for (const r of records) {
    for (const name of Object.keys(CALLER_CREDENTIALS)) assert.equal(r.headers[name], undefined, `${r.method} ${r.range ?? ''}: the origin got ${name}`);
    assert.equal(r.headers['accept-encoding'], 'identity', `${r.method} ${r.range ?? ''}: Accept-Encoding`);
  }
}

/** Warnings of the transports below: none is expected (the tier never fails a request here). */
const warnings: string[] = [];

function transport(via: CacheTier): HttpTransport {
  const config = { ...DEFAULT_TRANSPORT, retry: { ...DEFAULT_TRANSPORT.retry, baseDelayMs: 20, maxDelayMs: 200, budgetMs: 5000 }, cacheProxy: via.url };
  return new HttpTransport(config, new Stats(), (w) => warnings.push(w));
}

async function readAll(t: HttpTransport, url: string, version: ObjectVersion, start = 0, end = version.size, headers: Record<string, string> = {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await t.fetchRange(url, start, end, { version, headers, onData: (c) => void chunks.push(Buffer.from(c)) });
  return Buffer.concat(chunks);
}

const isStale = (e: unknown) => e instanceof SlicefsError && e.code === 'STALE';

test("an origin that also accepts a header credential: one caller's key unlocks nothing through the tier", async () => {
  const data = seededBytes(71, 2 * MiB + 500);
  server.addFile('/keyed.bin', data, { fault: { kind: 'header-credential', header: 'x-api-key', value: 'k', signed: 'sig=issued' } });
  // The origin itself takes the key (so a refusal through the tier is the tier's doing).
  const direct = await request(server.url('/keyed.bin'), { headers: { range: 'bytes=0-9', 'x-api-key': 'k' } });
  assert.equal(direct.statusCode, 206);
  await direct.body.dump();
  server.resetLog();

  // A, with the key and every other credential: the origin never sees them, so it refuses A's URL.
  const a = await viaTier(tier, server.url('/keyed.bin'), 0, 99, CALLER_HEADERS);
  assert.equal(a.status, 403);
  assert.ok(!a.body.includes(data.subarray(0, 16)));
  // B, without a key, right after: refused, and never served what A asked for.
  const b = await viaTier(tier, server.url('/keyed.bin'), 0, 99);
  assert.equal(b.status, 403);
  assert.ok(!b.body.includes(data.subarray(0, 16)));
  // A URL the store signed is the credential the tier forwards: it passes (the same headers
  // along), across two slices.
  const s = await viaTier(tier, server.url('/keyed.bin?sig=issued'), MiB - 50, MiB + 49, CALLER_HEADERS);
  assert.equal(s.status, 206);
  assert.ok(s.body.equals(data.subarray(MiB - 50, MiB + 50)));
  // The access checks (HEAD, then the one-byte GET after a refusal) and the slice fetches all came
  // without the callers' headers.
  const asked = new Set(server.requests.map((r) => `${r.method} ${r.range ?? '-'}`));
  for (const kind of ['HEAD -', 'GET bytes=0-1048575', 'GET bytes=1048576-2097151']) assert.ok(asked.has(kind), `no ${kind} at the origin`);
  assertOnlyTierHeaders(server.requests);
  assert.equal((await viaTier(tier, server.url('/keyed.bin'), 0, 99)).status, 403, 'B after the signed read');

  // The one-byte GET of an origin that refuses HEAD sends none of them either.
  server.addFile('/nohead.bin', data, { fault: { kind: 'no-head' } });
  server.resetLog();
  const n = await viaTier(tier, server.url('/nohead.bin'), 10, 19, CALLER_HEADERS);
  assert.equal(n.status, 206);
  assert.ok(n.body.equals(data.subarray(10, 20)));
  assert.deepEqual(server.requests.map((r) => `${r.method} ${r.range ?? '-'}`), ['HEAD -', 'GET bytes=0-0', 'GET bytes=0-1048575']);
  assertOnlyTierHeaders(server.requests);
});

test('slicefs sends a request with a header the tier does not forward to the origin directly', async () => {
  const router = new CacheProxyRouter('http://t', () => {});
  for (const name of Object.keys(CALLER_CREDENTIALS)) assert.equal(router.route('https://h.example/x', { range: 'bytes=0-1', [name]: 'v' }), undefined, name);
  const plain = { range: 'bytes=0-1', 'if-match': '"e"', 'accept-encoding': 'identity', 'cache-control': 'no-store' };
  assert.equal(router.route('https://h.example/x', plain), 'http://t/fetch/https/h.example/x');

  const data = server.content('/keyed.bin');
  const logged = (await tier.accessLog()).length;
  const t = transport(tier);
  try {
    const url = server.url('/keyed.bin');
    const v = await t.probe(url, { 'x-api-key': 'k' });
    assert.equal(v.size, data.length);
    assert.ok((await readAll(t, url, v, 5, 2 * MiB, { 'x-api-key': 'k' })).equals(data.subarray(5, 2 * MiB)));
  } finally {
    await t.close();
  }
  assert.deepEqual((await tier.accessLog()).slice(logged), [], 'a request with X-Api-Key went through the tier');
  assert.deepEqual(warnings, []);
});

test('an object replaced under a warm tier: a new check serves the new version, a reader pinned to the old one gets 412, bytes never mixed', async () => {
  const v1 = seededBytes(81, 3 * MiB - 1000);
  const v2 = seededBytes(82, v1.length);
  server.addFile('/replaced.bin', v1);
  const e1 = server.etag('/replaced.bin')!;
  const first = signed('/replaced.bin', 'first');
  // Warm: slices 0 and 1 of version 1 (slice 2 stays cold), and slicefs pins version 1.
  const warm = await viaTier(tier, first, 0, 2 * MiB - 1);
  assert.equal(warm.status, 206);
  assert.equal(warm.headers.etag, e1);
  assert.ok(warm.body.equals(v1.subarray(0, 2 * MiB)));
  const t = transport(tier);
  let e2 = '';
  try {
    const pinned = await t.probe(first);
    assert.equal(pinned.etag, e1);

    server.addFile('/replaced.bin', v2);
    e2 = server.etag('/replaced.bin')!;
    assert.notEqual(e2, e1);
    server.resetLog();

    // Within the lifetime of its check (30 s here), the first URL still names version 1: cached
    // slices answer with version 1's bytes and ETag, and a slice the tier lacks is asked with
    // If-Match of version 1, which the origin refuses: never version 2's bytes under 1's name.
    const old = await viaTier(tier, first, 0, 99);
    assert.equal(old.status, 206);
    assert.equal(old.headers.etag, e1);
    assert.ok(old.body.equals(v1.subarray(0, 100)));
    assert.equal((await viaTier(tier, first, 2 * MiB, 2 * MiB + 99)).status, 412);
    assert.deepEqual(
      server.requests.filter((r) => r.method === 'GET').map((r) => [r.range, r.ifMatch, r.status]),
      [['bytes=2097152-3145727', e1, 412]],
    );
    // A range over a cached slice of version 1 and that refused one: cut short, never mixed.
    const span = await viaTier(tier, first, 2 * MiB - 100, 2 * MiB + 99);
    assert.ok(span.status !== 206 || !span.complete, `a whole answer (${span.status}) across the replacement`);
    if (span.status === 206) assert.ok(span.body.equals(v1.subarray(2 * MiB - 100, 2 * MiB - 100 + span.body.length)), 'not version 1 bytes');
    await assert.rejects(readAll(t, first, pinned, 2 * MiB, 2 * MiB + 100), isStale);

    // A URL checked after the replacement: version 2, whole, with its ETag.
    const second = signed('/replaced.bin', 'second');
    const fresh = await viaTier(tier, second, 0, v2.length - 1);
    assert.equal(fresh.status, 206);
    assert.equal(fresh.headers.etag, e2);
    assert.ok(fresh.body.equals(v2), 'not version 2');
    // A reader pinned to version 1 gets 412 (slicefs: STALE), one pinned to 2 gets its bytes.
    const stale = await viaTier(tier, second, 0, 99, { 'if-match': e1 });
    assert.equal(stale.status, 412);
    assert.ok(!stale.body.includes(v1.subarray(0, 16)) && !stale.body.includes(v2.subarray(0, 16)));
    assert.equal((await viaTier(tier, second, 0, 99, { 'if-match': e2 })).status, 206);
    await assert.rejects(readAll(t, second, pinned, 0, 100), isStale);
    const now = await t.probe(signed('/replaced.bin', 'third'));
    assert.equal(now.etag, e2);
    assert.ok((await readAll(t, signed('/replaced.bin', 'third'), now)).equals(v2));
  } finally {
    await t.close();
  }
  assert.deepEqual(warnings, []);
  // Both versions' slices are kept apart, each under a key naming its version.
  const keys = (await tier.cacheKeys()).filter((k) => k.includes('/replaced.bin?'));
  for (const e of [e1, e2]) assert.ok(keys.includes(`${server.origin}/replaced.bin?|bytes=0-1048575|etag=${e};size=${v1.length}`), keys.join('\n'));
  assert.ok(!keys.some((k) => k.includes('bytes=2097152-') && k.includes(e1)), 'a slice of version 2 kept under version 1');
});

test('the same URL reads a replaced object once its check is older than TIER_AUTH_VALID', async () => {
  const v1 = seededBytes(91, MiB + 300);
  const v2 = seededBytes(92, MiB + 300);
  server.addFile('/public.bin', v1);
  const e1 = server.etag('/public.bin')!;
  const url = server.url('/public.bin');
  const warm = await viaTier(brief, url, 0, v1.length - 1);
  assert.ok(warm.body.equals(v1));
  server.addFile('/public.bin', v2);
  // nginx counts whole seconds: 1 s is over within 2.5 s.
  await new Promise((r) => setTimeout(r, 2500));
  const after = await viaTier(brief, url, 0, v2.length - 1);
  assert.equal(after.status, 206);
  assert.equal(after.headers.etag, server.etag('/public.bin'));
  assert.ok(after.body.equals(v2), 'not version 2');
  assert.equal((await viaTier(brief, url, 0, 99, { 'if-match': e1 })).status, 412);
});

test('an object without ETag: Last-Modified and size are its version', async () => {
  const lm1 = new Date('2024-03-01T10:00:00Z');
  const lm2 = new Date('2024-04-01T10:00:00Z');
  const v1 = seededBytes(101, 2 * MiB + 300);
  const v2 = seededBytes(102, 3 * MiB + 10);
  server.addFile('/noetag.bin', v1, { etag: null, lastModified: lm1 });
  const first = signed('/noetag.bin', 'first');
  const warm = await viaTier(tier, first, 0, 99);
  assert.equal(warm.headers['last-modified'], lm1.toUTCString());
  assert.ok(warm.body.equals(v1.subarray(0, 100)));
  const t = transport(tier);
  try {
    const pinned = await t.probe(first);
    assert.deepEqual([pinned.etag, pinned.size, pinned.lastModified], [undefined, v1.length, lm1.toUTCString()]);

    server.addFile('/noetag.bin', v2, { etag: null, lastModified: lm2 });
    server.resetLog();
    // Within the first URL's check: a cold slice is asked with If-Unmodified-Since and refused.
    assert.equal((await viaTier(tier, first, 2 * MiB, 2 * MiB + 99)).status, 412);
    assert.deepEqual(
      server.requests.map((r) => [r.method, r.range, r.headers['if-unmodified-since'], r.status]),
      [['GET', 'bytes=2097152-3145727', lm1.toUTCString(), 412]],
    );
    // A new check: version 2, its size and date.
    const second = signed('/noetag.bin', 'second');
    const fresh = await viaTier(tier, second, 0, 99);
    assert.equal(fresh.status, 206);
    assert.equal(fresh.headers['content-range'], `bytes 0-99/${v2.length}`);
    assert.equal(fresh.headers['last-modified'], lm2.toUTCString());
    assert.ok(fresh.body.equals(v2.subarray(0, 100)));
    await assert.rejects(readAll(t, second, pinned, 0, 100), isStale);

    // Replaced in place with the same Last-Modified and another size: the precondition passes,
    // so the answer (its Content-Range names the new size) serves that request, but it is not
    // kept under version 1's key, and slicefs pinned to version 1 refuses it.
    const v3 = seededBytes(103, 3 * MiB + 20);
    server.addFile('/resized.bin', v1, { etag: null, lastModified: lm1 });
    const resized = signed('/resized.bin', 'first');
    assert.ok((await viaTier(tier, resized, 0, 99)).body.equals(v1.subarray(0, 100)));
    const pinnedResized = await t.probe(resized);
    server.addFile('/resized.bin', v3, { etag: null, lastModified: lm1 });
    for (let i = 0; i < 2; i++) {
      const r = await viaTier(tier, resized, 2 * MiB, 2 * MiB + 99);
      assert.equal(r.headers['content-range'], `bytes 2097152-2097251/${v3.length}`);
      assert.equal(r.headers['x-cache-status'], 'MISS', `read ${i + 1}: kept under version 1's key`);
    }
    await assert.rejects(readAll(t, resized, pinnedResized, 2 * MiB, 2 * MiB + 100), isStale);
  } finally {
    await t.close();
  }
  assert.deepEqual(warnings, []);
  const keys = await tier.cacheKeys();
  assert.ok(keys.includes(`${server.origin}/noetag.bin?|bytes=0-1048575|date=${lm1.toUTCString()};size=${v1.length}`), keys.join('\n'));
  assert.ok(keys.includes(`${server.origin}/noetag.bin?|bytes=0-1048575|date=${lm2.toUTCString()};size=${v2.length}`), keys.join('\n'));
});

test('an object with neither ETag nor Last-Modified is not kept: every read goes to the origin', async () => {
  // An origin that names no version at all (Node's bare server, ranges only).
  const data = seededBytes(111, 5000);
  const gets: string[] = [];
  const bare: Server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (req.method === 'GET') gets.push(req.headers.range ?? '-');
    if (!m) {
      res.writeHead(200, { 'content-length': String(data.length) });
      return void res.end(req.method === 'HEAD' ? undefined : data);
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), data.length - 1);
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${data.length}`, 'content-length': String(end - start + 1) });
    res.end(req.method === 'HEAD' ? undefined : data.subarray(start, end + 1));
  });
  await new Promise<void>((res) => bare.listen(0, '127.0.0.1', () => res()));
  const any = await CacheTier.start({ authValid: '30s' });
  try {
    const url = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/bare.bin`;
    for (let i = 0; i < 2; i++) {
      const r = await viaTier(any, url, 10, 19);
      assert.equal(r.status, 206);
      assert.ok(r.body.equals(data.subarray(10, 20)));
      assert.equal(r.headers['x-cache-status'], 'BYPASS', `read ${i + 1}`);
    }
    assert.deepEqual(gets, ['bytes=0-1048575', 'bytes=0-1048575']);
    assert.deepEqual(await any.cacheKeys(), []);
  } finally {
    await any.close();
    await new Promise<void>((res) => bare.close(() => res()));
  }
});
