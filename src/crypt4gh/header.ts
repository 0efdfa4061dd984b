/**
 * The Crypt4GH header: finding its length, opening it with the reader's keys, and writing one.
 *
 * Layout (little-endian): magic `crypt4gh`, version u32 = 1, packet count u32, then the packets.
 * A packet is its length u32 (counting these 4 bytes), its encryption method u32 (0 = X25519 +
 * ChaCha20-IETF-Poly1305), the writer's public key (32), a nonce (12) and the encrypted payload
 * with its MAC (16). The packet key is libsodium's `crypto_kx` session key: the reader is the
 * client and takes its receive key, the writer the server and takes its transmit key, both
 * K = BLAKE2b-512(X25519(own secret, peer public) ‖ reader_pk ‖ writer_pk)[0..32].
 * A decrypted payload starts with its type u32:
 *   0  data encryption parameters: method u32 (0 = ChaCha20-IETF-Poly1305) ‖ 32-byte data key;
 *   1  data edit list: count u32 ‖ count × u64 lengths (edit-list.ts), at most one per file.
 *
 * Reading follows the reference (EGA-archive/crypt4gh `header.py`): packets no key opens are
 * skipped (they are for other recipients), and at least one must open; an opened packet of an
 * unknown type, or a data key for an unknown bulk method, is an error rather than something to
 * ignore (it could change what the data means). With a sender key, packets written by any other
 * key do not count, as the reference's `--sender_pk`.
 *
 * Cost bound: a 1 MiB header can hold ~15k packets, and trying one costs an X25519 (0.1–0.35 ms
 * here) and an AEAD open per reader key: seconds of CPU per open, per key. So the X25519 is
 * computed once per (reader key, writer key) (a real header's packets share one writer key: the
 * reference tool writes them all with one sender key, a fresh one or `--sk`), and at most
 * MAX_PACKETS_TRIED packets are tried; a header with more is refused as malformed.
 *
 * Libraries: X25519, BLAKE2b-512 (`blake2b512`) and ChaCha20-Poly1305 are all in Node's
 * built-in `crypto` (x25519.ts, chacha.ts): no dependency needed for the header.
 */
import { createHash, randomBytes } from 'node:crypto';
import { SlicefsError } from '../errors.js';
import { chachaOpen, chachaSeal, KEY_SIZE, MAC_SIZE, NONCE_SIZE } from './chacha.js';
import type { C4ghKeyPair } from './keys.js';
import { randomKeyPair, sharedSecret, X25519_KEY_SIZE } from './x25519.js';

const MAGIC = Buffer.from('crypt4gh');
const VERSION = 1;
const PREFIX_SIZE = 16; // magic, version, packet count
/** Headers are ~124 bytes per recipient; anything near this is not a real header. */
export const MAX_HEADER_SIZE = 1 << 20;
const MIN_PACKET = 8; // length + method: enough to say which method a packet uses
const X25519_PACKET_OVERHEAD = 4 + 4 + X25519_KEY_SIZE + NONCE_SIZE + MAC_SIZE; // 68
const PACKET_DATA_ENC = 0;
const PACKET_EDIT_LIST = 1;
const METHOD_X25519_CHACHA = 0;
const DATA_METHOD_CHACHA = 0;
/**
 * X25519 packets tried per header (see the module header). A real header has one data key packet
 * per recipient, and an edit list packet per recipient when it has one: 128 is 64 recipients with
 * edit lists, where archives (EGA, GHGA) re-encrypt for one requester at a time. The bound costs a
 * reader at most 128 X25519 and 128 AEAD opens per key (~15–50 ms), not ~15k.
 */
export const MAX_PACKETS_TRIED = 128;

export interface C4ghHeader {
  /** Header bytes: the body starts here. */
  length: number;
  /** Data keys from the packets this reader opened, without duplicates. */
  dataKeys: Buffer[];
  /** Edit list lengths (skip, keep, skip, …), when the header has one for this reader. */
  editList?: number[];
  /** Public keys of the writers of the packets this reader opened, without duplicates. */
  writerPublicKeys: Buffer[];
}

