/**
 * The Score fixture service itself (test/helpers/score-server.ts): if it accepted a bad URL or
 * served wrong bytes, every client test built on it would prove nothing. Checked with plain fetch:
 * presigned URLs serve the right bytes and are refused when changed, expired or signed with an old
 * key, in S3 and Azure form; the specification covers the asked range; the token, access, HTML
 * and injected failures behave as the protocol notes describe.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, beforeEach, test } from 'node:test';
import { seededBytes } from '../helpers/random.js';
import { ScoreServer } from '../helpers/score-server.js';

const TOKEN = 'unit-test-token-0001';
const bytes = seededBytes(7, 100_000);
let s: ScoreServer;

interface Spec {
  objectId: string;
  objectKey: string;
  uploadId: string;
  objectSize: number;
  objectMd5: string;
  parts: { partNumber: number; partSize: number; offset: number; url: string; md5: string | null }[];
}

before(async () => {
  s = await ScoreServer.start(TOKEN);
  s.addObject('obj-1', bytes, { fileName: 'a.bam', gnosId: 'AN1' });
  s.addObject('obj-2', Buffer.from('index'), { fileName: 'a.bam.bai', gnosId: 'AN1' });
});
after(async () => {
  await s?.close();
});
beforeEach(() => {
  // Every test starts from the defaults; the ones that change a switch do not leak it.
  s.urlStyle = 's3';
  s.urlLifetimeS = 86_400;
  s.now = Date.now;
  s.htmlErrors = false;
  s.partSize = 20 * 1024 * 1024;
  s.denied.clear();
  s.resetCounters();
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const auth = (token = TOKEN) => ({ authorization: `Bearer ${token}` });

async function spec(id: string, query = 'offset=0&length=-1&external=true'): Promise<Spec> {
  const res = await fetch(`${s.origin}/download/${id}?${query}`, { headers: auth() });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Spec;
}

/** `url` with one character of the named query parameter changed. */
function flipParam(url: string, name: string): string {
  const u = new URL(url);
  const v = u.searchParams.get(name);
  assert.ok(v, `no ${name} in ${url}`);
  const i = Math.floor(v.length / 2);
  u.searchParams.set(name, v.slice(0, i) + (v[i] === 'a' ? 'b' : 'a') + v.slice(i + 1));
  return u.toString();
}

test('an S3-style URL serves ranges (206), the whole object (200) and HEAD, with ETag and lengths', async () => {
  const sp = await spec('obj-1');
  assert.equal(sp.objectSize, bytes.length);
  assert.equal(sp.objectMd5, md5(bytes));
  assert.equal(sp.parts.length, 1);
  const url = sp.parts[0].url;
  const q = new URL(url).searchParams;
  assert.equal(q.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
  assert.match(q.get('X-Amz-Date') ?? '', /^\d{8}T\d{6}Z$/);
  assert.equal(q.get('X-Amz-Expires'), '86400');
  assert.equal(q.get('X-Amz-SignedHeaders'), 'host');
  assert.match(q.get('X-Amz-Signature') ?? '', /^[0-9a-f]{64}$/);
  assert.equal(new URL(url).pathname, `/objects/${sp.objectKey}`);

  const r = await fetch(url, { headers: { range: 'bytes=1000-1999' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), `bytes 1000-1999/${bytes.length}`);
  assert.equal(r.headers.get('content-length'), '1000');
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(bytes.subarray(1000, 2000)));

  const open = await fetch(url, { headers: { range: `bytes=${bytes.length - 10}-` } });
  assert.equal(open.status, 206);
  assert.ok(Buffer.from(await open.arrayBuffer()).equals(bytes.subarray(bytes.length - 10)));

  const whole = await fetch(url);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get('etag'), `"${md5(bytes)}"`);
  assert.ok(Buffer.from(await whole.arrayBuffer()).equals(bytes));

  const head = await fetch(url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(bytes.length));
  assert.equal(head.headers.get('etag'), `"${md5(bytes)}"`);

  assert.equal(s.dataRequests, 4);
  assert.equal(s.dataBytes, 1000 + 10 + bytes.length);
  assert.ok(s.log.includes(`GET ${url}`), 'the log has the full URL');
});

test('a range beyond the end is 416 and a stale If-Match is 412', async () => {
  const url = (await spec('obj-1')).parts[0].url;
  const r = await fetch(url, { headers: { range: `bytes=${bytes.length}-${bytes.length + 10}` } });
  assert.equal(r.status, 416);
  assert.equal(r.headers.get('content-range'), `bytes */${bytes.length}`);
  assert.match(await r.text(), /<Code>InvalidRange<\/Code>/);
  const m = await fetch(url, { headers: { range: 'bytes=0-9', 'if-match': '"0123"' } });
  assert.equal(m.status, 412);
  await m.arrayBuffer();
  const ok = await fetch(url, { headers: { range: 'bytes=0-9', 'if-match': `"${md5(bytes)}"` } });
  assert.equal(ok.status, 206);
  await ok.arrayBuffer();
});

