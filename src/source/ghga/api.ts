/**
 * The one way slicefs talks to GHGA's APIs (the well-known value, work package and download
 * services; ghga-protocol.md §2): through HttpTransport's `request()`, so the retry policy, the
 * connection pool and `--verbose` request lines are the same as for every other request, and
 * statuses like 201, 202 and 403-with-a-reason come back to be read rather than thrown.
 *
 * Every request but the health probe carries `X-Request-Id: <uuid4>`, as the connector sends it
 * (service-commons `http/correlation.py`): GHGA's services log it, and a user reporting a failure
 * can be asked for it. A request that gets no HTTP answer at all becomes `cannot reach the GHGA
 * <service> at <url>`; one that still gets a 5xx after the retries names the service too.
 */
import { randomUUID } from 'node:crypto';
import { SlicefsError } from '../../errors.js';
import type { ApiResponse, HttpTransport } from '../../transport/http-transport.js';
import { serviceUrl } from '../score-errors.js';
import { badBody, unreachable, type GhgaService } from './ghga-errors.js';

/** What the GHGA clients need of a transport. */
export type GhgaApi = Pick<HttpTransport, 'request'>;

export interface CallOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Leave out X-Request-Id (the DCS health probe goes without one, as the connector's does). */
  noRequestId?: boolean;
}

/** One request to a GHGA service; network failures become the one-line `cannot reach` error. */
export async function call(api: GhgaApi, service: GhgaService, url: string, opts: CallOptions = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (!opts.noRequestId) headers['x-request-id'] = randomUUID();
  try {
    return await api.request(url, { method: opts.method ?? 'GET', headers });
  } catch (err) {
    // A status still failing after the retries (5xx, 429): say which service, not only the URL.
    if (err instanceof SlicefsError && err.status !== undefined) {
      throw new SlicefsError(err.code, `the GHGA ${service} at ${serviceUrl(url)} answered HTTP ${err.status}, also when asked again: try later`, { status: err.status, cause: err });
    }
    throw unreachable(err, service, url);
  }
}

/** The JSON of an answer's body; a body that is not JSON is BAD_RESPONSE, never quoted. */
export function jsonOf(res: ApiResponse, service: GhgaService, url: string, subject?: string): unknown {
  try {
    return JSON.parse(res.body) as unknown;
  } catch {
    throw badBody(service, url, /^\s*</.test(res.body) ? 'an HTML page instead of JSON' : 'an answer that is not JSON', subject);
  }
}

/** The base of a service URL as the connector uses it: trailing slashes dropped. */
export function trimBase(url: string): string {
  return url.replace(/\/+$/, '');
}
