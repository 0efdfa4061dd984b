/**
 * GHGA's download service (DCS), a DRS-like API at the root of `dcs_api_url` (ghga-protocol.md §2
 * "DCS", §3 steps 3–4). Every call but the health probe carries the file's work-order token (WOT)
 * as Bearer token.
 *
 *   - `GET /objects/{accession}`: 200 with the DRS object (`size` = encrypted body bytes without
 *     the envelope, `checksums` = SHA-256 of the DECRYPTED file, one `s3` access method with a
 *     presigned GET URL, valid `Cache-Control: max-age` seconds), or 202 with `Retry-After` while
 *     the file is copied to the download bucket (the request itself starts that staging).
 *   - `GET /objects/{accession}/envelopes`: the Crypt4GH header for the WOT's public key, sent as a
 *     JSON string literal of base64 (the OpenAPI description says `{"content": …}`: both are taken).
 *   - `GET /health`: `{"status":"OK"}`.
 *
 * A 401 (WOT expired or invalid) or 403 (the WOT is for another file) is answered once with a new
 * WOT, as the connector does for 403; only a second refusal is an error. The presigned URL's
 * expiry is the earlier of what the URL says (./presigned.ts) and the answer's max-age counted from
 * its arrival: the latter does not depend on this machine's clock being right.
 */
import { SlicefsError } from '../../errors.js';
import type { ApiResponse } from '../../transport/http-transport.js';
import { parseRetryAfter } from '../../transport/retry.js';
import { presignedExpiry } from '../presigned.js';
import { call, jsonOf, trimBase, type GhgaApi } from './api.js';
import { badBody, errorDetail, quotable, unexpectedStatus } from './ghga-errors.js';

/** Where work-order tokens come from (WorkPackageClient). */
export interface WotProvider {
  workOrderToken(accession: string, opts?: { renew?: boolean }): Promise<string>;
  /** Strings no message may contain. */
  secrets?(): string[];
}

export interface DrsObject {
  accession: string;
  /** Bytes of the encrypted body (Crypt4GH data blocks, no envelope). */
  size: number;
  /** SHA-256 (lowercase hex) of the decrypted file, when the DCS states it. */
  plaintextSha256?: string;
  createdTime?: string;
  /** Presigned GET URL of the body: a secret until it expires (never shown). */
  url: string;
  /** When the answer arrived (local clock, epoch ms). */
  receivedAt: number;
  /** When the URL stops working (local clock, epoch ms), when known. */
  urlExpiresAt?: number;
}

export type DrsAnswer =
  | { state: 'ready'; object: DrsObject }
  /** The DCS is staging the file: ask again in `retryAfterS` seconds. */
  | { state: 'staging'; accession: string; retryAfterS: number };

const SERVICE = 'download service';
const CRYPT4GH_MAGIC = Buffer.from('crypt4gh');

export class DrsClient {
  readonly dcsUrl: string;
  /** `GET /objects/{accession}` requests sent (each WOT renewal counts again). */
  objectRequests = 0;

  constructor(
    private readonly api: GhgaApi,
    dcsUrl: string,
    private readonly wots: WotProvider,
    private readonly now: () => number = Date.now,
  ) {
    this.dcsUrl = trimBase(dcsUrl);
  }

  /** The DCS host, for identities and labels. */
  get host(): string {
    return new URL(this.dcsUrl).host;
  }

  private secrets(): string[] {
    return this.wots.secrets?.() ?? [];
  }

  /** `GET /health`: throws a one-line error unless the service says OK. */
  async health(): Promise<void> {
    const url = `${this.dcsUrl}/health`;
    const res = await call(this.api, SERVICE, url, { noRequestId: true });
    let ok = false;
    if (res.status === 200) {
      try {
        ok = (JSON.parse(res.body) as { status?: unknown } | null)?.status === 'OK';
      } catch {
        ok = false;
      }
    }
    if (!ok) {
      throw new SlicefsError(res.status === 200 ? 'BAD_RESPONSE' : 'HTTP_STATUS', `the GHGA download service at ${this.dcsUrl} is not ready (health check answered HTTP ${res.status})`, {
        status: res.status,
      });
    }
  }

  /** A request with the file's WOT; a 401/403 is tried once more with a new WOT. */
  private async authorized(accession: string, url: string): Promise<ApiResponse> {
    let res: ApiResponse | undefined;
    for (const renew of [false, true]) {
      const wot = await this.wots.workOrderToken(accession, { renew });
      res = await call(this.api, SERVICE, url, { headers: { authorization: `Bearer ${wot}` } });
      if (res.status !== 401 && res.status !== 403) break;
    }
    return res!;
  }

