/**
 * ScoreSource against a Score-compatible fixture service on 127.0.0.1 that checks its presigned
 * URLs: bytes read through the presigned URL, the URL replaced before its expiry and after a 403
 * (the read continues where it stopped), a wrong token and an unknown object as clear errors that
 * never show the token or a signature.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_TRANSPORT } from '../../src/config.js';
import { SlicefsError } from '../../src/errors.js';
import { ScoreSource } from '../../src/source/score-source.js';
import { Stats } from '../../src/stats.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import { seededBytes } from '../helpers/random.js';
import { ScoreServer } from '../helpers/score-server.js';

let score: ScoreServer;
let transport: HttpTransport;
const TOKEN = 'b7f0c2d4-secret-token';
const bytes = seededBytes(61, 3_000_000);

before(async () => {
  score = await ScoreServer.start(TOKEN);
  score.addObject('obj-1', bytes);
  transport = new HttpTransport(DEFAULT_TRANSPORT, new Stats());
});
after(async () => {
  await transport?.close();
  await score?.close();
});

async function readAll(src: ScoreSource, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  await src.read(start, end, (c) => void parts.push(c));
  return Buffer.concat(parts);
}

const source = (token = TOKEN, id = 'obj-1') => new ScoreSource(transport, transport, { storageUrl: `${score.origin}/`, token }, id);

test('bytes through the presigned URL; one specification request while the URL is fresh', async () => {
  score.resetCounters();
  const src = source();
  const v = await src.version();
  assert.equal(v.size, bytes.length);
  assert.equal(v.md5, src.md5);
  assert.ok((await readAll(src, 0, bytes.length)).equals(bytes));
  assert.ok((await readAll(src, 1000, 5000)).equals(bytes.subarray(1000, 5000)));
  assert.equal(score.specRequests, 1);
  // The bytes came from the object store through a URL it accepted.
  assert.ok(score.dataBytes >= bytes.length + 4000, `object bytes served: ${score.dataBytes}`);
  assert.equal(score.rejectedSignatures, 0);
  assert.equal(src.identity, `score:${new URL(score.origin).host}/obj-1`);
  assert.doesNotMatch(src.label, /token|X-Amz-Signature/);
  for (const sig of score.issuedSignatures()) assert.ok(!src.label.includes(sig) && !src.identity.includes(sig));
});

test('a URL near its expiry is replaced before a read; one the object store refuses (403) is replaced and the read goes on', async () => {
  score.specRequests = 0;
  // A 60 s URL is kept for the first 80 % of its life (48 s), then replaced before a read.
  score.urlLifetimeS = 60;
  let clock = Date.now();
  const src = new ScoreSource(transport, transport, { storageUrl: `${score.origin}/`, token: TOKEN }, 'obj-1', undefined, () => clock);
  await readAll(src, 0, 10);
  clock += 40_000;
  await readAll(src, 10, 20);
  assert.equal(score.specRequests, 1, 'the URL is still fresh at 40 s');
  clock += 10_000;
  assert.ok((await readAll(src, 20, 30)).equals(bytes.subarray(20, 30)));
  assert.equal(score.specRequests, 2, 'replaced at 50 s, before the read');
  score.urlLifetimeS = 86_400;

  const fresh = source();
  await fresh.version();
  score.specRequests = 0;
  // The object store refuses the URL it holds though the URL says it is still valid (the signing
  // key changed: an expiry the URL does not show).
  score.rotateKey();
  score.rejectedSignatures = 0;
  assert.ok((await readAll(fresh, 0, bytes.length)).equals(bytes));
  assert.equal(score.specRequests, 1, 'one new URL');
  assert.equal(score.rejectedSignatures, 1, 'the old URL was refused once');
});

test('a wrong token and an unknown object are clear errors without the token or a signature', async () => {
  await assert.rejects(source('wrong-token').version(), (err: SlicefsError) => {
    assert.equal(err.code, 'ACCESS_DENIED');
    assert.match(err.message, /score object obj-1: the storage service refused the token/);
    assert.doesNotMatch(err.message, /wrong-token|SECRET/);
    return true;
  });
  await assert.rejects(source(TOKEN, 'nope').version(), (err: SlicefsError) => {
    assert.equal(err.code, 'NOT_FOUND');
    assert.match(err.message, /object nope not found in the storage service \(404\)/);
    assert.doesNotMatch(err.message, new RegExp(TOKEN));
    return true;
  });
});
