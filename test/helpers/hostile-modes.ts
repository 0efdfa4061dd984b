/**
 * The hostile servers of issue 15, as one table the view, download and mount suites all run: each
 * fixture-server fault, and what slicefs must make of it, the right bytes or one clear error (its
 * message and the errno a mount answers).
 */
import type { Fault } from './fixture-server.js';

export type Expect = { bytes: true } | { error: RegExp; errno: 'EIO' | 'EACCES' | 'ETIMEDOUT' };

export interface HostileMode {
  name: string;
  /** The fault of the file on the first server. */
  fault: Fault;
  /** The fault of the second server's copy (another origin), when the first sends reads there. */
  onOther?: Fault;
  expect: Expect;
}

const bytes: Expect = { bytes: true };

/** Every mode; `other` is the second server's origin. */
export function hostileModes(other: string): HostileMode[] {
  return [
    { name: 'html-sign-in-page', fault: { kind: 'html-page', title: 'Sign in · Example Portal' }, expect: { error: /an HTML page \("Sign in · Example Portal"\) came back instead of the data/, errno: 'EIO' } },
    { name: 'json-error-200', fault: { kind: 'json-error', message: 'Access token expired' }, expect: { error: /a JSON document \("Access token expired"\) came back instead of the data/, errno: 'EIO' } },
    { name: 'problem-json-200', fault: { kind: 'json-error', message: 'Token revoked', type: 'application/problem+json' }, expect: { error: /a JSON document \("Token revoked"\)/, errno: 'EIO' } },
    { name: 'gzip-range', fault: { kind: 'gzip-range' }, expect: { error: /came back encoded \(Content-Encoding: gzip\)/, errno: 'EIO' } },
    { name: 'content-length-short', fault: { kind: 'content-length', delta: -100 }, expect: { error: /answered Content-Length \d+ for the \d+ bytes of its Content-Range/, errno: 'EIO' } },
    { name: 'content-length-long', fault: { kind: 'content-length', delta: 100 }, expect: { error: /answered Content-Length \d+ for the \d+ bytes of its Content-Range/, errno: 'EIO' } },
    { name: 'content-range-other-bytes', fault: { kind: 'wrong-content-range' }, expect: { error: /server answered Content-Range 'bytes \d+-\d+\/\d+' for bytes=/, errno: 'EIO' } },
    { name: 'endless-body', fault: { kind: 'endless-body' }, expect: bytes },
    { name: 'headers-trickled', fault: { kind: 'trickle-headers', byteMs: 2 }, expect: bytes },
    { name: 'redirect-3-hops-mixed', fault: { kind: 'redirect', hops: 3, location: 'mixed' }, expect: bytes },
    { name: 'redirect-10-hops-301', fault: { kind: 'redirect', hops: 10, status: 301, location: 'absolute' }, expect: bytes },
    { name: 'redirect-307-relative', fault: { kind: 'redirect', hops: 2, status: 307, location: 'relative' }, expect: bytes },
    { name: 'redirect-303-path', fault: { kind: 'redirect', hops: 1, status: 303, location: 'path' }, expect: bytes },
    { name: 'redirect-11-hops', fault: { kind: 'redirect', hops: 11 }, expect: { error: /more than 10 redirects/, errno: 'EIO' } },
    { name: 'redirect-loop', fault: { kind: 'redirect-loop' }, expect: { error: /a redirect loop/, errno: 'EIO' } },
    { name: 'redirect-308-cross-origin', fault: { kind: 'redirect', hops: 2, status: 308, to: other }, expect: bytes },
    { name: 'presigned-expires', fault: { kind: 'presigned-redirect', uses: 2, to: other }, onOther: { kind: 'presigned-redirect', uses: 2 }, expect: bytes },
    { name: 'unauthorized-after-2', fault: { kind: 'status-after', status: 401, after: 2 }, expect: { error: /HTTP 401/, errno: 'EACCES' } },
  ];
}
