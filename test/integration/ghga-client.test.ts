/**
 * The GHGA protocol layer (src/source/ghga/) against the GHGA fixture (test/helpers/ghga-server.ts):
 * well-known values, the work package and its work-order tokens (cached, renewed on a DCS 401),
 * staging of a batch (all requested up front, each polled at its Retry-After, handed over as each
 * is staged), the encrypted body read through short-lived presigned URLs that expire in the middle
 * of a read, the envelope + body decrypting to the plaintext whose SHA-256 the DCS states, and every
 * failure as one line without a secret.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { DEFAULT_TRANSPORT, type TransportConfig } from '../../src/config.js';
import { decryptHeader } from '../../src/crypt4gh/header.js';
import { generateKeyPair } from '../../src/crypt4gh/keys.js';
import { BLOCK_SIZE, decryptBlock } from '../../src/crypt4gh/segments.js';
import { SlicefsError } from '../../src/errors.js';
import { DrsClient } from '../../src/source/ghga/dcs.js';
import { GhgaObjectSource } from '../../src/source/ghga/ghga-source.js';
import { WorkPackageClient, wellKnownValues } from '../../src/source/ghga/services.js';
import { stageAll, type StagingEvent } from '../../src/source/ghga/staging.js';
import { Stats } from '../../src/stats.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import { GhgaServer } from '../helpers/ghga-server.js';
import { seededBytes } from '../helpers/random.js';

const user = generateKeyPair('test user');
const BIG = 'GHGAF00000000000001';
const SMALL = 'GHGAF00000000000002';
const EMPTY_EXT = 'GHGAF00000000000003';
const bigPlain = seededBytes(81, 700_000); // 11 segments, the last one short
const smallPlain = Buffer.from('@read1\nACGT\n+\nIIII\n');
const otherPlain = seededBytes(82, 70_000);

let ghga: GhgaServer;
let transport: HttpTransport;
/** Few, fast retries: for the failure tests that would otherwise wait out the default budget. */
let quick: HttpTransport;
/** Added to the fixture's clock: tests move the servers' time instead of sleeping. */
let skew = 0;

before(async () => {
  ghga = await GhgaServer.start({ userPublicKey: user.public });
  ghga.now = () => Date.now() + skew;
  ghga.addFile(BIG, '.fastq.gz', bigPlain);
  ghga.addFile(SMALL, '.bam', smallPlain);
  ghga.addFile(EMPTY_EXT, '', otherPlain);
  transport = new HttpTransport(DEFAULT_TRANSPORT, new Stats());
  const q: TransportConfig = { ...DEFAULT_TRANSPORT, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20, budgetMs: 3000 } };
  quick = new HttpTransport(q, new Stats());
});
after(async () => {
  await transport?.close();
  await quick?.close();
  await ghga?.close();
});
beforeEach(() => {
  skew = 0;
  ghga.expired = ghga.revoked = ghga.omitRetryAfter = false;
  ghga.wotPublicKeyClaim = undefined;
  ghga.urlLifetimeS = 60;
  ghga.wotLifetimeS = 30;
  ghga.envelopeForm = 'string';
});

function clients(opts: { token?: string; now?: () => number; api?: HttpTransport } = {}) {
  const api = opts.api ?? transport;
  const wps = new WorkPackageClient(api, `${ghga.wpsUrl}/`, opts.token ?? ghga.downloadToken(), user, { now: opts.now });
  const drs = new DrsClient(api, ghga.dcsUrl, wps, opts.now);
  return { wps, drs };
}

async function readAll(src: GhgaObjectSource, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  await src.read(start, end, (c) => void parts.push(c));
  return Buffer.concat(parts);
}

/** Envelope ‖ body decrypted block by block with slicefs's Crypt4GH module. */
function decrypt(envelope: Buffer, body: Buffer): Buffer {
  const header = decryptHeader(envelope, [user]);
  assert.equal(header.length, envelope.length);
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < body.length; at += BLOCK_SIZE, i++) out.push(decryptBlock(body.subarray(at, Math.min(at + BLOCK_SIZE, body.length)), header.dataKeys, i));
  return Buffer.concat(out);
}

