/**
 * Hostile BAM files for tests: a real BAM rewritten with stored (level 0) BGZF blocks by samtools
 * and indexed, so that any bytes of its records can be changed in place (the block is inflated,
 * patched and deflated again at level 0, which keeps its compressed size, and its CRC32 is
 * recomputed) while its index stays valid. What an attacker, or a bit rot, could hand `view`.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { samtools } from './sample-data.js';

/** The record a patch is aimed at: where it starts in the inflated stream and its core fields. */
export interface RecordAt {
  /** Index of the record in the file (0 = the first after the header). */
  index: number;
  /** Offset of its 4-byte block_size in the inflated stream. */
  offset: number;
  /** Its block_size. */
  length: number;
  tid: number;
  pos: number;
}

interface Block {
  pos: number;
  size: number;
  /** Offset of its payload in the inflated stream. */
  start: number;
  data: Buffer;
}

/** Writes `dir/name` as `src` recompressed at level 0, with a BAI, and returns its path. */
export async function storedBam(src: string, dir: string, name = 'stored.bam'): Promise<string> {
  const out = join(dir, name);
  for (const args of [['view', '--no-PG', '-u', '-o', out, src], ['index', out]]) {
    const r = await samtools(args);
    if (r.code !== 0) throw new Error(`samtools ${args.join(' ')}: ${r.stderr.trim()}`);
  }
  return out;
}

function blocksOf(file: Buffer): Block[] {
  const blocks: Block[] = [];
  let start = 0;
  for (let pos = 0; pos < file.length; ) {
    const size = file.readUInt16LE(pos + 16) + 1;
    const data = inflateRawSync(file.subarray(pos + 18, pos + size - 8));
    blocks.push({ pos, size, start, data });
    start += data.length;
    pos += size;
  }
  return blocks;
}

/** Every record of a BAM (its bytes, as read from disk) with where it starts. */
export function recordsOf(file: Buffer): RecordAt[] {
  const stream = Buffer.concat(blocksOf(file).map((b) => b.data));
  let p = 8 + stream.readInt32LE(4);
  const nRef = stream.readInt32LE(p);
  p += 4;
  for (let i = 0; i < nRef; i++) p += 4 + stream.readInt32LE(p) + 4;
  const out: RecordAt[] = [];
  while (p + 4 <= stream.length) {
    const length = stream.readInt32LE(p);
    out.push({ index: out.length, offset: p, length, tid: stream.readInt32LE(p + 4), pos: stream.readInt32LE(p + 8) });
    p += 4 + length;
  }
  return out;
}

/** The size of the inflated stream (header and records) of a BAM. */
export function inflatedSize(file: Buffer): number {
  return blocksOf(file).reduce((n, b) => n + b.data.length, 0);
}

/**
 * A copy of the level-0 BAM `file` with `bytes` written at `offset` of its inflated stream (within
 * one BGZF block). Returns the copy and the compressed offset of the block that was changed.
 */
export function patchInflated(file: Buffer, offset: number, bytes: Buffer): { bam: Buffer; blockPos: number } {
  const block = blocksOf(file).find((b) => offset >= b.start && offset + bytes.length <= b.start + b.data.length);
  if (!block) throw new Error(`hostile-bam: bytes at ${offset} of the inflated stream cross a block boundary`);
  const data = Buffer.from(block.data);
  bytes.copy(data, offset - block.start);
  const deflated = deflateRawSync(data, { level: 0 });
  if (deflated.length !== block.size - 26) throw new Error('hostile-bam: the block is not stored at level 0');
  const bam = Buffer.from(file);
  deflated.copy(bam, block.pos + 18);
  bam.writeUInt32LE(crc32(data) >>> 0, block.pos + block.size - 8);
  return { bam, blockPos: block.pos };
}

/** The level-0 BAM with the block_size of `rec` set to `length` (a signed 32-bit value). */
export function withRecordLength(file: Buffer, rec: RecordAt, length: number): { bam: Buffer; blockPos: number } {
  const b = Buffer.alloc(4);
  b.writeInt32LE(length);
  return patchInflated(file, rec.offset, b);
}

/** Reads a file and its records (for picking one to patch). */
export async function loadBam(path: string): Promise<{ bytes: Buffer; records: RecordAt[] }> {
  const bytes = await fs.readFile(path);
  return { bytes, records: recordsOf(bytes) };
}

/**
 * The level-0 BAM `file` with its inflated stream (header and records) changed by `change`, which
 * must keep its length: every block is stored again at its own size, so the index still points
 * at the same blocks.
 */
export function withInflated(file: Buffer, change: (stream: Buffer) => Buffer): Buffer {
  const blocks = blocksOf(file);
  const stream = change(Buffer.concat(blocks.map((b) => b.data)));
  const out = Buffer.from(file);
  for (const b of blocks) {
    const data = stream.subarray(b.start, b.start + b.data.length);
    if (data.equals(b.data)) continue; // unchanged (the EOF block is not stored at level 0)
    const deflated = deflateRawSync(data, { level: 0 });
    if (deflated.length !== b.size - 26) throw new Error('hostile-bam: the block is not stored at level 0');
    deflated.copy(out, b.pos + 18);
    out.writeUInt32LE(crc32(data) >>> 0, b.pos + b.size - 8);
  }
  return out;
}