test('a changed signature, a changed expiry or no signature is 403 SignatureDoesNotMatch / AccessDenied', async () => {
  const url = (await spec('obj-1')).parts[0].url;
  const forged = await fetch(flipParam(url, 'X-Amz-Signature'), { headers: { range: 'bytes=0-9' } });
  assert.equal(forged.status, 403);
  assert.match(await forged.text(), /<Error><Code>SignatureDoesNotMatch<\/Code>/);

  // Extending one's own URL is a forgery too: the expiry is signed.
  const longer = new URL(url);
  longer.searchParams.set('X-Amz-Expires', '604800');
  const l = await fetch(longer, { headers: { range: 'bytes=0-9' } });
  assert.equal(l.status, 403);
  await l.arrayBuffer();

  // The signature is bound to the path: it does not open another object.
  const other = new URL(url);
  other.pathname = other.pathname.replace('obj-1', 'obj-2');
  const o = await fetch(other);
  assert.equal(o.status, 403);
  await o.arrayBuffer();

  const bare = await fetch(url.replace(/\?.*$/, ''));
  assert.equal(bare.status, 403);
  assert.match(await bare.text(), /<Code>AccessDenied<\/Code>/);

  const head = await fetch(flipParam(url, 'X-Amz-Signature'), { method: 'HEAD' });
  assert.equal(head.status, 403);
  assert.equal(s.rejectedSignatures, 5);
  assert.equal(s.dataBytes, 0);
});

test('a URL works until date + expires and is refused after, as "Request has expired"', async () => {
  const t0 = Date.now();
  s.now = () => t0;
  s.urlLifetimeS = 5;
  const url = (await spec('obj-1')).parts[0].url;
  s.now = () => t0 + 4_000;
  const still = await fetch(url, { headers: { range: 'bytes=0-0' } });
  assert.equal(still.status, 206);
  await still.arrayBuffer();
  s.now = () => t0 + 6_000;
  const late = await fetch(url, { headers: { range: 'bytes=0-0' } });
  assert.equal(late.status, 403);
  const body = await late.text();
  assert.match(body, /<Code>AccessDenied<\/Code>/);
  assert.match(body, /Request has expired/);
  // A new URL issued at the later time works.
  const fresh = (await spec('obj-1')).parts[0].url;
  const r = await fetch(fresh, { headers: { range: 'bytes=0-0' } });
  assert.equal(r.status, 206);
  await r.arrayBuffer();
});

test('rotateKey refuses every URL issued before it, not the ones after', async () => {
  const old = (await spec('obj-1')).parts[0].url;
  s.rotateKey();
  const r = await fetch(old);
  assert.equal(r.status, 403);
  await r.arrayBuffer();
  const now = await fetch((await spec('obj-1')).parts[0].url, { headers: { range: 'bytes=5-6' } });
  assert.equal(now.status, 206);
  assert.ok(Buffer.from(await now.arrayBuffer()).equals(bytes.subarray(5, 7)));
});

