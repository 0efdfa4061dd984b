/**
 * Expiry of presigned URLs in the forms object stores issue (S3 SigV4 and v2, GCS v4, Azure SAS).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { presignedExpiry } from '../../src/source/presigned.js';

test('S3 SigV4, GCS v4, Azure SAS and S3 v2 URLs give their expiry; other URLs none', () => {
  const s3 =
    'https://bucket.s3.amazonaws.com/data/x.bam?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261123T101500Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=abc';
  assert.equal(presignedExpiry(s3), Date.UTC(2026, 10, 24, 10, 15, 0));
  // Lower-case parameter names, as some clients write them.
  assert.equal(presignedExpiry('https://h/o?x-amz-date=20261123T000000Z&x-amz-expires=60&x-amz-signature=s'), Date.UTC(2026, 10, 23, 0, 1, 0));
  const gcs = 'https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20261123T120000Z&X-Goog-Expires=900&X-Goog-Signature=s';
  assert.equal(presignedExpiry(gcs), Date.UTC(2026, 10, 23, 12, 15, 0));
  const azure = 'https://acct.blob.core.windows.net/c/x.bam?sv=2021-08-06&se=2026-11-24T08%3A30%3A00Z&sr=b&sp=r&sig=abc%3D';
  assert.equal(presignedExpiry(azure), Date.UTC(2026, 10, 24, 8, 30, 0));
  assert.equal(presignedExpiry('https://h/o?AWSAccessKeyId=A&Expires=1795431600&Signature=s'), 1795431600 * 1000);
  for (const plain of ['https://h/x.bam', 'https://h/x.bam?X-Amz-Date=bad&X-Amz-Expires=60', 'https://h/x?Expires=tomorrow', 'not a url']) {
    assert.equal(presignedExpiry(plain), undefined, plain);
  }
});
