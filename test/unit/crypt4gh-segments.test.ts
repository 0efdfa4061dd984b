import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { BLOCK_SIZE, blockCount, blockRange, decryptBlock, encryptBlock, plaintextSize, SEGMENT_SIZE } from '../../src/crypt4gh/segments.js';
import { SegmentDecrypter } from '../../src/crypt4gh/segment-stream.js';
import { index } from '../helpers/c4gh-vectors.js';

test('sizes: 64 KiB segments in 65564-byte blocks', () => {
  assert.equal(SEGMENT_SIZE, 65536);
  assert.equal(BLOCK_SIZE, 65564);
  const table: [number, number][] = [
    [0, 0],
    [29, 1],
    [65563, 65535],
    [65564, 65536],
    [65593, 65537],
    [200112, 200000],
    [1061397, 1060921],
    [2 * 65564, 2 * 65536],
  ];
  for (const [body, plain] of table) assert.equal(plaintextSize(body), plain, `body ${body}`);
  // Every positive vector's body size gives its plaintext size (edit lists aside).
  for (const f of index.files.filter((v) => v.file.startsWith('enc/') && !v.edit_list)) {
    assert.equal(plaintextSize(f.body_len!), f.expect?.plaintext_size, f.file);
  }
  for (const rest of [1, 20, 28]) {
    assert.throws(
      () => plaintextSize(65564 + rest),
      (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && e.message.includes(`is ${rest} bytes`),
    );
  }
  assert.throws(() => plaintextSize(-1), RangeError);
  assert.throws(() => plaintextSize(1.5), RangeError);
});

test('blockRange and blockCount', () => {
  assert.equal(blockCount(0), 0);
  assert.equal(blockCount(29), 1);
  assert.equal(blockCount(65564), 1);
  assert.equal(blockCount(65593), 2);
  assert.deepEqual(blockRange(0, 65593), [0, 65564]);
  assert.deepEqual(blockRange(1, 65593), [65564, 65593]);
  assert.deepEqual(blockRange(1, 2 * 65564), [65564, 131128]);
  assert.throws(() => blockRange(2, 65593), RangeError);
  assert.throws(() => blockRange(0, 0), RangeError);
  assert.throws(() => blockRange(-1, 65593), RangeError);
  assert.throws(() => blockRange(0, 65564 + 10), (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT');
});

test('encryptBlock → decryptBlock, with the key among several', () => {
  const key = randomBytes(32);
  const others = [randomBytes(32), randomBytes(32)];
  for (const n of [1, 100, 65535, 65536]) {
    const plain = randomBytes(n);
    const block = encryptBlock(plain, key);
    assert.equal(block.length, n + 28);
    assert.ok(decryptBlock(block, [key], 0).equals(plain));
    assert.ok(decryptBlock(block, [...others, key], 3).equals(plain));
  }
  const nonce = Buffer.alloc(12, 7);
  const fixed = encryptBlock(Buffer.from('abc'), key, nonce);
  assert.ok(fixed.subarray(0, 12).equals(nonce));
  assert.ok(fixed.equals(encryptBlock(Buffer.from('abc'), key, nonce)), 'deterministic with a given nonce');
  assert.ok(!encryptBlock(Buffer.from('abc'), key).equals(encryptBlock(Buffer.from('abc'), key)), 'random nonces otherwise');
  assert.throws(() => encryptBlock(Buffer.alloc(0), key), RangeError);
  assert.throws(() => encryptBlock(Buffer.alloc(65537), key), RangeError);
  assert.throws(() => encryptBlock(Buffer.alloc(1), key, Buffer.alloc(8)), RangeError);
  assert.throws(() => decryptBlock(Buffer.alloc(BLOCK_SIZE + 1), [key], 0), RangeError);
});

test('decryptBlock: any flipped bit, or the wrong key, fails in one line naming the segment and its plaintext range', () => {
  const key = randomBytes(32);
  const block = encryptBlock(randomBytes(1000), key);
  const expected = (e: unknown) =>
    e instanceof SlicefsError &&
    e.code === 'DECRYPT' &&
    e.message === 'x.c4gh: segment 5 (plaintext bytes 327680–328679) failed its authentication: the file is corrupt or was tampered with';
  for (const at of [0, 11, 12, 500, block.length - 16, block.length - 1]) {
    const bad = Buffer.from(block);
    bad[at]! ^= 1;
    assert.throws(() => decryptBlock(bad, [key], 5, 'x.c4gh'), expected, `flip at ${at}`);
  }
  assert.throws(() => decryptBlock(block, [randomBytes(32)], 5, 'x.c4gh'), expected);
  assert.throws(() => decryptBlock(block, [], 5, 'x.c4gh'), expected);
  assert.throws(
    () => decryptBlock(block.subarray(0, 28), [key], 2),
    (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && /^segment 2 is only 28 bytes/.test(e.message),
  );
});

test('SegmentDecrypter: any chunking of the body gives the clipped plaintext, and keeps no view of a chunk after push', () => {
  const key = randomBytes(32);
  const plain = randomBytes(4 * SEGMENT_SIZE + 777);
  const blocks: Buffer[] = [];
  for (let at = 0; at < plain.length; at += SEGMENT_SIZE) blocks.push(encryptBlock(plain.subarray(at, Math.min(at + SEGMENT_SIZE, plain.length)), key));
  const body = Buffer.concat(blocks);
  // Chunk sizes: single bytes around a block edge, exact blocks, blocks and a bit, several blocks at once.
  for (const sizes of [[1, BLOCK_SIZE - 2, 1, 1], [BLOCK_SIZE], [BLOCK_SIZE + 5, BLOCK_SIZE - 5], [3 * BLOCK_SIZE + 100], [4096], [65_000, 70_000]]) {
    for (const [from, to] of [[0, plain.length], [SEGMENT_SIZE - 3, 2 * SEGMENT_SIZE + 3], [2 * SEGMENT_SIZE + 10, plain.length - 5]]) {
      const first = Math.floor(from / SEGMENT_SIZE);
      const last = Math.ceil(to / SEGMENT_SIZE);
      const ciphertext = body.subarray(first * BLOCK_SIZE, Math.min(last * BLOCK_SIZE, body.length));
      const out: Buffer[] = [];
      const d = new SegmentDecrypter([randomBytes(32), key], { firstSegment: first, plainFrom: from, plainTo: to }, (p) => void out.push(p), 'x.c4gh');
      let at = 0;
      for (let i = 0; at < ciphertext.length; i++) {
        const n = Math.min(sizes[i % sizes.length]!, ciphertext.length - at);
        // A chunk of its own, overwritten once pushed: its memory may be reused or transferred at once.
        const chunk = Buffer.from(ciphertext.subarray(at, at + n));
        d.push(chunk);
        chunk.fill(0);
        at += n;
      }
      d.end();
      assert.ok(Buffer.concat(out).equals(plain.subarray(from, to)), `chunks ${sizes.join(',')}, [${from}, ${to})`);
    }
  }
  // A tampered block stops the stream with its segment's error; the blocks before it were passed on.
  const bad = Buffer.from(body);
  bad[2 * BLOCK_SIZE + 40]! ^= 1;
  const out: Buffer[] = [];
  const d = new SegmentDecrypter([key], { firstSegment: 0, plainFrom: 0, plainTo: plain.length }, (p) => void out.push(p), 'x.c4gh');
  assert.throws(() => d.push(bad), (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && /^x\.c4gh: segment 2 \(plaintext bytes 131072–196607\) failed/.test(e.message));
  assert.ok(Buffer.concat(out).equals(plain.subarray(0, 2 * SEGMENT_SIZE)));
});