function notCrypt4gh(label: string | undefined, why: string): SlicefsError {
  return new SlicefsError('DECRYPT', `${label === undefined ? '' : `${label}: `}not a Crypt4GH file (${why})`);
}

/**
 * The header's total length once `prefix` (the file's first bytes) holds enough of it (the fixed
 * 16 bytes and every packet's length field), else undefined: fetch more and ask again. Throws
 * DECRYPT for a bad magic or version, or counts and lengths no real header has.
 */
export function headerLength(prefix: Buffer, label?: string): number | undefined {
  const magicSeen = Math.min(prefix.length, MAGIC.length);
  if (!prefix.subarray(0, magicSeen).equals(MAGIC.subarray(0, magicSeen))) {
    throw notCrypt4gh(label, 'it does not start with "crypt4gh"');
  }
  if (prefix.length < PREFIX_SIZE) return undefined;
  const version = prefix.readUInt32LE(8);
  if (version !== VERSION) throw notCrypt4gh(label, `version ${version}; slicefs reads version 1`);
  const count = prefix.readUInt32LE(12);
  if (count === 0) throw notCrypt4gh(label, 'its header has no packets');
  if (count > (MAX_HEADER_SIZE - PREFIX_SIZE) / MIN_PACKET) throw notCrypt4gh(label, `${count} header packets`);
  let offset = PREFIX_SIZE;
  for (let i = 0; i < count; i++) {
    if (prefix.length < offset + 4) return undefined;
    const len = prefix.readUInt32LE(offset);
    if (len < MIN_PACKET) throw notCrypt4gh(label, `header packet ${i} claims ${len} bytes`);
    offset += len;
    if (offset > MAX_HEADER_SIZE) throw notCrypt4gh(label, `a header of more than ${MAX_HEADER_SIZE} bytes`);
  }
  return offset;
}

/** crypto_kx session key: BLAKE2b-512(X25519 ‖ reader_pk ‖ writer_pk)[0..32]; undefined for a low-order key. */
function packetKey(ownSecret: Buffer, peerPublic: Buffer, readerPublic: Buffer, writerPublic: Buffer): Buffer | undefined {
  const shared = sharedSecret(ownSecret, peerPublic);
  if (!shared) return undefined;
  return createHash('blake2b512').update(shared).update(readerPublic).update(writerPublic).digest().subarray(0, KEY_SIZE);
}

function hexPrefix(pub: Buffer): string {
  return `${pub.subarray(0, 8).toString('hex')}…`;
}

function pushUnique(list: Buffer[], item: Buffer): void {
  if (!list.some((b) => b.equals(item))) list.push(item);
}

/**
 * Opens a header (a buffer that starts with it; bytes after it are ignored) with the reader's key
 * pairs. `label` names the file and `keyLabel` the key(s) in messages (default: the public keys'
 * hex prefixes).
 */
