/**
 * `slicefs download --ghga` against a GHGA-compatible fixture (well-known values, WPS with sealed
 * work-order tokens, DCS with staging and expiring presigned URLs, envelopes) on 127.0.0.1: a
 * multi-file work package end to end (kept encrypted as the connector does, and decrypted), the
 * plaintext SHA-256 checked, a staging delay, kill -9 and resume, an expired URL mid-file, each
 * error as one line, and no secret (download token, access token, work-order tokens, signatures)
 * in anything printed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodePrivateKey, generateKeyPair, type C4ghKeyPair } from '../../src/crypt4gh/keys.js';
import { Crypt4ghSource } from '../../src/source/crypt4gh-source.js';
import { LocalSource } from '../../src/source/local-source.js';
import { BIN, cleanup, tempDir } from '../helpers/daemon.js';
import { GhgaServer } from '../helpers/ghga-server.js';
import { seededBytes } from '../helpers/random.js';
import { assertNoSecrets } from '../helpers/secret-scan.js';

let work: string;
let ghga: GhgaServer;
let pair: C4ghKeyPair;
let keyFile: string;
let tokenFile: string;
const printed: string[] = [];
const files = {
  GHGAF00000000000001: { ext: '.bam', data: seededBytes(91, 3_000_000) },
  GHGAF00000000000002: { ext: '.bam.bai', data: seededBytes(92, 70_000) },
  GHGAF00000000000003: { ext: '.vcf.gz', data: seededBytes(93, 9_000_000) },
};

before(async () => {
  work = await tempDir('slicefs-ghga-cli-');
  pair = generateKeyPair('me@example.org');
  keyFile = join(work, 'me.sec');
  await writeFile(keyFile, await encodePrivateKey(pair, 'my passphrase'), { mode: 0o600 });
  ghga = await GhgaServer.start({ userPublicKey: pair.public });
  for (const [acc, f] of Object.entries(files)) ghga.addFile(acc, f.ext, f.data);
  tokenFile = join(work, 'token.txt');
  await writeFile(tokenFile, ghga.downloadToken() + '\n', { mode: 0o600 });
});
after(async () => {
  const all = printed.join('\n');
  assert.ok(all.length > 0);
  for (const secret of [...ghga.issuedSecrets(), ghga.downloadToken(), 'my passphrase']) assert.ok(!all.includes(secret), 'a secret appears in the output');
  await ghga?.close();
  await cleanup(work);
});

function slicefs(args: string[], opts: { stdin?: string; env?: Record<string, string | undefined>; during?: (p: ReturnType<typeof spawn>) => void } = {}) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((res, rej) => {
    const env = { ...process.env, C4GH_PASSPHRASE: 'my passphrase', GHGA_CONNECTOR_WKVS_API_URL: undefined, ...opts.env };
    const p = spawn(process.execPath, [BIN, ...args], { env: env as NodeJS.ProcessEnv, stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (opts.stdin !== undefined) p.stdin!.end(opts.stdin);
    let out = '';
    let err = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('error', rej);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      printed.push(out, err);
      res({ code, signal, stdout: out, stderr: err });
    });
    opts.during?.(p);
  });
}

/** Every secret of a run: what the GHGA fixture issued, the download token, the key's passphrase. */
const secrets = () => [...ghga.issuedSecrets(), ghga.downloadToken(), 'my passphrase'];

const ghgaArgs = (dir: string, extra: string[] = []) => ['download', '--ghga', '--ghga-url', ghga.wkvsUrl, '--private-key', keyFile, '--download-token-file', tokenFile, '-d', dir, ...extra];

async function decryptLocal(file: string): Promise<Buffer> {
  const src = new Crypt4ghSource(new LocalSource(file), { keys: async () => [pair] });
  const { size } = await src.version();
  const parts: Buffer[] = [];
  await src.read(0, size, (c) => void parts.push(c));
  return Buffer.concat(parts);
}

test('a work package: <accession><ext>.c4gh files (envelope + blocks) that decrypt to the plaintext; --decrypt writes the plaintext', async () => {
  const dir = join(work, 'enc');
  ghga.setStagingDelay('GHGAF00000000000003', 2);
  const r = await slicefs(ghgaArgs(dir, ['--verbose']));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /GHGAF00000000000003: being staged, asking again in 2 s/);
  assert.match(r.stderr, /3 downloaded/);
  for (const [acc, f] of Object.entries(files)) {
    assert.ok((await decryptLocal(join(dir, `${acc}${f.ext}.c4gh`))).equals(f.data), acc);
  }
  // The staged files were downloaded while the delayed one was still staging.
  const order = r.stderr.split('\n').filter((l) => /ready for download|3 downloaded/.test(l));
  assert.match(order.at(-2) ?? '', /GHGAF00000000000003: ready/);

  const plain = join(work, 'plain');
  const r2 = await slicefs(ghgaArgs(plain, ['--decrypt', '-q']), { env: { GHGA_CONNECTOR_WKVS_API_URL: ghga.wkvsUrl } });
  assert.equal(r2.code, 0, r2.stderr);
  for (const [acc, f] of Object.entries(files)) assert.ok((await readFile(join(plain, `${acc}${f.ext}`))).equals(f.data), acc);
  // Run again: everything is there and verified, nothing is fetched.
  ghga.resetCounters();
  const r3 = await slicefs(ghgaArgs(plain, ['--decrypt']));
  assert.equal(r3.code, 0, r3.stderr);
  assert.match(r3.stderr, /0 downloaded, 3 already present/);
  assert.equal(ghga.dataBytes, 0);
  await assertNoSecrets(secrets(), { outputs: { stderr: r.stderr + r2.stderr + r3.stderr }, paths: [dir, plain] });
});

