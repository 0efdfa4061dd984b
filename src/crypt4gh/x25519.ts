/**
 * X25519 (RFC 7748) on raw 32-byte keys, the way Crypt4GH and libsodium store them.
 *
 * Why Node's built-in `crypto` (OpenSSL) and not a JS curve library: it is in every Node ≥ 12, is
 * maintained with Node's security releases, and costs no dependency. It only takes keys as
 * KeyObjects, so raw keys go in through fixed DER wrappers: PKCS#8 for a secret
 * (`302e020100300506032b656e04220420` ‖ 32 bytes) and SPKI for a public key
 * (`302a300506032b656e032100` ‖ 32 bytes), OID 1.3.101.110 = X25519. OpenSSL clamps the scalar
 * itself, exactly as libsodium's `crypto_scalarmult` does, so a secret is stored unclamped (as the
 * reference writes it) and used as is.
 *
 * A low-order public key gives an all-zero shared secret, which OpenSSL refuses (as libsodium's
 * `crypto_scalarmult` and `crypto_kx` do): `sharedSecret` returns undefined then, and callers treat
 * the packet or token as one this key cannot open.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
export const X25519_KEY_SIZE = 32;

// A reader tries the same secret on every header packet (and a mount on every file): build its
// KeyObject once per secret buffer. Secret buffers are never changed after they are made (the key
// loader copies what it decrypts), so the buffer identifies the key.
const privateKeys = new WeakMap<Buffer, KeyObject>();

function privateKeyObject(secret: Buffer): KeyObject {
  let key = privateKeys.get(secret);
  if (!key) {
    if (secret.length !== X25519_KEY_SIZE) throw new RangeError(`an X25519 secret key is 32 bytes, not ${secret.length}`);
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
    privateKeys.set(secret, key);
  }
  return key;
}

function publicKeyObject(pub: Buffer): KeyObject {
  if (pub.length !== X25519_KEY_SIZE) throw new RangeError(`an X25519 public key is 32 bytes, not ${pub.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' });
}

function rawPublic(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - X25519_KEY_SIZE));
}

/** The public key of a secret: X25519(secret, base point). */
export function publicKeyOf(secret: Buffer): Buffer {
  return rawPublic(createPublicKey(privateKeyObject(secret)));
}

/** X25519(secret, peer), or undefined when the peer key is of low order (all-zero result). */
export function sharedSecret(secret: Buffer, peerPublic: Buffer): Buffer | undefined {
  const priv = privateKeyObject(secret);
  let pub: KeyObject;
  try {
    pub = publicKeyObject(peerPublic);
  } catch {
    return undefined;
  }
  try {
    return diffieHellman({ privateKey: priv, publicKey: pub });
  } catch {
    return undefined; // OpenSSL: "failed during derivation" for an all-zero shared secret
  }
}

/** A fresh random key pair (OpenSSL's CSPRNG), both halves raw. */
export function randomKeyPair(): { secret: Buffer; public: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return { secret: Buffer.from(der.subarray(der.length - X25519_KEY_SIZE)), public: rawPublic(publicKey) };
}