export function decryptHeader(
  header: Buffer,
  keys: C4ghKeyPair[],
  opts: { senderPublicKey?: Buffer; label?: string; keyLabel?: string } = {},
): C4ghHeader {
  const where = opts.label === undefined ? '' : `${opts.label}: `;
  const length = headerLength(header, opts.label);
  if (length === undefined || header.length < length) {
    throw new SlicefsError('DECRYPT', `${where}the Crypt4GH header is truncated (${header.length} bytes)`);
  }
  const count = header.readUInt32LE(12);
  const dataKeys: Buffer[] = [];
  const writerPublicKeys: Buffer[] = [];
  let editList: number[] | undefined;
  let unsupportedMethod: number | undefined;
  let unsupportedDataMethod: number | undefined;
  let otherWriters = 0;
  let tried = 0;
  /** Per writer key met: the packet key for each reader key (undefined: that key cannot use it). */
  const packetKeys = new Map<string, (Buffer | undefined)[]>();
  let offset = PREFIX_SIZE;
  for (let i = 0; i < count; i++) {
    const len = header.readUInt32LE(offset);
    const packet = header.subarray(offset, offset + len);
    offset += len;
    const method = packet.readUInt32LE(4);
    if (method !== METHOD_X25519_CHACHA) {
      unsupportedMethod = method; // perhaps for us, perhaps not: only an error if nothing else opens
      continue;
    }
    if (len < X25519_PACKET_OVERHEAD + 4) {
      throw new SlicefsError('DECRYPT', `${where}malformed Crypt4GH header: packet ${i} is only ${len} bytes`);
    }
    const writer = packet.subarray(8, 8 + X25519_KEY_SIZE);
    if (opts.senderPublicKey && !opts.senderPublicKey.equals(writer)) {
      otherWriters++;
      continue;
    }
    if (++tried > MAX_PACKETS_TRIED) {
      throw new SlicefsError('DECRYPT', `${where}malformed Crypt4GH header: more than ${MAX_PACKETS_TRIED} key packets (a real header has one or two per recipient)`);
    }
    const nonce = packet.subarray(40, 40 + NONCE_SIZE);
    const sealed = packet.subarray(40 + NONCE_SIZE);
    const writerHex = writer.toString('hex');
    let derived = packetKeys.get(writerHex);
    if (!derived) {
      derived = keys.map((pair) => packetKey(pair.secret, writer, pair.public, writer));
      packetKeys.set(writerHex, derived);
    }
    let payload: Buffer | undefined;
    for (const key of derived) {
      payload = key && chachaOpen(key, nonce, sealed);
      if (payload) break;
    }
    if (!payload) continue; // for another recipient
    pushUnique(writerPublicKeys, Buffer.from(writer));
    const type = payload.readUInt32LE(0);
    if (type === PACKET_DATA_ENC) {
      if (payload.length !== 8 + KEY_SIZE) {
        throw new SlicefsError('DECRYPT', `${where}malformed Crypt4GH header: a data key packet of ${payload.length} bytes`);
      }
      const dataMethod = payload.readUInt32LE(4);
      if (dataMethod !== DATA_METHOD_CHACHA) {
        unsupportedDataMethod = dataMethod;
        continue;
      }
      pushUnique(dataKeys, Buffer.from(payload.subarray(8)));
    } else if (type === PACKET_EDIT_LIST) {
      const list = parseEditList(payload, where);
      // A reader holding several recipients' keys opens each recipient's copy of the same list:
      // only lists that disagree make the file ambiguous (the reference refuses any second one).
      if (editList && !(editList.length === list.length && editList.every((n, j) => n === list[j]))) {
        throw new SlicefsError('DECRYPT', `${where}malformed Crypt4GH header: more than one edit list`);
      }
      editList = list;
    } else {
      throw new SlicefsError('DECRYPT', `${where}unsupported Crypt4GH header packet type ${type}`);
    }
  }
  if (unsupportedDataMethod !== undefined) {
    // The reference refuses the file outright; a key we cannot use must not pass silently.
    throw new SlicefsError('DECRYPT', `${where}unsupported Crypt4GH data encryption method ${unsupportedDataMethod}`);
  }
  if (dataKeys.length === 0 && writerPublicKeys.length > 0) {
    throw new SlicefsError('DECRYPT', `${where}malformed Crypt4GH header: the packets for this key hold no data key`);
  }
  if (dataKeys.length === 0) {
    if (unsupportedMethod !== undefined) {
      throw new SlicefsError('DECRYPT', `${where}unsupported Crypt4GH header packet encryption method ${unsupportedMethod}`);
    }
    const who = opts.keyLabel ?? keys.map((k) => `key ${hexPrefix(k.public)}`).join(', ');
    const sender = otherWriters > 0 && opts.senderPublicKey ? ` by sender ${hexPrefix(opts.senderPublicKey)}` : '';
    throw new SlicefsError('KEY', `no key opens ${opts.label ?? 'this file'}: it was not encrypted for ${who || 'no key'}${sender}`);
  }
  const out: C4ghHeader = { length, dataKeys, writerPublicKeys };
  if (editList) out.editList = editList;
  return out;
}

