/**
 * Crypt4ghFileStream: a whole Crypt4GH file (header, then data blocks) pushed in order from its
 * first byte, turned into what a reader of it sees (the plaintext, through the edit list if the
 * header has one), in order. For hashing a file's plaintext while it is being written (`download
 * --ghga` keeps the file encrypted and checks the plaintext's SHA-256: ../download/md5-worker.ts),
 * where Crypt4ghSource (random access over an ObjectSource) would need a second pass.
 *
 * The header's bytes are gathered (a copy, at most MAX_HEADER_SIZE) until its length is known and
 * it is whole, then opened with the reader's keys; the body's blocks go through SegmentDecrypter
 * (MAC checked before a byte of a block is used). The file's size is given up front: it fixes the
 * body's plaintext size, hence where the edit list's open tail ends. The first failure (not a
 * Crypt4GH file, no key opens it, a block that fails its MAC, a truncated body) is thrown by
 * push/end as the DECRYPT error Crypt4ghSource gives for the same file; nothing of that block or
 * after it is passed on. No view of a pushed chunk is kept after push() returns.
 */
import { SlicefsError } from '../errors.js';
import { EditList, type EditRun } from './edit-list.js';
import { decryptHeader, headerLength, MAX_HEADER_SIZE } from './header.js';
import type { C4ghKeyPair } from './keys.js';
import { SegmentDecrypter } from './segment-stream.js';
import { plaintextSize } from './segments.js';

export class Crypt4ghFileStream {
  private header?: Buffer;
  private headerBytes = 0;
  private body?: SegmentDecrypter;
  /** Plaintext offset of the next byte SegmentDecrypter hands over. */
  private plainAt = 0;
  /** The edit list's kept runs over the whole plaintext (undefined: everything is kept), and the next one. */
  private runs?: EditRun[];
  private run = 0;

  constructor(
    private readonly keys: C4ghKeyPair[],
    private readonly fileSize: number,
    /** Receives what a reader sees, in order; each buffer is the callee's until it returns. */
    private readonly onPlain: (plain: Buffer) => void,
    /** Names the file in errors. */
    private readonly label: string,
  ) {}

  /** The file's next bytes. */
  push(chunk: Buffer): void {
    if (this.body) {
      this.body.push(chunk);
      return;
    }
    // Still in the header: gather it (a copy: the chunk's memory is the caller's).
    this.header ??= Buffer.allocUnsafe(Math.min(MAX_HEADER_SIZE, this.fileSize));
    const take = Math.min(chunk.length, this.header.length - this.headerBytes);
    chunk.copy(this.header, this.headerBytes, 0, take);
    this.headerBytes += take;
    const gathered = this.header.subarray(0, this.headerBytes);
    const length = headerLength(gathered, this.label);
    if (length === undefined) {
      if (this.headerBytes === this.header.length) throw this.truncatedHeader();
      return;
    }
    if (length > this.fileSize) throw this.truncatedHeader();
    if (this.headerBytes < length) return;
    this.openBody(gathered.subarray(0, length));
    // The bytes past the header, from what was gathered and from the rest of this chunk.
    if (this.headerBytes > length) this.body!.push(gathered.subarray(length));
    if (take < chunk.length) this.body!.push(chunk.subarray(take));
    this.header = undefined;
  }

  /** Every byte of the file has been pushed. */
  end(): void {
    if (!this.body) throw this.truncatedHeader();
    this.body.end();
  }

  private truncatedHeader(): SlicefsError {
    return new SlicefsError('DECRYPT', `${this.label}: the Crypt4GH header is truncated (${this.fileSize} bytes in all)`);
  }

  private openBody(header: Buffer): void {
    const h = decryptHeader(header, this.keys, { label: this.label });
    let plainSize: number;
    try {
      plainSize = plaintextSize(this.fileSize - header.length);
    } catch (err) {
      throw new SlicefsError('DECRYPT', `${this.label}: ${(err as Error).message}`);
    }
    if (h.editList) {
      const editList = new EditList(h.editList);
      this.runs = editList.runs(0, editList.visibleSize(plainSize), plainSize);
    }
    this.body = new SegmentDecrypter(h.dataKeys, { firstSegment: 0, plainFrom: 0, plainTo: plainSize }, (plain) => this.pass(plain), this.label);
  }

  /** Passes on the parts of plaintext [plainAt, plainAt + length) that the edit list keeps. */
  private pass(plain: Buffer): void {
    const from = this.plainAt;
    const to = from + plain.length;
    this.plainAt = to;
    if (!this.runs) {
      this.onPlain(plain);
      return;
    }
    // Runs ascend in plaintext offsets: skip those that ended before this piece, cut those in it.
    while (this.run < this.runs.length) {
      const r = this.runs[this.run]!;
      if (r.plainEnd <= from) {
        this.run++;
        continue;
      }
      if (r.plainStart >= to) return;
      this.onPlain(plain.subarray(Math.max(r.plainStart, from) - from, Math.min(r.plainEnd, to) - from));
      if (r.plainEnd > to) return;
      this.run++;
    }
  }
}
