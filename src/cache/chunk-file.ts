/**
 * The format of one chunk file of the disk tier: a 64-byte header, then the payload: one
 * contiguous extent of the chunk's slot (the object's bytes [index·C, (index+1)·C), C the slot
 * size), starting at `lo` within the slot (a multiple of the page size) and ending at a page
 * boundary or at the slot's end.
 *
 *     0..32   SHA-256 of bytes 32..end (the rest of the header and the payload)
 *    32..36   magic "SFC2"
 *    36..40   slot size of the tier (u32 BE): a tier with another slot size reads it as foreign
 *    40..44   chunk (slot) index in the object (u32 BE)
 *    44..48   lo: where the payload starts in the slot (u32 BE)
 *    48..52   payload length (u32 BE)
 *    52..64   the first 12 bytes of the object's key hash (the directory's name)
 *
 * The checksum covers the header fields too, so a file renamed into the wrong place, a file of a
 * truncated write, a zeroed page after a crash, or a flipped bit all fail the check. SHA-256, not
 * CRC32C: the same speed class here (OpenSSL with SHA extensions, ~1.1–1.4 GB/s per core) and it is
 * computed off the FUSE thread (WebCrypto runs it on libuv's pool), while a 32-bit CRC would let
 * one in 4·10⁹ damaged chunks through, and a cache that serves controlled data must not.
 */
import { createHash, webcrypto } from 'node:crypto';

export const CHUNK_HEADER_BYTES = 64;
const MAGIC = 0x53464332; // "SFC2"
/** The format before extents (a whole slot per file): read as a plain miss, replaced silently. */
const MAGIC_V1 = 0x53464331; // "SFC1"

/** What a chunk file says it holds. */
export interface ChunkShape {
  /** Slot size of the tier. */
  chunkBytes: number;
  /** Page size: `lo` is a multiple of it, and so is the extent's end unless it is the slot's end. */
  pageBytes: number;
  index: number;
  /** Bytes in the slot (the last slot of an object is shorter). */
  slotLength: number;
  keyHash: Buffer;
}

/** A buffer for an extent of `length` bytes, header space in front (filled by `sealChunk`). */
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

/** Writes the header of a chunk buffer whose payload (the slot's bytes from `lo` on) is filled in. */
export async function sealChunk(record: Buffer, chunkBytes: number, index: number, lo: number, keyHash: Buffer): Promise<void> {
  record.writeUInt32BE(MAGIC, 32);
  record.writeUInt32BE(chunkBytes, 36);
  record.writeUInt32BE(index, 40);
  record.writeUInt32BE(lo, 44);
  record.writeUInt32BE(record.length - CHUNK_HEADER_BYTES, 48);
  keyHash.copy(record, 52, 0, 12);
  (await sha256(record.subarray(32))).copy(record, 0);
}

/**
 * The header of a chunk file whose payload (the slot's bytes from `lo` on) is `parts` in order,
 * for a writer that sends the header and the parts without joining them. The hash runs on the
 * calling thread (the tier's writer thread, ./slot-writer.ts), straight over the parts: no copy.
 */
export function chunkHeader(parts: readonly Uint8Array[], chunkBytes: number, index: number, lo: number, keyHash: Uint8Array): Buffer {
  const header = Buffer.alloc(CHUNK_HEADER_BYTES);
  const length = parts.reduce((n, p) => n + p.length, 0);
  header.writeUInt32BE(MAGIC, 32);
  header.writeUInt32BE(chunkBytes, 36);
  header.writeUInt32BE(index, 40);
  header.writeUInt32BE(lo, 44);
  header.writeUInt32BE(length, 48);
  header.set(keyHash.subarray(0, 12), 52);
  const h = createHash('sha256').update(header.subarray(32));
  for (const p of parts) h.update(p);
  h.digest().copy(header, 0);
  return header;
}

/** A file of the format before extents: not damage, just not ours any more. */
export function isOldFormat(file: Buffer): boolean {
  return file.length >= CHUNK_HEADER_BYTES && file.readUInt32BE(32) === MAGIC_V1;
}

/**
 * Where the chunk file's payload starts in the slot (`{ lo }`) when its bytes are an extent of
 * chunk `shape.index` of the object `shape.keyHash`; else why not (a string).
 */
export async function checkChunk(file: Buffer, shape: ChunkShape): Promise<{ lo: number } | string> {
  if (file.length <= CHUNK_HEADER_BYTES) return `${file.length} bytes, no payload`;
  if (file.readUInt32BE(32) !== MAGIC) return 'not a chunk file';
  if (file.readUInt32BE(36) !== shape.chunkBytes) return 'another chunk size';
  const lo = file.readUInt32BE(44);
  const length = file.readUInt32BE(48);
  if (length !== file.length - CHUNK_HEADER_BYTES) return `${file.length} bytes, expected ${CHUNK_HEADER_BYTES + length}`;
  const hi = lo + length;
  if (file.readUInt32BE(40) !== shape.index || !file.subarray(52, 64).equals(shape.keyHash.subarray(0, 12))) return 'another chunk';
  if (lo % shape.pageBytes !== 0 || hi > shape.slotLength || (hi % shape.pageBytes !== 0 && hi !== shape.slotLength)) {
    return `extent [${lo}, ${hi}) is not whole pages of the slot`;
  }
  if (!(await sha256(file.subarray(32))).equals(file.subarray(0, 32))) return 'checksum mismatch';
  return { lo };
}
