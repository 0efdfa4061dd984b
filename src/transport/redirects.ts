/**
 * Redirects of requests for object bytes (HEAD, GET, Range GET) and of the API's GETs: which ones
 * are followed, which headers go along, and the memory of where a URL led.
 *
 * A 301, 302, 303, 307 or 308 is followed to its Location (resolved against the URL that answered
 * it; the fragment dropped), at most `MAX_REDIRECTS` times per request. Refused, as final errors:
 * a redirect without a usable Location, to a scheme other than http(s), back to a URL the chain
 * already visited (a loop), the 11th one, and one from https to http (INSECURE_REDIRECT: the bytes
 * and whatever the URL carries would travel in clear).
 *
 * Credentials stay with their origin (scheme, host and port): once a chain leaves the origin the
 * request was made for, each further request carries only the headers that describe what is asked
 * (Range, If-Match, Accept…): no Authorization, Cookie, token or any other header, also when the
 * chain comes back, as browsers do. The method stays: a HEAD is a HEAD, a GET a GET (303 included).
 *
 * `RedirectMemory` keeps, per URL, the target its last successful chain ended at, so later requests
 * (every ranged GET of a mount's blocks) go there directly instead of paying the hops each time. It
 * lives in the HttpTransport that makes the requests (in the fetch worker, for the mount and view).
 * A target is forgotten shortly before the expiry its URL states (presigned URLs, ./presigned-expiry.ts)
 * and when it refuses (401, 403, 404, 410), and the request then starts again from the original URL.
 */
import { LRUCache } from 'lru-cache';
import { SlicefsError } from '../errors.js';
import { safeUrl } from '../util/redact.js';
import { presignedExpiry } from './presigned-expiry.js';

/** The statuses that are followed. 300 (a choice) and 304 (not modified) are not redirects to follow. */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Hops per request at most: curl's and Chromium's 20 is generous; real download chains take 1–3. */
export const MAX_REDIRECTS = 10;

/**
 * Statuses of a remembered target that send the request back to the original URL: a presigned URL
 * that expired or was revoked (401, 403), or an object moved away (404, 410).
 */
export const TARGET_REFUSED: ReadonlySet<number> = new Set([401, 403, 404, 410]);

/**
 * Headers that may follow a redirect to another origin: they say what is asked, never who asks.
 * Everything else (Authorization, Cookie, an API key or token header of any name) is dropped.
 */
const CROSS_ORIGIN_HEADERS: ReadonlySet<string> = new Set([
  'range',
  'if-match',
  'if-none-match',
  'if-range',
  'if-modified-since',
  'if-unmodified-since',
  'accept',
  'accept-encoding',
  'accept-language',
  'cache-control',
  'user-agent',
]);

/** scheme://host:port of `url` (default ports left out, as URL.origin does). */
export function originOf(url: string): string {
  return new URL(url).origin;
}

/** The headers of a request that goes to another origin than the one it was made for. */
export function headersAcrossOrigins(headers: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (CROSS_ORIGIN_HEADERS.has(name.toLowerCase())) kept[name] = value;
  return kept;
}

/**
 * The decision on one redirect: the URL to ask next, or the final error. `what` names the request
 * (`GET http://h/x.bam`, no query); `from` is the URL that answered `status` with `location`;
 * `chain` the URLs asked so far in this request, the first one included.
 */
export function nextHop(what: string, status: number, from: string, location: string | undefined, chain: readonly string[]): string {
  if (!location) throw new SlicefsError('REDIRECT', `${what}: HTTP ${status} without a Location to follow`, { status });
  let target: URL;
  try {
    target = new URL(location, from);
  } catch {
    throw new SlicefsError('REDIRECT', `${what}: HTTP ${status} to a Location that is not a URL`, { status });
  }
  target.hash = '';
  const to = target.href;
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new SlicefsError('REDIRECT', `${what}: redirected to a ${target.protocol.slice(0, -1)} URL, not http(s)`, { status });
  }
  if (new URL(from).protocol === 'https:' && target.protocol === 'http:') {
    throw new SlicefsError('INSECURE_REDIRECT', `${what}: refused a redirect from https to http (${safeUrl(to)}): the data would travel unencrypted`, { status });
  }
  if (chain.includes(to)) throw new SlicefsError('REDIRECT', `${what}: a redirect loop (${safeUrl(from)} → ${safeUrl(to)}, asked before)`, { status });
  if (chain.length > MAX_REDIRECTS) throw new SlicefsError('REDIRECT', `${what}: more than ${MAX_REDIRECTS} redirects`, { status });
  return to;
}

/** A target whose URL expires within this is forgotten before that: the request and its retries fit. */
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
/**
 * …or within this share of its remaining lifetime, when that is shorter: a target issued for a
 * minute is still used for most of it. (The Score and GHGA sources renew their URLs by the same rule.)
 */
const REFRESH_SHARE = 0.2;

/**
 * Entries at most: one per object read through a redirect. Past that, the least recently used is
 * forgotten and costs its hops once more; 4096 targets of a few hundred bytes each stay under 2 MB.
 */
const MEMORY_ENTRIES = 4096;

interface Target {
  url: string;
  /** When to stop using it (epoch ms); undefined: until it is refused. */
  forgetAt?: number;
}

/** Per original URL, the target its last chain of redirects ended at (see the module header). */
export class RedirectMemory {
  private readonly targets = new LRUCache<string, Target>({ max: MEMORY_ENTRIES });

  constructor(private readonly now: () => number = Date.now) {}

  /** Where `original` led last time, unless that target is about to expire. */
  get(original: string): string | undefined {
    const t = this.targets.get(original);
    if (t === undefined) return undefined;
    if (t.forgetAt !== undefined && this.now() >= t.forgetAt) {
      this.targets.delete(original);
      return undefined;
    }
    return t.url;
  }

  remember(original: string, target: string): void {
    const expiry = presignedExpiry(target);
    const now = this.now();
    const forgetAt = expiry === undefined ? undefined : expiry - Math.min(REFRESH_MARGIN_MS, Math.max(0, expiry - now) * REFRESH_SHARE);
    if (forgetAt !== undefined && now >= forgetAt) return;
    this.targets.set(original, { url: target, forgetAt });
  }

  forget(original: string): void {
    this.targets.delete(original);
  }
}