test('the download token from standard input, and kill -9 then resume, with URLs expiring mid-file', async () => {
  const dir = join(work, 'resume');
  ghga.urlLifetimeS = 2;
  ghga.resetCounters();
  try {
    const first = await slicefs(['download', '--ghga', '--ghga-url', ghga.wkvsUrl, '--private-key', keyFile, '-d', dir, '--limit-rate', '2M', '--parallel', '2', '--part-size', '256K'], {
      stdin: ghga.downloadToken() + '\n',
      during: (p) => setTimeout(() => p.kill('SIGKILL'), 3500),
    });
    assert.equal(first.signal, 'SIGKILL');
    // What the kill left (part files, journals) holds no secret.
    await assertNoSecrets(secrets(), { paths: [dir] });
    const fetchedFirst = ghga.dataBytes;
    assert.ok(fetchedFirst > 1_000_000, `fetched before the kill: ${fetchedFirst}`);
    const second = await slicefs(ghgaArgs(dir, ['-q']));
    assert.equal(second.code, 0, second.stderr);
    for (const [acc, f] of Object.entries(files)) assert.ok((await decryptLocal(join(dir, `${acc}${f.ext}.c4gh`))).equals(f.data), acc);
    const total = Object.values(files).reduce((n, f) => n + f.data.length, 0);
    // Resumed, not restarted: at most the parts in flight at the kill were fetched twice.
    assert.ok(ghga.dataBytes - total <= 2 * 256 * 1024 + 100_000, `fetched ${ghga.dataBytes} for ${total} bytes`);
    assert.ok(ghga.requests.object > 3, 'URLs were renewed');
  } finally {
    ghga.urlLifetimeS = 60;
  }
});

test('well-known values that name a plain-http service: the tokens are not sent, one line, exit 2', async () => {
  for (const [key, host] of [['wps_api_url', 'wps.invalid'], ['dcs_api_url', 'dcs.invalid']] as const) {
    ghga.valuesOverride = { [key]: `http://${host}/${key === 'wps_api_url' ? 'wps/' : 'dcs'}` };
    try {
      const r = await slicefs(ghgaArgs(join(work, 'cleartext')));
      assert.equal(r.code, 2, r.stderr);
      // The DCS is asked once the work package is known (its line printed): the error is one line, the last.
      const errors = r.stderr.split('\n').filter((l) => /error/.test(l));
      assert.equal(errors.length, 1, r.stderr);
      assert.match(errors[0], new RegExp(`^slicefs: error: refusing to send a bearer token over plain http to http://${host.replace('.', '\\.')}/\\S*: it would travel unencrypted; use an https:// URL`));
      await assertNoSecrets(secrets(), { outputs: { stderr: r.stderr, stdout: r.stdout } });
    } finally {
      ghga.valuesOverride = {};
    }
  }
});

