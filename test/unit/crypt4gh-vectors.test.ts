// The reference implementation's interoperability vectors (../shared/reference/crypt4gh-vectors):
// every positive file decrypts with every listed key, every negative one fails for its stated reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { decryptHeader, headerLength } from '../../src/crypt4gh/header.js';
import { blockCount, blockRange, decryptBlock, plaintextSize } from '../../src/crypt4gh/segments.js';
import { decryptWhole, index, keyFilesOf, loadKey, plaintext, sha256, vector } from '../helpers/c4gh-vectors.js';

const positives = index.files.filter((f) => f.file.startsWith('enc/'));

test('the vector index lists the files this suite expects', () => {
  assert.equal(positives.length, 14);
  assert.equal(index.files.filter((f) => f.file.startsWith('bad/')).length, 5);
  for (const f of index.files) assert.equal(sha256(vector(f.file)), f.sha256, `${f.file} is the file vectors.json describes`);
});

test('regenerated plaintexts match the README formula and hashes', () => {
  for (const p of index.plaintexts) assert.equal(sha256(plaintext(p.size)), p.sha256, p.name);
});

for (const f of positives) {
  for (const owner of f.opens_with ?? []) {
    for (const keyFile of keyFilesOf(owner)) {
      test(`${f.file} decrypts with ${keyFile}`, async () => {
        const key = await loadKey(keyFile);
        const file = vector(f.file);
        assert.equal(headerLength(file), f.header_len);
        const header = decryptHeader(file, [key]);
        assert.equal(header.length, f.header_len);
        assert.equal(header.dataKeys.length, 1);
        assert.deepEqual(header.editList, f.edit_list);
        assert.equal(plaintextSize(file.length - header.length) >= 0, true);
        const out = decryptWhole(file, [key]);
        assert.equal(out.length, f.expect?.plaintext_size);
        assert.equal(sha256(out), f.expect?.plaintext_sha256);
      });
    }
  }
}

test('a file opens with a list of keys when only one of them is a recipient', async () => {
  const [alice, bob, carol] = await Promise.all(['keys/alice.nocrypt.sec', 'keys/bob.sec', 'keys/carol.bcrypt.sec'].map(loadKey));
  const out = decryptWhole(vector('enc/p1.carol.c4gh'), [alice!, bob!, carol!]);
  assert.equal(sha256(out), index.plaintexts.find((p) => p.name === 'p1')?.sha256);
});

test('edit lists: the CLI one counts from the first block kept, the API one keeps the tail', async () => {
  const alice = await loadKey('keys/alice.nocrypt.sec');
  const p200000 = plaintext(200000);
  const cli = decryptWhole(vector('enc/p200000.alice.editlist-cli.c4gh'), [alice]);
  assert.ok(cli.equals(p200000.subarray(70000, 140000)));
  const api = decryptWhole(vector('enc/p200000.alice.editlist-api.c4gh'), [alice]);
  assert.ok(api.equals(Buffer.concat([p200000.subarray(1000, 71000), p200000.subarray(131000, 136000), p200000.subarray(136100)])));
});

test('the two-recipient file: alice skips bob\'s packet 0, bob opens it', async () => {
  const file = vector('enc/p65537.alice+bob.c4gh');
  const alice = await loadKey('keys/alice.sec');
  const bob = await loadKey('keys/bob.sec');
  const a = decryptHeader(file, [alice]);
  const b = decryptHeader(file, [bob]);
  assert.ok(a.dataKeys[0]!.equals(b.dataKeys[0]!), 'both packets carry the same data key');
});

test('split header and body (GHGA style): each header joined to the body decrypts; bob on alice\'s header does not', async () => {
  const body = vector(index.split.body);
  const alice = await loadKey('keys/alice.sec');
  const bob = await loadKey('keys/bob.sec');
  const expect = index.split.expect;
  for (const [owner, key] of [['alice', alice], ['bob', bob]] as const) {
    const header = vector(index.split.headers[owner]!);
    assert.equal(headerLength(header), header.length);
    const out = decryptWhole(Buffer.concat([header, body]), [key]);
    assert.equal(out.length, expect.plaintext_size);
    assert.equal(sha256(out), expect.plaintext_sha256);
  }
  // The envelope alone is enough to get the data keys: the body is fetched separately.
  const aliceHeader = decryptHeader(vector(index.split.headers.alice!), [alice]);
  assert.equal(plaintextSize(body.length), expect.plaintext_size);
  assert.equal(decryptBlock(body.subarray(...blockRange(1, body.length)), aliceHeader.dataKeys, 1).length, 1);
  assert.throws(
    () => decryptHeader(vector(index.split.headers.alice!), [bob]),
    (e: unknown) => e instanceof SlicefsError && e.code === 'KEY' && /no key opens/.test(e.message),
  );
  // alice's envelope was re-encrypted by bob (reencrypt --sk bob.sec): its writer is bob.
  assert.ok(aliceHeader.writerPublicKeys[0]!.equals(bob.public));
});

