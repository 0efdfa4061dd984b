/**
 * A Crypt4GH encryptor for tests, built on slicefs's own header and block writers (the reader is
 * checked against the reference implementation's vectors; this writer is checked by that reader
 * and by the layout tests in test/unit/crypt4gh-*.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { encryptHeader } from '../../src/crypt4gh/header.js';
import type { C4ghKeyPair } from '../../src/crypt4gh/keys.js';
import { encryptBlock, SEGMENT_SIZE } from '../../src/crypt4gh/segments.js';

export interface C4ghFile {
  /** header ‖ body, or (splitHeader) the body alone: what GHGA's object store holds. */
  file: Buffer;
  /** The header (GHGA's "envelope"). */
  header: Buffer;
  /** The data blocks. */
  body: Buffer;
  /** The data key, for tests that go below the header. */
  dataKey: Buffer;
}

/**
 * Encrypts `plain` for the recipients' public keys as `crypt4gh encrypt` does (one data key, 64 KiB
 * segments, no empty trailing block), optionally with an edit list in the header.
 */
export function encryptC4gh(
  plain: Buffer,
  recipients: Buffer[],
  opts: { editList?: number[]; splitHeader?: boolean; writer?: C4ghKeyPair } = {},
): C4ghFile {
  const dataKey = randomBytes(32);
  const header = encryptHeader(dataKey, recipients, { editList: opts.editList, writer: opts.writer });
  const blocks: Buffer[] = [];
  for (let at = 0; at < plain.length; at += SEGMENT_SIZE) {
    blocks.push(encryptBlock(plain.subarray(at, Math.min(at + SEGMENT_SIZE, plain.length)), dataKey));
  }
  const body = Buffer.concat(blocks);
  return { file: opts.splitHeader ? body : Buffer.concat([header, body]), header, body, dataKey };
}
