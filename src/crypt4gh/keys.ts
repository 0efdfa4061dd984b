/**
 * Crypt4GH key files: read, write and make X25519 key pairs in the reference implementation's
 * format (EGA-archive/crypt4gh `crypt4gh/keys/c4gh.py`, `crypt4gh-keygen`).
 *
 * Armour: `-----BEGIN CRYPT4GH PRIVATE KEY-----` / base64 on one line / `-----END …-----` (older
 * files say `ENCRYPTED PRIVATE KEY`; the reference goes by the magic inside, and so do we). The
 * decoded private key is `c4gh-v1` then strings each prefixed by a big-endian u16 length:
 *
 *   kdf name          none | scrypt | bcrypt | pbkdf2_hmac_sha256
 *   kdf options       (absent when kdf is none) rounds as big-endian u32 ‖ salt
 *   cipher name       none | chacha20_poly1305
 *   key material      32-byte secret, or nonce(12) ‖ ChaCha20-Poly1305(secret)(32) ‖ MAC(16)
 *   comment           optional, UTF-8
 *
 * The passphrase (UTF-8, used as given) goes through the KDF to a 32-byte key that opens the key
 * material. scrypt is always N = 2^14, r = 8, p = 1 (the rounds field is written as 0 and unused);
 * bcrypt is OpenSSH's bcrypt_pbkdf with `rounds`; PBKDF2 is HMAC-SHA256 with `rounds`. The file holds
 * only the secret: the public key is X25519(secret, base point). A public key file is the same
 * armour (`CRYPT4GH PUBLIC KEY`) around the 32 raw bytes.
 *
 * Libraries: scrypt and PBKDF2 are Node's own (`crypto.scrypt`, `crypto.pbkdf2`: OpenSSL, async
 * on the libuv pool so a prompt-driven load does not block the event loop); X25519 and
 * ChaCha20-Poly1305 too (x25519.ts, chacha.ts). Node has no bcrypt_pbkdf, so bcrypt keys use npm
 * `bcrypt-pbkdf` 1.0.2 (Joyent's port of OpenBSD's function, the one the ssh2/sshpk ecosystem uses;
 * synchronous, but only for bcrypt keys, which the reference itself writes only when its Python
 * lacks scrypt). No hand-written primitives here: only the container format.
 *
 * Messages name the key by the caller's label and never contain key bytes.
 */
import { pbkdf2, randomBytes, scrypt } from 'node:crypto';
import { promisify } from 'node:util';
import bcryptPbkdf from 'bcrypt-pbkdf';
import { SlicefsError } from '../errors.js';
import { chachaOpen, chachaSeal, KEY_SIZE, MAC_SIZE, NONCE_SIZE } from './chacha.js';
import { publicKeyOf, randomKeyPair, X25519_KEY_SIZE } from './x25519.js';

export interface C4ghKeyPair {
  /** The raw 32-byte X25519 secret, as the key file holds it (unclamped). */
  secret: Buffer;
  /** X25519(secret, base point), 32 bytes. */
  public: Buffer;
  comment?: string;
}

const MAGIC = Buffer.from('c4gh-v1');
const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const SALT_SIZE = 16;
const KDFS = ['none', 'scrypt', 'bcrypt', 'pbkdf2_hmac_sha256'] as const;
type KdfName = (typeof KDFS)[number];
/**
 * The most KDF rounds a key file may ask for. The file decides how much work opening it costs, and
 * bcrypt runs on the main thread (the bcrypt-pbkdf package is synchronous, ~26 ms a round here), so
 * a crafted key with 2^32 rounds would hang slicefs. Real keys: OpenSSH's default is 16 bcrypt
 * rounds, the reference vectors use 100; PBKDF2-SHA256 at 10^7 rounds is ~6 s (OWASP asks 600,000).
 */
