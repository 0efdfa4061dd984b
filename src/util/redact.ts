/**
 * What of a URL may appear in a log line or an error message: scheme, host and path, never the
 * query string (presigned URLs carry their signature there) nor user:password. Every message that
 * names a URL goes through `safeUrl`.
 */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    // Not a URL we can parse: cut anything that looks like a query or credentials.
    return url.replace(/\?.*$/, '?…').replace(/\/\/[^/@]*@/, '//');
  }
}

/** The path part of a URL, for `--verbose` request lines. */
export function urlPath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return safeUrl(url);
  }
}

/**
 * A log line with every URL's query string cut and every Bearer credential masked: the last guard
 * before a line reaches a log file, after each message was already built from safe parts.
 */
export function redactLine(line: string): string {
  return line.replace(/(https?:\/\/[^\s?#"'<>]*)\?[^\s"'<>]*/gi, '$1?…').replace(/(Bearer\s+)\S+/gi, '$1****');
}