/** One line, and none of the fixture's secrets in it. */
function assertClean(err: unknown): asserts err is SlicefsError {
  assert.ok(err instanceof SlicefsError, `not a SlicefsError: ${String(err)}`);
  assert.doesNotMatch(err.message, /\n/);
  assert.doesNotMatch(err.message, /X-Amz-Signature|Bearer/);
  for (const s of ghga.issuedSecrets()) assert.ok(!err.message.includes(s), `secret in: ${err.message}`);
}

async function rejectsWith(p: Promise<unknown>, code: SlicefsError['code'], message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assertClean(err);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test('well-known values: the four fields, trailing "/" stripped; a bare origin finds /.well-known', async () => {
  const v = await wellKnownValues(transport, ghga.wkvsUrl);
  assert.equal(v.wpsUrl, ghga.wpsUrl, 'served with a trailing "/"');
  assert.equal(v.dcsUrl, ghga.dcsUrl);
  assert.equal(v.ucsUrl, `${ghga.origin}/ucs`);
  assert.deepEqual(v.publicKeys, { 'ghga-main': ghga.ghgaKey.public.toString('base64') });
  assert.deepEqual(await wellKnownValues(transport, ghga.origin), v);
  assert.deepEqual(await wellKnownValues(transport, `${ghga.origin}/values`), v);
});

test('well-known values without a required field: one line naming it', async () => {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ wps_api_url: 'http://x/wps', dcs_api_url: 'http://x/dcs' })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known`;
  try {
    await rejectsWith(wellKnownValues(transport, url), 'BAD_RESPONSE', /well-known value service at .* sent values without ucs_api_url, crypt4gh_public_keys/);
  } finally {
    server.close();
  }
});

test('the work package: files (accession → extension) in order, its expiry; every request has an X-Request-Id', async () => {
  ghga.resetCounters();
  const { wps } = clients();
  const wp = await wps.workPackage();
  assert.equal(wp.id, ghga.workPackageId);
  assert.equal(wp.type, 'download');
  assert.deepEqual([...wp.files], [
    [BIG, '.fastq.gz'],
    [SMALL, '.bam'],
    [EMPTY_EXT, ''],
  ]);
  assert.ok(wp.expires && wp.expires.getTime() > Date.now());
  assert.equal(ghga.requests.workPackage, 1);
  assert.equal(ghga.missingRequestIds, 0);
});

test('work-order tokens: one per file while fresh, a new one near its expiry, and a new one when the DCS answers 401', async () => {
  ghga.resetCounters();
  let clock = Date.now();
  const { wps, drs } = clients({ now: () => clock });
  const a = await wps.workOrderToken(SMALL);
  assert.equal(await wps.workOrderToken(SMALL), a, 'cached');
  assert.equal(ghga.wotsIssued, 1);
  await wps.workOrderToken(BIG);
  assert.equal(ghga.wotsIssued, 2, 'one per file');
  clock += 24_000; // 30 s lifetime, 5 s margin: still good at 24 s
  assert.equal(await wps.workOrderToken(SMALL), a);
  clock += 2_000;
  assert.notEqual(await wps.workOrderToken(SMALL), a, 'renewed at 26 s');
  assert.equal(ghga.wotsIssued, 3);

  // The DCS stops accepting the cached WOT (its signing key changed): one 401, a new WOT, success.
  ghga.rotateWotKey();
  const answer = await drs.object(SMALL);
  assert.equal(answer.state, 'ready');
  assert.equal(ghga.rejectedWots, 1);
  assert.equal(ghga.wotsIssued, 4);
  assert.equal(ghga.missingRequestIds, 0);
  assert.ok(await drs.envelope(SMALL));
  assert.equal(ghga.wotsIssued, 4, 'the renewed WOT is reused for the envelope');
});

test('DCS: health, a retried 503, the DRS object (encrypted size, plaintext SHA-256, presigned URL)', async () => {
  const { drs } = clients();
  await drs.health();
  ghga.failNext(1, 503, 'object');
  const answer = await drs.object(BIG);
  assert.ok(answer.state === 'ready');
  const o = answer.object;
  assert.equal(o.accession, BIG);
  assert.equal(o.size, Math.ceil(bigPlain.length / 65536) * 28 + bigPlain.length);
  assert.equal(o.plaintextSha256, createHash('sha256').update(bigPlain).digest('hex'));
  assert.match(o.url, /X-Amz-Signature=/);
  assert.ok(o.urlExpiresAt !== undefined && Math.abs(o.urlExpiresAt - (o.receivedAt + 60_000)) < 1500, 'max-age 60 s, and the URL says the same');
});

test('stageAll: every file requested up front, each polled at its Retry-After, handed over in staging order while the others stage', async () => {
  const files = ['GHGAF10000000000001', 'GHGAF10000000000002', 'GHGAF10000000000003'];
  const plains = files.map((_, i) => seededBytes(90 + i, 100_000 + i));
  ghga.addFile(files[0]!, '.vcf.gz', plains[0]!, { stagingDelayS: 2 });
  ghga.addFile(files[1]!, '.vcf.gz', plains[1]!, { stagingDelayS: 1 });
  ghga.addFile(files[2]!, '.vcf.gz', plains[2]!, { stagingDelayS: 0 });
  ghga.resetCounters();
  const { drs } = clients();
  const events: StagingEvent[] = [];
  const t0 = Date.now();
  const run = stageAll(files, drs, { maxWaitS: 30, onEvent: (e) => events.push(e) });
  const order: string[] = [];
  for await (const staged of run) {
    order.push(staged.accession);
    // Download a staged file while the others are still staging.
    const src = new GhgaObjectSource(drs, transport, staged.accession, { initial: staged.object });
    assert.equal(src.knownSize, staged.object.size);
    const body = await readAll(src, 0, staged.object.size);
    const i = files.indexOf(staged.accession);
    assert.ok(decrypt(await src.envelope(), body).equals(plains[i]!));
  }
  const elapsed = Date.now() - t0;
  assert.deepEqual(order, [files[2], files[1], files[0]]);
  assert.deepEqual((await run.done).map((f) => f.accession), order);
  assert.ok(elapsed >= 1900 && elapsed < 5000, `took ${elapsed} ms`);

  // All three were asked for at once (staging runs in parallel at the DCS) …
  const firstPolls = files.map((a) => ghga.polls.find((p) => p.accession === a)!.at);
  assert.ok(Math.max(...firstPolls) - Math.min(...firstPolls) < 500, 'first requests together');
  // … and each was polled again only after its Retry-After: no 1 s busy loop.
  for (const [i, expected] of [
    [0, 2],
    [1, 2],
    [2, 1],
  ] as const) {
    const polls = ghga.polls.filter((p) => p.accession === files[i]);
    assert.equal(polls.length, expected, `${files[i]} polled ${polls.length} times`);
    for (let k = 1; k < polls.length; k++) assert.ok(polls[k]!.at - polls[k - 1]!.at >= polls[k - 1]!.retryAfterS! * 1000 - 50);
  }
  assert.deepEqual(
    events.filter((e) => e.type === 'staging').map((e) => [e.accession, e.type === 'staging' && e.first]),
    [
      [files[0], true],
      [files[1], true],
    ],
  );
});

test('stageAll with onReady, and an unknown file skipped with skipMissing', async () => {
  ghga.addFile('GHGAF20000000000001', '.txt', smallPlain, { atDcs: false });
  const { drs } = clients();
  const seen: string[] = [];
  const events: StagingEvent[] = [];
  const run = stageAll([SMALL, 'GHGAF20000000000001'], drs, { maxWaitS: 5, skipMissing: true, onReady: (f) => void seen.push(f.accession), onEvent: (e) => events.push(e) });
  assert.deepEqual((await run.done).map((f) => f.accession), [SMALL]);
  assert.deepEqual(seen, [SMALL]);
  assert.ok(events.some((e) => e.type === 'missing' && e.accession === 'GHGAF20000000000001'));
});

test('the body through presigned URLs: whole and in ranges, pinned to the object store ETag', async () => {
  ghga.resetCounters();
  const { drs } = clients();
  const src = new GhgaObjectSource(drs, transport, BIG);
  const v = await src.version();
  assert.match(v.etag ?? '', /^"[0-9a-f]{32}"$/);
  const whole = await readAll(src, 0, v.size);
  assert.equal(whole.length, v.size);
  assert.equal(src.plaintextSha256, ghga.sha256(BIG));
  assert.ok(decrypt(await src.envelope(), whole).equals(bigPlain));
  assert.ok((await readAll(src, 100_000, 200_000)).equals(whole.subarray(100_000, 200_000)));
  assert.ok((await readAll(src, v.size - 10, v.size)).equals(whole.subarray(v.size - 10)));
  assert.equal(src.identity, `ghga:${new URL(ghga.origin).host}/${BIG}`);
  assert.equal(src.label, `GHGA file ${BIG}`);
  assert.equal(ghga.rejectedSignatures, 0);

  // The OpenAPI form of the envelope ({"content": …}) is read as well.
  ghga.envelopeForm = 'object';
  assert.ok(decrypt(await src.envelope(), whole).equals(bigPlain));
});

test('a URL that expires in the middle of a read is replaced (new WOT, new DRS object) and the read goes on from its first missing byte', async () => {
  ghga.urlLifetimeS = 30;
  const { wps, drs } = clients();
  const src = new GhgaObjectSource(drs, transport, BIG);
  const v = await src.version();
  const refreshes = src.urlRefreshes;
  ghga.resetCounters();
  // The body breaks off after 200 KB; by the time the client resumes, 40 s have passed on the
  // servers' side: the URL has expired (and the cached WOT too).
  ghga.cutNextBody(200_000);
  let jumped = false;
  const parts: Buffer[] = [];
  await src.read(0, v.size, (c) => {
    parts.push(c);
    if (!jumped) {
      jumped = true;
      skew += 40_000;
    }
  });
  const got = Buffer.concat(parts);
  assert.equal(got.length, v.size);
  assert.ok(decrypt(await src.envelope(), got).equals(bigPlain));
  assert.equal(ghga.rejectedSignatures, 1, 'the expired URL was refused once');
  assert.equal(src.urlRefreshes, refreshes + 1, 'one new DRS object');
  assert.equal(ghga.rejectedWots, 1, 'the expired WOT was refused once and renewed');
  assert.equal(ghga.wotsIssued, 1, 'one new WOT, reused for the envelope');
  assert.equal(wps.wotsRequested, 2);
  // No byte of the body was fetched twice except what the cut lost.
  assert.ok(ghga.dataBytes <= v.size + 256 * 1024, `served ${ghga.dataBytes} for ${v.size}`);
});

test('a URL near its expiry is replaced before a read (client clock), without a refusal', async () => {
  ghga.urlLifetimeS = 30;
  let clock = Date.now();
  const { drs } = clients({ now: () => clock });
  const src = new GhgaObjectSource(drs, transport, SMALL, { now: () => clock });
  const v = await src.version();
  await readAll(src, 0, 10);
  const n = src.urlRefreshes;
  clock += 20_000;
  await readAll(src, 10, 20);
  assert.equal(src.urlRefreshes, n, 'still fresh at 20 s of 30');
  clock += 5_000;
  ghga.resetCounters();
  assert.ok((await readAll(src, 0, v.size)).length === v.size);
  assert.equal(src.urlRefreshes, n + 1, 'replaced at 25 s, before the read');
  assert.equal(ghga.rejectedSignatures, 0);
});

test('errors: malformed token, token for another key (one line each, no secret)', () => {
  assert.throws(() => clients({ token: 'not-a-token' }), (err: unknown) => {
    assertClean(err);
    return err.code === 'USAGE' && /^malformed download token: /.test(err.message);
  });
  const other = generateKeyPair();
  assert.throws(() => clients({ token: ghga.downloadToken({ publicKey: other.public }) }), (err: unknown) => {
    assertClean(err);
    assert.equal(err.code, 'KEY');
    assert.match(err.message, /^the download token was not made for this key \(public key [A-Za-z0-9+/=]{44}\): use the key pair whose public key you gave the GHGA data portal$/);
    return true;
  });
});

test('errors: expired, revoked, unknown package, invalid access token, file not in the package', async () => {
  ghga.expired = true;
  await rejectsWith(clients().wps.workPackage(), 'ACCESS_DENIED', new RegExp(`^work package ${ghga.workPackageId} has expired: create a new download token`));
  ghga.expired = false;
  ghga.revoked = true;
  await rejectsWith(clients().wps.workOrderToken(BIG), 'ACCESS_DENIED', /^download access to work package \S+ has been revoked/);
  ghga.revoked = false;
  const unknownId = '0b5c4c5e-2f2a-4c1e-9d3e-5f0d6c7b8a90';
  await rejectsWith(clients({ token: ghga.downloadToken({ workPackageId: unknownId }) }).wps.workPackage(), 'NOT_FOUND', new RegExp(`^work package ${unknownId} does not exist`));
  await rejectsWith(clients({ token: ghga.downloadToken({ accessToken: 'ZZZZZZZZZZZZZZZZZZZZZZZZ' }) }).wps.workPackage(), 'ACCESS_DENIED', /refused the access token of work package/);
  await rejectsWith(clients().wps.workOrderToken('GHGAF99999999999999'), 'NOT_FOUND', /^file GHGAF99999999999999 is not in work package \S+$/);
});

test('errors: a WOT for another public key, an unknown file at the DCS, a 202 without Retry-After', async () => {
  ghga.wotPublicKeyClaim = generateKeyPair().public;
  await rejectsWith(clients().wps.workOrderToken(SMALL), 'KEY', /was made for another public key .* than this key's/);
  ghga.wotPublicKeyClaim = undefined;
  ghga.addFile('GHGAF30000000000001', '.bam', smallPlain, { atDcs: false });
  await rejectsWith(clients().drs.object('GHGAF30000000000001'), 'NOT_FOUND', /^file GHGAF30000000000001 does not exist at the GHGA download service \(404\)$/);
  ghga.addFile('GHGAF30000000000002', '.bam', smallPlain, { stagingDelayS: 60 });
  ghga.omitRetryAfter = true;
  await rejectsWith(clients().drs.object('GHGAF30000000000002'), 'BAD_RESPONSE', /202 \(file GHGAF30000000000002 is being staged\) without a Retry-After/);
});

test('errors: staging that outlasts maxWaitS', async () => {
  ghga.addFile('GHGAF40000000000001', '.cram', smallPlain, { stagingDelayS: 60 });
  const t0 = Date.now();
  const run = stageAll(['GHGAF40000000000001', SMALL], clients().drs, { maxWaitS: 1 });
  const got: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const f of run) got.push(f.accession);
    })(),
    (err: unknown) => {
      assertClean(err);
      assert.equal(err.code, 'TIMEOUT');
      assert.equal(err.message, 'file GHGAF40000000000001 was still being staged after 1 s');
      return true;
    },
  );
  assert.deepEqual(got, [SMALL], 'the staged file was still handed over');
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 900 && elapsed < 3000, `gave up after ${elapsed} ms`);
  await assert.rejects(run.done, /still being staged/);
});

test('errors: services that cannot be reached', async () => {
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const port = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  await rejectsWith(wellKnownValues(quick, `http://127.0.0.1:${port}/.well-known`), 'NETWORK', new RegExp(`^cannot reach the GHGA well-known value service at http://127.0.0.1:${port}/.well-known/values \\(connection refused\\)$`));
  const wps = new WorkPackageClient(quick, `http://127.0.0.1:${port}/wps`, ghga.downloadToken(), user);
  await rejectsWith(wps.workPackage(), 'NETWORK', /^cannot reach the GHGA work package service at .*\/wps\/work-packages\/\S+ \(connection refused\)$/);
  await rejectsWith(new DrsClient(quick, `http://127.0.0.1:${port}/dcs`, wps).health(), 'NETWORK', /^cannot reach the GHGA download service/);
  // A service that keeps failing: named, with its status, after the retries.
  ghga.failNext(5, 503, 'workPackage');
  await rejectsWith(clients({ api: quick }).wps.workPackage(), 'HTTP_STATUS', /^the GHGA work package service at .* answered HTTP 503, also when asked again: try later$/);
  ghga.failNext(0, 503);
});
