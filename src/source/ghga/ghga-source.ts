/**
 * One GHGA file's encrypted body (the Crypt4GH data blocks the object store holds, without the
 * envelope) as an ObjectSource (ghga-protocol.md §2 "Bytes", §8).
 *
 * Bytes come from the DRS object's presigned URL with Range (no token on that request). GHGA's
 * URLs live briefly (the DCS may issue 30 s ones), so the URL is replaced shortly before its expiry
 * and whenever the object store refuses it (403): a new WOT if needed and a new DRS call, then the
 * read goes on from its first missing byte, as many times as a long read needs, as long as each URL
 * delivers something. The connector instead retries a refused part once and otherwise fails the
 * whole run.
 *
 * The version is pinned at first contact: the size from the DRS object, the ETag from a probe of
 * the presigned URL. Later DRS answers must state the same size and later responses carry the same
 * ETag (the transport checks it), so bytes of two versions are never mixed. Identity and label are
 * `ghga:{dcs host}/{accession}` and `GHGA file {accession}`: no token, no query string.
 *
 * Decryption is not done here: the envelope (`envelope()`) and a Crypt4GH reader on top of this
 * source turn the blocks into the plaintext, whose SHA-256 the DCS states (`plaintextSha256`).
 */
import { SlicefsError } from '../../errors.js';
import type { Transport } from '../../transport/transport.js';
import type { ObjectVersion } from '../../transport/version.js';
import type { ObjectSource } from '../object-source.js';
import { readThroughPresigned } from '../presigned.js';
import type { DrsClient, DrsObject } from './dcs.js';
import { unreachable } from './ghga-errors.js';

/** A URL expiring within this is replaced before a read starts… */
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
/** …or within this share of its lifetime, when that is shorter (30 s URLs are kept for 24 s). */
const REFRESH_SHARE = 0.2;

export interface GhgaSourceOptions {
  /** A DRS object already fetched (by staging): its URL is used while fresh, its size is known. */
  initial?: DrsObject;
  now?: () => number;
}

export class GhgaObjectSource implements ObjectSource {
  readonly identity: string;
  readonly label: string;
  readonly knownSize?: number;
  pinned?: ObjectVersion;
  /** SHA-256 (hex) of the decrypted file as the DCS states it, once a DRS object was seen. */
  plaintextSha256?: string;
  /** DRS objects fetched by this source (URL refreshes), for tests and `--verbose`. */
  urlRefreshes = 0;
  private pinning?: Promise<ObjectVersion>;
  private current?: DrsObject;
  private refreshAt?: number;
  private resolving?: Promise<DrsObject>;
  private readonly now: () => number;

  constructor(
    private readonly drs: Pick<DrsClient, 'object' | 'envelope' | 'host'>,
    /** For the object store's bytes (the mount's worker transport, or an HttpTransport). */
    private readonly transport: Transport,
    readonly accession: string,
    opts: GhgaSourceOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.identity = `ghga:${drs.host}/${accession}`;
    this.label = `GHGA file ${accession}`;
    if (opts.initial) {
      this.knownSize = opts.initial.size;
      this.adopt(opts.initial);
    }
  }

  private adopt(o: DrsObject): void {
    if (this.pinned && o.size !== this.pinned.size) {
      throw new SlicefsError('STALE', `${this.label}: the download service now says ${o.size} bytes, it said ${this.pinned.size}`);
    }
    this.current = o;
    if (o.plaintextSha256) this.plaintextSha256 = o.plaintextSha256;
    const exp = o.urlExpiresAt;
    this.refreshAt = exp === undefined ? undefined : exp - Math.min(REFRESH_MARGIN_MS, Math.max(0, exp - o.receivedAt) * REFRESH_SHARE);
  }

  /**
   * The DRS object with a usable URL: the current one, or a new one near expiry or when `refused`
   * is the current URL (a concurrent read that already replaced it saves a second DRS call).
   */
  private object(refused?: string): Promise<DrsObject> {
    const c = this.current;
    if (c && c.url !== refused && (this.refreshAt === undefined || this.now() < this.refreshAt)) return Promise.resolve(c);
    this.resolving ??= this.drs
      .object(this.accession)
      .then((answer) => {
        if (answer.state === 'staging') {
          // Staged files stay in the download bucket for days; one that is gone is being staged again.
          throw new SlicefsError('HTTP_STATUS', `${this.label}: the GHGA download service is staging the file again: try again in ${Math.ceil(answer.retryAfterS)} s`, { status: 202 });
        }
        this.urlRefreshes++;
        this.adopt(answer.object);
        return answer.object;
      })
      .finally(() => (this.resolving = undefined));
    return this.resolving;
  }

  /** The DRS object (size, plaintext SHA-256, URL), fetched if none is held. */
  drsObject(): Promise<DrsObject> {
    return this.object();
  }

  /** The file's Crypt4GH header for the user's key (a new DCS call each time: it is not cached there either). */
  envelope(): Promise<Buffer> {
    return this.drs.envelope(this.accession);
  }

  version(): Promise<ObjectVersion> {
    if (this.pinned) return Promise.resolve(this.pinned);
    this.pinning ??= (async () => {
      try {
        const probe = async (refused?: string) => {
          const o = await this.object(refused);
          const v = await this.transport.probe(o.url).catch((err: unknown) => {
            throw unreachable(err, 'object storage', o.url);
          });
          return { o, v };
        };
        let got: { o: DrsObject; v: ObjectVersion };
        try {
          got = await probe();
        } catch (err) {
          if (!isRefused(err) || !this.current) throw err;
          got = await probe(this.current.url);
        }
        if (got.v.size !== got.o.size) {
          throw new SlicefsError('STALE', `${this.label}: the object store has ${got.v.size} bytes, the download service says ${got.o.size}`);
        }
        const v: ObjectVersion = { size: got.o.size };
        if (got.v.etag !== undefined) v.etag = got.v.etag;
        if (got.v.lastModified !== undefined) v.lastModified = got.v.lastModified;
        this.pinned = v;
        return v;
      } catch (err) {
        this.pinning = undefined;
        throw err;
      }
    })();
    return this.pinning;
  }

  async read(start: number, end: number, onData: (chunk: Buffer) => void | Promise<void>, signal?: AbortSignal): Promise<void> {
    const version = await this.version();
    let last: string | undefined;
    // A refused URL (expired mid-read, or revoked) is replaced and the read goes on where it stopped.
    await readThroughPresigned({
      start,
      end,
      onData,
      urlFor: async (replace) => (last = (await this.object(replace ? last : undefined)).url),
      fetch: (url, from, counted) => this.transport.fetchRange(url, from, end, { version, onData: counted, signal, headers: { 'cache-control': 'no-store' } }),
      onDeadUrl: () => new SlicefsError('ACCESS_DENIED', `${this.label}: the object storage refused a presigned URL the download service had just issued (403)`, { status: 403 }),
      mapError: (err, url) => unreachable(err, 'object storage', url),
    });
  }
}

function isRefused(err: unknown): boolean {
  return err instanceof SlicefsError && err.code === 'ACCESS_DENIED';
}
