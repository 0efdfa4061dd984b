/**
 * "Verify connection", as score-client does it before a download, but with an answer a user can act
 * on: `GET {storage}/download/ping` with the token checks the storage service and the token; its
 * answer is a presigned URL of a small sentinel object, and reading that checks that the object
 * storage behind it is reachable and accepts the service's signatures (a clock that is off, or a
 * firewall that lets the API through but not the object store, shows here and not halfway through
 * a download). Facts: ../../../shared/reference/score-protocol.md.
 *
 * Failures are the one-line errors of ./score-errors.ts; the presigned URL, a secret until it
 * expires, is never shown.
 */
import { SlicefsError } from '../errors.js';
import { htmlPageTitle, type HttpTransport } from '../transport/http-transport.js';
import { scoreError, serviceUrl } from './score-errors.js';
import type { ScoreEndpoint } from './score-source.js';

export interface ConnectionCheck {
  /** The object storage's origin (scheme, host, port): where the data will come from. */
  objectStorage: string;
  /** Time for both requests, in milliseconds. */
  ms: number;
}

/**
 * The presigned URL in a ping answer: a bare URL as Score sends it, or a JSON string (or an
 * object with `url`) as some deployments do.
 */
function pingUrl(body: string, storageUrl: string): string {
  const text = body.trim();
  let url: unknown = text;
  if (text.startsWith('"') || text.startsWith('{')) {
    try {
      const v = JSON.parse(text) as unknown;
      url = typeof v === 'object' && v !== null ? (v as { url?: unknown }).url : v;
    } catch {
      // Not JSON after all: checked as a bare URL below.
    }
  }
  if (typeof url === 'string' && /^https?:\/\/\S+$/i.test(url)) return url;
  const title = htmlPageTitle(text);
  if (title !== undefined) {
    throw new SlicefsError('BAD_RESPONSE', `the storage service at ${serviceUrl(storageUrl)} answered an HTML page${title ? `: "${title}"` : ''} instead of its API: is the URL right?`);
  }
  // The body itself is not shown: it may be anything, a signature included.
  throw new SlicefsError('BAD_RESPONSE', `the storage service at ${serviceUrl(storageUrl)} answered /download/ping with something other than a URL: is it a Score storage service?`);
}

/** Checks the storage service, the token and the object storage; throws a clear one-line error. */
export async function verifyScoreConnection(api: Pick<HttpTransport, 'getText' | 'probe'>, endpoint: ScoreEndpoint): Promise<ConnectionCheck> {
  const t0 = performance.now();
  const ping = `${endpoint.storageUrl.replace(/\/$/, '')}/download/ping`;
  const body = await api.getText(ping, { authorization: `Bearer ${endpoint.token}` }).catch((err: unknown) => {
    throw scoreError(err, { service: 'storage service', url: endpoint.storageUrl });
  });
  const url = pingUrl(body, endpoint.storageUrl);
  // HEAD, or a 1-byte GET where the store refuses HEAD on a GET-signed URL (S3 does).
  await api.probe(url).catch((err: unknown) => {
    throw scoreError(err, { service: 'object storage', url });
  });
  return { objectStorage: new URL(url).origin, ms: Math.round(performance.now() - t0) };
}
