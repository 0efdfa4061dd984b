/**
 * BGZF, the blocked gzip of BAM: reading the records between two virtual offsets as a stream, and
 * writing records into blocks. Inflating uses Node's zlib (the library that does this well);
 * the block framing is a few lines and written here because the records must stream through
 * slicefs's own reader (one cache, one transport), which no BGZF package for Node takes.
 *
 * A virtual offset is (compressed offset of a block) << 16 | (offset inside its inflated data).
 */
import { promisify } from 'node:util';
import { crc32, deflateRawSync, gunzip, inflateRaw, inflateRawSync } from 'node:zlib';

const inflateRawAsync = promisify(inflateRaw);
const gunzipAsync = promisify(gunzip);
import { SlicefsError } from '../errors.js';
import { MAX_RECORD_BYTES, RECORD_CORE_BYTES, recordProblem } from './bam-record.js';

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

/** A file that is not what it claims to be: its name (`label`), then what is wrong and where. */
const corrupt = (label: string, message: string) => new SlicefsError('BAD_RESPONSE', `${label}: ${message}`);

/**
 * Blocks queued for inflating ahead of the record parser, at most (plus one run of
 * compressedRuns): 16 blocks are ≤ 1 MiB inflated, two batches of work for the thread pool.
 */
const INFLATE_AHEAD = 16;
/**
 * Blocks inflated in one job on libuv's thread pool, at most. A job costs the main thread a zlib
 * stream's set-up (~50 µs); 8 blocks (≤ 512 KiB) make that ~6 µs a block, while two jobs of a
 * 16-block queue keep both cores of a small machine busy (measured: per-block jobs cost the main
 * thread 0.12 s and the pool 0.39 s for a 10 Mb region's 1,868 blocks, batches of 8 0.06 and 0.32).
 */
const INFLATE_BATCH = 8;
/** Blocks queued ahead when the caller decides each block's fate as it is queued (see inflatedBlocks). */
const INFLATE_AHEAD_DECIDED = 8;

/**
 * The compressed BGZF blocks starting at `start`, up to and including the one at `lastBlock`
 * (undefined: to the end of the file), in order, in runs: every block complete in the bytes read
 * so far (a READ_PIECE holds ~10), so that a run can be inflated in one job. Never reads past `limit`.
 */
async function* compressedRuns(readAt: ReadAt, start: number, lastBlock: number | undefined, limit: number, label: string): AsyncGenerator<{ pos: number; block: Buffer }[]> {
  const readAtMost = (position: number, length: number) => readAt(position, Math.max(0, Math.min(length, limit - position)));
  let pos = start;
  let pending: Buffer = Buffer.alloc(0); // compressed bytes read, from `pendingAt` on
  let pendingAt = pos;
  const more = () => (lastBlock === undefined || pos <= lastBlock) && pos < limit;
  while (more()) {
    let off = pos - pendingAt;
    if (pending.length - off < BGZF_HEADER) {
      pending = Buffer.concat([pending.subarray(off), await readAtMost(pendingAt + pending.length, READ_PIECE)]);
      pendingAt = pos;
      off = 0;
    }
    const bsize = blockSize(pending.subarray(off), pos, label);
    if (pending.length - off < bsize) {
      const piece = await readAtMost(pendingAt + pending.length, Math.max(READ_PIECE, bsize));
      if (piece.length === 0) throw corrupt(label, `truncated BGZF block at byte ${pos}`);
      pending = Buffer.concat([pending.subarray(off), piece]);
      pendingAt = pos;
      continue;
    }
    const run: { pos: number; block: Buffer }[] = [];
    // This block, and every block after it already whole in `pending`.
    for (let size = bsize; ; ) {
      run.push({ pos, block: pending.subarray(off, off + size) });
      pos += size;
      off += size;
      if (!more() || pending.length - off < BGZF_HEADER) break;
      try {
        size = blockSize(pending.subarray(off), pos, label);
      } catch {
        break; // thrown again when this block is reached, after the blocks before it are handed on
      }
      if (pending.length - off < size) break;
    }
    yield run;
  }
}

/** The compressed BGZF blocks of compressedRuns, one at a time. */
async function* compressedBlocks(readAt: ReadAt, start: number, lastBlock: number | undefined, limit: number, label: string): AsyncGenerator<{ pos: number; block: Buffer }> {
  for await (const run of compressedRuns(readAt, start, lastBlock, limit, label)) yield* run;
}

/**
 * The size of the BGZF block whose first bytes are `head` (at least its 18-byte header), checked:
 * gzip magic, the BC extra field, a size that can hold the header and the 8-byte trailer.
 */
