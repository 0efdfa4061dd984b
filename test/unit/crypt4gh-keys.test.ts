import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlicefsError, errnoName } from '../../src/errors.js';
import {
  decodePrivateKeyFile,
  encodePrivateKey,
  encodePublicKey,
  generateKeyPair,
  keyPairFromSecret,
  parsePrivateKey,
  parsePublicKey,
} from '../../src/crypt4gh/keys.js';
import { index, loadKey, vectorText } from '../helpers/c4gh-vectors.js';

const never = async (): Promise<string> => {
  throw new Error('the passphrase callback must not be called for an unprotected key');
};

function isKeyError(re: RegExp) {
  return (e: unknown) => e instanceof SlicefsError && e.code === 'KEY' && re.test(e.message) && !e.message.includes('\n');
}

function armourOf(data: Buffer): string {
  return `-----BEGIN CRYPT4GH PRIVATE KEY-----\n${data.toString('base64')}\n-----END CRYPT4GH PRIVATE KEY-----\n`;
}

for (const meta of index.keys) {
  test(`${meta.file} (${meta.kdf}) loads and its public key is ${meta.public_file}`, async () => {
    let asked = 0;
    const pair = await parsePrivateKey(
      vectorText(meta.file),
      async () => {
        asked++;
        return meta.passphrase ?? '';
      },
      meta.file,
    );
    assert.equal(asked, meta.passphrase === null ? 0 : 1, 'the passphrase is asked for exactly when the key is protected');
    assert.equal(pair.secret.length, 32);
    assert.equal(pair.public.toString('hex'), meta.public_key_hex);
    assert.ok(pair.public.equals(parsePublicKey(vectorText(meta.public_file), meta.public_file)));
    assert.equal(pair.comment, meta.comment ?? undefined);
    const file = decodePrivateKeyFile(vectorText(meta.file), meta.file);
    assert.equal(file.kdf, meta.kdf);
    assert.equal(file.rounds, meta.rounds ?? 0);
  });
}

test('alice.sec and alice.nocrypt.sec hold the same secret', async () => {
  const a = await loadKey('keys/alice.sec');
  const b = await parsePrivateKey(vectorText('keys/alice.nocrypt.sec'), never, 'alice.nocrypt.sec');
  assert.ok(a.secret.equals(b.secret));
});

test('older armour labels (ENCRYPTED PRIVATE KEY) load too; CRLF and blank lines do not matter', async () => {
  const text = vectorText('keys/alice.nocrypt.sec');
  for (const kind of ['CRYPT4GH ENCRYPTED PRIVATE KEY', 'ENCRYPTED PRIVATE KEY']) {
    const pair = await parsePrivateKey(text.replaceAll('CRYPT4GH PRIVATE KEY', kind), never, kind);
    assert.equal(pair.public.toString('hex'), '861d636a8815ccc7d9309d55c440cd3774925fb9c20c3e28247a7311fb606867');
  }
  const crlf = `\r\n${text.replaceAll('\n', '\r\n\r\n')}`;
  assert.equal((await parsePrivateKey(crlf, never, 'crlf')).comment, 'alice@example.org');
});

test('a wrong passphrase is refused in one line that names the key', async () => {
  for (const file of ['keys/alice.sec', 'keys/carol.bcrypt.sec', 'keys/dave.pbkdf2.sec']) {
    await assert.rejects(
      parsePrivateKey(vectorText(file), async () => 'not-the-passphrase', file),
      (e: unknown) => e instanceof SlicefsError && e.code === 'KEY' && e.message === `wrong passphrase for ${file} (or a corrupt key)`,
    );
  }
  // bcrypt_pbkdf refuses an empty passphrase outright: the same answer.
  await assert.rejects(parsePrivateKey(vectorText('keys/carol.bcrypt.sec'), async () => '', 'carol'), isKeyError(/^wrong passphrase for carol/));
  assert.equal(errnoName(new SlicefsError('KEY', 'x')), 'EACCES');
  assert.equal(errnoName(new SlicefsError('DECRYPT', 'x')), 'EIO');
});

