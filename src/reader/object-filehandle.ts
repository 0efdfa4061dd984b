/**
 * The generic-filehandle2 interface (what @gmod/bam and @gmod/cram read through) over a
 * RangeReader, so `view` reads remote BAM/CRAM files through the same readahead, block cache, retry
 * policy and transport as the mount: one cache, one retry policy.
 */
import type { FilehandleOptions, GenericFilehandle, Stats } from 'generic-filehandle2';
import type { RangeReader } from './range-reader.js';

export class ObjectFilehandle implements GenericFilehandle {
  constructor(private readonly reader: RangeReader) {}

  /** Bytes [position, position + length), fewer at the end of the object (as a file would give). */
  async read(length: number, position: number, _opts?: FilehandleOptions): Promise<Uint8Array<ArrayBuffer>> {
    const out = Buffer.allocUnsafeSlow(Math.max(0, Math.min(length, this.reader.size - position)));
    const n = await this.reader.readInto(out, position, length);
    return new Uint8Array(out.buffer, out.byteOffset, n) as Uint8Array<ArrayBuffer>;
  }

  readFile(options?: Omit<FilehandleOptions, 'encoding'>): Promise<Uint8Array<ArrayBuffer>>;
  readFile(options: FilehandleOptions['encoding'] | (Omit<FilehandleOptions, 'encoding'> & { encoding: NonNullable<FilehandleOptions['encoding']> })): Promise<string>;
  async readFile(options?: unknown): Promise<Uint8Array<ArrayBuffer> | string> {
    const bytes = await this.read(this.reader.size, 0);
    const encoding = typeof options === 'string' ? options : (options as FilehandleOptions | undefined)?.encoding;
    return encoding ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(encoding as BufferEncoding) : bytes;
  }

  async stat(): Promise<Stats> {
    return { size: this.reader.size };
  }

  async close(): Promise<void> {}
}

/** The same interface over bytes already in memory (an index read from the disk cache). */
export class BufferFilehandle implements GenericFilehandle {
  constructor(private readonly bytes: Buffer) {}

  async read(length: number, position: number): Promise<Uint8Array<ArrayBuffer>> {
    const b = this.bytes.subarray(position, Math.min(this.bytes.length, position + length));
    return new Uint8Array(b) as Uint8Array<ArrayBuffer>;
  }

  readFile(options?: Omit<FilehandleOptions, 'encoding'>): Promise<Uint8Array<ArrayBuffer>>;
  readFile(options: FilehandleOptions['encoding'] | (Omit<FilehandleOptions, 'encoding'> & { encoding: NonNullable<FilehandleOptions['encoding']> })): Promise<string>;
  async readFile(options?: unknown): Promise<Uint8Array<ArrayBuffer> | string> {
    const encoding = typeof options === 'string' ? options : (options as FilehandleOptions | undefined)?.encoding;
    return encoding ? this.bytes.toString(encoding as BufferEncoding) : (new Uint8Array(this.bytes) as Uint8Array<ArrayBuffer>);
  }

  async stat(): Promise<Stats> {
    return { size: this.bytes.length };
  }

  async close(): Promise<void> {}
}