function blockSize(head: Buffer, pos: number, label: string): number {
  if (head.length < BGZF_HEADER) throw corrupt(label, `truncated BGZF block at byte ${pos}`);
  if (head[0] !== 0x1f || head[1] !== 0x8b || head[12] !== 0x42 || head[13] !== 0x43) {
    throw corrupt(label, `not a BGZF block at byte ${pos} (corrupt file or wrong index)`);
  }
  const bsize = head.readUInt16LE(16) + 1;
  if (bsize < BGZF_HEADER + 8) throw corrupt(label, `corrupt BGZF block at byte ${pos}: size ${bsize}`);
  return bsize;
}

/** A block's deflate stream and the inflated size its trailer states (ISIZE). */
function deflatedPart(block: Buffer, pos: number, label: string): { data: Buffer; isize: number } {
  if (block.length < BGZF_HEADER + 8) throw corrupt(label, `truncated BGZF block at byte ${pos}`);
  return { data: block.subarray(BGZF_HEADER, block.length - 8), isize: block.readUInt32LE(block.length - 4) };
}

function checkedInflate(inflated: Buffer, isize: number, pos: number, label: string): Buffer {
  if (inflated.length !== isize) throw corrupt(label, `corrupt BGZF block at byte ${pos}: ${inflated.length} bytes inflated, ${isize} stated`);
  return inflated;
}

/**
 * A block inflates to at most MAX_BGZF_BLOCK: that is the cap, and the output chunk size too, so
 * a block is one pass through zlib (with the default 16 KiB chunks it is four round trips to
 * libuv's thread pool and four buffers joined).
 */
const INFLATE_OPTIONS = { maxOutputLength: MAX_BGZF_BLOCK, chunkSize: MAX_BGZF_BLOCK };

const inflateFailed = (pos: number, e: Error, label: string) => corrupt(label, `corrupt BGZF block at byte ${pos}: ${e.message}`);

/** Checks a block's CRC32 (its trailer) against its inflated bytes, as htslib does on reading. */
function checkedCrc(block: Buffer, inflated: Buffer, pos: number, label: string): Buffer {
  if ((crc32(inflated) >>> 0) !== block.readUInt32LE(block.length - 8)) throw corrupt(label, `corrupt BGZF block at byte ${pos}: CRC32 mismatch`);
  return inflated;
}

/**
 * Inflates one whole BGZF block (header and trailer included) found at byte `pos`. The output is
 * capped at what a block can hold (64 KiB): a deflate stream that would inflate to more (a "zip
 * bomb") is an error, not an allocation; so is one that disagrees with the block's ISIZE or CRC32.
 */
export async function inflateBlock(block: Buffer, pos: number, label: string): Promise<Buffer> {
  const { data, isize } = deflatedPart(block, pos, label);
  const inflated = await inflateRawAsync(data, INFLATE_OPTIONS).catch((e: Error) => {
    throw inflateFailed(pos, e, label);
  });
  return checkedCrc(block, checkedInflate(inflated, isize, pos, label), pos, label);
}

function inflateBlockSync(block: Buffer, pos: number, label: string): Buffer {
  const { data, isize } = deflatedPart(block, pos, label);
  let inflated: Buffer;
  try {
    inflated = inflateRawSync(data, INFLATE_OPTIONS);
  } catch (e) {
    throw inflateFailed(pos, e as Error, label);
  }
  return checkedCrc(block, checkedInflate(inflated, isize, pos, label), pos, label);
}

/**
 * Inflates consecutive blocks in one job on libuv's thread pool, their payloads in order (views of
 * one buffer). A BGZF file is a series of gzip members, and zlib's gunzip inflates a buffer of
 * them in one pass, checking each member's CRC32 and ISIZE; the output is cut at the ISIZEs the
 * blocks' trailers state, and must add up to them. When the batch fails or does not add up, its
 * blocks are inflated one by one (inflateBlock), so that the first bad block is the one named:
 * the result then holds the payloads before it and its error.
 */
