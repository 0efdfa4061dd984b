/**
 * BGZF, the blocked gzip of BAM: reading the records between two virtual offsets as a stream, and
 * writing records into blocks. Inflating uses Node's zlib (the library that does this well);
 * the block framing is a few lines and written here because the records must stream through
 * slicefs's own reader (one cache, one transport), which no BGZF package for Node takes.
 *
 * A virtual offset is (compressed offset of a block) << 16 | (offset inside its inflated data).
 */
import { promisify } from 'node:util';
import { crc32, deflateRawSync, inflateRaw, inflateRawSync } from 'node:zlib';

const inflateRawAsync = promisify(inflateRaw);
import { SlicefsError } from '../errors.js';

export interface VOffset {
  blockPosition: number;
  dataPosition: number;
}

/** Reads compressed bytes of the object: [position, position + length), fewer at EOF. */
export type ReadAt = (position: number, length: number) => Promise<Buffer>;

/** Compressed bytes asked for at a time while streaming a chunk. */
const READ_PIECE = 256 * 1024;
/** Largest BGZF block (BSIZE is 16 bits): the last block of a chunk ends within this of its start. */
const MAX_BGZF_BLOCK = 65536;

/** The byte after the last compressed byte a chunk ending at `to` can need (its last block, whole). */
export function chunkEndByte(to: VOffset, fileSize: number): number {
  return Math.min(fileSize, to.blockPosition + MAX_BGZF_BLOCK);
}
const BGZF_HEADER = 18;

/** How many blocks are inflated at once on libuv's thread pool, ahead of the record parser. */
const INFLATE_AHEAD = 8;

/**
 * The compressed BGZF blocks starting at `start`, up to and including the one at `lastBlock`
 * (undefined: to the end of the file), in order. Never reads past `limit`.
 */
async function* compressedBlocks(readAt: ReadAt, start: number, lastBlock: number | undefined, limit: number): AsyncGenerator<{ pos: number; block: Buffer }> {
  const readAtMost = (position: number, length: number) => readAt(position, Math.max(0, Math.min(length, limit - position)));
  let pos = start;
  let pending: Buffer = Buffer.alloc(0); // compressed bytes read, from `pendingAt` on
  let pendingAt = pos;
  while (pos < limit && (lastBlock === undefined || pos <= lastBlock)) {
    let off = pos - pendingAt;
    if (pending.length - off < BGZF_HEADER) {
      pending = Buffer.concat([pending.subarray(off), await readAtMost(pendingAt + pending.length, READ_PIECE)]);
      pendingAt = pos;
      off = 0;
    }
    if (pending.length - off < BGZF_HEADER) throw new SlicefsError('BAD_RESPONSE', `truncated BGZF block at byte ${pos}`);
    if (pending[off] !== 0x1f || pending[off + 1] !== 0x8b || pending[off + 12] !== 0x42 || pending[off + 13] !== 0x43) {
      throw new SlicefsError('BAD_RESPONSE', `not a BGZF block at byte ${pos} (corrupt file or wrong index)`);
    }
    const bsize = pending.readUInt16LE(off + 16) + 1;
    if (pending.length - off < bsize) {
      pending = Buffer.concat([pending.subarray(off), await readAtMost(pendingAt + pending.length, Math.max(READ_PIECE, bsize))]);
      pendingAt = pos;
      if (pending.length < bsize) throw new SlicefsError('BAD_RESPONSE', `truncated BGZF block at byte ${pos}`);
      continue;
    }
    yield { pos, block: pending.subarray(off, off + bsize) };
    pos += bsize;
  }
}

/**
 * Inflates blocks in order, with up to INFLATE_AHEAD of them being inflated on libuv's thread pool
 * while the caller parses records: decompression runs on the other core.
 */
async function* inflatedBlocks(blocks: AsyncGenerator<{ pos: number; block: Buffer }>): AsyncGenerator<{ pos: number; next: number; data: Buffer }> {
  const queue: Promise<{ pos: number; next: number; data: Buffer }>[] = [];
  let done = false;
  const fill = async () => {
    while (!done && queue.length < INFLATE_AHEAD) {
      const r = await blocks.next();
      if (r.done) {
        done = true;
        break;
      }
      const { pos, block } = r.value;
      const p = inflateRawAsync(block.subarray(BGZF_HEADER, block.length - 8)).then(
        (data) => ({ pos, next: pos + block.length, data }),
        (e: Error) => {
          throw new SlicefsError('BAD_RESPONSE', `corrupt BGZF block at byte ${pos}: ${e.message}`);
        },
      );
      p.catch(() => {}); // awaited in order below; not an unhandled rejection meanwhile
      queue.push(p);
    }
  };
  await fill();
  while (queue.length > 0) {
    const head = await queue.shift()!;
    await fill();
    yield head;
  }
}

