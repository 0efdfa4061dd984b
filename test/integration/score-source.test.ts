/**
 * ScoreSource against a fake Score storage service and a fixture object store on 127.0.0.1: bytes
 * read through the presigned URL, the URL replaced before its expiry and after a 403 (the read
 * continues where it stopped), a wrong token and an unknown object as clear errors that never show
 * the token or a signature.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_TRANSPORT } from '../../src/config.js';
import { SlicefsError } from '../../src/errors.js';
import { ScoreSource } from '../../src/source/score-source.js';
import { Stats } from '../../src/stats.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';
import { ScoreServer } from '../helpers/score-server.js';

let data: FixtureServer;
let score: ScoreServer;
let transport: HttpTransport;
const TOKEN = 'b7f0c2d4-secret-token';
const bytes = seededBytes(61, 3_000_000);

before(async () => {
  data = await FixtureServer.start();
  score = await ScoreServer.start(data, TOKEN);
  score.addObject('obj-1', '/store/obj-1', bytes);
  transport = new HttpTransport(DEFAULT_TRANSPORT, new Stats());
});
after(async () => {
  await transport?.close();
  await score?.close();
  await data?.close();
});

async function readAll(src: ScoreSource, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  await src.read(start, end, (c) => void parts.push(c));
  return Buffer.concat(parts);
}

const source = (token = TOKEN, id = 'obj-1') => new ScoreSource(transport, transport, { storageUrl: `${score.origin}/`, token }, id);

test('bytes through the presigned URL; one specification request while the URL is fresh', async () => {
  score.specRequests = 0;
  const src = source();
  const v = await src.version();
  assert.equal(v.size, bytes.length);
  assert.equal(v.md5, src.md5);
  assert.ok((await readAll(src, 0, bytes.length)).equals(bytes));
  assert.ok((await readAll(src, 1000, 5000)).equals(bytes.subarray(1000, 5000)));
  assert.equal(score.specRequests, 1);
  assert.equal(src.identity, `score:${new URL(score.origin).host}/obj-1`);
  assert.doesNotMatch(src.label, /SECRET|token/);
});

test('a URL near its expiry is replaced before a read; one the object store refuses (403) is replaced and the read goes on', async () => {
  score.specRequests = 0;
  score.urlLifetimeS = 60; // inside the 5 min margin: every read asks for a new URL
  const src = source();
  await readAll(src, 0, 10);
  await readAll(src, 10, 20);
  assert.ok(score.specRequests >= 2, `spec requests: ${score.specRequests}`);
  score.urlLifetimeS = 86_400;

  const fresh = source();
  await fresh.version();
  score.specRequests = 0;
  // The object store refuses the next request (an expiry the URL does not show).
  data.setFault('/store/obj-1', { kind: 'status-then-ok', status: 403, times: 1 });
  assert.ok((await readAll(fresh, 0, bytes.length)).equals(bytes));
  assert.equal(score.specRequests, 1, 'one new URL');
  data.setFault('/store/obj-1', undefined);
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
    assert.match(err.message, /score object nope: no such object/);
    assert.doesNotMatch(err.message, new RegExp(TOKEN));
    return true;
  });
});
