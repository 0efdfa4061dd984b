/**
 * The redirect decision (which Location is followed, and which refused with what code and errno),
 * the headers that may cross to another origin, the memory of redirect targets (with a clock), and
 * the rules that tell an answer that is not data from data served with an odd type.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlicefsError, errnoName } from '../../src/errors.js';
import { MAX_REDIRECTS, RedirectMemory, headersAcrossOrigins, nextHop } from '../../src/transport/redirects.js';
import { jsonMessage, looksLikeMarkup, suspectAnswer, wrongContentError } from '../../src/transport/wrong-content.js';
import { amzDate } from '../helpers/http-bits.js';

const hop = (from: string, location: string | undefined, chain: string[] = [from]) => nextHop('GET x', 302, from, location, chain);

function refusal(fn: () => unknown): SlicefsError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SlicefsError, `a SlicefsError, not ${String(err)}`);
    return err;
  }
  assert.fail('expected the redirect to be refused');
}

test('a Location is resolved against the URL that answered: absolute, path-absolute, relative; the fragment dropped', () => {
  assert.equal(hop('http://a:81/d/x.bam', 'https://b/y?sig=1'), 'https://b/y?sig=1');
  assert.equal(hop('http://a:81/d/x.bam', '/e/y.bam?hop=1'), 'http://a:81/e/y.bam?hop=1');
  assert.equal(hop('http://a:81/d/x.bam', 'y.bam?hop=1'), 'http://a:81/d/y.bam?hop=1');
  assert.equal(hop('http://a/d/x.bam', '//c/z'), 'http://c/z');
  assert.equal(hop('http://a/d/x.bam', 'http://b/y#part'), 'http://b/y');
  // An upgrade is fine.
  assert.equal(hop('http://a/x', 'https://a/x'), 'https://a/x');
});

test('https to http is refused as INSECURE_REDIRECT (EACCES), also to another host; http to http is not', () => {
  for (const [from, to] of [
    ['https://a/x.bam', 'http://a/x.bam'],
    ['https://a/x.bam', 'http://b:8080/y?X-Amz-Signature=secret'],
    ['https://a:8443/x.bam', 'HTTP://a:8443/x.bam'],
  ]) {
    const err = refusal(() => hop(from, to));
    assert.equal(err.code, 'INSECURE_REDIRECT', `${from} → ${to}`);
    assert.equal(errnoName(err), 'EACCES');
    assert.ok(!err.message.includes('secret'), err.message);
  }
  assert.equal(hop('http://a/x', 'http://b/y'), 'http://b/y');
  // A scheme-relative Location keeps https.
  assert.equal(hop('https://a/x', '//b/y'), 'https://b/y');
});

test('loops, the 11th hop, a missing or unusable Location and other schemes are REDIRECT (EIO)', () => {
  const loop = refusal(() => hop('http://a/x?loop=1', '/x', ['http://a/x', 'http://a/x?loop=1']));
  assert.equal(loop.code, 'REDIRECT');
  assert.match(loop.message, /redirect loop/);
  assert.equal(errnoName(loop), 'EIO');
  // Ten hops are followed: the chain then holds the start and ten targets.
  const chain = Array.from({ length: MAX_REDIRECTS }, (_, i) => `http://a/x?hop=${i}`);
  assert.equal(hop(chain.at(-1)!, `/x?hop=${MAX_REDIRECTS}`, chain), `http://a/x?hop=${MAX_REDIRECTS}`);
  const tooMany = refusal(() => hop('http://a/x?hop=10', '/x?hop=11', [...chain, `http://a/x?hop=${MAX_REDIRECTS}`]));
  assert.equal(tooMany.code, 'REDIRECT');
  assert.match(tooMany.message, /more than 10 redirects/);
  for (const location of [undefined, '', 'http://[bad', 'ftp://a/x', 'data:text/plain,hi', 'file:///etc/passwd']) {
    assert.equal(refusal(() => hop('http://a/x', location)).code, 'REDIRECT', String(location));
  }
});

test('only headers that say what is asked cross to another origin: no credential of any name', () => {
  const sent = headersAcrossOrigins({
    authorization: 'Bearer t',
    Cookie: 'session=1',
    'proxy-authorization': 'Basic x',
    'x-api-key': 'k',
    'x-auth-token': 't',
    range: 'bytes=0-9',
    'if-match': '"e"',
    'accept-encoding': 'identity',
    'Cache-Control': 'no-store',
  });
  assert.deepEqual(sent, { range: 'bytes=0-9', 'if-match': '"e"', 'accept-encoding': 'identity', 'Cache-Control': 'no-store' });
});

test('the memory of targets: kept until refused, a presigned target forgotten before its stated expiry', () => {
  let now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const memory = new RedirectMemory(() => now);
  memory.remember('http://a/x', 'http://b/x');
  assert.equal(memory.get('http://a/x'), 'http://b/x');
  memory.forget('http://a/x');
  assert.equal(memory.get('http://a/x'), undefined);

  // An hour's URL: used until 5 minutes before its end, then asked for again.
  const presigned = `http://s/x?X-Amz-Date=${amzDate(now)}&X-Amz-Expires=3600&X-Amz-Signature=s1`;
  memory.remember('http://a/y', presigned);
  now += 54 * 60 * 1000;
  assert.equal(memory.get('http://a/y'), presigned);
  now += 2 * 60 * 1000;
  assert.equal(memory.get('http://a/y'), undefined);

  // A minute's URL: used for most of it (forgotten at 80 % of its life).
  const short = `http://s/x?X-Amz-Date=${amzDate(now)}&X-Amz-Expires=60&X-Amz-Signature=s2`;
  memory.remember('http://a/z', short);
  now += 47_000;
  assert.equal(memory.get('http://a/z'), short);
  now += 2_000;
  assert.equal(memory.get('http://a/z'), undefined);

  // Already expired: not remembered at all.
  memory.remember('http://a/w', `http://s/x?X-Amz-Date=${amzDate(now - 120_000)}&X-Amz-Expires=60&X-Amz-Signature=s3`);
  assert.equal(memory.get('http://a/w'), undefined);
});

test('what is refused as not data, and what is served although its type is odd', () => {
  const bam = ['http://h/d/x.bam'];
  const cases: [Parameters<typeof suspectAnswer>[0], string[], string | undefined][] = [
    [{ contentType: 'text/html; charset=utf-8' }, bam, 'html'],
    [{ contentType: 'application/xhtml+xml' }, bam, 'html'],
    [{ contentType: 'text/html' }, ['http://h/d/index.html'], undefined],
    [{ contentType: 'text/html' }, ['http://h/download?id=7', 'http://s/b/page.HTM?sig=1'], undefined],
    [{ contentType: 'application/json' }, bam, 'json'],
    [{ contentType: 'application/json' }, ['http://h/d/meta.json'], undefined],
    [{ contentType: 'application/json' }, ['http://h/d/calls.geojson'], undefined],
    [{ contentType: 'application/json', contentDisposition: 'attachment; filename="sample.json"' }, ['http://h/download?id=7'], undefined],
    [{ contentType: 'application/vnd.api+json' }, bam, 'json'],
    [{ contentType: 'application/problem+json' }, ['http://h/d/meta.json'], 'json'],
    [{ contentType: 'application/octet-stream', contentEncoding: 'gzip' }, bam, 'encoding'],
    [{ contentType: 'application/octet-stream', contentEncoding: 'identity' }, bam, undefined],
    [{ contentType: 'application/octet-stream' }, bam, undefined],
    [{ contentType: 'text/plain' }, bam, undefined],
    [{}, bam, undefined],
  ];
  for (const [headers, urls, want] of cases) {
    assert.equal(suspectAnswer(headers, urls)?.kind, want, `${JSON.stringify(headers)} ${urls.join(' ')}`);
  }
  // Labelled HTML, the body decides: markup is a page, a BAM's magic or a FASTA is data.
  assert.equal(looksLikeMarkup(Buffer.from('\ufeff \r\n\t<!DOCTYPE html><html>')), true);
  assert.equal(looksLikeMarkup(Buffer.from('<html>')), true);
  assert.equal(looksLikeMarkup(Buffer.from([0x1f, 0x8b, 0x08, 0x04])), false);
  assert.equal(looksLikeMarkup(Buffer.from('>chr1\nACGT')), false);
  assert.equal(looksLikeMarkup(Buffer.from('  \n')), undefined);
});

test('what came back is named: a JSON message (nested or not), cut and redacted; the page title in the error', () => {
  assert.equal(jsonMessage('{"error":{"code":401,"message":"Access token expired"}}'), 'Access token expired');
  assert.equal(jsonMessage('{"detail":"Work package not found"}'), 'Work package not found');
  assert.equal(jsonMessage('[{"msg":"bad"}]'), 'bad');
  assert.equal(jsonMessage('{"data":[1,2,3]}'), undefined);
  assert.equal(jsonMessage('{"message":"cut off here", "more": [1,2'), 'cut off here');
  const long = jsonMessage(JSON.stringify({ message: `see https://h/x?X-Amz-Signature=secret with Bearer abc.def ${'x'.repeat(300)}` }))!;
  assert.ok(long.length <= 100 && long.endsWith('…'), long);
  assert.ok(!long.includes('secret') && !long.includes('abc.def'), long);

  const page = '<!DOCTYPE html><html><head><title>\n  Sign in &amp; continue\n</title></head><body>token=SECRET</body></html>';
  const err = wrongContentError('GET http://h/x.bam', { kind: 'html' }, 200, page);
  assert.equal(err.code, 'WRONG_CONTENT');
  assert.equal(errnoName(err), 'EIO');
  assert.match(err.message, /^GET http:\/\/h\/x\.bam: an HTML page \("Sign in & continue"\) came back instead of the data/);
  assert.ok(!err.message.includes('SECRET'));
  assert.match(wrongContentError('GET x', { kind: 'encoding', encoding: 'gzip' }, 206).message, /Content-Encoding: gzip/);
});
