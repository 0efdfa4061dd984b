/**
 * What a manifest entry resolves to: readable bytes of one remote object. Plain HTTP URLs now;
 * Score objects and Crypt4GH-wrapped sources implement the same interface later.
 *
 * A source pins its object's version at first contact (`version()`, shared by concurrent callers)
 * and never changes it: every later response is checked against the pin, so a source only ever
 * delivers bytes of one version, and cache keys made from `cacheKey()` name that version.
 */
import { SlicefsError } from '../errors.js';
import type { Transport } from '../transport/transport.js';
import { versionTag, type ObjectVersion } from '../transport/version.js';
import { safeUrl } from '../util/redact.js';
import { IDENTITY_RULE, objectIdentity } from './identity.js';

export interface ObjectSource {
  /**
   * Stable identity of the object, without a URL signature (for plain URLs: ./identity.ts, the URL
   * without its signature parameters). May hold other query parameters: shown only through
   * util/redact.ts.
   */
  readonly identity: string;
  /** For messages and logs: never contains a token or a query string. */
  readonly label: string;
  /** Size known without asking the server (from the manifest). */
  readonly knownSize?: number;
  /** The pinned version if first contact happened already. */
  readonly pinned?: ObjectVersion;
  /** Pins the version (one request, shared by concurrent callers) and returns it. */
  version(): Promise<ObjectVersion>;
  /** Delivers bytes [start, end) of the pinned version in order. */
  read(start: number, end: number, onData: (chunk: Buffer) => void | Promise<void>, signal?: AbortSignal): Promise<void>;
}

/**
 * `i<rule>:identity@version`: the cache key prefix of a pinned source, in every cache. The identity
 * rule's number (./identity.ts) keeps the disk tier and the index cache from reading entries keyed
 * under an older rule.
 */
export function cacheKey(source: ObjectSource, version: ObjectVersion): string {
  return `i${IDENTITY_RULE}:${source.identity}@${versionTag(version)}`;
}

export class HttpSource implements ObjectSource {
  readonly identity: string;
  readonly label: string;
  pinned?: ObjectVersion;
  private pinning?: Promise<ObjectVersion>;

  constructor(
    private readonly transport: Transport,
    private readonly url: string,
    readonly knownSize?: number,
    private readonly headers: Record<string, string> = {},
  ) {
    this.identity = objectIdentity(url);
    this.label = safeUrl(url);
  }

  version(): Promise<ObjectVersion> {
    if (this.pinned) return Promise.resolve(this.pinned);
    if (!this.pinning) {
      this.pinning = this.transport.probe(this.url, this.headers).then(
        (v) => {
          if (this.knownSize !== undefined && v.size !== this.knownSize) {
            throw new SlicefsError(
              'STALE',
              `${this.label}: the server has ${v.size} bytes, the manifest says ${this.knownSize}`,
            );
          }
          this.pinned = v;
          return v;
        },
        (err) => {
          // A failed first contact is not pinned: the next open tries again.
          this.pinning = undefined;
          throw err;
        },
      );
    }
    return this.pinning;
  }

  async read(start: number, end: number, onData: (chunk: Buffer) => void | Promise<void>, signal?: AbortSignal): Promise<void> {
    const version = await this.version();
    await this.transport.fetchRange(this.url, start, end, { version, onData, signal, headers: this.headers });
  }
}
