/**
 * No credential in clear on the network: a request that carries one (an `Authorization`,
 * `Proxy-Authorization` or `Cookie` header, or user:password in its URL) is refused before it is
 * sent when its URL is plain `http://` to a host other than this machine's loopback. Checked in
 * `HttpTransport.send`, the one place every request of slicefs passes (API calls, data requests,
 * each redirect hop), so every bearer token (Score's access token, GHGA's access and work-order
 * tokens) is covered whichever service or well-known value named the URL.
 *
 * Loopback is `localhost`, 127.0.0.0/8 and `::1` (also IPv4-mapped, `::ffff:127.x.x.x`): traffic
 * that never leaves the machine (a tunnel's local end, the tests' servers). Other names are not
 * resolved first (a lookup answer could change between the check and the connect).
 */
import { isIPv4 } from 'node:net';
import { SlicefsError } from '../errors.js';
import { safeUrl } from '../util/redact.js';

/** Headers that carry a credential: never sent over plain http except to loopback. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);

/** True for `localhost`, 127.0.0.0/8 and ::1 (as the WHATWG URL parser writes hosts). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (host === 'localhost') return true;
  if (isIPv4(host)) return host.startsWith('127.');
  if (host === '::1') return true;
  // IPv4-mapped IPv6, as the parser writes it: ::ffff:7f00:1 is 127.0.0.1.
  const mapped = /^::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(host);
  return mapped !== null && parseInt(mapped[1], 16) >> 8 === 127;
}

/** Which credential a request carries, for the message; undefined when it carries none. */
function credentialOf(url: URL, headers: Record<string, string>): string | undefined {
  const name = Object.keys(headers).find((h) => CREDENTIAL_HEADERS.has(h.toLowerCase()));
  if (name !== undefined) return /^bearer\s/i.test(headers[name]) ? 'a bearer token' : `a ${name.toLowerCase()} header`;
  if (url.username !== '' || url.password !== '') return 'a user name and password';
  return undefined;
}

/**
 * Throws USAGE (exit 2: the URL given, or named by a service's well-known values, is the problem)
 * when the request would send a credential over plain http to a host that is not loopback.
 */
export function refuseCleartextCredentials(url: string, headers: Record<string, string>): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return; // Not a URL: undici refuses it with its own error, and nothing is sent.
  }
  if (u.protocol !== 'http:' || isLoopbackHost(u.hostname)) return;
  const credential = credentialOf(u, headers);
  if (credential === undefined) return;
  throw new SlicefsError('USAGE', `refusing to send ${credential} over plain http to ${safeUrl(url)}: it would travel unencrypted; use an https:// URL (plain http is allowed only to this machine: localhost, 127.0.0.0/8, ::1)`);
}
