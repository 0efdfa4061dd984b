/**
 * The shared cache tier's slice key (docker/cache-tier/nginx.conf, a real nginx) against the object
 * identity: objects a portal selects by the query are cached apart, even with the same size and
 * Last-Modified and no ETag; the same object under other signatures of every recognised scheme is
 * one cache entry (the second read is a HIT, the origin sends no data byte); a scheme's parameters
 * without its signature stay part of the key. nginx must be installed: without it these tests fail,
 * saying so.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { viaCacheProxy } from '../../src/transport/cache-proxy.js';
import { CacheTier } from '../helpers/cache-tier.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';

let server: FixtureServer;
let tier: CacheTier;
const lastModified = new Date('2024-05-01T10:00:00Z');

before(async () => {
  server = await FixtureServer.start();
  tier = await CacheTier.start({ origins: `^${server.origin.replace(/\./g, '\\.')}$` });
});
after(async () => {
  await tier?.close();
  await server?.close();
});

/** `bytes=from-to` of `url` through the tier: status, body and the tier's cache status. */
async function viaTier(url: string, from = 0, to = 4): Promise<{ status: number; body: string; cache: string }> {
  const r = await request(viaCacheProxy(url, tier.url)!, { headers: { range: `bytes=${from}-${to}` }, headersTimeout: 10_000, bodyTimeout: 10_000 });
  return { status: r.statusCode, body: Buffer.from(await r.body.arrayBuffer()).toString('latin1'), cache: String(r.headers['x-cache-status'] ?? '') };
}

const dataGets = () => server.requests.filter((r) => r.method === 'GET' && r.range !== 'bytes=0-0');

test('objects selected by the query (same size and Last-Modified, no ETag) are cached apart', async () => {
  server.addFile('/portal/dl?id=A', Buffer.from('AAAAAAAAAA'), { etag: null, lastModified });
  server.addFile('/portal/dl?id=B', Buffer.from('BBBBBBBBBB'), { etag: null, lastModified });
  assert.deepEqual(await viaTier(server.url('/portal/dl?id=A')), { status: 206, body: 'AAAAA', cache: 'MISS' });
  assert.deepEqual(await viaTier(server.url('/portal/dl?id=B')), { status: 206, body: 'BBBBB', cache: 'MISS' });
  assert.deepEqual(await viaTier(server.url('/portal/dl?id=A')), { status: 206, body: 'AAAAA', cache: 'HIT' });
  assert.deepEqual(await viaTier(server.url('/portal/dl?id=B')), { status: 206, body: 'BBBBB', cache: 'HIT' });
  // A signature beside the selecting parameter, before or after it: the same objects, cached.
  const sigA = server.url('/portal/dl?id=A&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=a1');
  const sigB = server.url('/portal/dl?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=b1&id=B');
  assert.deepEqual(await viaTier(sigA), { status: 206, body: 'AAAAA', cache: 'HIT' });
  assert.deepEqual(await viaTier(sigB), { status: 206, body: 'BBBBB', cache: 'HIT' });
  const keys = await tier.cacheKeys();
  for (const k of keys) assert.doesNotMatch(k, /Signature|X-Amz/i, k);
  // (The version last: without an ETag, the date and the size.)
  assert.ok(keys.some((k) => /\/portal\/dl\?id=A\|bytes=0-1048575\|date=Wed, 01 May 2024 10:00:00 GMT;size=10$/.test(k)), keys.join('\n'));
});

test('one object under other signatures of every recognised scheme: one cache entry, no data byte from the origin', async () => {
  const schemes: [string, (sig: string) => string][] = [
    ['s3v4', (s) => `versionId=3&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=2026010${s.length}T000000Z&X-Amz-Expires=60&X-Amz-Security-Token=t${s}&X-Amz-SignedHeaders=host&X-Amz-Signature=${s}&x-id=GetObject`],
    ['s3v2', (s) => `AWSAccessKeyId=AK&Expires=179543160${s.length}&Signature=${s}&x-amz-security-token=t`],
    ['gcs4', (s) => `X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa&X-Goog-Date=2026010${s.length}T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&generation=5&X-Goog-Signature=${s}`],
    ['gcs2', (s) => `GoogleAccessId=sa&Expires=179543160${s.length}&Signature=${s}`],
    ['cloudfront', (s) => `Expires=179543160${s.length}&Signature=${s}&Key-Pair-Id=K2`],
    ['sas', (s) => `sv=2021-08-06&sp=r&st=2026-01-01&se=2026-01-0${s.length}&spr=https&sr=b&sig=${s}`],
  ];
  for (const [name, query] of schemes) {
    const data = seededBytes(name.length * 7, 3000);
    server.addFile(`/obj/${name}`, data, { etag: null, lastModified });
    const first = await viaTier(server.url(`/obj/${name}?${query('sig1')}`), 10, 19);
    assert.deepEqual(first, { status: 206, body: data.subarray(10, 20).toString('latin1'), cache: 'MISS' }, name);
    server.resetLog();
    const second = await viaTier(server.url(`/obj/${name}?${query('other2')}`), 10, 19);
    assert.deepEqual(second, { status: 206, body: data.subarray(10, 20).toString('latin1'), cache: 'HIT' }, `${name}: another signature`);
    assert.deepEqual(dataGets(), [], `${name}: the origin was asked only for the access check`);
    assert.ok(server.requests.some((r) => r.query.includes('other2')), `${name}: the second URL itself was checked at the origin`);
  }
});

test("a scheme's parameters without its signature select: they stay in the key", async () => {
  // `st`/`se` of a portal (no `sv`, no `sig`), `Signature` without its access key id.
  server.addFile('/range/dl?st=0', Buffer.from('0000000000'), { etag: null, lastModified });
  server.addFile('/range/dl?st=5', Buffer.from('5555555555'), { etag: null, lastModified });
  assert.equal((await viaTier(server.url('/range/dl?st=0&se=9'))).body, '00000');
  assert.equal((await viaTier(server.url('/range/dl?st=5&se=9'))).body, '55555');
  server.addFile('/sig/dl?Signature=x', Buffer.from('xxxxxxxxxx'), { etag: null, lastModified });
  server.addFile('/sig/dl?Signature=y', Buffer.from('yyyyyyyyyy'), { etag: null, lastModified });
  assert.equal((await viaTier(server.url('/sig/dl?Signature=x&Expires=1'))).body, 'xxxxx');
  assert.equal((await viaTier(server.url('/sig/dl?Signature=y&Expires=1'))).body, 'yyyyy');
});
