import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fuse from 'fuse-native';
import { SlicefsError, codeForStatus, errnoName, isRetryableStatus } from '../../src/errors.js';
import { fuseErrno } from '../../src/fs/fuse/fuse-adapter.js';
import { safeUrl } from '../../src/util/redact.js';
import { formatBytes, parseByteSize } from '../../src/util/size.js';

test('HTTP status → errno table', () => {
  const errno = (s: number) => errnoName(new SlicefsError(codeForStatus(s), 'x'));
  assert.equal(errno(404), 'ENOENT');
  assert.equal(errno(410), 'ENOENT');
  assert.equal(errno(401), 'EACCES');
  assert.equal(errno(403), 'EACCES');
  assert.equal(errno(412), 'ESTALE');
  assert.equal(errno(500), 'EIO');
  assert.equal(errno(416), 'EIO');
  assert.equal(errnoName(new SlicefsError('TIMEOUT', 'x')), 'ETIMEDOUT');
  assert.equal(errnoName(new SlicefsError('READ_ONLY', 'x')), 'EROFS');
  assert.equal(errnoName(new Error('anything else')), 'EIO');
  assert.ok(isRetryableStatus(503) && isRetryableStatus(429) && !isRetryableStatus(404) && !isRetryableStatus(403));
});

test('the FUSE adapter turns errno names into fuse-native numbers', () => {
  assert.equal(fuseErrno(new SlicefsError('NOT_FOUND', 'x')), Fuse.ENOENT);
  assert.equal(fuseErrno(new SlicefsError('STALE', 'x')), Fuse.ESTALE);
  assert.equal(fuseErrno(new SlicefsError('ACCESS_DENIED', 'x')), Fuse.EACCES);
  assert.equal(fuseErrno(new SlicefsError('TIMEOUT', 'x')), Fuse.ETIMEDOUT);
  assert.equal(fuseErrno(new TypeError('bug')), Fuse.EIO);
  assert.ok(Fuse.ESTALE < 0 && Fuse.EIO < 0);
});

test('URLs in messages lose their query string and credentials', () => {
  assert.equal(safeUrl('https://user:pw@h.org/a/b.bam?X-Amz-Signature=secret&t=1'), 'https://h.org/a/b.bam?…');
  assert.equal(safeUrl('http://h/a.bam'), 'http://h/a.bam');
  assert.ok(!safeUrl('not a url?token=secret').includes('secret'));
});

test('byte sizes', () => {
  assert.equal(parseByteSize('1M'), 1048576);
  assert.equal(parseByteSize('256MiB'), 256 * 1048576);
  assert.equal(parseByteSize('1.5G'), 1.5 * 1024 ** 3);
  assert.equal(parseByteSize('4096'), 4096);
  assert.throws(() => parseByteSize('12Q', '--cache-size'), /invalid --cache-size '12Q'/);
});

test('sizes and rates read as whole bytes below 1 KiB, binary units above', () => {
  // A rate is a fraction: `821.2566722508035 B/s` was printed.
  assert.equal(formatBytes(821.2566722508035), '821 B');
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023.7), '1.00 KiB');
  assert.equal(formatBytes(12.3 * 1024 * 1024), '12.3 MiB');
});

test('the one-line error: first line only, control characters escaped (no escape sequence reaches a terminal)', async () => {
  const { errorLine } = await import('../../src/cli/common.js');
  const err = new SlicefsError('USAGE', 'contig "\x1b[31mchr1\r" is unknown\u2028(hint)\nsecond line');
  assert.equal(errorLine(err), 'contig "\\x1b[31mchr1\\x0d" is unknown\\u2028(hint)');
});
