/**
 * An object made of a few bytes held in memory followed by another source: a Crypt4GH file whose
 * header is served apart from its data blocks (a `header_url`, GHGA's envelope) downloaded as one
 * `.c4gh` file, header first, as the reference tool reads it. The version is the body's, with the
 * whole size. The identity is the body's with a `+header` mark, not a hash of the header: GHGA seals
 * a new envelope (new nonce, same data key) for every request, and any of them opens the same body
 * for the same key, so a resumed download may keep the header it wrote before.
 */
import type { ObjectVersion } from '../transport/version.js';
import type { ObjectSource } from './object-source.js';

export class PrefixedSource implements ObjectSource {
  readonly identity: string;
  readonly label: string;
  pinned?: ObjectVersion;
  private prefix?: Promise<Buffer>;
  private prefixBytes?: Buffer;

  constructor(
    private readonly getPrefix: () => Promise<Buffer>,
    private readonly body: ObjectSource,
  ) {
    this.identity = `${body.identity}+header`;
    this.label = body.label;
  }

  private head(): Promise<Buffer> {
    this.prefix ??= this.getPrefix().then(
      (b) => {
        this.prefixBytes = b;
        return b;
      },
      (err: unknown) => {
        this.prefix = undefined;
        throw err;
      },
    );
    return this.prefix;
  }

  async version(): Promise<ObjectVersion> {
    if (this.pinned) return this.pinned;
    const [head, v] = await Promise.all([this.head(), this.body.version()]);
    this.pinned = { size: head.length + v.size, etag: v.etag, lastModified: v.lastModified };
    return this.pinned;
  }

  async read(start: number, end: number, onData: (chunk: Buffer) => void | Promise<void>, signal?: AbortSignal): Promise<void> {
    const head = this.prefixBytes ?? (await this.head());
    if (start < head.length) await onData(Buffer.from(head.subarray(start, Math.min(end, head.length))));
    if (end > head.length) await this.body.read(Math.max(start, head.length) - head.length, end - head.length, onData, signal);
  }
}