const MAX_ROUNDS: Record<'bcrypt' | 'pbkdf2_hmac_sha256', number> = { bcrypt: 200, pbkdf2_hmac_sha256: 10_000_000 };
const scryptAsync = promisify(scrypt) as (pass: Buffer, salt: Buffer, len: number, opts: object) => Promise<Buffer>;
const pbkdf2Async = promisify(pbkdf2);

/** The fields of a private key file, nothing decrypted (for the parser and for layout tests). */
export interface PrivateKeyFile {
  kdf: KdfName;
  rounds: number;
  salt: Buffer;
  cipher: 'none' | 'chacha20_poly1305';
  /** The secret (cipher none) or nonce ‖ encrypted secret ‖ MAC. */
  material: Buffer;
  comment?: string;
}

function keyError(label: string, what: string): SlicefsError {
  return new SlicefsError('KEY', `${label}: ${what}`);
}

function wrongPassphrase(label: string): SlicefsError {
  return new SlicefsError('KEY', `wrong passphrase for ${label} (or a corrupt key)`);
}

/** The base64 between the armour lines and the label of its BEGIN line; undefined when not armoured. */
function dearmour(text: string): { kind: string; body: string } | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/.exec(text);
  if (!m || m[1] !== m[3]) return undefined;
  return { kind: m[1]!, body: m[2]!.replace(/\s+/g, '') };
}

// Buffer.from(…, 'base64') skips characters it does not know; a key with a stray character is
// corrupt, not something to guess at.
function strictBase64(body: string): Buffer | undefined {
  if (body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) return undefined;
  return Buffer.from(body, 'base64');
}

/** Reads the reference's u16-length-prefixed strings. */
class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly label: string,
  ) {}
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  string(what: string): Buffer {
    if (this.remaining < 2) throw keyError(this.label, `malformed Crypt4GH private key (truncated before the ${what})`);
    const len = this.buf.readUInt16BE(this.pos);
    if (this.remaining < 2 + len) throw keyError(this.label, `malformed Crypt4GH private key (truncated ${what})`);
    const out = this.buf.subarray(this.pos + 2, this.pos + 2 + len);
    this.pos += 2 + len;
    return out;
  }
}

function encodeString(s: Buffer): Buffer {
  if (s.length > 0xffff) throw new RangeError('a key file string is at most 65535 bytes');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(s.length);
  return Buffer.concat([len, s]);
}

/** Decodes the armour and container of a private key file; decrypts nothing. */
export function decodePrivateKeyFile(text: string, label: string): PrivateKeyFile {
  const armour = dearmour(text);
  if (!armour) throw keyError(label, 'not an armoured key (no -----BEGIN …----- / -----END …----- lines)');
  if (armour.kind === 'OPENSSH PRIVATE KEY') {
    throw keyError(label, 'is an OpenSSH key: slicefs reads Crypt4GH keys (make one with crypt4gh-keygen)');
  }
  if (!armour.kind.includes('PRIVATE KEY')) throw keyError(label, `not a private key (the armour says ${armour.kind})`);
  const data = strictBase64(armour.body);
  if (!data) throw keyError(label, 'malformed Crypt4GH private key (the text between the armour lines is not base64)');
  if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw keyError(label, 'not a Crypt4GH private key (bad magic: it does not start with c4gh-v1)');
  }
  const r = new Reader(data.subarray(MAGIC.length), label);
  const kdfName = r.string('kdf name').toString('latin1');
  if (!(KDFS as readonly string[]).includes(kdfName)) throw keyError(label, `unknown key derivation function "${printable(kdfName)}"`);
  const kdf = kdfName as KdfName;
  let rounds = 0;
  let salt = Buffer.alloc(0);
  if (kdf !== 'none') {
    const options = r.string('kdf options');
    if (options.length < 4) throw keyError(label, 'malformed Crypt4GH private key (kdf options shorter than 4 bytes)');
    rounds = options.readUInt32BE(0);
    salt = Buffer.from(options.subarray(4));
    if (kdf !== 'scrypt' && rounds > MAX_ROUNDS[kdf]) {
      throw keyError(label, `a ${kdf} key with ${rounds} rounds (slicefs opens keys of at most ${MAX_ROUNDS[kdf]})`);
    }
  }
  const cipherName = r.string('cipher name').toString('latin1');
  if (cipherName !== 'none' && cipherName !== 'chacha20_poly1305') {
    throw keyError(label, `unknown key cipher "${printable(cipherName)}"`);
  }
  const material = Buffer.from(r.string('key material'));
  let comment: string | undefined;
  // The reference stops reading before the comment; a damaged comment does not spoil the key.
  if (r.remaining >= 2) {
    try {
      comment = r.string('comment').toString('utf8');
    } catch {
      comment = undefined;
    }
  }
  return { kdf, rounds, salt, cipher: cipherName, material, comment };
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
}

