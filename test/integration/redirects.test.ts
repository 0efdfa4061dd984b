/**
 * Redirects and wrong content through HttpTransport, on this thread and in the fetch worker, against
 * two fixture servers on 127.0.0.1 (two origins): credentials never reach the second origin, the
 * target is remembered where the requests are made (later reads go there directly), a refused
 * presigned target sends the read back to the original URL, and data requests ask for identity.
 * Through the shared cache tier (a real nginx, docker/cache-tier/), a URL that redirects is asked
 * at its origin and its target read through the tier.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_TRANSPORT, type TransportConfig } from '../../src/config.js';
import { SlicefsError } from '../../src/errors.js';
import { Stats } from '../../src/stats.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import type { Transport } from '../../src/transport/transport.js';
import { resetCacheProxyWarning } from '../../src/transport/cache-proxy.js';
import { WorkerTransport } from '../../src/transport/worker-transport.js';
import { CacheTier } from '../helpers/cache-tier.js';
import { FixtureServer, type Fault } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';

let home: FixtureServer;
let other: FixtureServer;
const DATA = seededBytes(15, 2 * 1024 * 1024 + 333);
/** What a request for object bytes may carry that must stay with its origin. */
const CREDENTIALS = { authorization: 'Bearer SECRET-TOKEN', cookie: 'session=SECRET-COOKIE', 'x-auth-token': 'SECRET-HEADER' };

before(async () => {
  home = await FixtureServer.start();
  other = await FixtureServer.start();
});
after(async () => {
  await home?.close();
  await other?.close();
});

type Kind = 'thread' | 'worker';

function transport(kind: Kind, log?: string[]): Transport & { getJson?: HttpTransport['getJson'] } {
  const cfg: TransportConfig = {
    ...DEFAULT_TRANSPORT,
    retry: { ...DEFAULT_TRANSPORT.retry, baseDelayMs: 20, maxDelayMs: 200, budgetMs: 3000 },
    log: log ? (l) => log.push(l) : undefined,
  };
  return kind === 'worker' ? new WorkerTransport(cfg, new Stats()) : new HttpTransport(cfg, new Stats());
}

/** Reads [start, end) in the given pieces, each one fetchRange. */
async function readPieces(t: Transport, url: string, pieces: [number, number][], headers?: Record<string, string>): Promise<Buffer> {
  const version = await t.probe(url, headers);
  const parts: Buffer[] = [];
  for (const [a, b] of pieces) await t.fetchRange(url, a, b, { version, headers, onData: (c) => void parts.push(c) });
  return Buffer.concat(parts);
}

const PIECES: [number, number][] = [
  [0, 700_000],
  [700_000, 1_500_000],
  [1_500_000, DATA.length],
];

let n = 0;
function serve(fault: Fault, onOther?: Fault): string {
  const path = `/r${n++}/x.bam`;
  home.addFile(path, DATA, { fault });
  other.addFile(path, DATA, { fault: onOther });
  return path;
}

