/**
 * An object of a Score storage service (ICGC ARGO, and other Overture deployments) as an
 * ObjectSource. Facts from ../../../shared/reference/score-protocol.md:
 *
 *   - `GET {storage}/download/{objectId}?offset=0&length=-1&external=true` with
 *     `Authorization: Bearer <token>` answers the object specification: `objectSize`, `objectMd5`
 *     and one part whose `url` is a presigned object-store URL for the whole object.
 *   - Reads go to that URL with Range (no token); it expires (a day by default) and then answers 403.
 *
 * The presigned URL is kept until shortly before its expiry (read from the URL, ./presigned.ts)
 * and replaced then, or when the object store refuses it (403: an expiry of an unknown form, a
 * clock skew): the read continues from its first missing byte with the new URL, so a mount, a view
 * or a download never restarts a file because a URL expired (score-client restarts whole files).
 * The version is pinned on the first URL (HEAD: size and ETag) and checked on every later one, so
 * bytes of two versions are never mixed; the token never appears in a label, a log or an error.
 * The storage service's refusals become one clear line each (./score-errors.ts).
 */
import { SlicefsError } from '../errors.js';
import type { Transport } from '../transport/transport.js';
import type { ObjectVersion } from '../transport/version.js';
import type { HttpTransport } from '../transport/http-transport.js';
import { presignedExpiry, readThroughPresigned } from './presigned.js';
import { networkCode, scoreError } from './score-errors.js';
import type { ObjectSource } from './object-source.js';

/** A URL expiring within this is replaced before a read starts: the read and its retries fit. */
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
/**
 * …or within this share of its lifetime, when that is shorter: a URL issued for minutes (some
 * deployments, and the tests) is still used for most of its life rather than resolved per read.
 */
const REFRESH_SHARE = 0.2;

interface ObjectSpec {
  objectId: string;
  objectSize: number;
  objectMd5?: string;
  parts: { url: string; offset: number; partSize: number }[];
}

function parseSpec(raw: unknown, what: string): ObjectSpec {
  const s = raw as Partial<ObjectSpec> | null;
  const part = s?.parts?.[0];
  if (!s || !Number.isSafeInteger(s.objectSize) || s.objectSize! < 0 || !Array.isArray(s.parts) || s.parts.length === 0 || typeof part?.url !== 'string') {
    throw new SlicefsError('BAD_RESPONSE', `${what}: not a Score object specification`);
  }
  // The MD5 is optional; one in any other shape is ignored rather than trusted.
  if (s.objectMd5 !== undefined && !(typeof s.objectMd5 === 'string' && /^[0-9a-f]{32}$/i.test(s.objectMd5))) delete s.objectMd5;
  return s as ObjectSpec;
}

export interface ScoreEndpoint {
  /** The storage service's base URL (`STORAGE_URL`). */
  storageUrl: string;
  /** The access token: sent as a Bearer token to the storage service only. */
  token: string;
  /** The metadata service (`METADATA_URL`); on ARGO the same as the storage service. */
  metadataUrl?: string;
}

export class ScoreSource implements ObjectSource {
  readonly identity: string;
  readonly label: string;
  pinned?: ObjectVersion;
  private pinning?: Promise<ObjectVersion>;
  private url?: string;
  /** When `url` must be replaced (epoch ms), or undefined when its expiry is unknown. */
  private refreshAt?: number;
  private resolving?: Promise<string>;
  /** The MD5 the storage service states for the object. */
  md5?: string;

  constructor(
    /** For the storage service's JSON answers. */
    private readonly api: Pick<HttpTransport, 'getJson'>,
    /** For the object store's bytes (the mount's worker transport, or the same HttpTransport). */
    private readonly transport: Transport,
    private readonly endpoint: ScoreEndpoint,
    readonly objectId: string,
    readonly knownSize?: number,
    private readonly now: () => number = Date.now,
  ) {
    const base = new URL(endpoint.storageUrl);
    this.identity = `score:${base.host}${base.pathname.replace(/\/$/, '')}/${objectId}`;
    this.label = `score object ${objectId}`;
  }

  /** A presigned URL for the whole object: the cached one, or a new one when it is near its expiry. */
  private presigned(force = false): Promise<string> {
    if (!force && this.url && (this.refreshAt === undefined || this.now() < this.refreshAt)) return Promise.resolve(this.url);
    if (!this.resolving) {
      const specUrl = `${this.endpoint.storageUrl.replace(/\/$/, '')}/download/${encodeURIComponent(this.objectId)}?offset=0&length=-1&external=true`;
      const what = `${this.label}: the storage service`;
      this.resolving = this.api
        .getJson(specUrl, { authorization: `Bearer ${this.endpoint.token}` })
        .then(
          (raw) => {
            const spec = parseSpec(raw, what);
            if (this.knownSize !== undefined && spec.objectSize !== this.knownSize) {
              throw new SlicefsError('STALE', `${this.label}: the storage service says ${spec.objectSize} bytes, the manifest ${this.knownSize}`);
            }
            if (spec.objectMd5) this.md5 = spec.objectMd5.toLowerCase();
            this.url = spec.parts[0].url;
            const expiry = presignedExpiry(this.url);
            const got = this.now();
            this.refreshAt = expiry === undefined ? undefined : expiry - Math.min(REFRESH_MARGIN_MS, Math.max(0, expiry - got) * REFRESH_SHARE);
            return this.url;
          },
          (err: unknown) => {
            throw scoreError(err, { service: 'storage service', url: this.endpoint.storageUrl, objectId: this.objectId, subject: this.label });
          },
        )
        .finally(() => (this.resolving = undefined));
    }
    return this.resolving;
  }

  /**
   * A presigned URL for the whole object, valid for at least a few minutes: for `slicefs url`, which
   * hands it to another program (it is a secret until it expires: print it only when asked).
   */
  presignedUrl(): Promise<string> {
    return this.presigned();
  }

  version(): Promise<ObjectVersion> {
    if (this.pinned) return Promise.resolve(this.pinned);
    this.pinning ??= (async () => {
      try {
        let v: ObjectVersion;
        const probe = (url: string) =>
          this.transport.probe(url).catch((err: unknown) => {
            // Only an unreachable object store gets a new message: a refusal is retried below.
            throw networkCode(err) ? scoreError(err, { service: 'object storage', url, subject: this.label }) : err;
          });
        try {
          v = await probe(await this.presigned());
        } catch (err) {
          if (!(err instanceof SlicefsError && err.code === 'ACCESS_DENIED')) throw err;
          v = await probe(await this.presigned(true));
        }
        if (v.size !== (this.knownSize ?? v.size)) throw new SlicefsError('STALE', `${this.label}: the object store has ${v.size} bytes, the manifest says ${this.knownSize}`);
        if (this.md5 && !v.md5) v = { ...v, md5: this.md5 };
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
    // A refused URL (expired, or revoked) is replaced; the read goes on from where it stopped.
    await readThroughPresigned({
      start,
      end,
      onData,
      urlFor: (replace) => this.presigned(replace),
      fetch: (url, from, counted) => this.transport.fetchRange(url, from, end, { version, onData: counted, signal }),
      onDeadUrl: (err) => err,
    });
  }
}