/**
 * Streams the raw records (each without its 4-byte length) that start in [from, to) in virtual
 * offsets, in file order, in batches (the records completed by one BGZF block: one await per
 * block, not per record). `to` undefined: to the end of the file. Memory: a piece of compressed
 * data, INFLATE_AHEAD inflated blocks and the part of a record not yet complete.
 */
export async function* recordsBetween(readAt: ReadAt, fileSize: number, from: VOffset, to: VOffset | undefined): AsyncGenerator<Buffer[]> {
  // Never ask for bytes past the chunk's last block (a record spilling over it is finished below).
  const limit = to ? chunkEndByte(to, fileSize) : fileSize;
  let data: Buffer = Buffer.alloc(0); // inflated bytes not yet consumed as records
  let skip = from.dataPosition;
  for await (const { pos, next, data: inflated } of inflatedBlocks(compressedBlocks(readAt, from.blockPosition, to?.blockPosition, limit))) {
    const isLast = to !== undefined && pos === to.blockPosition;
    // In the last block only records that start before `to.dataPosition` belong to the range.
    let left = isLast ? data.length + to.dataPosition - skip : Infinity;
    let usable: Buffer = inflated;
    if (skip > 0) {
      usable = usable.subarray(Math.min(skip, usable.length));
      skip = 0;
    }
    data = data.length === 0 ? usable : Buffer.concat([data, usable]);
    // Emit the complete records now in `data`; a record that continues into later blocks waits.
    let p = 0;
    const batch: Buffer[] = [];
    while (p < left && data.length - p >= 4) {
      const size = data.readInt32LE(p);
      if (data.length - p - 4 < size) break;
      batch.push(data.subarray(p + 4, p + 4 + size));
      p += 4 + size;
    }
    data = data.subarray(p);
    left -= p;
    if (isLast) {
      // A record that starts before `to` but spills into the next blocks is still in range.
      if (left > 0 && data.length > 0) batch.push(await finishRecord(readAt, fileSize, next, data));
      if (batch.length > 0) yield batch;
      return;
    }
    if (batch.length > 0) yield batch;
  }
  if (data.length > 0 && to === undefined) throw new SlicefsError('BAD_RESPONSE', 'truncated BAM: the last record is incomplete');
}

/** Reads following blocks until the record that starts in `head` is complete. */
async function finishRecord(readAt: ReadAt, fileSize: number, pos: number, head: Buffer): Promise<Buffer> {
  let data: Buffer = head;
  while (pos < fileSize) {
    if (data.length >= 4 && data.length - 4 >= data.readInt32LE(0)) break;
    const hdr = await readAt(pos, BGZF_HEADER);
    if (hdr.length < BGZF_HEADER) break;
    const bsize = hdr.readUInt16LE(16) + 1;
    const block = await readAt(pos, bsize);
    data = Buffer.concat([data, inflateRawSync(block.subarray(BGZF_HEADER, bsize - 8))]);
    pos += bsize;
  }
  if (data.length < 4 || data.length - 4 < data.readInt32LE(0)) throw new SlicefsError('BAD_RESPONSE', 'truncated BAM record');
  return data.subarray(4, 4 + data.readInt32LE(0));
}

/** The 28-byte empty block that ends every BGZF file (samtools quickcheck looks for it). */
export const BGZF_EOF = Buffer.from('1f8b08040000000000ff0600424302001b0003000000000000000000', 'hex');

/** Largest inflated payload of one block (htslib's BGZF_BLOCK_SIZE, leaving room for a stored block). */
const MAX_PAYLOAD = 0xff00;

/** One BGZF block of `data` (≤ MAX_PAYLOAD bytes). Level 1: fast, as `samtools view -1`. */
export function bgzfBlock(data: Buffer): Buffer {
  const deflated = deflateRawSync(data, { level: 1 });
  const bsize = BGZF_HEADER + deflated.length + 8;
  const out = Buffer.alloc(bsize);
  out.set([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43, 2, 0]);
  out.writeUInt16LE(bsize - 1, 16);
  deflated.copy(out, BGZF_HEADER);
  out.writeUInt32LE(crc32(data) >>> 0, bsize - 8);
  out.writeUInt32LE(data.length, bsize - 4);
  return out;
}

/** Collects bytes (copied: callers may reuse theirs) and emits full BGZF blocks. */
export class BgzfWriter {
  private readonly buf = Buffer.allocUnsafe(MAX_PAYLOAD);
  private len = 0;
  constructor(private readonly emit: (block: Buffer) => void) {}

  write(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) {
      const n = Math.min(bytes.length - off, MAX_PAYLOAD - this.len);
      this.buf.set(bytes.subarray(off, off + n), this.len);
      this.len += n;
      off += n;
      if (this.len === MAX_PAYLOAD) this.flush();
    }
  }

  flush(): void {
    if (this.len === 0) return;
    this.emit(bgzfBlock(this.buf.subarray(0, this.len)));
    this.len = 0;
  }

  end(): void {
    this.flush();
    this.emit(BGZF_EOF);
  }
}
