/**
 * Validation of the path an entry takes in the tree. A manifest comes from a portal, not from the
 * user, so its paths are untrusted: no absolute paths, no '..' or '.' segments, no empty names, no
 * NUL or control characters, and names the kernel accepts (≤ 255 bytes).
 * Returns the normalised path, or throws with the reason (the caller adds file:line:column).
 */
export function validateTreePath(raw: string): string {
  if (raw.length === 0) throw new Error('empty path');
  if (raw.startsWith('/')) throw new Error(`absolute path '${raw}' (paths are relative to the mount point)`);
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  if (/[\0-\x1f\x7f]/.test(raw)) throw new Error(`path '${JSON.stringify(raw).slice(1, -1)}' contains a control character`);
  if (raw.includes('\\')) throw new Error(`path '${raw}' contains a backslash`);
  const segments = raw.split('/');
  for (const seg of segments) {
    if (seg === '') throw new Error(`path '${raw}' has an empty name (double or trailing '/')`);
    if (seg === '..') throw new Error(`path '${raw}' contains '..'`);
    if (seg === '.') throw new Error(`path '${raw}' contains '.'`);
    if (Buffer.byteLength(seg) > 255) throw new Error(`a name in path '${raw}' is longer than 255 bytes`);
  }
  return segments.join('/');
}

/** The last path segment of a URL, decoded (the default `path` of an entry). */
export function urlBasename(url: string): string {
  const u = new URL(url);
  const segs = u.pathname.split('/').filter((s) => s.length > 0);
  const last = segs.at(-1);
  if (!last) throw new Error(`URL '${u.origin}${u.pathname}' has no file name; add a 'path' column`);
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}