async function inflateBatch(blocks: readonly { pos: number; block: Buffer }[], label: string): Promise<{ payloads: Buffer[]; error?: Error }> {
  let total = 0;
  let bytes = 0;
  for (const { block } of blocks) {
    const isize = block.length >= BGZF_HEADER + 8 ? block.readUInt32LE(block.length - 4) : Infinity;
    // A stated size past what a block holds is wrong: left for inflateBlock to name.
    total += isize <= MAX_BGZF_BLOCK ? isize : Infinity;
    bytes += block.length;
  }
  if (total !== Infinity) {
    const first = blocks[0].block;
    // compressedRuns' blocks are consecutive views of one read piece: no copy then.
    const contiguous = blocks.every((b, i) => i === 0 || (b.block.buffer === first.buffer && b.block.byteOffset === blocks[i - 1].block.byteOffset + blocks[i - 1].block.length));
    const input = contiguous ? Buffer.from(first.buffer, first.byteOffset, bytes) : Buffer.concat(blocks.map((b) => b.block));
    const inflated = await gunzipAsync(input, {
      // Room for the whole batch in one output buffer (zlib needs spare room to see the end).
      chunkSize: total + 64,
      maxOutputLength: Math.max(1, total),
    }).catch(() => undefined);
    if (inflated && inflated.length === total) {
      const payloads: Buffer[] = [];
      let at = 0;
      for (const { block } of blocks) {
        const isize = block.readUInt32LE(block.length - 4);
        payloads.push(inflated.subarray(at, at + isize));
        at += isize;
      }
      return { payloads };
    }
  }
  const payloads: Buffer[] = [];
  for (const { pos, block } of blocks) {
    try {
      payloads.push(await inflateBlock(block, pos, label));
    } catch (error) {
      return { payloads, error: error as Error };
    }
  }
  // Each block alone is sound, but not all of them together (a member whose deflate stream ends
  // before its trailer, say): these are the payloads htslib reads, block by block.
  return { payloads };
}

/** A block as inflatedBlocks hands it on. */
interface QueuedBlock {
  pos: number;
  next: number;
  /** The inflated payload; undefined for an unread block that was not inflated. */
  data: Buffer | undefined;
  block: Buffer;
  /** Whether its records are not to be read (`unread` said so when it was queued). */
  unread: boolean;
  /** Why it could not be inflated (thrown when the caller reaches it). */
  error?: Error;
}

/**
 * Inflates blocks in order, in batches of up to INFLATE_BATCH inflated on libuv's thread pool
 * (inflateBatch) while the caller parses records, up to INFLATE_AHEAD blocks ahead: decompression
 * runs on the other cores. A block for which `unread(pos)` says yes when it is queued is handed on
 * marked so, and inflated only when `inflateUnread`. A block that does not inflate is an error
 * when the caller reaches it, after every block before it.
 */
async function* inflatedBlocks(
  runs: AsyncGenerator<{ pos: number; block: Buffer }[]>,
  label: string,
  unread?: (pos: number) => boolean,
  inflateUnread = true,
): AsyncGenerator<QueuedBlock> {
  const queue: Promise<QueuedBlock[]>[] = [];
  let queued = 0;
  let done = false;
  const submit = (group: { pos: number; block: Buffer }[], skip: boolean) => {
    const entry = (b: { pos: number; block: Buffer }, data: Buffer | undefined): QueuedBlock => ({ pos: b.pos, next: b.pos + b.block.length, data, block: b.block, unread: skip });
    const p =
      skip && !inflateUnread
        ? Promise.resolve(group.map((b) => entry(b, undefined)))
        : inflateBatch(group, label).then(({ payloads, error }) => {
            const out = payloads.map((d, i) => entry(group[i], d));
            if (error) out.push({ ...entry(group[payloads.length], undefined), error });
            return out;
          });
    queue.push(p);
    queued += group.length;
  };
  // With `unread`, a block's fate is decided as it is queued, and the caller's trust only turns on
  // as its records are read: a shorter queue decides more blocks late (more are copied unread).
  const ahead = unread ? INFLATE_AHEAD_DECIDED : INFLATE_AHEAD;
  let run: { pos: number; block: Buffer }[] = [];
  let next = 0;
  const fill = async () => {
    // Consecutive blocks of one fate, INFLATE_BATCH at most, make a job; a job is not held back
    // waiting for the bytes of the next run.
    let group: { pos: number; block: Buffer }[] = [];
    let groupSkip = false;
    while (!done && queued + group.length < ahead) {
      if (next === run.length) {
        if (group.length > 0) {
          submit(group, groupSkip);
          group = [];
        }
        try {
          const r = await runs.next();
          if (r.done) done = true;
          else [run, next] = [r.value, 0];
        } catch (error) {
          // A block that is not BGZF, or a file that ends inside one: an error after the blocks before it.
          queue.push(Promise.resolve([{ pos: -1, next: -1, data: undefined, block: Buffer.alloc(0), unread: false, error: error as Error }]));
          done = true;
        }
        continue;
      }
      const b = run[next++];
      const skip = unread?.(b.pos) ?? false;
      if (group.length > 0 && (skip !== groupSkip || group.length >= INFLATE_BATCH)) {
        submit(group, groupSkip);
        group = [];
      }
      groupSkip = skip;
      group.push(b);
    }
    if (group.length > 0) submit(group, groupSkip);
  };
  await fill();
  while (queue.length > 0) {
    const batch = await queue.shift()!;
    queued -= batch.length;
    await fill();
    for (const b of batch) {
      if (b.error) throw b.error;
      yield b;
    }
  }
}

