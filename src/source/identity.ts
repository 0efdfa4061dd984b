/**
 * The identity of an object named by an http(s) URL: the one string every cache and record of
 * slicefs keys it by (the memory block cache, the disk tier, view's index cache, a download's
 * journal and catalogue, `slicefs cache clear --url`). Two URLs with one identity must name the
 * same bytes, or a cache serves one object's bytes for the other; two URLs of one object should
 * have one identity, or the caches are not shared.
 *
 * The rule: the URL without its user:password and fragment (never sent as part of the object's
 * name), and without the query parameters of a recognised URL signature (SIGNED_URL_SCHEMES: they
 * say who may read and until when, never which bytes). Everything else of the query is kept: a
 * portal's download endpoint selects its object by it (`dl?id=A`, `dl?id=B`).
 *
 * Normal form, so that spellings of one URL meet: scheme and host as the WHATWG URL parser gives
 * them (lower case, default port dropped, dot segments resolved); in the path and the query, an
 * escape of an unreserved character is that character (`%41` = `A`) and other escapes get
 * upper-case hex (`%2f` = `%2F`): RFC 3986 §6.2.2 makes both equivalent for every server. Nothing
 * else is decoded: `+`, `%2B` and `%20` stay three spellings, because servers disagree on them.
 * Query parameters are sorted by name (servers read them as a map; signers order them as they
 * like), parameters of one name keep their order (the first or the last may win), empty ones
 * (`a=1&&b=2`) are dropped, and `a` stays apart from `a=`.
 *
 * A scheme's parameters are removed only when its signature parameters are all there: `st`, `se`,
 * `sp` are Azure's signed start, expiry and permissions next to `sv` and `sig`, but on a portal
 * they could select a range or a sample. Names in the namespaces `X-Amz-` and `X-Goog-` match in
 * any case (S3 and GCS accept `x-amz-date`; no one selects content with them); other names only as
 * their stores spell them, because a lone `signature` or `expires` in another case is not theirs.
 * Removing too little only costs a cache miss; removing too much could serve wrong bytes.
 *
 * The cache tier (docker/cache-tier/nginx.conf) computes its own key with the same list: a test
 * (test/unit/identity.test.ts) checks that the two lists agree.
 */

import { createHash } from 'node:crypto';

/** One way of signing a URL in its query. */
export interface SignedUrlScheme {
  readonly name: string;
  /** Present together: the URL is signed this way, and `params` are removed from its identity. */
  readonly signedBy: readonly string[];
  /** Its parameters: credentials, signature, validity; none selects the bytes served. */
  readonly params: readonly string[];
}

/**
 * The recognised URL signatures: the ONE list (presigned.ts reads the expiry of the same forms;
 * the cache tier's nginx.conf mirrors this list, checked by a test).
 */
export const SIGNED_URL_SCHEMES: readonly SignedUrlScheme[] = [
  {
    // AWS Signature Version 4, query form (S3 and S3-compatible stores: MinIO, Ceph, Score's).
    // X-Amz-Content-Sha256 appears in some signers' URLs (UNSIGNED-PAYLOAD); X-Amz-Security-Token
    // is the session credential of temporary keys.
    name: 'S3 SigV4',
    signedBy: ['X-Amz-Signature'],
    params: ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Security-Token', 'X-Amz-Content-Sha256'],
  },
  {
    // AWS Signature Version 2, query form (older S3-compatible stores).
    name: 'S3 SigV2',
    signedBy: ['AWSAccessKeyId', 'Signature'],
    params: ['AWSAccessKeyId', 'Signature', 'Expires', 'x-amz-security-token'],
  },
  {
    // Google Cloud Storage V4 signed URLs.
    name: 'GCS V4',
    signedBy: ['X-Goog-Signature'],
    params: ['X-Goog-Algorithm', 'X-Goog-Credential', 'X-Goog-Date', 'X-Goog-Expires', 'X-Goog-SignedHeaders', 'X-Goog-Signature'],
  },
  {
    // Google Cloud Storage V2 signed URLs.
    name: 'GCS V2',
    signedBy: ['GoogleAccessId', 'Signature'],
    params: ['GoogleAccessId', 'Signature', 'Expires'],
  },
  {
    // Amazon CloudFront signed URLs (canned policy: Expires; custom policy: Policy).
    name: 'CloudFront',
    signedBy: ['Key-Pair-Id', 'Signature'],
    params: ['Key-Pair-Id', 'Signature', 'Expires', 'Policy'],
  },
  {
    // Azure Storage shared access signatures (service, account and user delegation SAS). `sv` is
    // required in every SAS. Not removed: `rscc`/`rscd`/`rsce`/`rscl`/`rsct` (response headers, like
    // S3's `response-*`), `snapshot` and `versionid` (they select bytes), the table SAS's row keys.
    name: 'Azure SAS',
    signedBy: ['sv', 'sig'],
    params: ['sv', 'ss', 'srt', 'sp', 'st', 'se', 'sip', 'spr', 'sr', 'si', 'sdd', 'ses', 'sig', 'skoid', 'sktid', 'skt', 'ske', 'sks', 'skv', 'skdutid', 'sduoid', 'saoid', 'suoid', 'scid'],
  },
];

