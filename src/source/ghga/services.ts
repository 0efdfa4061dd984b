/**
 * GHGA's directory and its work package service (ghga-protocol.md §2, §3 steps 1 and 3).
 *
 *   - Well-known values: `GET {wkvs}/values` names the work package service (WPS), the download
 *     service (DCS) and the upload service, and GHGA's Crypt4GH public keys. The connector requires
 *     all four fields even to download, and strips a trailing '/'; so do we.
 *   - WPS, with the access token (from the download token) as Bearer token:
 *       `GET {wps}/work-packages/{id}` → the files (accession → extension) and the expiry;
 *       `POST {wps}/work-packages/{id}/files/{accession}/work-order-tokens` → 201, a JSON string:
 *       base64 of a sealed box (to the user's key) of a JWT, the work-order token (WOT) the DCS
 *       takes for that one file. Its claims carry `user_public_crypt4gh_key` and `exp = iat + 30`.
 *
 * The connector asks for a new WOT before every DCS call. Here a WOT is kept for its lifetime less
 * a margin and renewed early when the DCS refuses it (401/403), so a refreshing presigned URL costs
 * one DCS call, not two requests. The lifetime is `exp - iat` counted from when the WOT arrived,
 * not `exp` against the local clock: a machine whose clock is off still keeps WOTs the right time.
 * The JWT's signature is not verified (the connector does not either: only the DCS can, and does);
 * its payload is read for the key check and the lifetime only.
 *
 * Refusals (`403 {"detail": …}`) become one line each (expired, revoked, unknown package, invalid
 * token, file not in the package); no message contains the access token or a WOT.
 */
import { SlicefsError } from '../../errors.js';
import type { C4ghKeyPair } from '../../crypt4gh/keys.js';
import { openSealedBox } from '../../crypt4gh/sealed-box.js';
import type { ApiResponse } from '../../transport/http-transport.js';
import { call, jsonOf, trimBase, type GhgaApi } from './api.js';
import { openAccessToken, parseDownloadToken, publicKeyFingerprint, type DownloadToken } from './download-token.js';
import { badBody, errorDetail, quotable, unexpectedStatus } from './ghga-errors.js';

/** The connector's default well-known value service (`wkvs_api_url`). */
export const DEFAULT_GHGA_URL = 'https://data.ghga.de/.well-known';

export interface WellKnownValues {
  /** Work package service base URL, without a trailing '/'. */
  wpsUrl: string;
  /** Download service (DCS) base URL, without a trailing '/'. */
  dcsUrl: string;
  /** Upload service base URL (unused for downloads; required as by the connector). */
  ucsUrl: string;
  /** GHGA's Crypt4GH public keys by alias, base64 as served. */
  publicKeys: Record<string, string>;
}

/**
 * The `/values` URL for a user-given GHGA URL: `{url}/values` as the connector builds it; a bare
 * origin (`https://data.ghga.de`) means its `/.well-known`, and a URL already ending in `/values`
 * is used as it is.
 */
export function valuesUrl(ghgaUrl: string): string {
  const base = trimBase(ghgaUrl);
  if (/\/values$/.test(base)) return base;
  let path = '';
  try {
    path = new URL(base).pathname;
  } catch {
    throw new SlicefsError('USAGE', `not a URL: ${JSON.stringify(ghgaUrl.replace(/\?.*$/, '?…'))}`);
  }
  return path === '/' || path === '' ? `${base}/.well-known/values` : `${base}/values`;
}