/**
 * Inflated bytes not yet consumed as records. While records fit in the block at hand it is a view
 * of that block (no copy); a record that spans blocks is collected in a buffer that doubles as it
 * grows, so a large record costs linear, not quadratic, copying, and never more than twice the
 * bytes that actually arrived (a length field alone allocates nothing). It remembers which
 * compressed block each byte came from, for error messages.
 */
class PendingBytes {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  private owned = false;
  /** Bytes consumed and appended since the stream began, and where each block's bytes began. */
  private consumed = 0;
  private appended = 0;
  private origins: { at: number; block: number }[] = [];

  get length(): number {
    return this.end - this.start;
  }

  view(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }

  append(bytes: Buffer, block: number): void {
    this.origins.push({ at: this.appended, block });
    this.appended += bytes.length;
    if (this.length === 0) {
      this.buf = bytes;
      this.start = 0;
      this.end = bytes.length;
      this.owned = false;
      return;
    }
    if (!this.owned || this.end + bytes.length > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.length + bytes.length, 2 * this.length));
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
      this.end = this.length;
      this.start = 0;
      this.owned = true;
    }
    bytes.copy(this.buf, this.end);
    this.end += bytes.length;
  }

  consume(n: number): void {
    this.start += n;
    this.consumed += n;
    while (this.origins.length > 1 && this.origins[1].at <= this.consumed) this.origins.shift();
  }

  /** The compressed offset of the block that the pending byte at `p` came from. */
  blockOf(p: number): number {
    const at = this.consumed + p;
    let block = this.origins[0]?.block ?? 0;
    for (const o of this.origins) if (o.at <= at) block = o.block;
    return block;
  }
}

/** The error for a record whose block_size is impossible. */
function badLength(block: number, size: number, label: string): SlicefsError {
  const why = size > MAX_RECORD_BYTES ? ` (over the ${MAX_RECORD_BYTES / 1024 / 1024} MiB a record may have)` : size < RECORD_CORE_BYTES ? ` (under the ${RECORD_CORE_BYTES} bytes of its fixed fields)` : '';
  return corrupt(label, `corrupt BAM record at compressed offset ${block}: length ${size}${why}`);
}

/**
 * Takes the complete records at the front of `pending` (at most those starting in its first
 * `left` bytes), each checked (length, then its fields against its length), into `batch`.
 * Returns the bytes consumed.
 */
function takeRecords(pending: PendingBytes, left: number, batch: Buffer[], label: string, withLength = false): number {
  const data = pending.view();
  let p = 0;
  while (p < left && data.length - p >= 4) {
    const size = data.readInt32LE(p);
    if (size < RECORD_CORE_BYTES || size > MAX_RECORD_BYTES) throw badLength(pending.blockOf(p), size, label);
    if (data.length - p - 4 < size) break;
    const rec = data.subarray(p + 4, p + 4 + size);
    const problem = recordProblem(rec);
    if (problem) throw corrupt(label, `corrupt BAM record at compressed offset ${pending.blockOf(p)}: ${problem}`);
    batch.push(withLength ? data.subarray(p, p + 4 + size) : rec);
    p += 4 + size;
  }
  pending.consume(p);
  return p;
}

/**
 * Streams the raw records (each without its 4-byte length) that start in [from, to) in virtual
 * offsets, in file order, in batches (the records completed by one BGZF block: one await per
 * block, not per record). `to` undefined: to the end of the file. Memory: a piece of compressed
 * data, INFLATE_AHEAD inflated blocks and the part of a record not yet complete (at most
 * MAX_RECORD_BYTES: a longer length field is an error, so is one below the fixed 32 bytes).
 */
