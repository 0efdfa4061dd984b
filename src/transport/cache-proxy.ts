/**
 * `--cache-proxy URL`: object bytes through a shared cache tier (nginx caching 1 MiB slices, see
 * docker/cache-tier/ and docs/deploy/cluster.md), so a cluster pulls each byte from the archive once.
 *
 * The tier's request form names the origin in the path and keeps the original query (a presigned
 * URL's signature, which the tier hands to the origin for its access check):
 *
 *   https://store.example.org:9000/bucket/key?X-Amz-Signature=…
 *     → http://tier:8080/fetch/https/store.example.org:9000/bucket/key?X-Amz-Signature=…
 *
 * The tier keys its slices by that query without its signature parameters, which it computes
 * itself (the object identity's list, source/identity.ts); nothing slicefs sends names a key, so no
 * caller can have one object's bytes served for another's URL.
 *
 * Only data requests go through it (HttpTransport's `probe` and `fetchRange`: plain URLs and the
 * presigned URLs of Score and GHGA); API calls (Score's /download/{id}, GHGA's WPS and DCS) never do,
 * and neither does a request with a header the tier does not account for (the tier sends the origin
 * none of the caller's headers: a credential such as Authorization, Cookie or X-Api-Key would be
 * lost there) or with credentials in the URL's user:password.
 *
 * When the tier fails a request (no connection, a timeout, a 5xx or a 421 "not an origin of this
 * tier"), that request goes to the origin directly and a warning is printed once per process; after
 * a connection-level failure the tier is left alone for `retryAfterMs` and then tried again. (A HEAD
 * the tier answers 416 is an empty object, which has no slice to answer from: it goes to the origin
 * without a warning.) A 401/403 from the tier is the origin's refusal and is final.
 */
import { safeUrl } from '../util/redact.js';

/** The tier's path prefix for fetches: `/fetch/<scheme>/<host[:port]>/<path>`. */
const FETCH_PREFIX = '/fetch';

/**
 * The request headers a tier's answer accounts for; any other keeps the request off the tier. The
 * tier sends the origin none of the caller's headers (docker/cache-tier/nginx.conf): it fetches its
 * slices with its own Range and `Accept-Encoding: identity`, and checks If-Match itself against
 * the slices' ETag. `Cache-Control` (GHGA's `no-store`) asks caches between not to keep the bytes;
 * the tier keeps them by design (docs/deploy/cluster.md). Every other header, above all a
 * credential (Authorization, Cookie, Proxy-Authorization, X-Api-Key, …), would be dropped there,
 * so such a request goes to the origin directly.
 */
const TIER_HEADERS = new Set(['range', 'if-match', 'accept-encoding', 'cache-control']);

/**
 * The tier's URL for `url`, or undefined when `url` must not go through it (not http(s), or with
 * user:password). `proxy` is the tier's base URL (`http://tier:8080`, maybe with a path prefix).
 */
export function viaCacheProxy(url: string, proxy: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) return undefined;
  const base = proxy.replace(/\/+$/, '');
  // u.host has the port only when it is not the scheme's default; pathname and search are as sent.
  return `${base}${FETCH_PREFIX}/${u.protocol.slice(0, -1)}/${u.host}${u.pathname}${u.search}`;
}

/** Checks and normalises a `--cache-proxy` value: an http(s) URL without query, fragment or credentials. */
export function parseCacheProxy(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash || u.username || u.password) return undefined;
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** Whether an answer of the tier means "the tier could not serve this": go to the origin instead. */
export function tierDeclined(status: number): boolean {
  return status >= 500 || status === 421;
}

/** One warning per process (per thread: the fetch worker is the only thread that fetches). */
let warned = false;

/** For tests: forget that the warning was shown. */
export function resetCacheProxyWarning(): void {
  warned = false;
}

/**
 * Decides per request whether it goes through the tier, and remembers the tier's failures.
 * One per HttpTransport.
 */
export class CacheProxyRouter {
  /** Until this time (ms), requests go to the origin directly (the tier failed to connect). */
  private downUntil = 0;

  constructor(
    readonly proxy: string,
    private readonly warn: (msg: string) => void,
    /** How long a tier that refused or dropped a connection is left alone. */
    private readonly retryAfterMs = 30_000,
  ) {}

  /** The tier's URL for this request, or undefined: go to `url` directly. */
  route(url: string, headers: Record<string, string>): string | undefined {
    if (Date.now() < this.downUntil) return undefined;
    for (const name of Object.keys(headers)) if (!TIER_HEADERS.has(name.toLowerCase())) return undefined;
    return viaCacheProxy(url, this.proxy);
  }

  /**
   * The tier failed one request (`why`: an error code or `HTTP <status>`, never a URL). `down`: it
   * did not answer at all, so leave it alone a while.
   */
  failed(why: string, down: boolean): void {
    if (down) this.downUntil = Date.now() + this.retryAfterMs;
    if (warned) return;
    warned = true;
    const tier = safeUrl(this.proxy).replace(/\/$/, '');
    this.warn(`warning: the cache tier ${tier} failed a request (${why}); such requests go to the origin directly (shown once)`);
  }
}
