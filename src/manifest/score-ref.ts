/**
 * How a manifest entry names a Score object instead of an http(s) URL: the pseudo-URL
 * `score:<objectId>`. Entries keep one `url` field whatever the source, so the tree, the download
 * plan and the catalogue treat both alike; only the source factory (src/open-source.ts) turns a
 * `score:` URL into a ScoreSource, with the storage service and token the command line chose.
 */

const SCHEME = 'score:';

/** Object ids as Score issues them (UUIDs) and as portals print them: no '/', no spaces. */
const OBJECT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidObjectId(id: string): boolean {
  return OBJECT_ID.test(id);
}

export function scoreUrl(objectId: string): string {
  return `${SCHEME}${objectId}`;
}

/** The object id of a `score:` URL, or undefined for any other URL. */
export function scoreObjectIdOf(url: string): string | undefined {
  return url.startsWith(SCHEME) ? url.slice(SCHEME.length) : undefined;
}