export async function* recordsBetween(readAt: ReadAt, fileSize: number, from: VOffset, to: VOffset | undefined, label: string): AsyncGenerator<Buffer[]> {
  // Never ask for bytes past the chunk's last block (a record spilling over it is finished below).
  const limit = to ? chunkEndByte(to, fileSize) : fileSize;
  const pending = new PendingBytes(); // inflated bytes not yet consumed as records
  let skip = from.dataPosition;
  for await (const { pos, next, data } of inflatedBlocks(compressedRuns(readAt, from.blockPosition, to?.blockPosition, limit, label), label)) {
    const inflated = data!; // every block is read, so inflated, here
    const isLast = to !== undefined && pos === to.blockPosition;
    // In the last block only records that start before `to.dataPosition` belong to the range.
    let left = isLast ? pending.length + to.dataPosition - skip : Infinity;
    let usable: Buffer = inflated;
    if (skip > 0) {
      usable = usable.subarray(Math.min(skip, usable.length));
      skip = 0;
    }
    pending.append(usable, pos);
    // Emit the complete records now pending; a record that continues into later blocks waits.
    const batch: Buffer[] = [];
    left -= takeRecords(pending, left, batch, label);
    if (isLast) {
      // A record that starts before `to` but spills into the next blocks is still in range.
      if (left > 0 && pending.length > 0) batch.push(await finishRecord(readAt, fileSize, next, pending, label));
      if (batch.length > 0) yield batch;
      return;
    }
    if (batch.length > 0) yield batch;
  }
  if (pending.length > 0 && to === undefined) throw corrupt(label, `truncated BAM: the last record (from the block at byte ${pending.blockOf(0)}) is incomplete`);
}

/** Reads following blocks until the record at the front of `pending` is complete. */
async function finishRecord(readAt: ReadAt, fileSize: number, pos: number, pending: PendingBytes, label: string, withLength = false): Promise<Buffer> {
  const batch: Buffer[] = [];
  while (pos < fileSize) {
    const head = await readAt(pos, BGZF_HEADER);
    const bsize = blockSize(head, pos, label);
    const block = await readAt(pos, bsize);
    if (block.length < bsize) throw corrupt(label, `truncated BGZF block at byte ${pos}`);
    pending.append(inflateBlockSync(block, pos, label), pos);
    pos += bsize;
    takeRecords(pending, 1, batch, label, withLength);
    if (batch.length > 0) return batch[0];
  }
  throw corrupt(label, `truncated BAM record at compressed offset ${pending.blockOf(0)}: the file ends first`);
}

/**
 * A piece of BAM output: `bytes` of the record stream (whole records or parts of one, with their
 * length fields) to be compressed anew, or an input `block` whose payload is wholly wanted
 * records, to be copied as it is (BAM output); `payload` is its inflated bytes, to be written
 * anew (uncompressed BAM), undefined when it was not inflated (with `trust` and no `payloads`).
 */
export type BamPiece = { bytes: Buffer } | { block: Buffer; payload: Buffer | undefined };

/**
 * What the caller knows from the sort order and the index about reference `tid`: once a record of
 * it at position ≥ `start` has been read, every record that starts before `until` (a record start)
 * and outside the `suspect` ranges is wanted. The suspect ranges (sorted, disjoint) are where the
 * index puts every record that may start at or past the region's end: from `minv` (a record
 * start) to the end of the block at `lastBlock`.
 */
export interface Trust {
  tid: number;
  start: number;
  until: VOffset;
  suspect: { minv: VOffset; lastBlock: number }[];
}

/** Whether the block at `pos` holds a byte of a suspect range (binary search). */
function suspectAt(trust: Trust, pos: number): boolean {
  let lo = 0;
  let hi = trust.suspect.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (trust.suspect[mid].lastBlock < pos) lo = mid + 1;
    else hi = mid;
  }
  return lo < trust.suspect.length && trust.suspect[lo].minv.blockPosition <= pos;
}

/** The first record start at or after the block at `pos` where trust ends: a suspect range or `until`. */
function trustEnd(trust: Trust, pos: number): VOffset {
  const next = trust.suspect.find((r) => r.minv.blockPosition >= pos);
  return next && (next.minv.blockPosition < trust.until.blockPosition || (next.minv.blockPosition === trust.until.blockPosition && next.minv.dataPosition < trust.until.dataPosition)) ? next.minv : trust.until;
}

/** An input block whose fate waits for every record it holds a byte of to be complete. */
interface HeldBlock {
  block: Buffer;
  pos: number;
  payload: Buffer;
  /** Where its payload lies in the chunk's record stream (bytes from the chunk's first record). */
  start: number;
  end: number;
  /** Still a candidate to copy whole: every record seen touching it so far is wanted. */
  whole: boolean;
}

