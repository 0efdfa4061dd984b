/**
 * When a presigned object-store URL stops working, read from the URL itself, so a source can
 * replace it shortly before (rather than after a 403 in the middle of a read). Score hands out such
 * URLs for every object (issue 6); the formats are the object stores':
 *
 *   - S3 signature v4: `X-Amz-Date=YYYYMMDDTHHMMSSZ` + `X-Amz-Expires=<seconds>`
 *   - S3 signature v2 (and some S3-compatible stores): `Expires=<unix seconds>`
 *   - Google Cloud Storage v4: `X-Goog-Date` + `X-Goog-Expires`, same forms as S3 v4
 *   - Azure SAS: `se=<ISO 8601 instant>`
 *
 * A URL in none of these forms has no known expiry (undefined): its source refreshes it when the
 * server refuses it (403). Used by the Score and GHGA sources for the URLs their services issue,
 * and by the transport for the targets of redirects it remembers (./redirects.ts).
 */

/** `YYYYMMDDTHHMMSSZ` (the SigV4 basic ISO 8601 form) as epoch milliseconds. */
function basicIsoMs(v: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

/** The instant (epoch ms) after which `url` is refused, or undefined when its form is unknown. */
export function presignedExpiry(url: string): number | undefined {
  let q: URLSearchParams;
  try {
    q = new URL(url).searchParams;
  } catch {
    return undefined;
  }
  // Parameter names are case-insensitive in practice (S3 accepts x-amz-date).
  const get = (name: string) => {
    for (const [k, v] of q) if (k.toLowerCase() === name.toLowerCase()) return v;
    return undefined;
  };
  for (const prefix of ['X-Amz', 'X-Goog']) {
    const date = get(`${prefix}-Date`);
    const expires = get(`${prefix}-Expires`);
    if (date !== undefined && expires !== undefined && /^\d+$/.test(expires)) {
      const start = basicIsoMs(date);
      if (start !== undefined) return start + Number(expires) * 1000;
    }
  }
  const se = get('se');
  if (se !== undefined) {
    const t = Date.parse(se);
    if (!Number.isNaN(t)) return t;
  }
  const legacy = get('Expires');
  if (legacy !== undefined && /^\d{9,11}$/.test(legacy)) return Number(legacy) * 1000;
  return undefined;
}
