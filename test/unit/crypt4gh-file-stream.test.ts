/**
 * Crypt4ghFileStream (a whole Crypt4GH file pushed in order, its visible plaintext out) and the
 * download's hashing worker that uses it (Md5Hasher with a plaintext SHA-256, on a real worker
 * thread reading a real file as it grows): the same bytes as Crypt4ghSource for any chunking, edit
 * list or not; a tampered block, a key that is not a recipient (KEY), a truncated file: the one DECRYPT
 * error, nothing of the failed block passed on.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Crypt4ghFileStream } from '../../src/crypt4gh/file-stream.js';
import { generateKeyPair } from '../../src/crypt4gh/keys.js';
import { BLOCK_SIZE, SEGMENT_SIZE } from '../../src/crypt4gh/segments.js';
import { Md5Hasher } from '../../src/download/md5-hasher.js';
import { SlicefsError } from '../../src/errors.js';
import { Crypt4ghSource } from '../../src/source/crypt4gh-source.js';
import { LocalSource } from '../../src/source/local-source.js';
import { encryptC4gh } from '../helpers/c4gh-encrypt.js';
import { SeededRandom, seededBytes } from '../helpers/random.js';

const pair = generateKeyPair();
const other = generateKeyPair();

function streamAll(file: Buffer, sizes: number[], keys = [pair]): Buffer {
  const out: Buffer[] = [];
  const s = new Crypt4ghFileStream(keys, file.length, (p) => void out.push(Buffer.from(p)), 'x.c4gh');
  for (let at = 0, i = 0; at < file.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, file.length - at);
    // A chunk of its own, overwritten once pushed (the hashing worker reuses its read buffer).
    const chunk = Buffer.from(file.subarray(at, at + n));
    s.push(chunk);
    chunk.fill(0);
    at += n;
  }
  s.end();
  return Buffer.concat(out);
}

async function viaSource(dir: string, file: Buffer): Promise<Buffer> {
  const path = join(dir, `f${Math.random()}.c4gh`);
  await writeFile(path, file);
  const src = new Crypt4ghSource(new LocalSource(path), { keys: async () => [pair] });
  const parts: Buffer[] = [];
  await src.read(0, (await src.version()).size, (c) => void parts.push(c));
  return Buffer.concat(parts);
}

test('Crypt4ghFileStream: any chunking, edit list or not, gives what Crypt4ghSource reads', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slicefs-c4gh-stream-'));
  try {
    const plain = seededBytes(71, 5 * SEGMENT_SIZE + 999);
    const lists: (number[] | undefined)[] = [undefined, [10, 100], [1000, 2 * SEGMENT_SIZE, 7], [SEGMENT_SIZE - 1, 3, 2 * SEGMENT_SIZE, 50, 0, 10 * SEGMENT_SIZE], [0, 0, 5]];
    const chunkings = [[7, 100_000], [BLOCK_SIZE], [3 * BLOCK_SIZE + 17], [1 << 22]];
    for (const editList of lists) {
      const file = encryptC4gh(plain, [other.public, pair.public], { editList }).file;
      const want = await viaSource(dir, file);
      if (!editList) assert.ok(want.equals(plain));
      // Single bytes too (header and block edges in every chunk), for two of the lists.
      for (const sizes of editList === undefined || editList === lists[3] ? [[1], ...chunkings] : chunkings) {
        assert.ok(streamAll(file, sizes).equals(want), `edit list ${editList}, chunks ${sizes}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Crypt4ghFileStream: a tampered block, a key that opens nothing, a truncated file: one DECRYPT error, nothing of the failed block', () => {
  const plain = seededBytes(72, 4 * SEGMENT_SIZE + 10);
  const c = encryptC4gh(plain, [pair.public]);
  const tampered = Buffer.from(c.file);
  tampered[c.header.length + 3 * BLOCK_SIZE + 100]! ^= 4;
  const out: Buffer[] = [];
  const s = new Crypt4ghFileStream([pair], tampered.length, (p) => void out.push(Buffer.from(p)), 'x.c4gh');
  assert.throws(
    () => s.push(tampered),
    (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && e.message === `x.c4gh: segment 3 (plaintext bytes ${3 * SEGMENT_SIZE}–${4 * SEGMENT_SIZE - 1}) failed its authentication: the file is corrupt or was tampered with`,
  );
  assert.ok(Buffer.concat(out).equals(plain.subarray(0, 3 * SEGMENT_SIZE)));
  assert.throws(() => streamAll(c.file, [5000], [other]), (e: unknown) => e instanceof SlicefsError && e.code === 'KEY' && /^no key opens x\.c4gh: /.test(e.message));
  // Cut inside the header, and a body whose last block cannot hold nonce and MAC.
  const cut = c.file.subarray(0, c.header.length - 5);
  assert.throws(() => streamAll(cut, [1000]), (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && /header is truncated/.test(e.message));
  const short = Buffer.concat([c.file.subarray(0, c.header.length + BLOCK_SIZE), Buffer.alloc(20)]);
  assert.throws(() => streamAll(short, [1000]), (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && /last Crypt4GH data block is 20 bytes/.test(e.message));
});

test("the download's hashing worker: MD5 of the file and SHA-256 of its plaintext in one pass as it grows; a tampered block: the error instead of a SHA-256, the MD5 still", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slicefs-c4gh-hash-'));
  const hasher = new Md5Hasher();
  try {
    const plain = seededBytes(73, 6 * SEGMENT_SIZE + 12345);
    const file = encryptC4gh(plain, [pair.public], { editList: [100, 4 * SEGMENT_SIZE, 5] }).file;
    const visible = Buffer.concat([plain.subarray(100, 100 + 4 * SEGMENT_SIZE), plain.subarray(105 + 4 * SEGMENT_SIZE)]);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
    const keys = [{ secret: pair.secret, public: pair.public }];
    const rnd = new SeededRandom(74);
    for (const [name, bytes, crypt4gh] of [
      ['encrypted', file, true],
      ['plain', plain, false],
    ] as const) {
      const path = join(dir, name);
      await writeFile(path, '');
      const h = hasher.file(path, { crypt4gh: crypt4gh ? { keys, size: bytes.length, label: name } : undefined });
      // The file grows; the hash is asked to follow at uneven steps, some inside the header.
      for (let at = 0; at < bytes.length; ) {
        const n = Math.min(bytes.length - at, rnd.int(1, 400_000));
        await appendFile(path, bytes.subarray(at, at + n));
        at += n;
        assert.equal(await h.advance(at), at);
      }
      const d = await h.digest(bytes.length);
      assert.equal(d.md5, md5(bytes), name);
      assert.deepEqual(d.plain, { sha256: sha(crypt4gh ? visible : plain) }, name);
    }
    const tampered = Buffer.from(file);
    tampered[tampered.length - 40]! ^= 1;
    const path = join(dir, 'tampered');
    await writeFile(path, tampered);
    const h = hasher.file(path, { crypt4gh: { keys, size: tampered.length, label: 'tampered.c4gh' } });
    const d = await h.digest(tampered.length);
    assert.equal(d.md5, md5(tampered));
    assert.ok(d.plain && 'error' in d.plain && d.plain.error.code === 'DECRYPT' && /^tampered\.c4gh: segment 6 \(plaintext bytes 393216–405560\) failed its authentication/.test(d.plain.error.message), JSON.stringify(d.plain));
  } finally {
    await hasher.close();
    await rm(dir, { recursive: true, force: true });
  }
});
