/**
 * The shared cache tier (issue 9): a real nginx from docker/cache-tier/nginx.conf in front of a
 * Score-compatible origin whose presigned URLs are HMAC-signed with an expiry and checked
 * (test/helpers/score-server.ts), and slicefs processes ("nodes") reading through it with
 * `--cache-proxy`. The origin counts the data bytes it sends; nginx's access log and cache files
 * show what the tier did. nginx must be installed: without it these tests fail, saying so.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { DEFAULT_TRANSPORT, type TransportConfig } from '../../src/config.js';
import { SlicefsError } from '../../src/errors.js';
import { Stats } from '../../src/stats.js';
import { CacheProxyRouter, parseCacheProxy, resetCacheProxyWarning, viaCacheProxy } from '../../src/transport/cache-proxy.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import type { Transport } from '../../src/transport/transport.js';
import type { ObjectVersion } from '../../src/transport/version.js';
import { WorkerTransport } from '../../src/transport/worker-transport.js';
import { CacheTier } from '../helpers/cache-tier.js';
import { cleanup, runSlicefs, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';
import { ScoreServer } from '../helpers/score-server.js';

const TOKEN = '7c1e9d2a-4b3f-4a6e-8d5c-2f1a0b9e8d7c';
const REGIONS = ['chr1:100000-300000', 'chr2:128001-144000', 'chrM'];
const MiB = 1024 * 1024;

let score: ScoreServer;
/** The same object store over HTTPS (a TLS front of `score`, with a certificate of its own CA). */
let tls: HttpsServer;
let tlsOrigin: string;
let tier: CacheTier;
let sample: SampleData;
let work: string;
let want: Buffer;

before(async () => {
  sample = await ensureSampleData();
  work = await tempDir('slicefs-tier-test-');
  score = await ScoreServer.start(TOKEN);
  score.addObject('bam-1', await readFile(sample.bam), { fileName: 'sample.bam', gnosId: 'A1' });
  score.addObject('bai-1', await readFile(sample.bai), { fileName: 'sample.bam.bai', gnosId: 'A1' });
  const cert = join(work, 'origin-cert.pem');
  const key = join(work, 'origin-key.pem');
  // A self-signed certificate for 127.0.0.1 that only this tier trusts (TIER_CA_FILE).
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1'], { stdio: 'ignore' });
  tls = await startTlsFront(await readFile(cert), await readFile(key), score.origin);
  tlsOrigin = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
  // Only the fixture store, over HTTP and over HTTPS: any other origin is refused (421).
  const origins = `^(${score.origin.replace(/\./g, '\\.')}|${tlsOrigin.replace(/\./g, '\\.')})$`;
  tier = await CacheTier.start({ origins, authValid: '2s', caFile: cert });
  want = (await samtools(['view', '-M', sample.bam, ...REGIONS])).stdout;
});
after(async () => {
  await tier?.close();
  await new Promise<void>((res) => (tls ? tls.close(() => res()) : res()));
  await score?.close();
  if (work) await cleanup(work);
});

