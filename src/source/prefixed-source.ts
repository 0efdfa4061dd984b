/**
 * An object made of a few bytes held in memory followed by another source: a Crypt4GH file whose
 * header is served apart from its data blocks (a `header_url`, GHGA's envelope) downloaded as one
 * `.c4gh` file, header first, as the reference tool reads it. The version is the body's, with the
 * whole size; the identity says it is the body with that header (a header re-encrypted for
 * another key makes another object).
 */
import { createHash } from 'node:crypto';
import type { ObjectVersion } from '../transport/version.js';
import type { ObjectSource } from './object-source.js';

export class PrefixedSource implements ObjectSource {
  readonly label: string;
  pinned?: ObjectVersion;
  private prefix?: Promise<Buffer>;
  private prefixBytes?: Buffer;
  private identityValue?: string;

  constructor(
    private readonly getPrefix: () => Promise<Buffer>,
    private readonly body: ObjectSource,
  ) {
    this.label = body.label;
  }

  get identity(): string {
    return this.identityValue ?? `${this.body.identity}+header`;
  }

  private head(): Promise<Buffer> {
    this.prefix ??= this.getPrefix().then(
      (b) => {
        this.prefixBytes = b;
        this.identityValue = `${this.body.identity}+header:${createHash('sha256').update(b).digest('hex').slice(0, 16)}`;
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