test('sender check: bob-to-alice opens with bob\'s public key as sender, not with carol\'s', async () => {
  const file = vector('enc/p65537.bob-to-alice.c4gh');
  const alice = await loadKey('keys/alice.sec');
  const bob = await loadKey('keys/bob.sec');
  const carol = await loadKey('keys/carol.bcrypt.sec');
  assert.ok(file.subarray(24, 56).equals(bob.public), 'the packet names bob as writer');
  const out = decryptWhole(file, [alice], { senderPublicKey: bob.public });
  assert.equal(sha256(out), '186ecbca9e96dd4161bddd2a1b83578f69841c33036c83244c72e9d7ee1fd058');
  assert.deepEqual(decryptHeader(file, [alice]).writerPublicKeys, [bob.public]);
  assert.throws(
    () => decryptHeader(file, [alice], { senderPublicKey: carol.public }),
    (e: unknown) => e instanceof SlicefsError && e.code === 'KEY' && /no key opens this file/.test(e.message) && /by sender b44c9d00/.test(e.message),
  );
});

test('a key that is not a recipient opens nothing', async () => {
  const bob = await loadKey('keys/bob.sec');
  const alice = await loadKey('keys/alice.sec');
  const carol = await loadKey('keys/carol.bcrypt.sec');
  const cases: [string, typeof bob][] = [
    ['enc/p1.alice.c4gh', bob],
    ['enc/p1.carol.c4gh', alice],
    ['enc/p1.dave.c4gh', carol],
    ['enc/p1.erin.c4gh', alice],
  ];
  for (const [file, key] of cases) {
    assert.throws(
      () => decryptHeader(vector(file), [key], { label: file, keyLabel: 'the test key' }),
      (e: unknown) =>
        e instanceof SlicefsError && e.code === 'KEY' && e.message === `no key opens ${file}: it was not encrypted for the test key`,
      file,
    );
  }
});

// ---- negative vectors ----

test('flipped data: block 1 fails naming segment 1; blocks 0, 2 and 3 still decrypt on their own', async () => {
  const meta = index.files.find((f) => f.file === 'bad/p200000.alice.flipped-data.c4gh')!;
  const alice = await loadKey('keys/alice.sec');
  const file = vector(meta.file);
  const header = decryptHeader(file, [alice]);
  const body = file.subarray(header.length);
  const p200000 = plaintext(200000);
  assert.equal(blockCount(body.length), 4);
  for (const i of [0, 2, 3]) {
    const plain = decryptBlock(body.subarray(...blockRange(i, body.length)), header.dataKeys, i);
    assert.ok(plain.equals(p200000.subarray(i * 65536, Math.min((i + 1) * 65536, 200000))), `block ${i}`);
  }
  assert.equal(meta.bad_block, 1);
  assert.throws(
    () => decryptBlock(body.subarray(...blockRange(1, body.length)), header.dataKeys, 1, meta.file),
    (e: unknown) =>
      e instanceof SlicefsError &&
      e.code === 'DECRYPT' &&
      e.message ===
        `${meta.file}: segment 1 (plaintext bytes 65536–131071) failed its authentication: the file is corrupt or was tampered with`,
  );
  // A streaming reader has written exactly block 0 before it stops, as the reference does.
  assert.equal(sha256(decryptBlock(body.subarray(...blockRange(0, body.length)), header.dataKeys, 0)), meta.expect?.prefix_sha256);
  assert.throws(() => decryptWhole(file, [alice]), /segment 1 /);
});

test('flipped header and bob-only: no key opens the file', async () => {
  const alice = await loadKey('keys/alice.sec');
  for (const name of ['bad/p1.alice.flipped-header.c4gh', 'bad/p1.bob-only.c4gh']) {
    const file = vector(name);
    assert.equal(headerLength(file), 124, 'the header structure itself is intact');
    assert.throws(
      () => decryptHeader(file, [alice]),
      (e: unknown) =>
        e instanceof SlicefsError && e.code === 'KEY' && e.message === 'no key opens this file: it was not encrypted for key 861d636a8815ccc7…',
      name,
    );
  }
  const bob = await loadKey('keys/bob.sec');
  const meta = index.files.find((f) => f.file === 'bad/p1.bob-only.c4gh')!;
  assert.equal(sha256(decryptWhole(vector(meta.file), [bob])), meta.expect_for_bob?.plaintext_sha256);
});

test('truncated: the body size gives no plaintext size; the full block before it still decrypts', async () => {
  const meta = index.files.find((f) => f.file === 'bad/p65537.alice.truncated.c4gh')!;
  const alice = await loadKey('keys/alice.sec');
  const file = vector(meta.file);
  const header = decryptHeader(file, [alice]);
  const body = file.subarray(header.length);
  assert.equal(body.length, 65584);
  assert.throws(
    () => plaintextSize(body.length),
    (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && /last Crypt4GH data block is 20 bytes/.test(e.message),
  );
  assert.throws(() => blockRange(0, body.length), (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT');
  assert.equal(sha256(decryptBlock(body.subarray(0, 65564), header.dataKeys, 0)), meta.expect?.prefix_sha256);
  assert.throws(
    () => decryptBlock(body.subarray(65564), header.dataKeys, 1),
    (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && /segment 1 is only 20 bytes/.test(e.message),
  );
});

test('truncated-long: a plausible size, but the block fails its MAC', async () => {
  const alice = await loadKey('keys/alice.sec');
  const file = vector('bad/p65535.alice.truncated-long.c4gh');
  const header = decryptHeader(file, [alice]);
  const body = file.subarray(header.length);
  assert.equal(plaintextSize(body.length), 64535);
  assert.throws(
    () => decryptBlock(body, header.dataKeys, 0),
    (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && /^segment 0 \(plaintext bytes 0–64534\) failed its authentication/.test(e.message),
  );
});