/** An HTTPS server that forwards every request to `target` as it is (method, path, query, headers). */
async function startTlsFront(cert: Buffer, key: Buffer, target: string): Promise<HttpsServer> {
  const srv = createHttpsServer({ cert, key }, (req, res) => {
    const up = httpRequest(`${target}${req.url ?? '/'}`, { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  srv.keepAliveTimeout = 30_000;
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  return srv;
}

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs slicefs as its own process (a "node"), with its own cache directory and no tier in the environment. */
const slicefs = (args: string[], env: Record<string, string | undefined> = {}): Promise<Run> => runSlicefs(args, env);

let nodes = 0;
/** `slicefs view` of REGIONS from presigned URLs, as a fresh node (its own XDG cache directory). */
function viewUrls(urls: { bam: string; bai: string }, extra: string[] = [], env: Record<string, string | undefined> = {}): Promise<Run> {
  const home = join(work, `node-${++nodes}`);
  return slicefs(['view', '--url', urls.bam, '--index-url', urls.bai, '--no-index-cache', '--no-header', ...REGIONS.flatMap((r) => ['-q', r]), ...extra], { XDG_CACHE_HOME: home, ...env });
}

/** A presigned URL of `objectId` that no one used before (a new lifetime gives a new signature). */
let lifetime = 3600;
function sign(objectId: string): string {
  score.urlLifetimeS = ++lifetime;
  return score.presign(objectId);
}

/** Fresh presigned URLs of the sample BAM and its index. */
function presigned(): { bam: string; bai: string } {
  return { bam: sign('bam-1'), bai: sign('bai-1') };
}

function signature(url: string): string {
  return new URL(url).searchParams.get('X-Amz-Signature') ?? '';
}

/** The same URL with one character of its signature changed. */
function forge(url: string): string {
  const sig = signature(url);
  return url.replace(sig, (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
}

/** A GET (or HEAD) straight to the tier, as slicefs would send it. */
async function viaTier(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const res = await request(viaCacheProxy(url, tier.url)!, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) h[k] = Array.isArray(v) ? v.join(', ') : (v ?? '');
  return { status: res.statusCode, headers: h, body };
}

/** No query string and no signature in `text` (a log, stderr). */
function assertNoSecrets(text: string, what: string): void {
  assert.doesNotMatch(text, /X-Amz-(Signature|Credential|Date)|[?&](sig|se|sv)=/, `${what} shows a query string`);
  for (const sig of score.issuedSignatures()) if (sig) assert.ok(!text.includes(sig), `${what} shows a signature`);
  assert.ok(!text.includes(TOKEN), `${what} shows the token`);
}

function transportConfig(over: Partial<TransportConfig> = {}): TransportConfig {
  return { ...DEFAULT_TRANSPORT, retry: { ...DEFAULT_TRANSPORT.retry, baseDelayMs: 20, maxDelayMs: 200, budgetMs: 5000 }, cacheProxy: tier.url, ...over };
}

async function readAll(t: Transport, url: string, version: ObjectVersion, start = 0, end = version.size): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await t.fetchRange(url, start, end, { version, onData: (c) => void chunks.push(Buffer.from(c)) });
  return Buffer.concat(chunks);
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

test('the tier URL form: origin in the path, the query kept as it is; no tier for credentials', () => {
  const sig = 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab%2Fcd';
  assert.equal(viaCacheProxy(`https://s3.example.org/bucket/a%20b.bam?${sig}`, 'http://tier:8080/'), `http://tier:8080/fetch/https/s3.example.org/bucket/a%20b.bam?${sig}`);
  assert.equal(viaCacheProxy('http://127.0.0.1:9000/x', 'http://tier:8080'), 'http://tier:8080/fetch/http/127.0.0.1:9000/x');
  // The scheme's default port is not written (nginx connects to it anyway).
  assert.equal(viaCacheProxy('https://h.example:443/x', 'http://t'), 'http://t/fetch/https/h.example/x');
  assert.equal(viaCacheProxy('https://user:pw@h.example/x', 'http://t'), undefined);
  assert.equal(viaCacheProxy('ftp://h.example/x', 'http://t'), undefined);
  assert.equal(parseCacheProxy('http://tier:8080/'), 'http://tier:8080');
  assert.equal(parseCacheProxy('https://tier.example/cache/'), 'https://tier.example/cache');
  for (const bad of ['tier:8080', 'ftp://tier', 'http://tier/?a=1', 'http://u:p@tier']) assert.equal(parseCacheProxy(bad), undefined, bad);
  const router = new CacheProxyRouter('http://t', () => {});
  assert.equal(router.route('https://h.example/x', { authorization: 'Bearer x' }), undefined);
  assert.equal(router.route('https://h.example/x', { range: 'bytes=0-1' }), 'http://t/fetch/https/h.example/x');
});

test('two nodes read the same regions with different presigned URLs: the second pulls no data byte from the origin', async () => {
  const a = presigned();
  const b = presigned();
  assert.notEqual(signature(a.bam), signature(b.bam));
  score.resetCounters();
  const ra = await viewUrls(a, ['--cache-proxy', tier.url]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.ok(ra.stdout.equals(want), 'node 1: output differs from samtools');
  assert.ok(score.dataBytes > 0);
  const logged = (await tier.accessLog()).length;
  assert.ok(logged > 0, 'node 1 did not go through the tier');

  score.resetCounters();
  const rb = await viewUrls(b, ['--cache-proxy', tier.url, '--verbose']);
  assert.equal(rb.code, 0, rb.stderr);
  assert.ok(rb.stdout.equals(want), 'node 2: output differs from samtools');
  assert.equal(score.dataBytes, 0, `node 2 pulled ${score.dataBytes} data bytes from the origin`);
  // The origin saw only the tier's access checks of node 2's own URLs: HEADs, no bytes.
  assert.ok(score.log.length > 0);
  for (const line of score.log) assert.match(line, /^HEAD http:\/\/127\.0\.0\.1:\d+\/objects\/data\/(bam|bai)-1\?/);
  assert.ok(score.log.some((l) => l.includes(signature(b.bam))), "the tier did not check node 2's own URL");
  const lines = (await tier.accessLog()).slice(logged);
  assert.ok(lines.length > 0);
  for (const l of lines) assert.equal(l.cache, 'HIT', l.raw);
  // --verbose names the requests without their query strings.
  assert.match(rb.stderr, /GET \/fetch\/http\/127\.0\.0\.1:\d+\/objects\/data\/bam-1 bytes=/);
  assertNoSecrets(rb.stderr + ra.stderr, 'slicefs');
});

test('Score objects: the storage API is called directly, the object bytes come through the tier', async () => {
  score.resetCounters();
  const logged = (await tier.accessLog()).length;
  const r = await slicefs(['view', '--object-id', 'bam-1', '--no-index-cache', '--no-header', ...REGIONS.flatMap((q) => ['-q', q]), '--cache-proxy', tier.url], {
    ACCESSTOKEN: TOKEN,
    STORAGE_URL: score.origin,
    XDG_CACHE_HOME: join(work, 'score-node'),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.equals(want));
  assert.ok(score.specRequests > 0, 'no /download/{id} request reached the storage service');
  // All the bytes were in the tier already, from the nodes above (the URL is new: the origin
  // checked its signature).
  assert.equal(score.dataBytes, 0);
  const lines = (await tier.accessLog()).slice(logged);
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l.url, /\/objects\/data\/(bam|bai)-1$/, 'an API call went through the tier');
  assertNoSecrets(r.stderr, 'slicefs');
});

test('forged, expired and unsigned URLs get 403 from the tier although the bytes are cached', async () => {
  const bam = await readFile(sample.bam);
  const good = presigned().bam;
  const ok = await viaTier(good, { range: 'bytes=0-99' });
  assert.equal(ok.status, 206);
  assert.equal(ok.headers['x-cache-status'], 'HIT');
  assert.ok(ok.body.equals(bam.subarray(0, 100)));

  score.resetCounters();
  const forged = await viaTier(forge(good), { range: 'bytes=0-99' });
  assert.equal(forged.status, 403);
  assert.ok(!forged.body.includes(bam.subarray(0, 16)));
  assert.ok(score.rejectedSignatures > 0, 'the origin was not asked');

  // Issued three hours ago for one hour: the signature is right, the URL has expired.
  score.now = () => Date.now() - 3 * 3600_000;
  score.urlLifetimeS = 3600;
  const expired = score.presign('bam-1');
  score.now = Date.now;
  for (const method of ['GET', 'HEAD'] as const) {
    assert.equal((await viaTier(expired, { range: 'bytes=0-99' }, method)).status, 403, method);
  }
  assert.equal((await viaTier(good.replace(/\?.*$/, ''), { range: 'bytes=0-99' })).status, 403);

  // slicefs through the tier: the refusal is the origin's (access denied), not a fallback.
  const r = await viewUrls({ bam: forge(good), bai: presigned().bai }, ['--cache-proxy', tier.url]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 403 \(access denied/);
  assert.doesNotMatch(r.stderr, /cache tier/);
  assert.equal(r.stdout.length, 0);
  assertNoSecrets(r.stderr, 'slicefs');
});

test('an access check is reused only briefly, per URL: a revoked URL is refused within seconds', async () => {
  const url = presigned().bam;
  assert.equal((await viaTier(url, { range: 'bytes=0-9' })).status, 206);
  // Every URL issued so far is now refused by the origin (as after a revocation).
  score.rotateKey();
  score.resetCounters();
  // The same URL within TIER_AUTH_VALID (2 s): the check is reused, the origin not asked.
  assert.equal((await viaTier(url, { range: 'bytes=0-9' })).status, 206);
  assert.equal(score.dataRequests, 0);
  // Another URL of the same object is checked on its own.
  assert.equal((await viaTier(forge(url), { range: 'bytes=0-9' })).status, 403);
  // nginx counts whole seconds: 2 s valid is over within 3.5 s.
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal((await viaTier(url, { range: 'bytes=0-9' })).status, 403);
});

test('an origin that refuses HEAD (S3 on a URL signed for GET) is checked with a one-byte GET', async () => {
  score.headRefused = true;
  try {
    const url = presigned().bam;
    score.resetCounters();
    const r = await viaTier(url, { range: 'bytes=100-199' });
    assert.equal(r.status, 206);
    assert.ok(r.body.equals((await readFile(sample.bam)).subarray(100, 200)));
    assert.deepEqual(score.log.map((l) => l.split(' ')[0]), ['HEAD', 'GET']);
    assert.equal(score.dataBytes, 1);
    assert.equal((await viaTier(forge(presigned().bam), { range: 'bytes=100-199' })).status, 403);
  } finally {
    score.headRefused = false;
  }
});

test('Content-Range, ETag and If-Match through the tier; a changed object is never mixed with cached slices', async () => {
  const v1 = seededBytes(21, 3 * MiB + 777);
  score.addObject('changing', v1);
  const warnings: string[] = [];
  const t = new HttpTransport(transportConfig(), new Stats(), (w) => warnings.push(w));
  try {
    const url = sign('changing');
    const version = await t.probe(url);
    assert.equal(version.size, v1.length);
    assert.equal(version.etag, `"${md5(v1)}"`);
    // HttpTransport's own checks (exact Content-Range, ETag against the pin) pass on the tier's answers.
    assert.ok((await readAll(t, url, version, 5, 1 * MiB + 5)).equals(v1.subarray(5, 1 * MiB + 5)));
    assert.equal((await viaTier(url, { range: 'bytes=0-9', 'if-match': '"0123"' })).status, 412);
    const right = await viaTier(url, { range: 'bytes=10-19', 'if-match': version.etag! });
    assert.equal(right.status, 206);
    assert.equal(right.headers['content-range'], `bytes 10-19/${v1.length}`);

    // A new version at the origin under the same key: slices the tier does not have are refused
    // (the origin answers 412 to the pinned ETag), never served from the new version.
    score.addObject('changing', seededBytes(22, v1.length));
    await assert.rejects(readAll(t, sign('changing'), version, 3 * MiB, 3 * MiB + 100), (e: unknown) => e instanceof SlicefsError && e.code === 'STALE');
    assert.deepEqual(warnings, []);
  } finally {
    await t.close();
  }
});

test('an HTTPS origin: the tier speaks TLS to it (certificate checked) and shares the slices across URLs', async () => {
  const data = seededBytes(51, 2 * MiB + 99);
  score.addObject('tls-obj', data);
  const overTls = (url: string) => url.replace(score.origin, tlsOrigin);
  const warnings: string[] = [];
  const t = new HttpTransport(transportConfig(), new Stats(), (w) => warnings.push(w));
  try {
    const url = overTls(sign('tls-obj'));
    assert.match(url, /^https:/);
    const v = await t.probe(url);
    assert.ok((await readAll(t, url, v)).equals(data));
    const lines = (await tier.accessLog()).filter((l) => l.url.startsWith(`${tlsOrigin}/objects/data/tls-obj`));
    assert.ok(lines.length > 0, 'the HTTPS origin was not reached through the tier');
    score.resetCounters();
    const other = overTls(sign('tls-obj'));
    assert.ok((await readAll(t, other, await t.probe(other))).equals(data));
    assert.equal(score.dataBytes, 0);
    assert.equal((await viaTier(forge(other), { range: 'bytes=0-9' })).status, 403);
    assert.deepEqual(warnings, []);
  } finally {
    await t.close();
  }
});

test('an origin the tier does not serve (421) is read directly, with one warning', async () => {
  const other = await FixtureServer.start();
  const data = seededBytes(61, 300_000);
  other.addFile('/elsewhere.bin', data);
  resetCacheProxyWarning();
  const warnings: string[] = [];
  const t = new HttpTransport(transportConfig(), new Stats(), (w) => warnings.push(w));
  try {
    const url = other.url('/elsewhere.bin');
    const v = await t.probe(url);
    assert.ok((await readAll(t, url, v)).equals(data));
    assert.ok((await readAll(t, url, v, 1000, 2000)).equals(data.subarray(1000, 2000)));
    assert.ok((await tier.accessLog()).some((l) => l.status === 421 && l.url === url));
    assert.equal(other.requests.filter((r) => r.method === 'GET').length, 2);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /cache tier http:\/\/127\.0\.0\.1:\d+ failed a request \(HTTP 421: not one of its origins\)/);
  } finally {
    await t.close();
    await other.close();
    resetCacheProxyWarning();
  }
});

test('an empty object (no first slice for the tier) is probed at the origin, without a warning', async () => {
  score.addObject('empty', Buffer.alloc(0));
  resetCacheProxyWarning();
  const warnings: string[] = [];
  const t = new HttpTransport(transportConfig(), new Stats(), (w) => warnings.push(w));
  try {
    assert.equal((await t.probe(sign('empty'))).size, 0);
    // Where HEAD is refused, the tier's access check is a one-byte GET, which an empty object
    // answers with 416: the signature was accepted.
    score.headRefused = true;
    assert.equal((await t.probe(sign('empty'))).size, 0);
    assert.deepEqual(warnings, []);
  } finally {
    score.headRefused = false;
    await t.close();
  }
});

test('the fetch worker (the mount) reads through the tier too', async () => {
  const data = seededBytes(31, 2 * MiB + 5);
  score.addObject('worker-obj', data);
  const logged = (await tier.accessLog()).length;
  const first = new WorkerTransport(transportConfig(), new Stats());
  try {
    const url = sign('worker-obj');
    const v = await first.probe(url);
    assert.ok((await readAll(first, url, v)).equals(data));
  } finally {
    await first.close();
  }
  assert.ok((await tier.accessLog()).slice(logged).some((l) => l.url.endsWith('/objects/data/worker-obj')));
  score.resetCounters();
  const second = new WorkerTransport(transportConfig(), new Stats());
  try {
    const url = sign('worker-obj');
    const v = await second.probe(url);
    assert.ok((await readAll(second, url, v)).equals(data));
  } finally {
    await second.close();
  }
  assert.equal(score.dataBytes, 0);
});

test('without --cache-proxy nothing changes; SLICEFS_CACHE_PROXY sets it, --no-cache-proxy unsets it', async () => {
  const logged = (await tier.accessLog()).length;
  score.resetCounters();
  const off = await viewUrls(presigned());
  assert.equal(off.code, 0, off.stderr);
  assert.ok(off.stdout.equals(want));
  assert.equal((await tier.accessLog()).length, logged, 'a request went through the tier');
  assert.ok(score.dataBytes > 0);
  assert.ok(score.log.some((l) => l.startsWith('GET ')));

  const negated = await viewUrls(presigned(), ['--no-cache-proxy'], { SLICEFS_CACHE_PROXY: tier.url });
  assert.equal(negated.code, 0, negated.stderr);
  assert.equal((await tier.accessLog()).length, logged);

  score.resetCounters();
  const env = await viewUrls(presigned(), [], { SLICEFS_CACHE_PROXY: tier.url });
  assert.equal(env.code, 0, env.stderr);
  assert.ok(env.stdout.equals(want));
  assert.ok((await tier.accessLog()).length > logged);
  // (The tests above put these regions in the tier.)
  assert.equal(score.dataBytes, 0);

  const bad = await viewUrls(presigned(), ['--cache-proxy', 'tier.example:8080']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--cache-proxy: not an http\(s\) URL/);
});

test('cacheProxy in the config file: used below --cache-proxy and SLICEFS_CACHE_PROXY; --no-cache-proxy turns it off', async () => {
  const file = join(work, 'config-tier.json');
  await writeFile(file, JSON.stringify({ cacheProxy: tier.url }));
  let logged = (await tier.accessLog()).length;
  const fromFile = await viewUrls(presigned(), ['--config', file]);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.ok(fromFile.stdout.equals(want));
  assert.ok((await tier.accessLog()).length > logged, 'no request went through the tier');

  logged = (await tier.accessLog()).length;
  const negated = await viewUrls(presigned(), ['--config', file, '--no-cache-proxy']);
  assert.equal(negated.code, 0, negated.stderr);
  assert.ok(negated.stdout.equals(want));
  assert.equal((await tier.accessLog()).length, logged, 'a request went through the tier');

  // The environment is above the file: its tier (nothing listens there) is tried, the file's is not.
  const env = await viewUrls(presigned(), ['--config', file], { SLICEFS_CACHE_PROXY: 'http://127.0.0.1:1' });
  assert.equal(env.code, 0, env.stderr);
  assert.ok(env.stdout.equals(want));
  assert.match(env.stderr, /the cache tier http:\/\/127\.0\.0\.1:1 failed a request/);
  assert.equal((await tier.accessLog()).length, logged, 'a request went through the tier');
});

test('nginx keeps no signature in its slice cache keys and no query string in its logs', async () => {
  const keys = await tier.cacheKeys();
  assert.ok(keys.length > 0);
  // Score's presigned URLs (S3 and Azure forms) carry nothing but their signature: an empty query.
  // (Then the slice, then the version: Score's store sends strong ETags.)
  for (const k of keys) assert.match(k, /^https?:\/\/127\.0\.0\.1:\d+\/objects\/data\/[\w-]+\?\|bytes=\d+-\d+\|etag="[0-9a-f]{32}";size=\d+$/);
  // The access checks are keyed by the signed URL (that is their point): they sit in their own,
  // short-lived cache (tmpfs in the deployment), never in the slice cache.
  const authKeys = await tier.cacheKeys(tier.authCacheDir);
  assert.ok(authKeys.length > 0);
  for (const k of authKeys) assert.match(k, /^auth\|https?:\/\/127\.0\.0\.1:\d+\/objects\/data\/[\w-]+\?X-Amz-/);
  const logs = await tier.rawLogs();
  assert.ok(logs.length > 0);
  assertNoSecrets(logs, "nginx's logs");
  assert.doesNotMatch(logs, /\?/);
});

test('the tier stopped in the middle of a download: the bytes are right, one warning', async () => {
  const data = seededBytes(41, 24 * MiB);
  score.addObject('big', data);
  const url = sign('big');
  const out = join(work, 'dl');
  score.resetCounters();
  const logged = (await tier.accessLog()).length;
  resetCacheProxyWarning();
  const run = slicefs(['download', '--url', url, '-d', out, '--cache-proxy', tier.url, '--part-size', '1M', '--parallel', '2', '--limit-rate', '12M', '--quiet'], {
    XDG_CACHE_HOME: join(work, 'dl-node'),
  });
  // Stop the tier once a few parts went through it.
  const until = Date.now() + 20_000;
  while ((await tier.accessLog()).slice(logged).filter((l) => l.method === 'GET' && l.url.endsWith('/big')).length < 3) {
    assert.ok(Date.now() < until, 'no part of the download went through the tier');
    await new Promise((r) => setTimeout(r, 20));
  }
  const before = score.dataBytes;
  await tier.stop();
  try {
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const names = await readdir(out);
    const name = names.find((n) => n === 'big');
    assert.ok(name, `no file 'big' in ${names.join(', ')}`);
    assert.ok((await readFile(join(out, name))).equals(data), 'downloaded bytes differ');
    assert.ok(score.dataBytes > before, 'the rest did not come from the origin');
    assert.equal(r.stderr.match(/cache tier/g)?.length, 1, r.stderr);
    assert.match(r.stderr, /warning: the cache tier http:\/\/127\.0\.0\.1:\d+ failed a request \((ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|UND_ERR_CLOSED)\); such requests go to the origin directly \(shown once\)\n/);
    assertNoSecrets(r.stderr, 'slicefs');

    // With the tier down from the start: correct output and one warning.
    const v = await viewUrls(presigned(), ['--cache-proxy', tier.url]);
    assert.equal(v.code, 0, v.stderr);
    assert.ok(v.stdout.equals(want));
    assert.equal(v.stderr.match(/cache tier/g)?.length, 1, v.stderr);
  } finally {
    await tier.restart();
  }
});