function parseEditList(payload: Buffer, where: string): number[] {
  if (payload.length < 8) throw new SlicefsError('DECRYPT', `${where}malformed Crypt4GH edit list: truncated`);
  const n = payload.readUInt32LE(4);
  // As the reference: bytes after the n lengths are tolerated, fewer are not.
  if (payload.length < 8 + 8 * n) throw new SlicefsError('DECRYPT', `${where}malformed Crypt4GH edit list: ${n} lengths announced, fewer present`);
  if (n === 0) throw new SlicefsError('DECRYPT', `${where}malformed Crypt4GH edit list: it is empty`);
  const lengths: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = payload.readBigUInt64LE(8 + 8 * i);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SlicefsError('DECRYPT', `${where}malformed Crypt4GH edit list: length ${v}`);
    lengths.push(Number(v));
  }
  return lengths;
}

function encryptPacket(payload: Buffer, recipient: Buffer, writer: C4ghKeyPair): Buffer {
  // The writer's side of crypto_kx (server tx): the same hash input order as the reader's.
  const key = packetKey(writer.secret, recipient, recipient, writer.public);
  if (!key) throw new SlicefsError('KEY', `the recipient public key ${hexPrefix(recipient)} is unusable (low order)`);
  const nonce = randomBytes(NONCE_SIZE);
  const sealed = chachaSeal(key, nonce, payload);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(8 + X25519_KEY_SIZE + NONCE_SIZE + sealed.length, 0);
  head.writeUInt32LE(METHOD_X25519_CHACHA, 4);
  return Buffer.concat([head, writer.public, nonce, sealed]);
}

/**
 * A header giving `dataKey` (and `editList`, when given) to each recipient public key: one data
 * key packet per recipient, then its edit list packet. The writer key is a fresh throwaway pair
 * unless given (as `crypt4gh encrypt` without `--sk`).
 */
export function encryptHeader(dataKey: Buffer, recipients: Buffer[], opts: { editList?: number[]; writer?: C4ghKeyPair } = {}): Buffer {
  if (dataKey.length !== KEY_SIZE) throw new RangeError('a Crypt4GH data key is 32 bytes');
  if (recipients.length === 0) throw new RangeError('a Crypt4GH header needs at least one recipient');
  const writer = opts.writer ?? randomKeyPair();
  const dataPacket = Buffer.alloc(8 + KEY_SIZE);
  dataPacket.writeUInt32LE(PACKET_DATA_ENC, 0);
  dataPacket.writeUInt32LE(DATA_METHOD_CHACHA, 4);
  dataKey.copy(dataPacket, 8);
  let editPacket: Buffer | undefined;
  if (opts.editList) {
    const list = opts.editList;
    if (list.length === 0) throw new RangeError('an edit list has at least one length');
    editPacket = Buffer.alloc(8 + 8 * list.length);
    editPacket.writeUInt32LE(PACKET_EDIT_LIST, 0);
    editPacket.writeUInt32LE(list.length, 4);
    list.forEach((n, i) => {
      if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad edit list length ${n}`);
      editPacket!.writeBigUInt64LE(BigInt(n), 8 + 8 * i);
    });
  }
  const packets: Buffer[] = [];
  for (const recipient of recipients) {
    if (recipient.length !== X25519_KEY_SIZE) throw new RangeError('a Crypt4GH public key is 32 bytes');
    packets.push(encryptPacket(dataPacket, recipient, writer));
    if (editPacket) packets.push(encryptPacket(editPacket, recipient, writer));
  }
  const prefix = Buffer.alloc(PREFIX_SIZE);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(VERSION, 8);
  prefix.writeUInt32LE(packets.length, 12);
  return Buffer.concat([prefix, ...packets]);
}
