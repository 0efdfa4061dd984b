/**
 * Typed errors with stable codes, and the one table that maps them to POSIX errno names.
 *
 * Every layer throws a `SlicefsError` (or lets a plain Error through, which counts as EIO). The FUSE
 * adapter turns `errnoName(err)` into a number; the CLI turns `err.message` into its one-line
 * error. Keeping the mapping here, and only here, means every command (the mount now; `view` and
 * `download` as they come) agrees on what a 403 or a changed object means. The table follows htslib's `hfile_libcurl` status map.
 */

export type ErrorCode =
  | 'NOT_FOUND' // 404/410: the object is not there
  | 'ACCESS_DENIED' // 401/403: wrong, missing or expired credentials
  | 'STALE' // the object changed since its version was pinned (ETag / size / Last-Modified)
  | 'TIMEOUT' // the retry budget ran out waiting for the server
  | 'HTTP_STATUS' // any other unexpected status (5xx after retries, 416, ...)
  | 'BAD_RESPONSE' // a response we refuse to serve: wrong Content-Range, short body, ...
  | 'WRONG_CONTENT' // an answer that is not the data asked for: an HTML page, a JSON error document, encoded bytes
  | 'REDIRECT' // a redirect that cannot be followed: a loop, more than 10 hops, no usable Location
  | 'INSECURE_REDIRECT' // a redirect from https to http: refused, the data and its credentials would go in clear
  | 'NETWORK' // connection refused/reset after retries
  | 'READ_ONLY' // a write to the read-only mount
  | 'NO_SUCH_PATH' // a path that is not in the tree
  | 'NOT_A_DIRECTORY'
  | 'IS_A_DIRECTORY'
  | 'BAD_HANDLE'
  | 'MANIFEST' // a malformed manifest (file, line and column in the message)
  | 'USAGE' // bad command-line input
  | 'MOUNT' // the mount point cannot be used
  | 'KEY' // a Crypt4GH key that cannot be used: malformed, wrong passphrase, or no key opens the file
  | 'DECRYPT'; // Crypt4GH data that fails: a MAC that does not verify, a malformed or unsupported file

export type ErrnoName =
  | 'ENOENT'
  | 'EACCES'
  | 'ESTALE'
  | 'ETIMEDOUT'
  | 'EIO'
  | 'EROFS'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'EBADF'
  | 'EINVAL';

export class SlicefsError extends Error {
  readonly code: ErrorCode;
  /** HTTP status when the error came from a response. */
  readonly status?: number;
  constructor(code: ErrorCode, message: string, opts: { status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SlicefsError';
    this.code = code;
    this.status = opts.status;
  }
}

const ERRNO_BY_CODE: Record<ErrorCode, ErrnoName> = {
  NOT_FOUND: 'ENOENT',
  ACCESS_DENIED: 'EACCES',
  STALE: 'ESTALE',
  TIMEOUT: 'ETIMEDOUT',
  HTTP_STATUS: 'EIO',
  BAD_RESPONSE: 'EIO',
  WRONG_CONTENT: 'EIO',
  REDIRECT: 'EIO',
  // A refusal by policy, as a 403 is: the bytes are there but slicefs will not fetch them that way.
  INSECURE_REDIRECT: 'EACCES',
  NETWORK: 'EIO',
  READ_ONLY: 'EROFS',
  NO_SUCH_PATH: 'ENOENT',
  NOT_A_DIRECTORY: 'ENOTDIR',
  IS_A_DIRECTORY: 'EISDIR',
  BAD_HANDLE: 'EBADF',
  MANIFEST: 'EINVAL',
  USAGE: 'EINVAL',
  MOUNT: 'EIO',
  KEY: 'EACCES',
  DECRYPT: 'EIO',
};

/** The errno a failed operation reports. Anything that is not a SlicefsError is EIO. */
export function errnoName(err: unknown): ErrnoName {
  return err instanceof SlicefsError ? ERRNO_BY_CODE[err.code] : 'EIO';
}

/** The error code an HTTP status means, for statuses that are final (not retried). */
export function codeForStatus(status: number): ErrorCode {
  if (status === 404 || status === 410) return 'NOT_FOUND';
  if (status === 401 || status === 403) return 'ACCESS_DENIED';
  if (status === 412) return 'STALE'; // If-Match failed: the pinned version is gone
  return 'HTTP_STATUS';
}

/** Statuses worth another attempt (htslib and undici's RetryHandler agree on these). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Node's errno codes of failed file-system calls, in words: what a user reads instead of `EROFS`.
 * The one table; every message about a local path takes its words from here (`errnoWords`), and
 * src/util/fs-problem.ts adds which part of the path was the cause.
 */
const ERRNO_WORDS: Record<string, string> = {
  EROFS: 'read-only file system',
  ENOTDIR: 'not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EEXIST: 'file exists',
  EISDIR: 'is a directory',
  ENOENT: 'no such file or directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  ENOTEMPTY: 'directory not empty',
  EBUSY: 'device or resource busy',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EXDEV: 'on another file system',
  EIO: 'input/output error',
  ENOTCONN: 'transport endpoint is not connected (a stale mount)',
  EFBIG: 'file too large',
  ETXTBSY: 'text file busy',
};

/** `code` in words (`EROFS` → `read-only file system`); undefined for a code the table lacks. */
export function errnoWords(code: string | undefined): string | undefined {
  return code === undefined ? undefined : ERRNO_WORDS[code];
}

/** An error of a Node file-system call (it has an errno `code` and the `syscall` that failed). */
export function isFsError(err: unknown): err is NodeJS.ErrnoException & { code: string; syscall: string } {
  const e = err as NodeJS.ErrnoException | undefined;
  return e instanceof Error && typeof e.code === 'string' && typeof e.syscall === 'string';
}

/** A failed call's reason for a message: its code in words, else Node's own message. */
export function errnoReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return errnoWords(e?.code) ?? messageOf(err);
}