/**
 * The BAM output of the records that start in [from, to) (as recordsBetween reads them) and that
 * `wanted` keeps, in pieces (see BamPiece), in order, one batch per input block, with the number
 * of records read and kept and of blocks copied unread.
 *
 * The chunk's inflated payloads, one after the other, are a stream of records; the output is
 * the sub-stream of wanted records. An input block is copied whole when every record that has a
 * byte in its payload is wanted, which is checked record by record: those records' bytes in this
 * block are then exactly the block's payload, and at this point of the output. The first block
 * of a chunk that starts inside it (from's dataPosition > 0) and the block where it ends are never
 * copied (they hold bytes outside the chunk). Every other byte of a wanted record is written as
 * `bytes`. A record may straddle blocks (htsjdk writes them so): its part in a copied block is in
 * that block, its other parts are `bytes`, in order, so the record stream of the output is the
 * same whatever the blocks. A block is decided once the record holding its last byte is
 * complete; until then it is held (at most a record's worth: MAX_RECORD_BYTES). Empty blocks
 * carry no bytes and are dropped. A copied block's CRC32 is checked (htslib checks it when
 * reading the output: a block that fails it would be copied corruption).
 *
 * With `trust`, once its first record has been read, a block that lies before the block of
 * `trust.until` and outside every suspect range is copied unread (its bytes are wanted records by
 * the caller's word): not even inflated unless `payloads` asks for them (uncompressed BAM; then its
 * CRC32 is checked), since its size is in its trailer. So is every block after it
 * up to the block of the next stop, X (trustEnd: the next suspect range's first record, or
 * `until`). The record that was incomplete when the first of those blocks came is wanted (it
 * starts after the first record of trust, and outside the suspect ranges, which hold whole
 * records), and it is completed in those blocks; in the block of X, the bytes before X end the
 * records copied so; reading record by record resumes at X.
 */
export async function* bamPiecesBetween(
  readAt: ReadAt,
  fileSize: number,
  from: VOffset,
  to: VOffset | undefined,
  label: string,
  wanted: (rec: Buffer) => boolean,
  trust?: Trust,
  payloads = false,
): AsyncGenerator<{ pieces: BamPiece[]; records: number; unread: number }> {
  const limit = to ? chunkEndByte(to, fileSize) : fileSize;
  let pending = new PendingBytes();
  let skip = from.dataPosition;
  /** Stream offsets: the end of the payloads appended, and the end of the complete records taken. */
  let appended = 0;
  let taken = 0;
  const held: HeldBlock[] = [];
  /** Bytes of wanted records (with their length fields) not yet written, by stream offset. */
  const kept: { start: number; bytes: Buffer }[] = [];
  let keptCount = 0;
  /** Set once trust's first record has been read: from then on, see `blind`. */
  let trusted = false;
  /** Set while blocks are copied on trust: where reading resumes (X, above) in the next block inflated. */
  let resumeAt: number | undefined;

  /** Judges complete records (with their length fields), in stream order. */
  const judge = (records: Buffer[]) => {
    for (const rec of records) {
      const start = taken;
      taken += rec.length;
      if (trust && !trusted && rec.readInt32LE(4) === trust.tid && rec.readInt32LE(8) >= trust.start) trusted = true;
      if (wanted(rec.subarray(4))) {
        kept.push({ start, bytes: rec });
        keptCount++;
        continue;
      }
      // A block with a byte of an unwanted record is not copied; only the last few can have one.
      for (let i = held.length - 1; i >= 0 && held[i].end > start; i--) if (held[i].start < taken) held[i].whole = false;
    }
  };
  /** Decides and writes the held blocks that end at or before `upTo` (their records all judged). */
  const release = (upTo: number, out: BamPiece[]) => {
    while (held.length > 0 && held[0].end <= upTo) {
      const h = held.shift()!;
      if (h.whole) {
        // Its CRC32 was checked when it was inflated (inflatedBlocks), as every inflated block's is.
        out.push({ block: h.block, payload: h.payload });
      } else {
        for (const k of kept) {
          if (k.start >= h.end) break;
          const end = k.start + k.bytes.length;
          if (end > h.start) out.push({ bytes: k.bytes.subarray(Math.max(k.start, h.start) - k.start, Math.min(end, h.end) - k.start) });
        }
      }
      while (kept.length > 0 && kept[0].start + kept[0].bytes.length <= h.end) kept.shift();
    }
  };
  /** Whether the block at `pos` is copied on trust, unread (decided when it is queued: `trusted` only turns on). */
  const blind = (pos: number) => trusted && trust !== undefined && pos < trust.until.blockPosition && !suspectAt(trust, pos);

  for await (const { pos, next, data, block, unread } of inflatedBlocks(compressedRuns(readAt, from.blockPosition, to?.blockPosition, limit, label), label, blind, payloads)) {
    const pieces: BamPiece[] = [];
    if (unread) {
      // Copied on trust. What is pending is the start of a wanted record that continues here.
      if (resumeAt === undefined) {
        if (pending.length > 0) {
          kept.push({ start: taken, bytes: Buffer.from(pending.view()) });
          keptCount++;
        }
        release(Infinity, pieces);
        pending = new PendingBytes();
        resumeAt = trustEnd(trust!, pos).dataPosition;
      }
      // An empty block carries nothing (and htslib may read one as the end of the file).
      if (block.readUInt32LE(block.length - 4) > 0) {
        pieces.push({ block, payload: data });
      }
      yield { pieces, records: 0, unread: 1 };
      continue;
    }
    if (data === undefined) throw new Error('bgzf: a block to be read was not inflated');
    const isLast = to !== undefined && pos === to.blockPosition;
    /** Where in this block's payload the records read here begin. */
    const first = resumeAt ?? skip;
    let left = isLast ? pending.length + to.dataPosition - first : Infinity;
    const whole = first === 0 && !isLast;
    if (resumeAt !== undefined && resumeAt > 0) {
      // The end of the records copied on trust.
      pieces.push({ bytes: data.subarray(0, Math.min(resumeAt, data.length)) });
    }
    const usable = first > 0 ? data.subarray(Math.min(first, data.length)) : data;
    skip = 0;
    resumeAt = undefined;
    if (usable.length > 0) {
      held.push({ block, pos, payload: usable, start: appended, end: appended + usable.length, whole });
      appended += usable.length;
      pending.append(usable, pos);
    }
    taken = appended - pending.length;
    const batch: Buffer[] = [];
    left -= takeRecords(pending, left, batch, label, true);
    const before = keptCount;
    judge(batch);
    if (isLast) {
      // A record that starts before `to` but spills into the next blocks is still in range.
      if (left > 0 && pending.length > 0) judge([await finishRecord(readAt, fileSize, next, pending, label, true)]);
      release(Infinity, pieces);
      // The parts of records past the last block held (read by finishRecord).
      for (const k of kept.splice(0)) pieces.push({ bytes: k.bytes.subarray(Math.max(0, appended - k.start)) });
      if (pieces.length > 0) yield { pieces, records: keptCount - before, unread: 0 };
      return;
    }
    release(taken, pieces);
    if (pieces.length > 0 || keptCount > before) yield { pieces, records: keptCount - before, unread: 0 };
  }
  if (pending.length > 0 && to === undefined) throw corrupt(label, `truncated BAM: the last record (from the block at byte ${pending.blockOf(0)}) is incomplete`);
  const pieces: BamPiece[] = [];
  release(Infinity, pieces);
  if (pieces.length > 0) yield { pieces, records: 0, unread: 0 };
}

