/**
 * Crypt4GH data blocks opened in the decrypt worker (the mount's path: WorkerTransport → the
 * worker's HTTP → Crypt4ghSource with a WorkerDecryptor), against the fixture server on 127.0.0.1:
 * the same bytes as the plaintext and as decryption on the calling thread, edit list or not, at
 * segment and piece edges; every whole piece a whole buffer of the piece size (what the cache
 * recycles); a tampered segment an error naming the file, the segment and its plaintext range,
 * with no byte of it or after it delivered; a dead worker an error, and the next read works.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_TRANSPORT } from '../../src/config.js';
import { generateKeyPair } from '../../src/crypt4gh/keys.js';
import { BLOCK_SIZE, SEGMENT_SIZE } from '../../src/crypt4gh/segments.js';
import { WorkerDecryptor } from '../../src/crypt4gh/worker-decryptor.js';
import { SlicefsError } from '../../src/errors.js';
import { Crypt4ghSource } from '../../src/source/crypt4gh-source.js';
import { HttpSource, type ObjectSource } from '../../src/source/object-source.js';
import { Stats } from '../../src/stats.js';
import { WorkerTransport } from '../../src/transport/worker-transport.js';
import { encryptC4gh } from '../helpers/c4gh-encrypt.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom, seededBytes } from '../helpers/random.js';

/** Not a multiple of the segment size, so pieces and segments cross each other's edges. */
const PIECE = 96 * 1024;
const pair = generateKeyPair();
const keys = async () => [pair];
let server: FixtureServer;
let transport: WorkerTransport;
let decryptor: WorkerDecryptor;

before(async () => {
  server = await FixtureServer.start();
  transport = new WorkerTransport(DEFAULT_TRANSPORT, new Stats(), () => {}, PIECE);
  decryptor = new WorkerDecryptor(PIECE);
});
after(async () => {
  await decryptor?.close();
  await transport?.close();
  await server?.close();
});

async function readRange(src: ObjectSource, start: number, end: number): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  await src.read(start, end, (c) => void parts.push(c));
  return parts;
}

test('the worker gives the plaintext (edit list or not) at segment and piece edges, equal to this thread; whole pieces are whole buffers', async () => {
  const plain = seededBytes(91, 7 * SEGMENT_SIZE + 4321);
  const editList = [1000, 3 * SEGMENT_SIZE, 7, 3 * SEGMENT_SIZE - 100];
  const visibleEdited = Buffer.concat([plain.subarray(1000, 1000 + 3 * SEGMENT_SIZE), plain.subarray(1007 + 3 * SEGMENT_SIZE, 1007 + 6 * SEGMENT_SIZE - 100)]);
  server.addFile('/w/plain.c4gh', encryptC4gh(plain, [pair.public]).file);
  server.addFile('/w/edited.c4gh', encryptC4gh(plain, [pair.public], { editList }).file);
  const rnd = new SeededRandom(92);
  for (const [path, want] of [['/w/plain.c4gh', plain], ['/w/edited.c4gh', visibleEdited]] as const) {
    const inWorker = new Crypt4ghSource(new HttpSource(transport, server.url(path)), { keys, decryptor });
    const onThread = new Crypt4ghSource(new HttpSource(transport, server.url(path)), { keys });
    assert.equal((await inWorker.version()).size, want.length, path);
    const whole = await readRange(inWorker, 0, want.length);
    assert.ok(Buffer.concat(whole).equals(want), `${path}: whole file`);
    // Pieces are cut at multiples of PIECE of the visible offset: every one but the last is a
    // whole PIECE-sized ArrayBuffer of its own (the block cache recycles exactly those).
    for (const p of whole.slice(0, -1)) {
      assert.equal(p.length, PIECE, path);
      assert.ok(p.byteOffset === 0 && p.buffer.byteLength === PIECE, `${path}: a piece is a whole buffer`);
    }
    const edges = [0, SEGMENT_SIZE, 3 * SEGMENT_SIZE, PIECE, 2 * PIECE, 3 * SEGMENT_SIZE - 1000, want.length];
    for (let i = 0; i < 60; i++) {
      const edge = edges[rnd.int(0, edges.length - 1)];
      const start = Math.max(0, Math.min(want.length - 1, edge + rnd.int(-100, 100)));
      const end = Math.min(want.length, start + rnd.int(1, i % 3 === 0 ? 3 * SEGMENT_SIZE : 300));
      const got = Buffer.concat(await readRange(inWorker, start, end));
      assert.ok(got.equals(want.subarray(start, end)), `${path} [${start}, ${end})`);
      assert.ok(got.equals(Buffer.concat(await readRange(onThread, start, end))), `${path} [${start}, ${end}) on this thread`);
    }
  }
});

