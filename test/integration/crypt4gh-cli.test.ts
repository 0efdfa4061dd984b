/**
 * Crypt4GH from the command line, against the reference implementation's vectors and files made by
 * the test encryptor: `decrypt` of every vector (right SHA-256, or the stated error and no output
 * left), `download --decrypt` over HTTP (and without --decrypt, the encrypted file as it is; a
 * header served apart put in front), `keygen` keys that round-trip, and `view` of an encrypted BAM
 * (its index encrypted too) equal to samtools on the plaintext.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, copyFile, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parsePrivateKey, parsePublicKey } from '../../src/crypt4gh/keys.js';
import { BIN, cleanup, tempDir, writeManifest } from '../helpers/daemon.js';
import { encryptC4gh } from '../helpers/c4gh-encrypt.js';
import { index, plaintext, privateKeyFile, sha256, VECTORS } from '../helpers/c4gh-vectors.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { assertNoSecrets } from '../helpers/secret-scan.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

let work: string;
let server: FixtureServer;
let sample: SampleData;
const ALICE = privateKeyFile('keys/alice.nocrypt.sec');
const keyOf: Record<string, { file: string; pass?: string }> = {};

before(async () => {
  work = await tempDir('slicefs-c4gh-');
  server = await FixtureServer.start();
  sample = await ensureSampleData();
  for (const k of index.keys) keyOf[k.owner] ??= { file: privateKeyFile(k.file), pass: k.passphrase ?? undefined };
  for (const f of index.files) server.addFile(`/v/${f.file}`, await readFile(join(VECTORS, f.file)));
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

function slicefs(args: string[], env: Record<string, string | undefined> = {}) {
  return new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((res, rej) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, C4GH_SECRET_KEY: undefined, C4GH_PASSPHRASE: undefined, ...env } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.on('error', rej);
    p.on('close', (code) => res({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

/** What the vectors README says each negative vector must fail with, in slicefs's words. */
const ERRORS: Record<string, RegExp> = {
  mac: /segment \d+ \(plaintext bytes \d+–\d+\) failed its authentication/,
  no_packet: /no key opens .*: it was not encrypted for/,
  short_block: /too short to hold its nonce and MAC: the file is truncated or corrupt/,
};

test('decrypt: every positive vector gives its plaintext, with each key that opens it', async () => {
  for (const f of index.files.filter((x) => x.expect?.plaintext_sha256)) {
    for (const owner of f.opens_with!) {
      const out = join(work, 'dec', owner);
      const key = keyOf[owner];
      const r = await slicefs(['decrypt', '--private-key', key.file, join(VECTORS, f.file), '-d', out, '-q'], { C4GH_PASSPHRASE: key.pass });
      assert.equal(r.code, 0, `${f.file} with ${owner}: ${r.stderr}`);
      const got = await readFile(join(out, f.file.split('/').at(-1)!.slice(0, -5)));
      assert.equal(got.length, f.expect!.plaintext_size, f.file);
      assert.equal(sha256(got), f.expect!.plaintext_sha256, f.file);
      await assertNoSecrets([key.pass], { outputs: { stdout: r.stdout, stderr: r.stderr }, paths: [out] });
    }
  }
});

test('decrypt: every negative vector fails with its reason, one line, and leaves no output', async () => {
  const out = join(work, 'dec-bad');
  for (const f of index.files.filter((x) => x.expect?.error)) {
    const r = await slicefs(['decrypt', '--private-key', ALICE, join(VECTORS, f.file), '-d', out]);
    assert.equal(r.code, 1, f.file);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, ERRORS[f.expect!.error!], `${f.file}: ${r.stderr}`);
  }
  assert.deepEqual(await readdir(out).catch(() => []), [], 'nothing written, not even a partial file');
  // A wrong passphrase, and an existing output that is never replaced.
  const wrong = await slicefs(['decrypt', '--private-key', privateKeyFile('keys/alice.sec'), join(VECTORS, 'enc/p1.alice.c4gh'), '-d', out], { C4GH_PASSPHRASE: 'not-it' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /wrong passphrase for .*alice\.sec/);
  await writeFile(join(out, 'p1.alice'), 'mine');
  const exists = await slicefs(['decrypt', '--private-key', ALICE, join(VECTORS, 'enc/p1.alice.c4gh'), '-d', out]);
  assert.equal(exists.code, 1);
  assert.match(exists.stderr, /p1\.alice already exists: not overwritten/);
  assert.equal(await readFile(join(out, 'p1.alice'), 'utf8'), 'mine');
});