/** `GET {wkvs}/values`: the service URLs and GHGA's public keys. */
export async function wellKnownValues(api: GhgaApi, ghgaUrl: string = DEFAULT_GHGA_URL): Promise<WellKnownValues> {
  const url = valuesUrl(ghgaUrl);
  const service = 'well-known value service';
  const res = await call(api, service, url);
  if (res.status !== 200) throw unexpectedStatus(service, url, res, []);
  const v = jsonOf(res, service, url) as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw badBody(service, url, 'something other than a JSON object');
  const need = ['wps_api_url', 'dcs_api_url', 'ucs_api_url'] as const;
  const missing: string[] = need.filter((k) => typeof v[k] !== 'string' || !/^https?:\/\//i.test(v[k] as string));
  const keys = v.crypt4gh_public_keys;
  const keysOk = keys !== null && typeof keys === 'object' && !Array.isArray(keys) && Object.values(keys).every((k) => typeof k === 'string');
  if (!keysOk) missing.push('crypt4gh_public_keys');
  if (missing.length > 0) throw badBody(service, url, `values without ${missing.join(', ')}`);
  return {
    wpsUrl: trimBase(v.wps_api_url as string),
    dcsUrl: trimBase(v.dcs_api_url as string),
    ucsUrl: trimBase(v.ucs_api_url as string),
    publicKeys: { ...(keys as Record<string, string>) },
  };
}

export interface WorkPackage {
  id: string;
  /** `download` for download tokens. */
  type: string;
  /** Accession → file extension with its leading dot (may be ''), in the service's order. */
  files: Map<string, string>;
  created?: Date;
  expires?: Date;
}

/** A decoded (not verified) work-order token. */
export interface WorkOrderToken {
  /** The JWT, as the DCS takes it. */
  jwt: string;
  /** Its `exp - iat` in seconds, when both claims are there. */
  lifetimeS?: number;
  /** When it arrived (local clock, epoch ms). */
  receivedAt: number;
}

/**
 * Accessions and extensions name local files later (`<accession><extension>.c4gh`): a server must
 * not be able to put a '/' or '..' in there.
 */
const ACCESSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const EXTENSION = /^(\.[A-Za-z0-9_+-]+)*$/;

/** A WOT is dropped this long before its lifetime ends (at most a third of it): it must still be good when the DCS reads it. */
const WOT_MARGIN_MS = 5_000;

export interface WorkPackageClientOptions {
  now?: () => number;
}

/** The WPS for one work package: its file list and work-order tokens. */
export class WorkPackageClient {
  readonly workPackageId: string;
  /** WOTs requested from the WPS (for tests and `--verbose`). */
  wotsRequested = 0;
  private readonly accessToken: string;
  private readonly wps: string;
  private readonly now: () => number;
  private readonly cached = new Map<string, WorkOrderToken>();
  private readonly pending = new Map<string, Promise<WorkOrderToken>>();

  /**
   * `downloadToken`: as pasted (checked by parseDownloadToken) or parsed. The access token inside
   * is opened here, so a token for another key fails before any request.
   */
  constructor(
    private readonly api: GhgaApi,
    wpsUrl: string,
    downloadToken: string | DownloadToken,
    private readonly pair: C4ghKeyPair,
    opts: WorkPackageClientOptions = {},
  ) {
    const token = typeof downloadToken === 'string' ? parseDownloadToken(downloadToken) : downloadToken;
    this.workPackageId = token.workPackageId;
    this.accessToken = openAccessToken(token, pair);
    this.wps = trimBase(wpsUrl);
    this.now = opts.now ?? Date.now;
  }

  /** Strings no message may contain (for quoting a server's text). */
  secrets(): string[] {
    return [this.accessToken, ...[...this.cached.values()].map((w) => w.jwt)];
  }

  private packageUrl(): string {
    return `${this.wps}/work-packages/${encodeURIComponent(this.workPackageId)}`;
  }

  /** `GET /work-packages/{id}`: the files of the package and its expiry. */
  async workPackage(): Promise<WorkPackage> {
    const url = this.packageUrl();
    const res = await call(this.api, 'work package service', url, { headers: { authorization: `Bearer ${this.accessToken}` } });
    if (res.status !== 200) throw this.refusal(res, url);
    const v = jsonOf(res, 'work package service', url) as Record<string, unknown> | null;
    const rawFiles = v?.files;
    if (!v || typeof v !== 'object' || rawFiles === null || typeof rawFiles !== 'object' || Array.isArray(rawFiles)) {
      throw badBody('work package service', url, 'a work package without a file list');
    }
    const files = new Map<string, string>();
    for (const [accession, ext] of Object.entries(rawFiles as Record<string, unknown>)) {
      if (!ACCESSION.test(accession) || typeof ext !== 'string' || !EXTENSION.test(ext)) {
        throw badBody('work package service', url, `a file entry slicefs refuses (accession ${JSON.stringify(accession.slice(0, 40))})`);
      }
      files.set(accession, ext);
    }
    const date = (x: unknown) => {
      const t = typeof x === 'string' ? Date.parse(x) : NaN;
      return Number.isNaN(t) ? undefined : new Date(t);
    };
    const wp: WorkPackage = { id: this.workPackageId, type: typeof v.type === 'string' ? v.type : 'download', files };
    const created = date(v.created);
    const expires = date(v.expires);
    if (created) wp.created = created;
    if (expires) wp.expires = expires;
    return wp;
  }

  /**
   * A work-order token for `accession`: the cached one while it has more than its margin to live,
   * else a new one. `renew`: the DCS refused the cached one; get a new one whatever its age.
   * Concurrent callers for one file share one request.
   */
  async workOrderToken(accession: string, opts: { renew?: boolean } = {}): Promise<string> {
    const have = this.cached.get(accession);
    if (have && !opts.renew && this.fresh(have)) return have.jwt;
    if (opts.renew) this.cached.delete(accession);
    let p = this.pending.get(accession);
    if (!p) {
      p = this.fetchWot(accession).finally(() => this.pending.delete(accession));
      this.pending.set(accession, p);
    }
    return (await p).jwt;
  }

  private fresh(w: WorkOrderToken): boolean {
    if (w.lifetimeS === undefined) return false;
    const lifeMs = w.lifetimeS * 1000;
    return this.now() < w.receivedAt + lifeMs - Math.min(WOT_MARGIN_MS, lifeMs / 3);
  }

  private async fetchWot(accession: string): Promise<WorkOrderToken> {
    const url = `${this.packageUrl()}/files/${encodeURIComponent(accession)}/work-order-tokens`;
    this.wotsRequested++;
    const res = await call(this.api, 'work package service', url, { method: 'POST', headers: { authorization: `Bearer ${this.accessToken}` } });
    if (res.status !== 201 && res.status !== 200) throw this.refusal(res, url, accession);
    const sealed = jsonOf(res, 'work package service', url) as unknown;
    if (typeof sealed !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(sealed)) {
      throw badBody('work package service', url, 'a work-order token answer that is not a base64 string');
    }
    const jwt = openSealedBox(Buffer.from(sealed, 'base64'), this.pair, `the work-order token for ${accession}`).toString('utf8');
    const claims = jwtClaims(jwt);
    if (!claims) throw badBody('work package service', url, 'a work-order token that is not a JWT');
    const theirs = claims.user_public_crypt4gh_key;
    const ours = publicKeyFingerprint(this.pair.public);
    if (typeof theirs === 'string' && theirs !== ours) {
      throw new SlicefsError(
        'KEY',
        `work package ${this.workPackageId} was made for another public key (${quotable(theirs, []) ?? '?'}) than this key's (${ours}): use the key pair whose public key you gave the GHGA data portal`,
      );
    }
    const wot: WorkOrderToken = { jwt, receivedAt: this.now() };
    if (typeof claims.exp === 'number' && typeof claims.iat === 'number' && claims.exp > claims.iat) wot.lifetimeS = claims.exp - claims.iat;
    this.cached.set(accession, wot);
    return wot;
  }

  /** A WPS answer other than success as one line (ghga-protocol.md §2 "Errors"). */
  private refusal(res: ApiResponse, url: string, accession?: string): SlicefsError {
    const wp = `work package ${this.workPackageId}`;
    if (res.status === 403) {
      const detail = errorDetail(res).text ?? '';
      const status = { status: 403 };
      switch (detail) {
        case 'Work package has expired':
          return new SlicefsError('ACCESS_DENIED', `${wp} has expired: create a new download token in the GHGA data portal`, status);
        case 'Download access has been revoked':
          return new SlicefsError('ACCESS_DENIED', `download access to ${wp} has been revoked: ask the dataset's data access committee`, status);
        case 'Work package not found':
          return new SlicefsError('NOT_FOUND', `${wp} does not exist at the GHGA work package service: check that the download token is complete and current`, status);
        case 'Invalid work package access token':
          return new SlicefsError('ACCESS_DENIED', `the GHGA work package service refused the access token of ${wp}: create a new download token in the GHGA data portal`, status);
        case 'File is not contained in work package':
          return new SlicefsError('NOT_FOUND', `file ${accession ?? '?'} is not in ${wp}`, status);
        case 'File not available for download':
          return new SlicefsError('NOT_FOUND', `file ${accession ?? '?'} of ${wp} is not available for download`, status);
      }
      const why = quotable(detail, this.secrets());
      return new SlicefsError('ACCESS_DENIED', `the GHGA work package service refused access to ${wp}${accession ? ` (file ${accession})` : ''}${why ? `: ${why}` : ''}`, status);
    }
    return unexpectedStatus('work package service', url, res, this.secrets(), accession ? `file ${accession}` : undefined);
  }
}

/** The payload of a JWT, decoded without verification; undefined when it is not one. */
export function jwtClaims(jwt: string): Record<string, unknown> | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+={0,2}$/.test(p))) return undefined;
  try {
    const v = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