/**
 * The most header a BAM may have (text and reference list, inflated). Real headers are at most
 * tens of MB (a few hundred thousand contigs); the bytes are taken as they arrive, never by a
 * length field alone.
 */
const MAX_HEADER_BYTES = 256 * 1024 * 1024;

/**
 * A BAM's header (its text, and its references' names and lengths), read from the blocks at the
 * start of the file one at a time (no reading ahead: the first bytes are usually at hand), each
 * length field checked before it is used. Names and text are decoded as UTF-8, as @gmod/bam did.
 */
export async function readBamHeader(
  readAt: ReadAt,
  fileSize: number,
  label: string,
): Promise<{ text: string; contigs: { name: string; length: number }[]; end: VOffset }> {
  const pending = new PendingBytes();
  /** The blocks inflated so far: where each starts in the file and in the inflated bytes. */
  const inflated: { pos: number; from: number; size: number; next: number }[] = [];
  const blocks = compressedBlocks(readAt, 0, undefined, fileSize, label);
  const bad = (why: string) => corrupt(label, `corrupt BAM header: ${why}`);
  /** The pending bytes, once there are at least `n`. */
  const need = async (n: number): Promise<Buffer> => {
    if (n > MAX_HEADER_BYTES) throw bad(`it would be over ${MAX_HEADER_BYTES / 1024 / 1024} MiB`);
    while (pending.length < n) {
      const r = await blocks.next();
      if (r.done) throw bad('the file ends inside it');
      const data = inflateBlockSync(r.value.block, r.value.pos, label);
      const last = inflated.at(-1);
      inflated.push({ pos: r.value.pos, from: last ? last.from + last.size : 0, size: data.length, next: r.value.pos + r.value.block.length });
      pending.append(data, r.value.pos);
    }
    return pending.view();
  };
  let v = await need(8);
  if (v.readUInt32LE(0) !== 0x014d4142) throw corrupt(label, 'not a BAM file (no BAM magic)');
  const lText = v.readInt32LE(4);
  if (lText < 0) throw bad(`a text length of ${lText}`);
  v = await need(8 + lText + 4);
  const decoder = new TextDecoder('utf8');
  const text = decoder.decode(v.subarray(8, 8 + lText));
  const nRef = v.readInt32LE(8 + lText);
  if (nRef < 0) throw bad(`a reference count of ${nRef}`);
  const contigs: { name: string; length: number }[] = [];
  let p = 12 + lText;
  for (let i = 0; i < nRef; i++) {
    v = await need(p + 4);
    const lName = v.readInt32LE(p);
    if (lName < 1) throw bad(`reference ${i}'s name length is ${lName}`);
    v = await need(p + 4 + lName + 4);
    const length = v.readInt32LE(p + 4 + lName);
    if (length < 0) throw bad(`reference ${i}'s length is ${length}`);
    contigs.push({ name: decoder.decode(v.subarray(p + 4, p + 4 + lName - 1)), length });
    p += 8 + lName;
  }
  await blocks.return(undefined);
  // The virtual offset of byte p of the inflated stream; at a block's end, the next block's start.
  const at = inflated.find((b) => p < b.from + b.size);
  const end = at ? { blockPosition: at.pos, dataPosition: p - at.from } : { blockPosition: inflated.at(-1)!.next, dataPosition: 0 };
  return { text, contigs, end };
}

