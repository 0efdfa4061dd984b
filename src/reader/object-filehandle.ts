/**
 * The generic-filehandle2 interface (what @gmod/bam and @gmod/cram read through) over a
 * RangeReader, so `view` reads remote BAM/CRAM files through the same block cache, retry policy
 * and transport as the mount; and over bytes already in memory (an index from the disk cache).
 */
import type { FilehandleOptions, GenericFilehandle, Stats } from 'generic-filehandle2';
import type { RangeReader } from './range-reader.js';

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