test('malformed private keys: each says what is wrong, and never shows key bytes', async () => {
  const alice = Buffer.from(vectorText('keys/alice.sec').split('\n')[1]!, 'base64');
  const nocrypt = Buffer.from(vectorText('keys/alice.nocrypt.sec').split('\n')[1]!, 'base64');
  const cases: [string, string, RegExp][] = [
    ['not armoured', alice.toString('base64'), /^k: not an armoured key/],
    ['public key given', vectorText('keys/alice.pub'), /not a private key \(the armour says CRYPT4GH PUBLIC KEY\)/],
    ['OpenSSH', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n', /OpenSSH key/],
    ['not base64', '-----BEGIN CRYPT4GH PRIVATE KEY-----\nYzRnaC1*MQ==\n-----END CRYPT4GH PRIVATE KEY-----', /not base64/],
    ['bad magic', armourOf(Buffer.concat([Buffer.from('c4gh-v2'), alice.subarray(7)])), /bad magic/],
    ['unknown kdf', armourOf(Buffer.concat([Buffer.from('c4gh-v1\x00\x06argon2'), alice.subarray(15)])), /unknown key derivation function "argon2"/],
    ['unknown cipher', armourOf(Buffer.concat([nocrypt.subarray(0, 13), Buffer.from('\x00\x04aes!'), nocrypt.subarray(19)])), /unknown key cipher "aes!"/],
    ['truncated material', armourOf(alice.subarray(0, 80)), /truncated key material/],
    ['truncated kdf options', armourOf(alice.subarray(0, 20)), /truncated kdf options/],
    ['truncated before cipher', armourOf(alice.subarray(0, 37)), /truncated before the cipher name/],
    ['short secret', armourOf(Buffer.concat([nocrypt.subarray(0, 19), Buffer.from([0, 31]), nocrypt.subarray(21, 52)])), /unprotected secret of 31 bytes/],
  ];
  for (const [what, text, re] of cases) {
    await assert.rejects(parsePrivateKey(text, async () => 'alice-secret-phrase', 'k'), isKeyError(re), what);
  }
  // A damaged comment does not spoil the key (the reference never reads it).
  const pair = await parsePrivateKey(armourOf(nocrypt.subarray(0, nocrypt.length - 3)), never, 'k');
  assert.equal(pair.public.toString('hex'), '861d636a8815ccc7d9309d55c440cd3774925fb9c20c3e28247a7311fb606867');
  assert.equal(pair.comment, undefined);
});

test('public keys: armoured, bare base64 (GHGA well-known values), and what is refused', () => {
  const hex = '861d636a8815ccc7d9309d55c440cd3774925fb9c20c3e28247a7311fb606867';
  assert.equal(parsePublicKey(vectorText('keys/alice.pub'), 'a').toString('hex'), hex);
  assert.equal(parsePublicKey(`  ${Buffer.from(hex, 'hex').toString('base64')}\n`, 'a').toString('hex'), hex);
  assert.throws(() => parsePublicKey(Buffer.alloc(31).toString('base64'), 'p'), isKeyError(/^p: malformed public key \(31 bytes, not 32\)/));
  assert.throws(() => parsePublicKey('not a key!', 'p'), isKeyError(/not base64/));
  assert.throws(() => parsePublicKey(vectorText('keys/alice.sec'), 'p'), isKeyError(/not a public key/));
  assert.throws(() => parsePublicKey('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI', 'p'), isKeyError(/OpenSSH public key/));
});

test('encodePublicKey writes the .pub files byte for byte', () => {
  for (const meta of index.keys) {
    assert.equal(encodePublicKey(Buffer.from(meta.public_key_hex, 'hex')), vectorText(meta.public_file), meta.public_file);
  }
});

test('re-encoding a reference key with its own salt and nonce gives the identical file', async () => {
  for (const file of ['keys/alice.sec', 'keys/bob.sec']) {
    const pair = await loadKey(file);
    const fields = decodePrivateKeyFile(vectorText(file), file);
    const again = await encodePrivateKey(pair, index.keys.find((k) => k.file === file)!.passphrase!, {
      salt: fields.salt,
      nonce: fields.material.subarray(0, 12),
    });
    assert.equal(again, vectorText(file), file);
  }
  // Unprotected keys have nothing random in them: identical as they are.
  for (const file of ['keys/alice.nocrypt.sec', 'keys/erin.nocrypt.sec']) {
    const pair = await parsePrivateKey(vectorText(file), never, file);
    assert.equal(await encodePrivateKey(pair, undefined), vectorText(file), file);
  }
});

test('generated keys round-trip through the writer and the reader', async () => {
  const pair = generateKeyPair('me@example.org');
  assert.equal(pair.secret.length, 32);
  assert.ok(pair.public.equals(keyPairFromSecret(pair.secret).public));
  const text = await encodePrivateKey(pair, 'pass phrase ü');
  const fields = decodePrivateKeyFile(text, 'new');
  assert.equal(fields.kdf, 'scrypt');
  assert.equal(fields.rounds, 0);
  assert.equal(fields.salt.length, 16);
  assert.equal(fields.cipher, 'chacha20_poly1305');
  assert.equal(fields.material.length, 60);
  const back = await parsePrivateKey(text, async () => 'pass phrase ü', 'new');
  assert.ok(back.secret.equals(pair.secret) && back.public.equals(pair.public));
  assert.equal(back.comment, 'me@example.org');
  // Two encodings of the same key differ (random salt and nonce).
  assert.notEqual(await encodePrivateKey(pair, 'pass phrase ü'), text);
  // No passphrase (or an empty one, as the reference): stored unprotected, no comment field.
  for (const pass of [undefined, '']) {
    const plain = await encodePrivateKey(generateKeyPair(), pass);
    assert.equal(decodePrivateKeyFile(plain, 'n').kdf, 'none');
    assert.equal((await parsePrivateKey(plain, never, 'n')).comment, undefined);
  }
  assert.equal(parsePublicKey(encodePublicKey(pair.public), 'p').toString('hex'), pair.public.toString('hex'));
  assert.notEqual(generateKeyPair().secret.toString('hex'), generateKeyPair().secret.toString('hex'));
});
