import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { generateKeyPair, keyPairFromSecret } from '../../src/crypt4gh/keys.js';
import { openSealedBox, sealBox } from '../../src/crypt4gh/sealed-box.js';
import { loadKey } from '../helpers/c4gh-vectors.js';

// Known answers from libsodium 1.0.18 itself (Debian's libsodium.so.23, called through Python's
// ctypes): `libsodium` is the output of crypto_box_seal (random ephemeral key); `deterministic` is
// epk ‖ crypto_box_easy(msg, BLAKE2b-24(epk ‖ rpk), rpk, esk) with the fixed ephemeral secret
// below, which crypto_box_seal_open accepted.
const KAT = {
  recipientSecret: '0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20',
  recipientPublic: '07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c',
  ephemeralSecret: '65666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384',
  ephemeralPublic: '5714769d116bf76436ae74bc793d2c30ad1903c59ac5273805c7e2698b410c36',
  message: 'GHGA download token: 0123456789abcdefghijklmnopqrstuvwxyz',
  deterministic:
    '5714769d116bf76436ae74bc793d2c30ad1903c59ac5273805c7e2698b410c36e69e8837dea007c2871031ec9187efa966d664232361f371749054d2ad57ca9c9d0895a9a6a3b29ebca825e7b095e19ed1b3532dab76f6379995ad65bc2f9eddc27df9ca4e0efeae61',
  libsodium:
    '30402699c25ee952dd39a5c6f2bd586f0ae3dc34edbc66ce3162069d4bf5f00fc12a19e8f2345f1cbc55253e21db7f07dd2e6b4ba6424fe38ed59732b8d2c64d9e61a8c15bd3495399c913f9ad0b2757bc9ea3ce964388749237fcc5fbf1893e488cefe126947df546',
};

function refused(e: unknown): boolean {
  return e instanceof SlicefsError && e.code === 'KEY' && /^the token was not sealed for this key \(public key [0-9a-f]{16}…\) or is corrupt$/.test(e.message);
}

test('libsodium known answers: its sealed box opens, and ours is byte-identical with the same ephemeral key', () => {
  const recipient = keyPairFromSecret(Buffer.from(KAT.recipientSecret, 'hex'));
  assert.equal(recipient.public.toString('hex'), KAT.recipientPublic);
  const ephemeral = keyPairFromSecret(Buffer.from(KAT.ephemeralSecret, 'hex'));
  assert.equal(ephemeral.public.toString('hex'), KAT.ephemeralPublic);
  assert.equal(openSealedBox(Buffer.from(KAT.libsodium, 'hex'), recipient).toString(), KAT.message);
  assert.equal(openSealedBox(Buffer.from(KAT.deterministic, 'hex'), recipient).toString(), KAT.message);
  assert.equal(sealBox(Buffer.from(KAT.message), recipient.public, ephemeral).toString('hex'), KAT.deterministic);
});

test('round trip with a Crypt4GH key, GHGA-sized: a 24-character token is a 72-byte box, 96 base64 characters', async () => {
  const alice = await loadKey('keys/alice.sec');
  const token = Buffer.from('AbCdEfGhIjKlMnOpQrStUvWx');
  const box = sealBox(token, alice.public);
  assert.equal(box.length, 72);
  assert.equal(box.toString('base64').length, 96);
  assert.ok(openSealedBox(box, alice).equals(token));
  assert.ok(!sealBox(token, alice.public).equals(box), 'a fresh ephemeral key each time');
  assert.equal(openSealedBox(sealBox(Buffer.alloc(0), alice.public), alice).length, 0);
});

test('tampered boxes, the wrong key and short input are refused', async () => {
  const me = generateKeyPair();
  const box = sealBox(Buffer.from('secret token'), me.public);
  for (let at = 0; at < box.length; at += 7) {
    const bad = Buffer.from(box);
    bad[at]! ^= 0x80;
    assert.throws(() => openSealedBox(bad, me), refused, `flip at ${at}`);
  }
  assert.throws(() => openSealedBox(box, generateKeyPair()), refused);
  assert.throws(() => openSealedBox(box.subarray(0, 47), me), refused);
  assert.throws(() => openSealedBox(Buffer.concat([Buffer.alloc(32), box.subarray(32)]), me), refused, 'low-order ephemeral key');
  assert.throws(
    () => openSealedBox(box, generateKeyPair(), 'the work-order token'),
    (e: unknown) => e instanceof SlicefsError && e.message.startsWith('the work-order token was not sealed for this key'),
  );
  assert.throws(() => sealBox(Buffer.from('x'), Buffer.alloc(31)), RangeError);
});