test('a tampered segment opened in the worker: DECRYPT naming the file, segment and plaintext range; nothing of it or after it delivered', async () => {
  const plain = seededBytes(93, 5 * SEGMENT_SIZE + 10);
  const c4gh = encryptC4gh(plain, [pair.public]);
  const file = Buffer.from(c4gh.file);
  // One bit of segment 2's ciphertext.
  file[c4gh.header.length + 2 * BLOCK_SIZE + 12 + 5000] ^= 0x10;
  server.addFile('/w/tampered.c4gh', file);
  const src = new Crypt4ghSource(new HttpSource(transport, server.url('/w/tampered.c4gh')), { keys, decryptor });
  const parts: Buffer[] = [];
  await assert.rejects(
    src.read(0, plain.length, (c) => void parts.push(c)),
    (e: unknown) =>
      e instanceof SlicefsError &&
      e.code === 'DECRYPT' &&
      e.message === `${src.label}: segment 2 (plaintext bytes ${2 * SEGMENT_SIZE}–${3 * SEGMENT_SIZE - 1}) failed its authentication: the file is corrupt or was tampered with`,
  );
  const got = Buffer.concat(parts);
  assert.ok(got.length <= 2 * SEGMENT_SIZE, `${got.length} bytes delivered`);
  assert.ok(got.equals(plain.subarray(0, got.length)), 'what was delivered is the plaintext');
  // The segments after it still read, and the intact ones before it.
  assert.ok(Buffer.concat(await readRange(src, 3 * SEGMENT_SIZE, plain.length)).equals(plain.subarray(3 * SEGMENT_SIZE)));
  assert.ok(Buffer.concat(await readRange(src, 0, 2 * SEGMENT_SIZE)).equals(plain.subarray(0, 2 * SEGMENT_SIZE)));
  // A body whose last block cannot hold its nonce and MAC is refused when opened (before the worker).
  server.addFile('/w/short.c4gh', Buffer.concat([c4gh.file.subarray(0, c4gh.header.length + 5 * BLOCK_SIZE), Buffer.alloc(20)]));
  const short = new Crypt4ghSource(new HttpSource(transport, server.url('/w/short.c4gh')), { keys, decryptor });
  await assert.rejects(short.read(0, 10, () => {}), (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && /last Crypt4GH data block is 20 bytes/.test(e.message));
});

test('a decrypt worker that dies fails the reads under way with DECRYPT; the next read starts a new one', async () => {
  const plain = seededBytes(94, 40 * SEGMENT_SIZE);
  server.addFile('/w/dies.c4gh', encryptC4gh(plain, [pair.public]).file);
  const own = new WorkerDecryptor(PIECE);
  try {
    const src = new Crypt4ghSource(new HttpSource(transport, server.url('/w/dies.c4gh')), { keys, decryptor: own });
    // A first read starts the worker; then it is killed just as the next read opens its stream
    // (the stream is registered synchronously, the worker's exit arrives later).
    assert.ok(Buffer.concat(await readRange(src, 0, 10)).equals(plain.subarray(0, 10)));
    const worker = (own as unknown as { worker: { terminate(): Promise<number> } }).worker;
    void worker.terminate();
    await assert.rejects(readRange(src, 0, plain.length), (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT' && /decrypt worker stopped/.test(e.message));
    assert.ok(Buffer.concat(await readRange(src, 0, plain.length)).equals(plain));
  } finally {
    await own.close();
  }
});