test('Azure SAS-style URLs: served with Range, refused when changed or expired; /profile says az', async () => {
  const t0 = Date.now();
  s.now = () => t0;
  s.urlStyle = 'azure';
  s.urlLifetimeS = 60;
  const url = (await spec('obj-1')).parts[0].url;
  const q = new URL(url).searchParams;
  assert.equal(q.get('sv'), '2021-08-06');
  assert.equal(q.get('sr'), 'b');
  assert.equal(q.get('sp'), 'r');
  assert.equal(Date.parse(q.get('se') ?? ''), Math.floor(t0 / 1000) * 1000 + 60_000);
  assert.match(q.get('sig') ?? '', /^[A-Za-z0-9+/]+=*$/);

  const r = await fetch(url, { headers: { range: 'bytes=10-19' } });
  assert.equal(r.status, 206);
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(bytes.subarray(10, 20)));

  const forged = await fetch(flipParam(url, 'sig'));
  assert.equal(forged.status, 403);
  assert.match(await forged.text(), /<Code>AuthenticationFailed<\/Code>/);
  const later = new URL(url);
  later.searchParams.set('se', new Date(t0 + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z'));
  const l = await fetch(later);
  assert.equal(l.status, 403);
  await l.arrayBuffer();

  s.now = () => t0 + 61_000;
  const expired = await fetch(url);
  assert.equal(expired.status, 403);
  assert.match(await expired.text(), /AuthenticationFailed[\s\S]*expiry/);
  assert.equal(s.rejectedSignatures, 3);

  assert.equal(await (await fetch(`${s.origin}/profile`)).text(), 'az');
  s.urlStyle = 's3';
  assert.equal(await (await fetch(`${s.origin}/profile`)).text(), 's3');
});

test('without external=true the parts cover [offset, offset+length) in partSize pieces, each with its MD5', async () => {
  s.partSize = 30_000;
  const sp = await spec('obj-1', 'offset=5000&length=70000');
  assert.deepEqual(
    sp.parts.map((p) => [p.partNumber, p.offset, p.partSize]),
    [
      [1, 5000, 30_000],
      [2, 35_000, 30_000],
      [3, 65_000, 10_000],
    ],
  );
  for (const p of sp.parts) {
    assert.equal(p.md5, md5(bytes.subarray(p.offset, p.offset + p.partSize)));
    const r = await fetch(p.url, { headers: { range: `bytes=${p.offset}-${p.offset + p.partSize - 1}` } });
    assert.equal(r.status, 206);
    assert.equal(md5(Buffer.from(await r.arrayBuffer())), p.md5);
  }
  const all = await spec('obj-1', 'offset=0&length=-1');
  assert.equal(all.parts.reduce((n, p) => n + p.partSize, 0), bytes.length);
  const external = await spec('obj-1', 'offset=5000&length=10&external=true');
  assert.deepEqual(external.parts.map((p) => [p.offset, p.partSize]), [[0, bytes.length]]);

  const bad = await fetch(`${s.origin}/download/obj-1?offset=0&length=${bytes.length + 1}`, { headers: auth() });
  assert.equal(bad.status, 400);
  await bad.arrayBuffer();
  const missing = await fetch(`${s.origin}/download/obj-1`, { headers: auth() });
  assert.equal(missing.status, 400);
  await missing.arrayBuffer();
});

test('ping answers a presigned URL of the sentinel object; the token is checked', async () => {
  const r = await fetch(`${s.origin}/download/ping`, { headers: auth() });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  const url = await r.text();
  assert.ok(url.startsWith(`${s.origin}/objects/`), url);
  const obj = await fetch(url);
  assert.equal(obj.status, 200);
  assert.ok((await obj.arrayBuffer()).byteLength > 0);
  const denied = await fetch(`${s.origin}/download/ping`, { headers: auth('nope') });
  assert.equal(denied.status, 401);
  await denied.arrayBuffer();
  assert.equal(s.pingRequests, 2);
  assert.equal(s.specRequests, 0);
});

test('401 for a wrong or missing token, 403 for a denied object, 404 for an unknown one (JSON)', async () => {
  const wrong = await fetch(`${s.origin}/download/obj-1?offset=0&length=-1`, { headers: auth('nope') });
  assert.equal(wrong.status, 401);
  assert.match(wrong.headers.get('content-type') ?? '', /json/);
  assert.equal(((await wrong.json()) as { status: number }).status, 401);
  const none = await fetch(`${s.origin}/entities/obj-1`);
  assert.equal(none.status, 401);
  await none.arrayBuffer();
  s.denied.add('obj-1');
  const forbidden = await fetch(`${s.origin}/download/obj-1?offset=0&length=-1`, { headers: auth() });
  assert.equal(forbidden.status, 403);
  await forbidden.arrayBuffer();
  const unknown = await fetch(`${s.origin}/download/no-such?offset=0&length=-1`, { headers: auth() });
  assert.equal(unknown.status, 404);
  await unknown.arrayBuffer();
  assert.equal(s.specRequests, 3);
  assert.equal(s.issuedUrls.length, 0, 'no URL handed out for a refused request');
});

test('htmlErrors: API errors are a ~5 KB HTML page; the object store keeps its XML', async () => {
  s.htmlErrors = true;
  for (const [url, headers, status] of [
    [`${s.origin}/download/obj-1?offset=0&length=-1`, auth('nope'), 401],
    [`${s.origin}/download/no-such?offset=0&length=-1`, auth(), 404],
    [`${s.origin}/entities/no-such`, auth(), 404],
  ] as const) {
    const r = await fetch(url, { headers });
    assert.equal(r.status, status);
    assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
    const body = await r.text();
    assert.ok(body.startsWith('<!DOCTYPE html>'));
    assert.match(body, new RegExp(`<title>${status} `));
    assert.ok(body.length > 4000 && body.length < 8000, `page of ${body.length} chars`);
  }
  const store = await fetch(`${s.origin}/objects/data/obj-1`);
  assert.equal(store.status, 403);
  assert.match(store.headers.get('content-type') ?? '', /xml/);
  await store.arrayBuffer();
});

test('failNext(n, status) answers the next n API requests with status, then serves again', async () => {
  s.failNext(2, 503);
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`${s.origin}/download/obj-1?offset=0&length=-1`, { headers: auth() });
    assert.equal(r.status, 503);
    await r.arrayBuffer();
  }
  await spec('obj-1');
  assert.equal(s.specRequests, 3);
});

test('metadata: one entity, and the files of an analysis page by page', async () => {
  const e = await fetch(`${s.origin}/entities/obj-1`, { headers: auth() });
  assert.deepEqual(await e.json(), { id: 'obj-1', fileName: 'a.bam', gnosId: 'AN1', projectCode: 'TEST-XX', access: 'controlled' });
  const p0 = (await (await fetch(`${s.origin}/entities?gnosId=AN1&size=1&page=0`, { headers: auth() })).json()) as { content: { id: string }[]; last: boolean };
  const p1 = (await (await fetch(`${s.origin}/entities?gnosId=AN1&size=1&page=1`, { headers: auth() })).json()) as { content: { id: string }[]; last: boolean };
  assert.deepEqual([p0.content.map((x) => x.id), p0.last, p1.content.map((x) => x.id), p1.last], [['obj-1'], false, ['obj-2'], true]);
});