for (const kind of ['thread', 'worker'] as const) {
  test(`${kind}: a chain that leaves the origin: right bytes, no credential reaches the other origin, later reads go to the target`, async () => {
    const path = serve({ kind: 'redirect', hops: 3, location: 'mixed', to: other.origin });
    const t = transport(kind);
    try {
      home.resetLog();
      other.resetLog();
      const got = await readPieces(t, home.url(path), PIECES, CREDENTIALS);
      assert.ok(got.equals(DATA), 'right bytes');
      const atHome = home.requests.filter((r) => r.path === path);
      const atOther = other.requests.filter((r) => r.path === path);
      // The hops on the first origin carry the credentials (they are its own); the other origin never sees one.
      assert.ok(atHome.length >= 3 && atHome.every((r) => r.headers.authorization === CREDENTIALS.authorization));
      assert.ok(atOther.length >= 1 + PIECES.length, `${atOther.length} requests at the target`);
      for (const r of atOther) {
        for (const name of ['authorization', 'cookie', 'x-auth-token']) assert.equal(r.headers[name], undefined, `${name} reached ${r.method} ${r.path}`);
      }
      // One chain (the probe's); every ranged GET went to the remembered target directly.
      assert.equal(atHome.length, 3);
      assert.deepEqual(atOther.filter((r) => r.method === 'GET').map((r) => r.range), PIECES.map(([a, b]) => `bytes=${a}-${b - 1}`));
      // Data requests ask for identity, at every hop.
      assert.ok([...atHome, ...atOther].every((r) => r.headers['accept-encoding'] === 'identity'));
    } finally {
      await t.close();
    }
  });

  test(`${kind}: a presigned target that expires (403) sends the read back to the original URL, which issues a new one`, async () => {
    // Each signature serves 2 requests: the probe and one read, then the store refuses it.
    const path = serve({ kind: 'presigned-redirect', uses: 2, to: other.origin }, { kind: 'presigned-redirect', uses: 2 });
    const log: string[] = [];
    const t = transport(kind, log);
    try {
      home.resetLog();
      other.resetLog();
      const got = await readPieces(t, home.url(path), PIECES);
      assert.ok(got.equals(DATA), 'right bytes');
      const issued = home.requests.filter((r) => r.path === path && r.status === 302).length;
      const refused = other.requests.filter((r) => r.path === `/__store${path}` && r.status === 403).length;
      assert.equal(issued, 2, 'a second URL was asked for after the first was refused');
      assert.equal(refused, 1);
      // --verbose shows the chain, never a signature.
      assert.ok(log.some((l) => l.includes(`redirect 302: ${home.url(path)} → ${other.origin}/__store${path}?…`)), log.join('\n'));
      assert.ok(!log.some((l) => /X-Amz-Signature|X-Amz-Date/.test(l)), log.join('\n'));
    } finally {
      await t.close();
    }
  });

  test(`${kind}: an HTML page, a JSON error and gzip bytes are WRONG_CONTENT naming what came back; a .json file is data`, async () => {
    const t = transport(kind);
    const html = serve({ kind: 'html-page', title: 'Sign in · Example Portal' });
    const json = serve({ kind: 'json-error', message: 'Access token expired' });
    const gzip = serve({ kind: 'gzip-range' });
    // Data with odd types: a JSON file asked for by its name, a BAM a server labels text/html.
    const meta = Buffer.from(JSON.stringify({ message: 'this is the file, not an error' }));
    home.addFile(`/data${n}/meta.json`, meta, { contentType: 'application/json' });
    home.addFile(`/data${n}/x.bam`, DATA, { contentType: 'text/html' });
    try {
      const wrong = async (path: string, re: RegExp) => {
        await assert.rejects(readPieces(t, home.url(path), PIECES), (e) => e instanceof SlicefsError && e.code === 'WRONG_CONTENT' && re.test(e.message));
      };
      await wrong(html, /an HTML page \("Sign in · Example Portal"\)/);
      await wrong(json, /a JSON document \("Access token expired"\)/);
      await wrong(gzip, /Content-Encoding: gzip/);
      assert.ok((await readPieces(t, home.url(`/data${n}/meta.json`), [[0, meta.length]])).equals(meta));
      assert.ok((await readPieces(t, home.url(`/data${n}/x.bam`), PIECES)).equals(DATA));
    } finally {
      await t.close();
    }
  });
}

test('the API follows redirects too, and its token stays with the service', async () => {
  const spec = Buffer.from(JSON.stringify({ objectId: 'o1', objectSize: 3, parts: [{ url: 'http://s/x', offset: 0, partSize: 3 }] }));
  home.addFile('/download/o1', spec, { fault: { kind: 'redirect', hops: 2, to: other.origin } });
  other.addFile('/download/o1', spec);
  const t = transport('thread') as HttpTransport;
  try {
    other.resetLog();
    assert.deepEqual(await t.getJson(home.url('/download/o1'), { authorization: 'Bearer SECRET-TOKEN' }), JSON.parse(spec.toString()));
    const got = other.requests.filter((r) => r.path === '/download/o1');
    assert.equal(got.length, 1);
    assert.equal(got[0].headers.authorization, undefined);
  } finally {
    await t.close();
  }
});

test('through the cache tier: the URL that redirects is asked at its origin (the tier declines it), its target read through the tier', async () => {
  const tier = await CacheTier.start();
  const path = serve({ kind: 'redirect', hops: 2, to: other.origin });
  const warnings: string[] = [];
  resetCacheProxyWarning();
  const cfg: TransportConfig = { ...DEFAULT_TRANSPORT, retry: { ...DEFAULT_TRANSPORT.retry, budgetMs: 5000 }, cacheProxy: tier.url };
  const t = new HttpTransport(cfg, new Stats(), (w) => warnings.push(w));
  try {
    other.resetLog();
    const got = await readPieces(t, home.url(path), PIECES);
    assert.ok(got.equals(DATA), 'right bytes');
    // nginx's access check accepts only 2xx, 401 and 403: a redirect is its 500, and slicefs goes to the origin.
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /failed a request \(HTTP 500\)/);
    // Every data byte of the target came through the tier: its 1 MiB slices, never slicefs's own ranges.
    const gets = other.requests.filter((r) => r.path === path && r.method === 'GET');
    const slice = (range = '') => {
      const [a, b] = range.replace('bytes=', '').split('-').map(Number);
      return a % (1024 * 1024) === 0 && b - a + 1 === 1024 * 1024;
    };
    assert.ok(gets.length > 0 && gets.every((r) => slice(r.range)), gets.map((r) => r.range).join(' '));
    assert.ok((await tier.accessLog()).some((l) => l.method === 'GET' && l.url === `${other.origin}${path}` && l.status === 206));
  } finally {
    await t.close();
    await tier.close();
    resetCacheProxyWarning();
  }
});
