/**
 * The identity of one version of a remote object, pinned at first contact and checked on every
 * response afterwards, so bytes of two versions are never mixed (and every cache key names it).
 *
 * Strong ETag when the server gives one; otherwise size + Last-Modified. A weak ETag (`W/"…"`)
 * cannot be sent in If-Match (RFC 9110 §13.1.1 uses the strong comparison), so it is only compared.
 */
export interface ObjectVersion {
  size: number;
  etag?: string;
  lastModified?: string;
  /**
   * The whole object's MD5 (hex) when the server states it: `Content-MD5` (Azure, and any server
   * set up to send it) or `x-goog-hash: md5=` (Google Cloud Storage). Not part of the identity.
   */
  md5?: string;
}

/** The MD5 a response states for the whole object, in hex, or undefined. */
export function statedMd5(contentMd5: string | undefined, googHash: string | undefined): string | undefined {
  const b64 = contentMd5 ?? /(?:^|,)\s*md5=([A-Za-z0-9+/=]+)/.exec(googHash ?? '')?.[1];
  if (!b64) return undefined;
  const bytes = Buffer.from(b64, 'base64');
  return bytes.length === 16 ? bytes.toString('hex') : undefined;
}

export function isStrongEtag(etag: string | undefined): etag is string {
  return etag !== undefined && !etag.startsWith('W/');
}

/** A short token naming the version, for cache keys. */
export function versionTag(v: ObjectVersion): string {
  if (v.etag) return `e:${v.etag}:${v.size}`;
  return `s:${v.size}:${v.lastModified ?? ''}`;
}

/**
 * Why `seen` is not the pinned version `pinned`, or undefined when they agree. Fields the response
 * did not carry are not held against it (a 206 has no Last-Modified on some servers).
 */
export function versionMismatch(pinned: ObjectVersion, seen: Partial<ObjectVersion>): string | undefined {
  if (seen.size !== undefined && seen.size !== pinned.size) return `size changed from ${pinned.size} to ${seen.size}`;
  if (pinned.etag !== undefined && seen.etag !== undefined && seen.etag !== pinned.etag) return 'ETag changed';
  if (
    pinned.etag === undefined &&
    pinned.lastModified !== undefined &&
    seen.lastModified !== undefined &&
    seen.lastModified !== pinned.lastModified
  ) {
    return 'Last-Modified changed';
  }
  return undefined;
}
