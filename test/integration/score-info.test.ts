/**
 * `slicefs info` and `slicefs url` (the built CLI) against the fake Score service: info shows every
 * setting with its origin and the token masked, verifies the connection (ping, then the sentinel
 * object through its presigned URL); url prints a presigned URL that reads the object. Every
 * failure (401, 403, 404, an HTML page, an unreachable service, a bad config file) is exactly one
 * line on stderr with a non-zero exit, and neither the token nor a signature ever shows.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, tempDir } from '../helpers/daemon.js';
import { ScoreServer } from '../helpers/score-server.js';

const TOKEN = '3f9a1c7e-5b2d-4e8f-9a6b-0c1d2e3f4a5b';
const BYTES = Buffer.from('the bytes of object obj-1\n'.repeat(100));
let score: ScoreServer;
let work: string;
/** HOME and XDG_CONFIG_HOME of every run: no config file of the machine's user is read. */
let home: string;

before(async () => {
  score = await ScoreServer.start(TOKEN);
  score.addObject('obj-1', BYTES, { fileName: 'sample.bam', gnosId: 'A1' });
  score.addObject('secret-1', Buffer.from('not for you'), { fileName: 'other.bam', gnosId: 'A2' });
  score.denied.add('secret-1');
  work = await tempDir('slicefs-score-info-');
  home = join(work, 'home');
  await mkdir(home);
});
after(async () => {
  await score?.close();
  await cleanup(work);
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function slicefs(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((res) => {
    const clean = {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: undefined,
      ACCESSTOKEN: undefined,
      SLICEFS_TOKEN: undefined,
      STORAGE_URL: undefined,
      METADATA_URL: undefined,
      SLICEFS_CONFIG: undefined,
      SLICEFS_PROFILE: undefined,
      ...env,
    };
    const p = spawn(process.execPath, [BIN, ...args], { env: clean as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => res({ code, stdout: out, stderr: err }));
  });
}

/** Neither the token nor any signature the service handed out appears in the run's output. */
function assertNoSecrets(r: Run, extra: string[] = []): void {
  const all = r.stdout + r.stderr;
  for (const secret of [TOKEN, ...score.issuedSignatures().filter(Boolean), ...extra]) {
    assert.ok(!all.includes(secret), `a secret shows in the output:\n${all}`);
  }
  assert.doesNotMatch(all, /X-Amz-Signature|[?&]sig=/);
}

/** Exactly one line on stderr, `slicefs: error: …` matching `re`, and a failing exit. */
function assertOneLineError(r: Run, re: RegExp, code = 1): void {
  assert.equal(r.code, code, `exit ${r.code}; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^slicefs: error: [^\n]+\n$/, `not one line: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, re);
  assertNoSecrets(r);
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

const env = () => ({ ACCESSTOKEN: TOKEN, STORAGE_URL: score.origin });

test('info: every setting with its origin, the token masked', async () => {
  const r = await slicefs(['info'], env());
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^slicefs: +\d+\.\d+\.\d+ \(node v\d+/m);
  assert.match(r.stdout, new RegExp(`^config file: +${home}/\\.config/slicefs/config\\.json \\(not found, from the default location\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`^storage URL: +${score.origin} \\(from STORAGE_URL\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`^metadata URL: +${score.origin} \\(default: the storage URL\\)$`, 'm'));
  assert.match(r.stdout, /^token: +3f9a…4a5b \(36 chars, from ACCESSTOKEN\)$/m);
  assertNoSecrets(r);

  const short = await slicefs(['info', '--json'], { ...env(), ACCESSTOKEN: 'short-token-123' });
  assert.equal(short.code, 0, short.stderr);
  const j = JSON.parse(short.stdout) as { token: { masked: string; length: number; from: string }; storageUrl: { value: string; origin: string } };
  assert.deepEqual(j.token, { masked: '****', length: 15, origin: 'env', from: 'ACCESSTOKEN' });
  assert.deepEqual([j.storageUrl.value, j.storageUrl.origin], [score.origin, 'env']);
  assertNoSecrets(short, ['short-token-123']);
});

test('info with a config file of profiles: the profile, and the environment over it', async () => {
  const dir = join(home, '.config', 'slicefs');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'config.json');
  const profiles = {
    profile: 'fake',
    profiles: {
      fake: { storageUrl: score.origin, metadataUrl: `${score.origin}/`, token: TOKEN },
      other: { storageUrl: 'https://other.example/storage-api', tokenFile: '~/other-token' },
    },
  };
  await writeFile(file, JSON.stringify(profiles), { mode: 0o600 });
  try {
    const r = await slicefs(['info', '--verify-connection']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^config file: +${file} \\(found, from the default location\\)$`, 'm'));
    assert.match(r.stdout, new RegExp(`^profile: +fake \\(from "profile" in ${file}\\)$`, 'm'));
    assert.match(r.stdout, /^storage URL: +http:\/\/127\.0\.0\.1:\d+ \(from profile fake\)$/m);
    assert.match(r.stdout, /^token: +3f9a…4a5b \(36 chars, from profile fake\)$/m);
    assert.match(r.stdout, /^connection: +ok: storage service, token and object storage at http:\/\/127\.0\.0\.1:\d+ \(\d+ ms\)$/m);
    assertNoSecrets(r);

    const e = await slicefs(['info', '--profile', 'other'], { STORAGE_URL: 'https://env.example/s' });
    assert.equal(e.code, 2);
    assert.match(e.stderr, /^slicefs: error: tokenFile .*other-token \(profile other in .*config\.json\): no such file\n$/);
    await writeFile(join(home, 'other-token'), 'other-token-value-0123456789\n', { mode: 0o600 });
    const o = await slicefs(['info', '--profile', 'other', '--json'], { STORAGE_URL: 'https://env.example/s' });
    assert.equal(o.code, 0, o.stderr);
    const j = JSON.parse(o.stdout) as Record<string, { value?: string; origin: string; from: string; masked?: string; file?: string }>;
    assert.deepEqual([j.profile.value, j.profile.origin], ['other', 'flag']);
    assert.deepEqual([j.storageUrl.value, j.storageUrl.origin], ['https://env.example/s', 'env']);
    assert.deepEqual([j.token.masked, j.token.from, j.token.file], ['othe…6789', 'profile other, tokenFile', join(home, 'other-token')]);
    assertNoSecrets(o, ['other-token-value-0123456789']);

    // A file holding a token that others may read is refused, with the fix.
    await chmod(file, 0o644);
    const loose = await slicefs(['info']);
    assertOneLineError(loose, /config\.json: holds a token and is readable by others \(mode 644\); chmod 600 it/, 2);
    await writeFile(file, '{\n  "profiles": {\n    "fake": { "token": "x" }\n  },\n}\n', { mode: 0o600 });
    await chmod(file, 0o600);
    const bad = await slicefs(['info']);
    assertOneLineError(bad, /config\.json: not valid JSON at line 5, column 1: trailing comma$/m, 2);
    const unknown = await slicefs(['url', '--object-id', 'obj-1', '--config', join(work, 'nope.json')], env());
    assertOneLineError(unknown, /--config .*nope\.json: no such file/, 2);
  } finally {
    await writeFile(file, '{}');
  }
});

test('url prints a presigned URL, alone on stdout, that reads the object', async () => {
  const pings = score.pingRequests;
  const r = await slicefs(['url', '--object-id', 'obj-1', '--verify-connection'], env());
  assert.equal(r.code, 0, r.stderr);
  assert.equal(score.pingRequests, pings + 1, 'one ping');
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^http:\/\/127\.0\.0\.1:\d+\/\S+\?\S+\n$/);
  const res = await fetch(r.stdout.trim());
  assert.equal(res.status, 200);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(BYTES));
  assert.ok(!r.stdout.includes(TOKEN));
});

test('--verify-connection of the other commands: checked before they start', async () => {
  const pings = score.pingRequests;
  const out = join(work, 'dl');
  const r = await slicefs(['download', '--object-id', 'obj-1', '-d', out, '-q', '--verify-connection'], env());
  assert.equal(r.code, 0, r.stderr);
  assert.equal(score.pingRequests, pings + 1);
  const wrong = await slicefs(['download', '--object-id', 'obj-1', '-d', join(work, 'dl2'), '-q', '--verify-connection'], { ...env(), ACCESSTOKEN: 'not-the-token-but-long-enough' });
  assertOneLineError(wrong, /^slicefs: error: the storage service refused the token \(401\)/);
  assert.equal(score.pingRequests, pings + 2);
});

test('401, 403, 404: one line each that says what to do, never the token', async () => {
  const wrong = await slicefs(['url', '--object-id', 'obj-1'], { ...env(), ACCESSTOKEN: 'not-the-token-but-long-enough' });
  assertOneLineError(wrong, /^slicefs: error: score object obj-1: the storage service refused the token \(401\): invalid or expired token — get a new API token from the platform profile page\n$/);
  assertNoSecrets(wrong, ['not-the-token-but-long-enough']);
  const denied = await slicefs(['url', '--object-id', 'secret-1'], env());
  assertOneLineError(denied, /^slicefs: error: no access to object secret-1 \(403\): your token has no access to this object's project, or it is not published\n$/);
  const missing = await slicefs(['url', '--object-id', 'nope'], env());
  assertOneLineError(missing, /^slicefs: error: object nope not found in the storage service \(404\)\n$/);
  const ping = await slicefs(['info', '--verify-connection'], { ...env(), ACCESSTOKEN: 'not-the-token-but-long-enough' });
  assertOneLineError(ping, /^slicefs: error: the storage service refused the token \(401\): invalid or expired token/);
  assert.match(ping.stdout, /^connection: +failed \(the error is on stderr\)$/m);
});

test('an HTML page is named by its status and title, never quoted', async () => {
  score.htmlErrors = true;
  try {
    // The token check still reads as one, HTML or not.
    const wrong = await slicefs(['url', '--object-id', 'obj-1'], { ...env(), ACCESSTOKEN: 'not-the-token-but-long-enough' });
    assertOneLineError(wrong, /refused the token \(401\)/);
    // A gateway's 503 page, through the retries.
    score.failNext(1000, 503);
    const gateway = await slicefs(['url', '--object-id', 'obj-1'], env());
    assertOneLineError(gateway, /^slicefs: error: score object obj-1: the storage service at http:\/\/127\.0\.0\.1:\d+ answered HTTP 503 with an HTML page: "503 Service Unavailable"\n$/);
    const ping = await slicefs(['info', '--verify-connection'], env());
    assertOneLineError(ping, /^slicefs: error: the storage service at http:\/\/127\.0\.0\.1:\d+ answered HTTP 503 with an HTML page: "503 Service Unavailable"\n$/);
    assert.doesNotMatch(gateway.stderr + ping.stderr, /help desk|Reference|<\w/);
  } finally {
    score.failNext(0, 503);
    score.htmlErrors = false;
  }
  // A storage URL that is a web portal: 200 with a page instead of the API's answer.
  const portal = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><html><head><title>\n  ARGO Data Platform </title></head><body>${TOKEN}</body></html>`);
  });
  await new Promise<void>((res) => portal.listen(0, '127.0.0.1', res));
  try {
    const at = `http://127.0.0.1:${(portal.address() as AddressInfo).port}/portal`;
    const r = await slicefs(['url', '--object-id', 'obj-1'], { ...env(), STORAGE_URL: at });
    assertOneLineError(r, /^slicefs: error: score object obj-1: the storage service at http:\/\/127\.0\.0\.1:\d+\/portal answered an HTML page: "ARGO Data Platform" instead of its API: is the URL right\?\n$/);
    const p = await slicefs(['info', '--verify-connection'], { ...env(), STORAGE_URL: at });
    assertOneLineError(p, /^slicefs: error: the storage service at http:\/\/127\.0\.0\.1:\d+\/portal answered an HTML page: "ARGO Data Platform" instead of its API/);
  } finally {
    portal.closeAllConnections();
    await new Promise<void>((res) => portal.close(() => res()));
  }
});

test('an unreachable service: "cannot reach", with the URL but not its query', async () => {
  const port = await closedPort();
  const storage = `http://127.0.0.1:${port}/storage-api`;
  const r = await slicefs(['url', '--object-id', 'obj-1', '--timeout', '5'], { ...env(), STORAGE_URL: storage });
  assertOneLineError(r, new RegExp(`^slicefs: error: score object obj-1: cannot reach the storage service at http://127\\.0\\.0\\.1:${port}/storage-api \\(ECONNREFUSED\\)\\n$`));
  const p = await slicefs(['info', '--verify-connection', '--timeout', '5'], { ...env(), STORAGE_URL: storage });
  assertOneLineError(p, new RegExp(`^slicefs: error: cannot reach the storage service at http://127\\.0\\.0\\.1:${port}/storage-api \\(ECONNREFUSED\\)\\n$`));
  const dns = await slicefs(['info', '--verify-connection', '--timeout', '5'], { ...env(), STORAGE_URL: 'https://no-such-host.invalid/storage-api' });
  assertOneLineError(dns, /^slicefs: error: cannot reach the storage service at https:\/\/no-such-host\.invalid\/storage-api \((ENOTFOUND: unknown host|EAI_AGAIN: DNS lookup failed)\)\n$/);
});
