/**
 * Presigned object-store URLs as the sources use them: their expiry (read from the URL, in
 * ../transport/presigned-expiry.ts, where the transport's memory of redirect targets reads it too)
 * and reads that go on through replaced URLs.
 *
 * The parameters of the signed-URL forms are listed once, in ./identity.ts (SIGNED_URL_SCHEMES),
 * which drops them from an object's identity. Names are matched in any case when reading an expiry:
 * a wrong guess only moves a refresh, where dropping a parameter that selects bytes from an identity
 * would serve wrong ones.
 */
import { SlicefsError } from '../errors.js';

export { presignedExpiry } from '../transport/presigned-expiry.js';

/**
 * Reads [start, end) through presigned URLs that may stop working in the middle of a read (they
 * expire, or the signing key is rotated): a refused URL (ACCESS_DENIED) is replaced by `urlFor`
 * and the read goes on from its first missing byte, as often as a long read needs, as long as each
 * URL delivered something. A URL refused before delivering a byte right after a replacement is
 * final: `onDeadUrl` says why. Shared by the Score and GHGA sources.
 */
export async function readThroughPresigned(opts: {
  start: number;
  end: number;
  onData: (chunk: Buffer) => void | Promise<void>;
  /** A URL to read from; `replace`: the last one was refused, get a new one. */
  urlFor: (replace: boolean) => Promise<string>;
  fetch: (url: string, from: number, onData: (chunk: Buffer) => void | Promise<void>) => Promise<void>;
  /** The error for a URL refused right after it was issued. */
  onDeadUrl: (err: SlicefsError) => Error;
  /** Rewrites other failures (e.g. naming the object store). */
  mapError?: (err: unknown, url: string) => unknown;
}): Promise<void> {
  let pos = opts.start;
  const counted = (chunk: Buffer) => {
    pos += chunk.length;
    return opts.onData(chunk);
  };
  let replaced = false;
  while (true) {
    const url = await opts.urlFor(replaced);
    const from = pos;
    try {
      await opts.fetch(url, pos, counted);
      return;
    } catch (err) {
      if (!(err instanceof SlicefsError && err.code === 'ACCESS_DENIED')) throw opts.mapError ? opts.mapError(err, url) : err;
      if (replaced && pos === from) throw opts.onDeadUrl(err);
      replaced = true;
    }
  }
}
