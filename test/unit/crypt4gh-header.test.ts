import assert from 'node:assert/strict';
import { createCipheriv, createHash, diffieHellman, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { decryptHeader, encryptHeader, headerLength, MAX_HEADER_SIZE, MAX_PACKETS_TRIED } from '../../src/crypt4gh/header.js';
import { generateKeyPair, type C4ghKeyPair } from '../../src/crypt4gh/keys.js';
import { encryptC4gh } from '../helpers/c4gh-encrypt.js';
import { decryptWhole, index, loadKey, plaintext, sha256, vector } from '../helpers/c4gh-vectors.js';

function decryptError(re: RegExp) {
  return (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && re.test(e.message);
}

test('headerLength: undefined until every packet length is there, then the length, for every vector', () => {
  for (const f of index.files.filter((v) => v.header_len !== undefined)) {
    const file = vector(f.file);
    let firstKnown = -1;
    for (let n = 0; n <= f.header_len!; n++) {
      const len = headerLength(file.subarray(0, n));
      if (len !== undefined && firstKnown < 0) firstKnown = n;
      if (len !== undefined) assert.equal(len, f.header_len, `${f.file} with ${n} bytes`);
    }
    // Known exactly when the last packet's length field (its first 4 bytes) has arrived.
    let lastPacket = 16;
    for (let i = 0; i < f.header_packets! - 1; i++) lastPacket += file.readUInt32LE(lastPacket);
    assert.equal(firstKnown, lastPacket + 4, f.file);
    assert.equal(headerLength(file), f.header_len);
  }
});

test('headerLength refuses what is not a Crypt4GH header', () => {
  const good = vector('enc/p1.alice.c4gh');
  const patch = (at: number, bytes: number[]) => {
    const b = Buffer.from(good);
    Buffer.from(bytes).copy(b, at);
    return b;
  };
  assert.throws(() => headerLength(Buffer.from('crypt5')), decryptError(/^not a Crypt4GH file \(it does not start with "crypt4gh"\)/));
  assert.throws(() => headerLength(Buffer.from('%PDF-1.4 blah blah')), decryptError(/does not start with/));
  assert.equal(headerLength(Buffer.from('cry')), undefined, 'a matching prefix of the magic needs more bytes');
  assert.throws(() => headerLength(patch(8, [2, 0, 0, 0]), 'f.c4gh'), decryptError(/^f\.c4gh: not a Crypt4GH file \(version 2; slicefs reads version 1\)/));
  assert.throws(() => headerLength(patch(12, [0, 0, 0, 0])), decryptError(/no packets/));
  assert.throws(() => headerLength(patch(12, [0xff, 0xff, 0xff, 0x7f])), decryptError(/header packets/));
  assert.throws(() => headerLength(patch(16, [3, 0, 0, 0])), decryptError(/packet 0 claims 3 bytes/));
  assert.throws(() => headerLength(patch(16, [0, 0, 0x20, 0])), decryptError(new RegExp(`more than ${MAX_HEADER_SIZE} bytes`)));
  assert.throws(() => decryptHeader(good.subarray(0, 100), []), decryptError(/header is truncated/));
});

test('encryptHeader → decryptHeader: two recipients, an edit list, the writer key given or not', () => {
  const alice = generateKeyPair();
  const bob = generateKeyPair();
  const carol = generateKeyPair();
  const writer = generateKeyPair();
  const dataKey = randomBytes(32);
  const editList = [10, 20, 30, 2 ** 40];
  const header = encryptHeader(dataKey, [alice.public, bob.public], { editList, writer });
  assert.equal(header.length, 16 + 2 * (108 + (68 + 8 + 8 * 4)));
  assert.equal(headerLength(header), header.length);
  for (const reader of [alice, bob]) {
    const h = decryptHeader(Buffer.concat([header, Buffer.from('body bytes')]), [reader]);
    assert.equal(h.length, header.length);
    assert.deepEqual(h.dataKeys, [dataKey]);
    assert.deepEqual(h.editList, editList);
    assert.deepEqual(h.writerPublicKeys, [writer.public]);
  }
  assert.throws(() => decryptHeader(header, [carol]), (e: unknown) => e instanceof SlicefsError && e.code === 'KEY');
  // Both recipients' keys at once: one data key, and their two copies of the same edit list are one.
  const both = decryptHeader(header, [alice, bob]);
  assert.equal(both.dataKeys.length, 1);
  assert.deepEqual(both.editList, editList);
  // Sender checks against the writer.
  assert.deepEqual(decryptHeader(header, [alice], { senderPublicKey: writer.public }).dataKeys, [dataKey]);
  assert.throws(() => decryptHeader(header, [alice], { senderPublicKey: carol.public }), /by sender/);
  // A throwaway writer key when none is given, different each time.
  const h1 = decryptHeader(encryptHeader(dataKey, [alice.public]), [alice]);
  const h2 = decryptHeader(encryptHeader(dataKey, [alice.public]), [alice]);
  assert.equal(h1.editList, undefined);
  assert.ok(!h1.writerPublicKeys[0]!.equals(h2.writerPublicKeys[0]!));
});

test('headers we write open with the reference vectors\' keys, and the test encryptor\'s files decrypt', async () => {
  const alice = await loadKey('keys/alice.sec');
  const bob = await loadKey('keys/bob.sec');
  const plain = plaintext(200000);
  const enc = encryptC4gh(plain, [alice.public, bob.public], { editList: [1000, 70000, 60000, 5000, 100] });
  const expected = Buffer.concat([plain.subarray(1000, 71000), plain.subarray(131000, 136000), plain.subarray(136100)]);
  for (const key of [alice, bob]) assert.ok(decryptWhole(enc.file, [key]).equals(expected));
  // Same layout as the reference's file with that edit list: one packet pair per recipient.
  assert.equal(enc.header.length, 16 + 2 * 108 + 2 * 116);
  assert.equal(vector('enc/p200000.alice.editlist-api.c4gh').length - 240, enc.body.length, 'the same body size as the reference');
  const split = encryptC4gh(plaintext(65537), [alice.public], { splitHeader: true });
  assert.ok(split.file.equals(split.body));
  assert.equal(split.header.length, 124);
  assert.equal(sha256(decryptWhole(Buffer.concat([split.header, split.body]), [alice])), '186ecbca9e96dd4161bddd2a1b83578f69841c33036c83244c72e9d7ee1fd058');
  assert.equal(encryptC4gh(Buffer.alloc(0), [alice.public]).body.length, 0, 'an empty plaintext has no block');
});

// A packet built independently of header.ts (crypto_kx by hand with Node's primitives), to reach
// the payloads encryptHeader never writes.
function packet(payload: Buffer, recipient: Buffer, writer: C4ghKeyPair, method = 0): Buffer {
  const priv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), writer.secret]), format: 'der', type: 'pkcs8' });
  const pub = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), recipient]), format: 'der', type: 'spki' });
  const shared = diffieHellman({ privateKey: priv, publicKey: pub });
  const key = createHash('blake2b512').update(Buffer.concat([shared, recipient, writer.public])).digest().subarray(0, 32);
  const nonce = randomBytes(12);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const body = Buffer.concat([c.update(payload), c.final(), c.getAuthTag()]);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(8 + 32 + 12 + body.length, 0);
  head.writeUInt32LE(method, 4);
  return Buffer.concat([head, writer.public, nonce, body]);
}