async function deriveKey(kdf: Exclude<KdfName, 'none'>, passphrase: Buffer, salt: Buffer, rounds: number, label: string): Promise<Buffer> {
  switch (kdf) {
    case 'scrypt':
      return scryptAsync(passphrase, salt, KEY_SIZE, SCRYPT);
    case 'pbkdf2_hmac_sha256':
      if (rounds < 1) throw keyError(label, 'malformed Crypt4GH private key (pbkdf2 with 0 rounds)');
      return pbkdf2Async(passphrase, salt, rounds, KEY_SIZE, 'sha256');
    case 'bcrypt': {
      if (rounds < 1) throw keyError(label, 'malformed Crypt4GH private key (bcrypt with 0 rounds)');
      if (salt.length === 0 || salt.length > 1 << 20) throw keyError(label, 'malformed Crypt4GH private key (bad bcrypt salt)');
      const out = new Uint8Array(KEY_SIZE);
      // -1 only for arguments it cannot use; an empty passphrase is the one left after the checks above.
      if (bcryptPbkdf.pbkdf(passphrase, passphrase.length, salt, salt.length, out, KEY_SIZE, rounds) !== 0) {
        throw wrongPassphrase(label);
      }
      return Buffer.from(out);
    }
  }
}

/** The key pair of a secret, with its public half computed. */
export function keyPairFromSecret(secret: Buffer, comment?: string): C4ghKeyPair {
  if (secret.length !== X25519_KEY_SIZE) throw new RangeError(`a Crypt4GH secret key is 32 bytes, not ${secret.length}`);
  const own = Buffer.from(secret); // x25519.ts caches a KeyObject per secret buffer: use the one kept
  const pair: C4ghKeyPair = { secret: own, public: publicKeyOf(own) };
  if (comment !== undefined) pair.comment = comment;
  return pair;
}

/**
 * Reads an armoured Crypt4GH private key. `passphrase` is called only when the key is protected;
 * `label` (e.g. the file's path) names the key in messages.
 */
export async function parsePrivateKey(text: string, passphrase: () => Promise<string>, label: string): Promise<C4ghKeyPair> {
  const file = decodePrivateKeyFile(text, label);
  if (file.cipher === 'none') {
    if (file.material.length !== X25519_KEY_SIZE) {
      throw keyError(label, `malformed Crypt4GH private key (an unprotected secret of ${file.material.length} bytes, not 32)`);
    }
    return keyPairFromSecret(file.material, file.comment);
  }
  if (file.kdf === 'none') throw keyError(label, 'malformed Crypt4GH private key (encrypted, but with kdf none)');
  if (file.material.length !== NONCE_SIZE + X25519_KEY_SIZE + MAC_SIZE) {
    throw keyError(label, `malformed Crypt4GH private key (encrypted key material of ${file.material.length} bytes, not 60)`);
  }
  const pass = Buffer.from(await passphrase(), 'utf8');
  const key = await deriveKey(file.kdf, pass, file.salt, file.rounds, label);
  const secret = chachaOpen(key, file.material.subarray(0, NONCE_SIZE), file.material.subarray(NONCE_SIZE));
  if (!secret) throw wrongPassphrase(label);
  return keyPairFromSecret(secret, file.comment);
}

