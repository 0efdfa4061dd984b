/**
 * The generic-filehandle2 interface (what @gmod/bam and @gmod/cram read through) over a
 * RangeReader, so `view` reads remote BAM/CRAM files through the same block cache, retry policy
 * and transport as the mount; and over bytes already in memory (an index from the disk cache).
 */
import type { FilehandleOptions, GenericFilehandle, Stats } from 'generic-filehandle2';
import { SlicefsError } from '../errors.js';
import { formatBytes } from '../util/size.js';
import type { RangeReader } from './range-reader.js';

/**
 * The most one read of a remote object may ask for: 512 MiB. The parsers decide their reads from
 * numbers in the files: @gmod/bam reads a BAM's header up to the first data block its index names
 * (the whole file when the index names none), @gmod/cram a container's length. Real headers (even
 * with millions of @SQ lines: ~100 MB) and containers (a few MB) are far below it; past it the
 * number is damaged or hostile, and the buffer it would allocate is refused.
 */
export const MAX_READ_BYTES = 512 * 1024 * 1024;

type ReadFileOptions = FilehandleOptions['encoding'] | FilehandleOptions;

/** `readFile`, `stat` and `close` from `read` and `size`, shared by both handles. */
abstract class SizedFilehandle implements GenericFilehandle {
  abstract readonly size: number;
  /** Bytes [position, position + length), fewer at the end (as a file would give). */
  abstract read(length: number, position: number): Promise<Uint8Array<ArrayBuffer>>;

  readFile(options?: Omit<FilehandleOptions, 'encoding'>): Promise<Uint8Array<ArrayBuffer>>;
  readFile(options: FilehandleOptions['encoding'] | (Omit<FilehandleOptions, 'encoding'> & { encoding: NonNullable<FilehandleOptions['encoding']> })): Promise<string>;
  async readFile(options?: ReadFileOptions): Promise<Uint8Array<ArrayBuffer> | string> {
    const bytes = await this.read(this.size, 0);
    const encoding = typeof options === 'string' ? options : options?.encoding;
    return encoding ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(encoding as BufferEncoding) : bytes;
  }

  async stat(): Promise<Stats> {
    return { size: this.size };
  }

  async close(): Promise<void> {}
}

export class ObjectFilehandle extends SizedFilehandle {
  /**
   * `prefix`: the object's first bytes, already at hand (a header kept on disk by `view`); reads
   * that fall inside it are served from it.
   */
  constructor(
    private readonly reader: RangeReader,
    private readonly prefix?: Buffer,
  ) {
    super();
  }

  get size(): number {
    return this.reader.size;
  }

  async read(length: number, position: number): Promise<Uint8Array<ArrayBuffer>> {
    const end = Math.min(position + length, this.size);
    if (end - position > MAX_READ_BYTES) {
      throw new SlicefsError(
        'BAD_RESPONSE',
        `a read of ${formatBytes(end - position)} at byte ${position}, as the file's header or index asks, is more than slicefs reads at once (${formatBytes(MAX_READ_BYTES)}): the file or its index is damaged`,
      );
    }
    if (this.prefix && end <= this.prefix.length) {
      return new Uint8Array(this.prefix.subarray(position, Math.max(position, end))) as Uint8Array<ArrayBuffer>;
    }
    const out = Buffer.allocUnsafeSlow(Math.max(0, Math.min(length, this.size - position)));
    const n = await this.reader.readInto(out, position, length);
    return new Uint8Array(out.buffer, out.byteOffset, n) as Uint8Array<ArrayBuffer>;
  }
}

export class BufferFilehandle extends SizedFilehandle {
  constructor(private readonly bytes: Buffer) {
    super();
  }

  get size(): number {
    return this.bytes.length;
  }

  async read(length: number, position: number): Promise<Uint8Array<ArrayBuffer>> {
    return new Uint8Array(this.bytes.subarray(position, Math.min(this.bytes.length, position + length))) as Uint8Array<ArrayBuffer>;
  }
}
