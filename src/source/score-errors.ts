/**
 * The Score services' failures as one line that says what went wrong and what to do, instead of
 * the transport's `GET …: HTTP 403` (which is right, but leaves the user to guess whether the token,
 * the project's access or the object id is at fault). The statuses mean (score-protocol.md):
 *
 *   - 401: the token is wrong or expired (the platform hands out a new one on its profile page);
 *   - 403: the token is fine but may not read this object (its project, or not yet published);
 *   - 404: no such object id;
 *   - an HTML page: a gateway or portal answered instead of the service (named by its <title>);
 *   - no answer at all: the service cannot be reached (refused, unknown host, timeout).
 *
 * The typed code (and status) of the original error is kept, so a mount still answers EACCES or
 * ENOENT. Messages carry no token and no query string: URLs go through safeUrl, and the services'
 * own bodies are never quoted (an error page may echo the request).
 */
import { SlicefsError } from '../errors.js';
import type { HttpStatusError } from '../transport/http-transport.js';
import { safeUrl } from '../util/redact.js';

export type ScoreService = 'storage service' | 'metadata service' | 'object storage';

export interface ScoreErrorContext {
  service: ScoreService;
  /** The service's base URL (the presigned URL, for the object storage): shown without its query. */
  url: string;
  /** The object asked for, when the request was about one. */
  objectId?: string;
  /** Put before a message that does not name the object itself (e.g. `score object X`). */
  subject?: string;
}

/** Why a connection failed, for the errno-like codes worth a word of explanation. */
const NET_REASONS: Record<string, string> = {
  ENOTFOUND: 'ENOTFOUND: unknown host',
  EAI_AGAIN: 'EAI_AGAIN: DNS lookup failed',
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'answer stalled',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_CLOSED: 'connection closed',
};

/** Codes of errors raised before any HTTP status: the connection (or DNS, or TLS) failed. Not an abort. */
const UNREACHABLE = /^(E(?!RR_)[A-Z_]+|UND_ERR_(?!ABORTED)[A-Z_]+|ERR_TLS_[A-Z_]+|CERT_[A-Z_]+|UNABLE_TO_[A-Z_]+|DEPTH_ZERO_[A-Z_]+|SELF_SIGNED_[A-Z_]+)$/;

/**
 * The code of the system or undici error under `err` (ECONNREFUSED, ENOTFOUND, …): the retry loop
 * wraps the last attempt's error as `cause`; Node's dual-stack connect throws an AggregateError.
 */
export function networkCode(err: unknown): string | undefined {
  type Chain = { code?: unknown; cause?: unknown; errors?: unknown[] } | undefined;
  let e = err as Chain;
  for (let depth = 0; e && depth < 6; depth++) {
    // A SlicefsError's code is ours (NETWORK), not the system's: look under it.
    if (!(err instanceof SlicefsError && e === err) && typeof e.code === 'string' && UNREACHABLE.test(e.code)) return e.code;
    e = (e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined)) as Chain;
  }
  return undefined;
}

/** A service's URL as it may be shown: as the user wrote it, without query string or credentials. */
export function serviceUrl(url: string): string {
  const shown = safeUrl(url);
  // safeUrl normalises `http://host` to `http://host/`: keep the user's spelling.
  return !url.endsWith('/') && shown.endsWith('/') ? shown.slice(0, -1) : shown;
}

function baseUrl(ctx: ScoreErrorContext): string {
  if (ctx.service !== 'object storage') return serviceUrl(ctx.url);
  // A presigned URL's path names the bucket and key: the host is what the user can act on.
  try {
    return new URL(ctx.url).origin;
  } catch {
    return safeUrl(ctx.url);
  }
}

/** An HttpStatusError, told by its field: a value import of the transport would load undici for `info`. */
function isPageError(err: unknown): err is HttpStatusError {
  return err instanceof SlicefsError && typeof (err as Partial<HttpStatusError>).pageTitle === 'string';
}

/** The one-line message for a failure of a Score request, or undefined to keep the transport's. */
function messageFor(err: unknown, ctx: ScoreErrorContext): { text: string; namesObject: boolean } | undefined {
  const object = ctx.objectId === undefined ? undefined : `object ${ctx.objectId}`;
  const status = err instanceof SlicefsError ? err.status : undefined;
  const isCodeOnly = err instanceof SlicefsError && status === undefined;
  if ((isCodeOnly && (err.code === 'NETWORK' || err.code === 'TIMEOUT')) || (!(err instanceof SlicefsError) && networkCode(err))) {
    const code = networkCode(err);
    const why = code ? (NET_REASONS[code] ?? code) : err instanceof SlicefsError && err.code === 'TIMEOUT' ? 'timeout' : 'no connection';
    return { text: `cannot reach the ${ctx.service} at ${baseUrl(ctx)} (${why})`, namesObject: false };
  }
  if (status === undefined) return undefined;
  if (ctx.service === 'object storage') {
    if (status === 401 || status === 403) {
      return { text: `the object storage refused its presigned URL (${status}): it expired or its signature is wrong (is this machine's clock right?)`, namesObject: false };
    }
    if (status === 404) return { text: `the object storage at ${baseUrl(ctx)} has no such object (404)`, namesObject: false };
  } else {
    if (status === 401) {
      return { text: `the ${ctx.service} refused the token (401): invalid or expired token — get a new API token from the platform profile page`, namesObject: false };
    }
    if (status === 403) {
      return object
        ? { text: `no access to ${object} (403): your token has no access to this object's project, or it is not published`, namesObject: true }
        : { text: `the ${ctx.service} refused access (403): your token may not download (check its scopes on the platform profile page)`, namesObject: false };
    }
    if (status === 404) {
      return object
        ? { text: `${object} not found in the ${ctx.service} (404)`, namesObject: true }
        : { text: `the ${ctx.service} at ${baseUrl(ctx)} answered 404: is the URL right?`, namesObject: false };
    }
  }
  if (isPageError(err)) {
    const title = err.pageTitle ? `: "${err.pageTitle}"` : '';
    const text =
      status === 200
        ? `the ${ctx.service} at ${baseUrl(ctx)} answered an HTML page${title} instead of its API: is the URL right?`
        : `the ${ctx.service} at ${baseUrl(ctx)} answered HTTP ${status} with an HTML page${title}`;
    return { text, namesObject: false };
  }
  return undefined;
}

/**
 * `err` (from a request to a Score service) with a clear one-line message; errors that need none
 * (a bad specification, a changed object, an abort) come back as they were.
 */
export function scoreError(err: unknown, ctx: ScoreErrorContext): unknown {
  const m = messageFor(err, ctx);
  if (!m) return err;
  const text = ctx.subject && !m.namesObject ? `${ctx.subject}: ${m.text}` : m.text;
  const code = err instanceof SlicefsError ? err.code : 'NETWORK';
  return new SlicefsError(code, text, { status: err instanceof SlicefsError ? err.status : undefined });
}