/** Reads an armoured `CRYPT4GH PUBLIC KEY`, or a bare base64 32-byte key (as GHGA's well-known values hold them). */
export function parsePublicKey(text: string, label: string): Buffer {
  const trimmed = text.trim();
  let body: string;
  const armour = dearmour(trimmed);
  if (armour) {
    if (!armour.kind.includes('PUBLIC KEY')) throw keyError(label, `not a public key (the armour says ${armour.kind})`);
    body = armour.body;
  } else if (trimmed.startsWith('-----')) {
    throw keyError(label, 'malformed public key (armour lines do not match)');
  } else if (/^ssh-|^ecdsa-/.test(trimmed)) {
    throw keyError(label, 'is an OpenSSH public key: slicefs reads Crypt4GH keys');
  } else {
    body = trimmed;
  }
  const key = strictBase64(body);
  if (!key) throw keyError(label, 'malformed public key (not base64)');
  if (key.length !== X25519_KEY_SIZE) throw keyError(label, `malformed public key (${key.length} bytes, not 32)`);
  return key;
}

function armour(kind: string, data: Buffer): string {
  // The reference's exact bytes: one base64 line, a newline after the END line.
  return `-----BEGIN ${kind}-----\n${data.toString('base64')}\n-----END ${kind}-----\n`;
}

/**
 * Writes a private key file as `crypt4gh-keygen` does: scrypt + chacha20_poly1305 with a random
 * 16-byte salt and rounds field 0 when there is a passphrase, kdf and cipher `none` without one
 * (an empty passphrase counts as none, as in the reference).
 *
 * `deterministic` fixes salt and nonce: for layout tests only, never for real keys.
 */
export async function encodePrivateKey(
  pair: C4ghKeyPair,
  passphrase: string | undefined,
  deterministic?: { salt: Buffer; nonce: Buffer },
): Promise<string> {
  if (pair.secret.length !== X25519_KEY_SIZE) throw new RangeError('a Crypt4GH secret key is 32 bytes');
  const comment = pair.comment === undefined ? [] : [encodeString(Buffer.from(pair.comment, 'utf8'))];
  if (!passphrase) {
    const none = encodeString(Buffer.from('none'));
    return armour('CRYPT4GH PRIVATE KEY', Buffer.concat([MAGIC, none, none, encodeString(pair.secret), ...comment]));
  }
  const salt = deterministic?.salt ?? randomBytes(SALT_SIZE);
  const nonce = deterministic?.nonce ?? randomBytes(NONCE_SIZE);
  const key = await scryptAsync(Buffer.from(passphrase, 'utf8'), salt, KEY_SIZE, SCRYPT);
  const options = Buffer.concat([Buffer.alloc(4), salt]); // rounds 0: the reference's scrypt ignores it
  const data = Buffer.concat([
    MAGIC,
    encodeString(Buffer.from('scrypt')),
    encodeString(options),
    encodeString(Buffer.from('chacha20_poly1305')),
    encodeString(Buffer.concat([nonce, chachaSeal(key, nonce, pair.secret)])),
    ...comment,
  ]);
  return armour('CRYPT4GH PRIVATE KEY', data);
}

/** An armoured `CRYPT4GH PUBLIC KEY` file, byte for byte as crypt4gh-keygen writes it. */
export function encodePublicKey(pub: Buffer): string {
  if (pub.length !== X25519_KEY_SIZE) throw new RangeError('a Crypt4GH public key is 32 bytes');
  return armour('CRYPT4GH PUBLIC KEY', pub);
}

/** A new random key pair. */
export function generateKeyPair(comment?: string): C4ghKeyPair {
  const { secret, public: pub } = randomKeyPair();
  const pair: C4ghKeyPair = { secret, public: pub };
  if (comment !== undefined) pair.comment = comment;
  return pair;
}
