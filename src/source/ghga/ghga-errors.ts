/**
 * GHGA's refusals and failures as one line each, naming the service and what to do, in place of
 * the connector's exception zoo (ghga-protocol.md §6) and of the transport's bare `HTTP 403`.
 *
 * The services explain a refusal in a JSON body: the work package service (WPS) and the auth layer
 * in `detail`, the download service (DCS) in `description` with an `exception_id` (§2). Only the
 * known texts are turned into advice; an unknown one is quoted, cut short and stripped of anything
 * unprintable, and never when it contains one of the caller's secrets (a body could echo a
 * request). Messages never contain the download token, the access token, a work-order token or a
 * query string: URLs go through serviceUrl/safeUrl, tokens are never interpolated.
 */
import { SlicefsError, codeForStatus, type ErrorCode } from '../../errors.js';
import type { ApiResponse } from '../../transport/http-transport.js';
import { networkCode, serviceUrl } from '../score-errors.js';

export type GhgaService = 'well-known value service' | 'work package service' | 'download service' | 'object storage';

/** Why a connection failed, for the codes worth a word of explanation. */
const NET_REASONS: Record<string, string> = {
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'DNS lookup failed',
  ECONNREFUSED: 'connection refused',
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'answer stalled',
  UND_ERR_SOCKET: 'connection closed',
};

/**
 * A request that got no usable HTTP answer (refused, unknown host, timeout after retries) as
 * `cannot reach the GHGA <service> at <url> (<why>)`; anything else (a status, a bad body, an
 * abort) comes back unchanged.
 */
export function unreachable(err: unknown, service: GhgaService, url: string): unknown {
  // An HTTP status was answered: the service is reachable, the caller maps the status.
  if (err instanceof SlicefsError && err.status !== undefined) return err;
  const code = networkCode(err);
  const failed = err instanceof SlicefsError ? err.code === 'NETWORK' || err.code === 'TIMEOUT' : code !== undefined;
  if (!failed) return err;
  const timedOut = err instanceof SlicefsError && err.code === 'TIMEOUT';
  const why = code ? (NET_REASONS[code] ?? code) : timedOut ? 'timeout' : 'no connection';
  return new SlicefsError(timedOut ? 'TIMEOUT' : 'NETWORK', `cannot reach the GHGA ${service} at ${where(service, url)} (${why})`, { cause: err });
}

/** The URL a message may show: the service's base, or for the object storage only its origin. */
function where(service: GhgaService, url: string): string {
  if (service !== 'object storage') return serviceUrl(url);
  try {
    return new URL(url).origin;
  } catch {
    return serviceUrl(url);
  }
}

/** The explanation in a GHGA error body (`detail` or `description`), or undefined. */
export function errorDetail(res: ApiResponse): { text?: string; exceptionId?: string } {
  try {
    const v = JSON.parse(res.body) as { detail?: unknown; description?: unknown; exception_id?: unknown } | null;
    if (!v || typeof v !== 'object') return {};
    const text = typeof v.detail === 'string' ? v.detail : typeof v.description === 'string' ? v.description : undefined;
    return { text, exceptionId: typeof v.exception_id === 'string' ? v.exception_id : undefined };
  } catch {
    return {};
  }
}

/**
 * A server's text fit to quote: printable, one line, at most 120 characters; undefined when it
 * contains a secret (or a URL with a query string) and so must not be shown.
 */
export function quotable(text: string | undefined, secrets: readonly string[]): string | undefined {
  if (!text) return undefined;
  if (secrets.some((s) => s.length >= 8 && text.includes(s))) return undefined;
  if (/https?:\/\/\S*\?/.test(text)) return undefined;
  const line = text.replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
  if (!line) return undefined;
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
}

/** Any status nobody expected, as one line with the service, the request's path and the status. */
export function unexpectedStatus(service: GhgaService, url: string, res: ApiResponse, secrets: readonly string[], subject?: string): SlicefsError {
  const detail = quotable(errorDetail(res).text, secrets);
  const code: ErrorCode = res.status >= 200 && res.status < 300 ? 'BAD_RESPONSE' : codeForStatus(res.status);
  const prefix = subject ? `${subject}: ` : '';
  return new SlicefsError(code, `${prefix}the GHGA ${service} at ${serviceUrl(url)} answered HTTP ${res.status}${detail ? ` (${detail})` : ''}`, { status: res.status });
}

/** An answer whose body is not what the protocol says, named without quoting it. */
export function badBody(service: GhgaService, url: string, what: string, subject?: string): SlicefsError {
  const prefix = subject ? `${subject}: ` : '';
  return new SlicefsError('BAD_RESPONSE', `${prefix}the GHGA ${service} at ${serviceUrl(url)} sent ${what}: is this a GHGA deployment?`);
}