test('errors are one line: malformed token, token for another key, expired or revoked work package, no key, unreachable', async () => {
  const dir = join(work, 'errors');
  const cases: [string, () => Promise<{ code: number | null; stderr: string }>, RegExp][] = [
    ['malformed', () => slicefs(['download', '--ghga', '--ghga-url', ghga.wkvsUrl, '--private-key', keyFile, '-d', dir], { stdin: 'not-a-token\n' }), /malformed download token/],
    ['other key', () => slicefs(['download', '--ghga', '--ghga-url', ghga.wkvsUrl, '--private-key', keyFile, '-d', dir], { stdin: ghga.downloadToken({ publicKey: generateKeyPair().public }) + '\n' }), /not made for this key/],
    ['bad option', () => slicefs([...ghgaArgs(dir), '--part-size', '1K']), /--part-size must be at least 64K/],
    ['no key', () => slicefs(['download', '--ghga', '--ghga-url', ghga.wkvsUrl, '--download-token-file', tokenFile, '-d', dir]), /--ghga needs your Crypt4GH key pair/],
    ['unreachable', () => slicefs(['download', '--ghga', '--ghga-url', 'http://127.0.0.1:9/.well-known', '--private-key', keyFile, '--download-token-file', tokenFile, '-d', dir]), /cannot reach the GHGA .*127\.0\.0\.1:9/],
  ];
  for (const [name, run, want] of cases) {
    const r = await run();
    assert.notEqual(r.code, 0, name);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, want, name);
  }
  for (const flag of ['expired', 'revoked'] as const) {
    ghga[flag] = true;
    try {
      const r = await slicefs(ghgaArgs(dir));
      assert.notEqual(r.code, 0);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, flag === 'expired' ? /expired/ : /revoked/);
    } finally {
      ghga[flag] = false;
    }
  }
  // Staging that takes longer than --max-wait, and a file that is not in the work package.
  ghga.setStagingDelay('GHGAF00000000000002', 30);
  try {
    const r = await slicefs(ghgaArgs(join(work, 'staging'), ['--max-wait', '1', '-q']));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /GHGAF00000000000002 was still being staged after 1 s/);
  } finally {
    ghga.setStagingDelay('GHGAF00000000000002', 0);
  }
  const notIn = await slicefs(['view', '--ghga', '--ghga-url', ghga.wkvsUrl, '--private-key', keyFile, '--download-token-file', tokenFile, '--accession', 'GHGAF99999999999999', '-q', 'chr1']);
  assert.equal(notIn.code, 1);
  assert.equal(notIn.stderr.trim().split('\n').length, 1, notIn.stderr);
  assert.match(notIn.stderr, /GHGAF99999999999999 is not a file of work package/);
  assert.deepEqual((await readdir(dir).catch(() => [])).filter((n) => !n.startsWith('.') && !n.startsWith('slicefs-')), []);
});

test("the plaintext's SHA-256, hashed while the file is written: a stated checksum that differs, and a tampered block of a file kept encrypted, set the file aside with one clear line", async () => {
  const other = await GhgaServer.start({ userPublicKey: pair.public });
  try {
    const good = seededBytes(95, 400_000);
    other.addFile('GHGAF00000000000011', '.bam', good);
    other.addFile('GHGAF00000000000012', '.bin', seededBytes(96, 300_000), { statedSha256: 'ab'.repeat(32) });
    const tampered = seededBytes(97, 5 * 65536 + 7);
    // One bit of the third data block's ciphertext (12-byte nonce, then the ciphertext).
    other.addFile('GHGAF00000000000013', '.bin', tampered).body[2 * 65564 + 12 + 9] ^= 0x40;
    const token = join(work, 'token-other.txt');
    await writeFile(token, other.downloadToken() + '\n', { mode: 0o600 });
    const args = (dir: string, extra: string[] = []) => ['download', '--ghga', '--ghga-url', other.wkvsUrl, '--private-key', keyFile, '--download-token-file', token, '-d', dir, '-q', ...extra];
    const actual12 = createHash('sha256').update(seededBytes(96, 300_000)).digest('hex');
    for (const decrypt of [false, true]) {
      const dir = join(work, decrypt ? 'sha-plain' : 'sha-enc');
      const r = await slicefs(args(dir, decrypt ? ['--decrypt'] : []));
      assert.equal(r.code, 1, r.stderr);
      const suffix = decrypt ? '' : '.c4gh';
      assert.match(r.stderr, new RegExp(`GHGAF00000000000012\\.bin${suffix.replace('.', '\\.')}: the decrypted file's SHA-256 ${actual12} is not the ${'ab'.repeat(32)} the download service states; set aside as GHGAF00000000000012\\.bin${suffix.replace('.', '\\.')}\\.checksum-mismatch`));
      // Kept encrypted, the blocks are not opened until the hash: the tampered one fails there, named.
      assert.match(r.stderr, decrypt ? /GHGAF00000000000013\.bin: .*segment 2 \(plaintext bytes 131072–196607\) failed its authentication/ : /GHGAF00000000000013\.bin\.c4gh: GHGAF00000000000013\.bin\.c4gh: segment 2 \(plaintext bytes 131072–196607\) failed its authentication: the file is corrupt or was tampered with; set aside as GHGAF00000000000013\.bin\.c4gh\.checksum-mismatch/);
      const names = (await readdir(dir)).filter((n) => !n.startsWith('.') && !n.startsWith('slicefs-')).sort();
      const kept = `GHGAF00000000000011.bam${suffix}`;
      // Decrypted while downloaded, the tampered file stops there (its part and journal kept, as for any failed download).
      assert.deepEqual(names, decrypt ? [kept, `GHGAF00000000000012.bin.checksum-mismatch`, 'GHGAF00000000000013.bin.part', 'GHGAF00000000000013.bin.part.journal'] : [kept, `GHGAF00000000000012.bin.c4gh.checksum-mismatch`, `GHGAF00000000000013.bin.c4gh.checksum-mismatch`].sort(), r.stderr);
      const got = decrypt ? await readFile(join(dir, kept)) : await decryptLocal(join(dir, kept));
      assert.ok(got.equals(good));
      await assertNoSecrets([...other.issuedSecrets(), other.downloadToken(), 'my passphrase'], { outputs: { stderr: r.stderr, stdout: r.stdout }, paths: [dir] });
    }
  } finally {
    await other.close();
  }
});