function headerOf(packets: Buffer[]): Buffer {
  const prefix = Buffer.alloc(16);
  prefix.write('crypt4gh');
  prefix.writeUInt32LE(1, 8);
  prefix.writeUInt32LE(packets.length, 12);
  return Buffer.concat([prefix, ...packets]);
}

function u32s(...n: number[]): Buffer {
  const b = Buffer.alloc(4 * n.length);
  n.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
  return b;
}

function editPacket(lengths: number[]): Buffer {
  const b = Buffer.alloc(8 + 8 * lengths.length);
  b.writeUInt32LE(1, 0);
  b.writeUInt32LE(lengths.length, 4);
  lengths.forEach((n, i) => b.writeBigUInt64LE(BigInt(n), 8 + 8 * i));
  return b;
}

test('unusual packets: unknown types and methods are clear errors; other recipients\' packets are skipped', () => {
  const me = generateKeyPair();
  const other = generateKeyPair();
  const writer = generateKeyPair();
  const key = randomBytes(32);
  const data = Buffer.concat([u32s(0, 0), key]);
  // The independent packet builder agrees with decryptHeader.
  assert.deepEqual(decryptHeader(headerOf([packet(data, me.public, writer)]), [me]).dataKeys, [key]);
  // Packets for someone else are skipped, before and after ours.
  const mixed = headerOf([packet(data, other.public, writer), packet(data, me.public, writer), packet(editPacket([5]), other.public, writer)]);
  const h = decryptHeader(mixed, [me]);
  assert.deepEqual(h.dataKeys, [key]);
  assert.equal(h.editList, undefined);
  assert.throws(() => decryptHeader(headerOf([packet(u32s(7, 0), me.public, writer), packet(data, me.public, writer)]), [me]), decryptError(/^unsupported Crypt4GH header packet type 7$/));
  assert.throws(() => decryptHeader(headerOf([packet(Buffer.concat([u32s(0, 1), key]), me.public, writer)]), [me], { label: 'f' }), decryptError(/^f: unsupported Crypt4GH data encryption method 1$/));
  assert.throws(() => decryptHeader(headerOf([packet(data, me.public, writer, 1)]), [me]), decryptError(/unsupported Crypt4GH header packet encryption method 1/));
  // An unknown method beside a packet that opens does not matter (it was someone else's).
  assert.deepEqual(decryptHeader(headerOf([packet(data, other.public, writer, 1), packet(data, me.public, writer)]), [me]).dataKeys, [key]);
  assert.throws(
    () => decryptHeader(headerOf([packet(data, me.public, writer), packet(editPacket([1, 2]), me.public, writer), packet(editPacket([3]), me.public, writer)]), [me]),
    decryptError(/more than one edit list/),
  );
  assert.throws(() => decryptHeader(headerOf([packet(Buffer.concat([u32s(0, 0), key.subarray(0, 16)]), me.public, writer)]), [me]), decryptError(/data key packet of 24 bytes/));
  assert.throws(() => decryptHeader(headerOf([packet(data, me.public, writer), packet(editPacket([]), me.public, writer)]), [me]), decryptError(/edit list: it is empty/));
  assert.throws(() => decryptHeader(headerOf([packet(data, me.public, writer), packet(u32s(1, 3, 0, 0), me.public, writer)]), [me]), decryptError(/3 lengths announced/));
  const huge = editPacket([0]);
  huge.writeBigUInt64LE(2n ** 60n, 8);
  assert.throws(() => decryptHeader(headerOf([packet(data, me.public, writer), packet(huge, me.public, writer)]), [me]), decryptError(/edit list: length 1152921504606846976/));
  // Only an edit list for us, no data key.
  assert.throws(() => decryptHeader(headerOf([packet(editPacket([1]), me.public, writer)]), [me]), decryptError(/hold no data key/));
  // A method-0 packet too short to hold its fields.
  const short = headerOf([Buffer.concat([u32s(20, 0), Buffer.alloc(12)])]);
  assert.throws(() => decryptHeader(short, [me]), decryptError(/packet 0 is only 20 bytes/));
  // A low-order writer key cannot open (all-zero shared secret): skipped like any foreign packet.
  const lowOrder = Buffer.from(packet(data, me.public, writer));
  Buffer.alloc(32).copy(lowOrder, 8);
  assert.throws(() => decryptHeader(headerOf([lowOrder]), [me]), (e: unknown) => e instanceof SlicefsError && e.code === 'KEY');
});