/** Whether a query parameter named `name` (normal form) is the scheme parameter `param`. */
export function isParam(name: string, param: string): boolean {
  return /^x-(amz|goog)-/i.test(param) ? name.toLowerCase() === param.toLowerCase() : name === param;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** RFC 3986 §6.2.2.1–2: escapes of unreserved characters decoded, other escapes in upper-case hex. */
function normalEscapes(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(c) ? c : `%${hex.toUpperCase()}`;
  });
}

/**
 * The identity of the object at `url` (see the module header). Throws (TypeError) when `url` is
 * not a URL.
 */
export function objectIdentity(url: string): string {
  const u = new URL(url);
  const params = u.search
    .slice(1)
    .split('&')
    .filter((p) => p.length > 0)
    .map((raw) => {
      const eq = raw.indexOf('=');
      const name = normalEscapes(eq < 0 ? raw : raw.slice(0, eq));
      return { name, text: eq < 0 ? name : `${name}=${normalEscapes(raw.slice(eq + 1))}` };
    });
  const has = (param: string) => params.some((p) => isParam(p.name, param));
  const signed = SIGNED_URL_SCHEMES.filter((s) => s.signedBy.every(has));
  const kept = params
    .filter((p) => !signed.some((s) => s.params.some((param) => isParam(p.name, param))))
    // Array.prototype.sort is stable: parameters of one name keep their order.
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const query = kept.length > 0 ? `?${kept.map((p) => p.text).join('&')}` : '';
  return `${u.protocol}//${u.host}${normalEscapes(u.pathname)}${query}`;
}

/**
 * The identity rule's number, part of every cache key (object-source `cacheKey`). Rule 1 dropped
 * the whole query, so one identity could name several objects (`dl?id=A`, `dl?id=B`) and the disk
 * tier and the index cache may hold one's bytes under the other's key: entries keyed under another
 * rule are never read (they age out of the tier, or `slicefs cache clear` drops them). Raise it
 * whenever the rule changes what an identity names.
 */
export const IDENTITY_RULE = 2;

/**
 * An identity as it is written into a file (the disk tier's meta.json, a download's journal and
 * catalogue): as it is when it has no query (a plain URL, `score:…`, `ghga:…`), else its part
 * before the query plus a SHA-256 of the rest. Equal exactly when the identities are, so records
 * still tell `dl?id=A` from `dl?id=B`; and no query value lands on disk, where a backup or another
 * reader may find it: a portal's own credential (`token=`, `key=`, `access_token=`) is not a
 * recognised signature, so it stays in the identity (removing it could serve one object's bytes
 * for another's) and would otherwise be written in clear.
 */
export function recordedIdentity(identity: string): string {
  const q = identity.indexOf('?');
  return q < 0 ? identity : `${identity.slice(0, q)}?sha256=${createHash('sha256').update(identity.slice(q + 1)).digest('hex')}`;
}