test('download --decrypt over HTTP gives every plaintext; without it, the encrypted files as they are', async () => {
  const positives = index.files.filter((x) => x.expect?.plaintext_sha256 && x.opens_with!.includes('alice'));
  const manifest = await writeManifest(join(work), positives.map((f) => ({ url: server.url(`/v/${f.file}`), path: f.file.replace('enc/', '') })));
  const dir = join(work, 'dl-plain');
  const r = await slicefs(['download', '-m', manifest, '-d', dir, '--decrypt', '--private-key', ALICE, '-q']);
  assert.equal(r.code, 0, r.stderr);
  for (const f of positives) {
    const got = await readFile(join(dir, f.file.replace('enc/', '').slice(0, -5)));
    assert.equal(sha256(got), f.expect!.plaintext_sha256, f.file);
  }
  const enc = join(work, 'dl-enc');
  const r2 = await slicefs(['download', '-m', manifest, '-d', enc, '-q']);
  assert.equal(r2.code, 0, r2.stderr);
  for (const f of positives) assert.ok((await readFile(join(enc, f.file.replace('enc/', '')))).equals(await readFile(join(VECTORS, f.file))), f.file);
});

test('a header served apart (header_url, GHGA style): decrypted, or saved as one .c4gh file header first', async () => {
  const split = index.split;
  const manifest = join(work, 'split.tsv');
  await writeFile(manifest, `url\tpath\theader_url\n${server.url(`/v/${split.body}`)}\tp65537\t${server.url(`/v/${split.headers.alice}`)}\n`);
  const dir = join(work, 'split');
  const r = await slicefs(['download', '-m', manifest, '-d', dir, '--decrypt', '--private-key', ALICE, '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha256(await readFile(join(dir, 'p65537'))), split.expect.plaintext_sha256);
  const r2 = await slicefs(['download', '-m', manifest, '-d', join(dir, 'enc'), '-q']);
  assert.equal(r2.code, 0, r2.stderr);
  const whole = await readFile(join(dir, 'enc', 'p65537.c4gh'));
  assert.ok(whole.equals(Buffer.concat([await readFile(join(VECTORS, split.headers.alice)), await readFile(join(VECTORS, split.body))])));
  // Bob's key does not open alice's header.
  const bob = await slicefs(['download', '-m', manifest, '-d', join(dir, 'bob'), '--decrypt', '--private-key', keyOf.bob.file, '-q'], { C4GH_PASSPHRASE: keyOf.bob.pass });
  assert.equal(bob.code, 1);
  assert.match(bob.stderr, /no key opens/);
});

test('a private key the group or others can read is refused before it is read: one line, exit 2, nothing written', async () => {
  const manifest = await writeManifest(join(work), [{ url: server.url('/v/enc/p1.alice.c4gh'), path: 'p1.alice.c4gh' }]);
  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    const loose = join(work, `loose-${mode.toString(8)}.sec`);
    await copyFile(ALICE, loose);
    await chmod(loose, mode);
    const refused = new RegExp(`^slicefs: error: --private-key ${loose}: readable by others \\(mode ${mode.toString(8)}\\); chmod 600 it\n$`);
    const out = join(work, `dec-loose-${mode.toString(8)}`);
    const r = await slicefs(['decrypt', '--private-key', loose, join(VECTORS, 'enc/p1.alice.c4gh'), '-d', out]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, refused);
    assert.deepEqual(await readdir(out).catch(() => []), [], 'nothing decrypted');
    // From the environment, and for download --decrypt, the same.
    const d = await slicefs(['download', '-m', manifest, '-d', join(out, 'dl'), '--decrypt', '-q'], { C4GH_SECRET_KEY: loose });
    assert.equal(d.code, 2, d.stderr);
    assert.match(d.stderr, refused);
  }
  // The owner's alone, read-only or not: used.
  for (const mode of [0o400, 0o600]) {
    const tight = join(work, `tight-${mode.toString(8)}.sec`);
    await copyFile(ALICE, tight);
    await chmod(tight, mode);
    const out = join(work, `dec-tight-${mode.toString(8)}`);
    const r = await slicefs(['decrypt', '--private-key', tight, join(VECTORS, 'enc/p1.alice.c4gh'), '-d', out, '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readdir(out), ['p1.alice']);
  }
});

test('keygen: a protected key pair that reads back, refuses to overwrite, and decrypts what is encrypted for it', async () => {
  const prefix = join(work, 'keys', 'me');
  const r = await slicefs(['keygen', '--out', prefix, '-C', 'me@example.org'], { C4GH_PASSPHRASE: 'a long passphrase' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await stat(`${prefix}.sec`)).mode & 0o777, 0o600);
  const pair = await parsePrivateKey(await readFile(`${prefix}.sec`, 'utf8'), async () => 'a long passphrase', 'me.sec');
  assert.ok(parsePublicKey(await readFile(`${prefix}.pub`, 'utf8'), 'me.pub').equals(pair.public));
  assert.equal(pair.comment, 'me@example.org');
  const again = await slicefs(['keygen', '--out', prefix], { C4GH_PASSPHRASE: 'x' });
  assert.equal(again.code, 2);
  assert.match(again.stderr, /me\.sec already exists: not overwritten/);
  const noTty = await slicefs(['keygen', '--out', join(work, 'keys', 'other')]);
  assert.equal(noTty.code, 2);
  assert.match(noTty.stderr, /set C4GH_PASSPHRASE, or use --nocrypt/);

  const plain = plaintext(300_000);
  const file = join(work, 'keys', 'data.bin.c4gh');
  await writeFile(file, encryptC4gh(plain, [pair.public], { editList: [10, 70_000, 5_000, 100_000] }).file);
  const d = await slicefs(['decrypt', '--private-key', `${prefix}.sec`, file], { C4GH_PASSPHRASE: 'a long passphrase' });
  assert.equal(d.code, 0, d.stderr);
  assert.ok((await readFile(join(work, 'keys', 'data.bin'))).equals(Buffer.concat([plain.subarray(10, 70_010), plain.subarray(75_010, 175_010)])));
});

test('view of an encrypted BAM (index encrypted too) equals samtools on the plaintext', async () => {
  const prefix = join(work, 'keys', 'viewer');
  assert.equal((await slicefs(['keygen', '--out', prefix, '--nocrypt'])).code, 0);
  const pub = parsePublicKey(await readFile(`${prefix}.pub`, 'utf8'), 'viewer.pub');
  const encrypted = encryptC4gh(await readFile(sample.bam), [pub]);
  server.addFile('/e/sample.bam.c4gh', encrypted.file);
  server.addFile('/e/sample.bam.bai.c4gh', encryptC4gh(await readFile(sample.bai), [pub]).file);
  const secret = (await parsePrivateKey(await readFile(`${prefix}.sec`, 'utf8'), async () => '', 'viewer.sec')).secret;
  const keyMaterial = [secret, encrypted.dataKey].flatMap((k) => [k.toString('hex'), k.toString('base64')]);
  const cache = join(work, 'view-cache');
  for (const region of sample.regions.slice(0, 4)) {
    const want = await samtools(['view', sample.bam, region]);
    const got = await slicefs(['view', '--url', server.url('/e/sample.bam.c4gh'), '-q', region, '--private-key', `${prefix}.sec`, '--no-index-cache', '--no-header', '--cache-dir', cache]);
    // Neither the secret key nor the data key shows anywhere; the disk tier holds ciphertext only.
    await assertNoSecrets(keyMaterial, { outputs: { stdout: got.stdout, stderr: got.stderr }, paths: [cache] });
    assert.equal(got.code, 0, got.stderr);
    assert.ok(want.stdout.length > 0);
    assert.ok(got.stdout.equals(want.stdout), `region ${region}`);
  }
  const nokey = await slicefs(['view', '--url', server.url('/e/sample.bam.c4gh'), '-q', sample.regions[0]]);
  assert.notEqual(nokey.code, 0);
  assert.match(nokey.stderr, /Crypt4GH-encrypted: give --private-key FILE/);
  assert.equal(nokey.stdout.length, 0);
});
