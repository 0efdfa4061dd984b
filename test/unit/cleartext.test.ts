/**
 * No credential over plain http except to loopback (src/transport/cleartext.ts): which hosts are
 * loopback, and which requests are refused, with one line that names no secret.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLoopbackHost, refuseCleartextCredentials } from '../../src/transport/cleartext.js';

test('loopback: localhost, 127.0.0.0/8, ::1 (also IPv4-mapped); nothing else', () => {
  for (const url of ['http://localhost:8080/', 'http://LOCALHOST./', 'http://127.0.0.1/', 'http://127.255.3.4:9/', 'http://[::1]:80/', 'http://[::ffff:127.0.0.1]/', 'http://127.1/']) {
    assert.ok(isLoopbackHost(new URL(url).hostname), url);
  }
  for (const url of ['http://10.0.0.1/', 'http://128.0.0.1/', 'http://example.org/', 'http://localhost.example.org/', 'http://[::2]/', 'http://[::ffff:10.0.0.1]/', 'http://127.0.0.1.nip.io/']) {
    assert.ok(!isLoopbackHost(new URL(url).hostname), url);
  }
});

test('a credential over plain http to another host is refused (USAGE, one line, no secret); https and loopback go', () => {
  const bearer = { authorization: 'Bearer s3cr3t-t0ken' };
  for (const [url, headers] of [
    ['http://score.example.org/download/x?sig=abc', bearer],
    ['http://wps.example.org/work-packages/1', { Authorization: 'Bearer s3cr3t-t0ken' }],
    ['http://h.example.org/x', { cookie: 'session=s3cr3t-t0ken' }],
    ['http://user:s3cr3t-t0ken@h.example.org/x', {}],
  ] as const) {
    assert.throws(
      () => refuseCleartextCredentials(url, headers),
      (e: Error & { code?: string }) => e.code === 'USAGE' && /^refusing to send .* over plain http to http:\/\/[a-z.]+\/\S* /.test(e.message) && !e.message.includes('s3cr3t') && !e.message.includes('\n'),
      url,
    );
  }
  refuseCleartextCredentials('https://score.example.org/download/x', bearer);
  refuseCleartextCredentials('http://127.0.0.1:8080/download/x', bearer);
  refuseCleartextCredentials('http://[::1]:8080/download/x', bearer);
  // No credential: a plain http URL (a presigned one included) is the user's choice.
  refuseCleartextCredentials('http://data.example.org/x.bam?X-Amz-Signature=abc', { range: 'bytes=0-1' });
});
