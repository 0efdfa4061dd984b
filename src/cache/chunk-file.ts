/**
 * The format of one chunk file of the disk tier: a 64-byte header, then the payload (a chunk of
 * the object's bytes).
 *
 *     0..32   SHA-256 of bytes 32..end (the rest of the header and the payload)
 *    32..36   magic "SFC1"
 *    36..40   chunk size of the tier (u32 BE): a tier with another chunk size reads it as foreign
 *    40..44   chunk index in the object (u32 BE)
 *    44..48   payload length (u32 BE)
 *    48..64   the first 16 bytes of the object's key hash (the directory's name)
 *
 * The checksum covers the header fields too, so a file renamed into the wrong place, a file of a
 * truncated write, a zeroed page after a crash, or a flipped bit all fail the check. SHA-256, not
 * CRC32C: the same speed class here (OpenSSL with SHA extensions, ~1.1–1.4 GB/s per core) and it is
 * computed off the FUSE thread (WebCrypto runs it on libuv's pool), while a 32-bit CRC would let
 * one in 4·10⁹ damaged chunks through, and a cache that serves controlled data must not.
 */
import { webcrypto } from 'node:crypto';

export const CHUNK_HEADER_BYTES = 64;
const MAGIC = 0x53464331; // "SFC1"

/** A buffer for a chunk of `length` bytes, header space in front (filled by `sealChunk`). */
export function allocChunk(length: number): Buffer {
  // Never pooled: a chunk buffer (and every view of it that is handed out) owns its memory.
  return Buffer.allocUnsafeSlow(CHUNK_HEADER_BYTES + length);
}

/** The payload of a chunk buffer. */
export function payloadOf(record: Buffer): Buffer {
  return record.subarray(CHUNK_HEADER_BYTES);
}

async function sha256(data: Buffer): Promise<Buffer> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data));
}

/** Writes the header of a chunk buffer whose payload is filled in. */
export async function sealChunk(record: Buffer, chunkBytes: number, index: number, keyHash: Buffer): Promise<void> {
  record.writeUInt32BE(MAGIC, 32);
  record.writeUInt32BE(chunkBytes, 36);
  record.writeUInt32BE(index, 40);
  record.writeUInt32BE(record.length - CHUNK_HEADER_BYTES, 44);
  keyHash.copy(record, 48, 0, 16);
  (await sha256(record.subarray(32))).copy(record, 0);
}

/**
 * Why the chunk file's bytes are not chunk `index` of `length` bytes of the object `keyHash`, or
 * undefined when they are.
 */
export async function checkChunk(file: Buffer, chunkBytes: number, index: number, length: number, keyHash: Buffer): Promise<string | undefined> {
  if (file.length !== CHUNK_HEADER_BYTES + length) return `${file.length} bytes, expected ${CHUNK_HEADER_BYTES + length}`;
  if (file.readUInt32BE(32) !== MAGIC) return 'not a chunk file';
  if (file.readUInt32BE(36) !== chunkBytes) return 'another chunk size';
  if (file.readUInt32BE(40) !== index || file.readUInt32BE(44) !== length || !file.subarray(48, 64).equals(keyHash.subarray(0, 16))) {
    return 'another chunk';
  }
  if (!(await sha256(file.subarray(32))).equals(file.subarray(0, 32))) return 'checksum mismatch';
  return undefined;
}
