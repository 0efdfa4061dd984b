/**
 * libsodium sealed boxes (`crypto_box_seal` / `crypto_box_seal_open`): how GHGA hands a user its
 * download token and work-order tokens, sealed to the user's Crypt4GH public key (ghga-protocol.md §1).
 *
 * A sealed box is epk ‖ crypto_box(m): an ephemeral X25519 public key, then the NaCl box of the
 * message from the ephemeral secret to the recipient, in libsodium's "easy" layout MAC(16) ‖
 * ciphertext. crypto_box is XSalsa20-Poly1305 (secretbox) under the key
 * crypto_box_beforenm = HSalsa20(X25519(secret, peer), 0^16), with the nonce
 * BLAKE2b(epk ‖ recipient_pk) at a 24-byte output. BLAKE2b's output length is a parameter of the
 * hash, so that is not a truncation of BLAKE2b-512.
 *
 * Libraries: X25519 is Node's (x25519.ts). Node has neither XSalsa20-Poly1305 nor HSalsa20 nor
 * BLAKE2b with a 24-byte output, so those come from the audited @noble/ciphers (`xsalsa20poly1305`,
 * which returns MAC ‖ ciphertext exactly as NaCl's secretbox, and its exported `hsalsa` core) and
 * @noble/hashes (`blake2b` with dkLen 24), both 2.4.0, pure ESM, no dependencies. Tokens are a
 * few dozen bytes, so their JS speed does not matter. Checked against libsodium 1.0.18 with
 * known-answer vectors in test/unit/crypt4gh-sealed-box.test.ts.
 */
import { hsalsa, xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { swap32IfBE, u32, u8 } from '@noble/ciphers/utils.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { SlicefsError } from '../errors.js';
import type { C4ghKeyPair } from './keys.js';
import { randomKeyPair, sharedSecret, X25519_KEY_SIZE } from './x25519.js';

const MAC_SIZE = 16;
export const SEAL_OVERHEAD = X25519_KEY_SIZE + MAC_SIZE; // 48

// "expand 32-byte k" as the words HSalsa20 starts from (byte order: hsalsa swaps on big-endian hosts).
const SIGMA = u32(new Uint8Array(Buffer.from('expand 32-byte k', 'latin1')));

/** crypto_box_beforenm: HSalsa20 of the X25519 shared secret with a zero input. */
function boxKey(shared: Buffer): Uint8Array {
  const k = u32(new Uint8Array(shared)); // a fresh, 4-byte-aligned copy
  const out = new Uint32Array(8);
  hsalsa(SIGMA, k, new Uint32Array(4), out);
  swap32IfBE(out); // as @noble/ciphers' own XSalsa20 does after hsalsa: words back to byte order
  k.fill(0);
  return u8(out);
}

function sealNonce(ephemeralPublic: Uint8Array, recipientPublic: Uint8Array): Uint8Array {
  return blake2b.create({ dkLen: 24 }).update(ephemeralPublic).update(recipientPublic).digest();
}

/** The message of a sealed box, opened with the recipient's key pair. `label` names the box in messages. */
export function openSealedBox(box: Buffer, pair: C4ghKeyPair, label = 'the token'): Buffer {
  const refuse = () => new SlicefsError('KEY', `${label} was not sealed for this key (public key ${pair.public.subarray(0, 8).toString('hex')}…) or is corrupt`);
  if (box.length < SEAL_OVERHEAD) throw refuse();
  const epk = box.subarray(0, X25519_KEY_SIZE);
  const shared = sharedSecret(pair.secret, epk);
  if (!shared) throw refuse();
  const key = boxKey(shared);
  shared.fill(0);
  try {
    return Buffer.from(xsalsa20poly1305(key, sealNonce(epk, pair.public)).decrypt(box.subarray(X25519_KEY_SIZE)));
  } catch {
    throw refuse(); // @noble/ciphers throws on a MAC that does not verify
  } finally {
    key.fill(0);
  }
}

/**
 * A sealed box of `plain` for `recipientPublic` (for test fixtures: what GHGA's services do).
 * `ephemeral` fixes the ephemeral key pair: for known-answer tests only.
 */
export function sealBox(plain: Buffer, recipientPublic: Buffer, ephemeral?: { secret: Buffer; public: Buffer }): Buffer {
  if (recipientPublic.length !== X25519_KEY_SIZE) throw new RangeError('a recipient public key is 32 bytes');
  const eph = ephemeral ?? randomKeyPair();
  const shared = sharedSecret(eph.secret, recipientPublic);
  if (!shared) throw new SlicefsError('KEY', 'the recipient public key is unusable (low order)');
  const key = boxKey(shared);
  const sealed = xsalsa20poly1305(key, sealNonce(eph.public, recipientPublic)).encrypt(plain);
  key.fill(0);
  return Buffer.concat([eph.public, sealed]);
}