  /** Refusals common to both object endpoints, as one line. */
  private refusal(res: ApiResponse, url: string, accession: string, what: string): SlicefsError {
    const detail = quotable(errorDetail(res).text, this.secrets());
    const status = { status: res.status };
    if (res.status === 404) return new SlicefsError('NOT_FOUND', `file ${accession} does not exist at the GHGA download service (404)${what}`, status);
    if (res.status === 401) {
      return new SlicefsError('ACCESS_DENIED', `the GHGA download service refused a new work-order token for file ${accession} (401${detail ? `: ${detail}` : ''})${what}`, status);
    }
    if (res.status === 403) return new SlicefsError('ACCESS_DENIED', `the GHGA download service refused access to file ${accession} (403${detail ? `: ${detail}` : ''})${what}`, status);
    return unexpectedStatus(SERVICE, url, res, this.secrets(), `file ${accession}`);
  }

  /** `GET /objects/{accession}`: the DRS object, or "staging, ask again in N s". */
  async object(accession: string): Promise<DrsAnswer> {
    const url = `${this.dcsUrl}/objects/${encodeURIComponent(accession)}`;
    this.objectRequests++;
    const res = await this.authorized(accession, url);
    const receivedAt = this.now();
    if (res.status === 202) {
      const ms = parseRetryAfter(res.headers['retry-after'], receivedAt);
      if (ms === undefined) throw badBody(SERVICE, url, `202 (file ${accession} is being staged) without a Retry-After`, `file ${accession}`);
      return { state: 'staging', accession, retryAfterS: ms / 1000 };
    }
    if (res.status !== 200) throw this.refusal(res, url, accession, '');
    return { state: 'ready', object: parseDrsObject(jsonOf(res, SERVICE, url, `file ${accession}`), res, url, accession, receivedAt) };
  }

  /** `GET /objects/{accession}/envelopes`: the Crypt4GH header of the file for the user's key. */
  async envelope(accession: string): Promise<Buffer> {
    const url = `${this.dcsUrl}/objects/${encodeURIComponent(accession)}/envelopes`;
    const res = await this.authorized(accession, url);
    if (res.status !== 200) throw this.refusal(res, url, accession, ' (fetching its envelope)');
    const subject = `file ${accession}`;
    let b64: unknown;
    try {
      b64 = JSON.parse(res.body) as unknown;
    } catch {
      // The connector base64-decodes the raw body; a server that sends bare base64 works there too.
      b64 = res.body.trim();
    }
    if (b64 !== null && typeof b64 === 'object') b64 = (b64 as { content?: unknown }).content;
    if (typeof b64 !== 'string' || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
      throw badBody(SERVICE, url, 'an envelope that is not base64', subject);
    }
    const header = Buffer.from(b64, 'base64');
    if (header.length < 16 || !header.subarray(0, 8).equals(CRYPT4GH_MAGIC)) throw badBody(SERVICE, url, 'an envelope that is not a Crypt4GH header', subject);
    return header;
  }
}

/** A 200 DRS object, checked: size, the plaintext SHA-256, the first s3 access URL, its expiry. */
function parseDrsObject(raw: unknown, res: ApiResponse, url: string, accession: string, receivedAt: number): DrsObject {
  const subject = `file ${accession}`;
  const o = raw as { size?: unknown; checksums?: unknown; access_methods?: unknown; created_time?: unknown } | null;
  if (!o || typeof o !== 'object' || typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw badBody(SERVICE, url, 'a DRS object without a size', subject);
  }
  const methods = Array.isArray(o.access_methods) ? (o.access_methods as { type?: unknown; access_url?: { url?: unknown } }[]) : [];
  const s3 = methods.find((m) => m?.type === 's3' && typeof m.access_url?.url === 'string');
  const objectUrl = s3?.access_url?.url as string | undefined;
  if (!objectUrl || !/^https?:\/\//i.test(objectUrl)) throw badBody(SERVICE, url, 'a DRS object without an s3 access URL', subject);
  const drs: DrsObject = { accession, size: o.size, url: objectUrl, receivedAt };
  const sums = Array.isArray(o.checksums) ? (o.checksums as { type?: unknown; checksum?: unknown }[]) : [];
  const sha = sums.find((c) => typeof c?.type === 'string' && /^sha-?256$/i.test(c.type) && typeof c.checksum === 'string');
  if (sha && /^[0-9a-fA-F]{64}$/.test(sha.checksum as string)) drs.plaintextSha256 = (sha.checksum as string).toLowerCase();
  if (typeof o.created_time === 'string') drs.createdTime = o.created_time;
  const maxAge = /(?:^|,)\s*max-age=(\d+)/i.exec(res.headers['cache-control'] ?? '')?.[1];
  const fromAge = maxAge === undefined ? undefined : receivedAt + Number(maxAge) * 1000;
  const fromUrl = presignedExpiry(objectUrl);
  const known = [fromAge, fromUrl].filter((t): t is number => t !== undefined);
  if (known.length > 0) drs.urlExpiresAt = Math.min(...known);
  return drs;
}