test('at most 128 key packets are tried: 64 recipients with edit lists open, a 129th packet is refused', () => {
  assert.equal(MAX_PACKETS_TRIED, 128);
  const me = generateKeyPair();
  const others = Array.from({ length: 63 }, () => generateKeyPair().public);
  const key = randomBytes(32);
  // The largest real shape: one data key and one edit list packet per recipient, ours last.
  const full = decryptHeader(encryptHeader(key, [...others, me.public], { editList: [3, 4] }), [me]);
  assert.deepEqual(full.dataKeys, [key]);
  assert.deepEqual(full.editList, [3, 4]);
  // One packet more, whether ours is the last or the first, and whatever its writers: refused.
  const data = Buffer.concat([u32s(0, 0), key]);
  const forOthers = (n: number) => Array.from({ length: n }, (_, i) => packet(data, others[i % others.length], generateKeyPair()));
  const tooMany = decryptError(/^f: malformed Crypt4GH header: more than 128 key packets \(a real header has one or two per recipient\)$/);
  assert.throws(() => decryptHeader(headerOf([...forOthers(128), packet(data, me.public, generateKeyPair())]), [me], { label: 'f' }), tooMany);
  assert.throws(() => decryptHeader(headerOf([packet(data, me.public, generateKeyPair()), ...forOthers(128)]), [me], { label: 'f' }), tooMany);
  // Packets of another method cost nothing to skip: they do not count.
  const writer = generateKeyPair();
  const skipped = Array.from({ length: 200 }, () => packet(data, others[0], writer, 1));
  assert.deepEqual(decryptHeader(headerOf([...skipped, packet(data, me.public, writer)]), [me]).dataKeys, [key]);
});

test('encryptHeader refuses bad input', () => {
  const me = generateKeyPair();
  assert.throws(() => encryptHeader(Buffer.alloc(16), [me.public]), RangeError);
  assert.throws(() => encryptHeader(Buffer.alloc(32), []), RangeError);
  assert.throws(() => encryptHeader(Buffer.alloc(32), [me.public], { editList: [] }), RangeError);
  assert.throws(() => encryptHeader(Buffer.alloc(32), [me.public], { editList: [-1] }), RangeError);
  assert.throws(() => encryptHeader(Buffer.alloc(32), [Buffer.alloc(32)]), (e: unknown) => e instanceof SlicefsError && e.code === 'KEY');
});
