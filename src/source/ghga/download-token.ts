/**
 * The GHGA download token (ghga-protocol.md §1): what the data portal shows a user once per work
 * package, `<work_package_id>:<encrypted_access_token>`.
 *
 *   - the id is the work package's UUID (the WPS path segment);
 *   - the second part is standard base64 of a libsodium sealed box, sealed to the user's Crypt4GH
 *     public key, of the 24-character access token the WPS accepts as a Bearer token (72 bytes →
 *     96 characters). Only the holder of the matching secret key can open it.
 *
 * Validation is the connector's (`core/utils.py`): split on ':' into exactly two parts of 20–39
 * and 80–119 characters, and the first must parse as a UUID (Python's `UUID()`: hyphens and
 * braces optional, 32 hex digits). One difference: surrounding whitespace is trimmed, since the
 * token usually arrives through a terminal paste or a pipe with a trailing newline. A malformed
 * token is a USAGE error that says what is wrong without echoing any of it (it is a credential).
 */
import { SlicefsError } from '../../errors.js';
import type { C4ghKeyPair } from '../../crypt4gh/keys.js';
import { openSealedBox } from '../../crypt4gh/sealed-box.js';

export interface DownloadToken {
  /** The work package id in canonical form (lowercase, hyphenated), as the WPS path takes it. */
  workPackageId: string;
  /** The sealed access token, base64, as given. */
  encryptedAccessToken: string;
}

/** The access token the WPS issues: 24 characters of [A-Za-z0-9] (WPS `core/tokens.py`). */
const ACCESS_TOKEN = /^[A-Za-z0-9]{24}$/;

function malformed(why: string): SlicefsError {
  return new SlicefsError(
    'USAGE',
    `malformed download token: ${why}; paste the complete token from the GHGA data portal unaltered (<work package id>:<encrypted access token>)`,
  );
}

/** Python's `UUID(s)` for the forms the length check leaves: 32 hex digits, hyphens and braces optional. */
function canonicalUuid(s: string): string | undefined {
  const hex = s.replace(/^\{|\}$/g, '').replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined;
  const h = hex.toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Checks a download token as the connector does; throws USAGE without quoting the token. */
export function parseDownloadToken(text: string): DownloadToken {
  const parts = text.trim().split(':');
  if (parts.length !== 2) {
    throw malformed(parts.length === 1 ? 'no ":" separating the work package id from the access token' : `${parts.length - 1} ":" where there should be one`);
  }
  const [id, sealed] = parts as [string, string];
  if (id.length < 20 || id.length >= 40) throw malformed(`the work package id has ${id.length} characters, not 20–39`);
  if (sealed.length < 80 || sealed.length >= 120) throw malformed(`the encrypted access token has ${sealed.length} characters, not 80–119`);
  const workPackageId = canonicalUuid(id);
  if (!workPackageId) throw malformed('the work package id is not a UUID');
  if (sealed.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(sealed)) throw malformed('the encrypted access token is not base64');
  return { workPackageId, encryptedAccessToken: sealed };
}

/**
 * What the user can compare with the key they gave the portal: the public key in base64, as the
 * portal shows it and as `*.pub` files hold it (a public key is not a secret).
 */
export function publicKeyFingerprint(publicKey: Buffer): string {
  return publicKey.toString('base64');
}

/**
 * The access token inside a download token, opened with the user's key pair. A box sealed for
 * another key (the usual mistake: a second key pair, or a token of a colleague) is a KEY error that
 * names our public key so the user can see which one they used.
 */
export function openAccessToken(token: DownloadToken | string, pair: C4ghKeyPair): string {
  const t = typeof token === 'string' ? parseDownloadToken(token) : token;
  let plain: Buffer;
  try {
    plain = openSealedBox(Buffer.from(t.encryptedAccessToken, 'base64'), pair, 'the download token');
  } catch (err) {
    if (!(err instanceof SlicefsError && err.code === 'KEY')) throw err;
    throw new SlicefsError(
      'KEY',
      `the download token was not made for this key (public key ${publicKeyFingerprint(pair.public)}): use the key pair whose public key you gave the GHGA data portal`,
    );
  }
  const accessToken = plain.toString('latin1');
  // A box that opens holds what the WPS sealed; anything else is not a GHGA download token.
  if (!ACCESS_TOKEN.test(accessToken)) throw malformed('it does not hold a GHGA access token');
  return accessToken;
}