/** The 28-byte empty block that ends every BGZF file (samtools quickcheck looks for it). */
export const BGZF_EOF = Buffer.from('1f8b08040000000000ff0600424302001b0003000000000000000000', 'hex');

/** Largest inflated payload of one block (htslib's BGZF_BLOCK_SIZE, leaving room for a stored block). */
export const MAX_PAYLOAD = 0xff00;

/** The BGZF header of a block of `bsize` bytes (gzip with the BC extra field). */
function bgzfHeader(out: Buffer, bsize: number): void {
  out.set([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43, 2, 0]);
  out.writeUInt16LE(bsize - 1, 16);
}

/**
 * One BGZF block of `data` (≤ MAX_PAYLOAD bytes). Level 1 by default: fast, as `samtools view -1`;
 * level 0 makes stored deflate blocks (BTYPE 00), as `samtools view -u`: no compression at all.
 */
export function bgzfBlock(data: Buffer, level = 1): Buffer {
  if (level === 0) return storedBgzfBlock(data);
  const deflated = deflateRawSync(data, { level });
  const bsize = BGZF_HEADER + deflated.length + 8;
  const out = Buffer.alloc(bsize);
  bgzfHeader(out, bsize);
  deflated.copy(out, BGZF_HEADER);
  out.writeUInt32LE(crc32(data) >>> 0, bsize - 8);
  out.writeUInt32LE(data.length, bsize - 4);
  return out;
}

/**
 * A BGZF block holding `data` (≤ MAX_PAYLOAD bytes) as one final stored deflate block (RFC 1951
 * §3.2.4: the byte 0x01, LEN, its complement, the bytes), built here without zlib; `crc` when
 * already known (an input block's, checked against these bytes).
 */
export function storedBgzfBlock(data: Buffer, crc = crc32(data) >>> 0): Buffer {
  const bsize = BGZF_HEADER + 5 + data.length + 8;
  const out = Buffer.allocUnsafe(bsize);
  bgzfHeader(out, bsize);
  out[BGZF_HEADER] = 1;
  out.writeUInt16LE(data.length, BGZF_HEADER + 1);
  out.writeUInt16LE(~data.length & 0xffff, BGZF_HEADER + 3);
  data.copy(out, BGZF_HEADER + 5);
  out.writeUInt32LE(crc, bsize - 8);
  out.writeUInt32LE(data.length, bsize - 4);
  return out;
}

/** Collects bytes (copied: callers may reuse theirs) and emits full BGZF blocks. */
export class BgzfWriter {
  private readonly buf = Buffer.allocUnsafe(MAX_PAYLOAD);
  private len = 0;
  /** `level`: the deflate level of the blocks (0: stored, uncompressed BAM). */
  constructor(
    private readonly emit: (block: Buffer) => void,
    private readonly level = 1,
  ) {}

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
    this.emit(bgzfBlock(this.buf.subarray(0, this.len), this.level));
    this.len = 0;
  }

  end(): void {
    this.flush();
    this.emit(BGZF_EOF);
  }
}
