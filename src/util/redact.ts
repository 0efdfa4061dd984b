/**
 * What of a URL may appear in a log line, an error message or a file slicefs writes: scheme, host
 * and path, never the query string (presigned URLs carry their signature there, portals their
 * tokens) nor user:password. Every message that names a URL goes through `safeUrl`; text that may
 * hold URLs anywhere (a command-line argument, a log line) through `safeArg` or `redactLine`.
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

/** A URL of any scheme (`https://`, `s3://`, `file://`…) inside a text, up to the next blank. */
const URL_IN_TEXT = /[a-z][a-z0-9+.-]*:\/\/\S*/gi;

/**
 * A command-line argument as it may be shown or written (a @PG header's CL): every URL in it, at
 * its start or not (`--url=https://…`, `a,https://…`), through `safeUrl`; the rest as given.
 */
export function safeArg(arg: string): string {
  return arg.replace(URL_IN_TEXT, (u) => safeUrl(u));
}

/**
 * A log line with every URL's query string and user:password cut and every Bearer credential
 * masked: the last guard before a line reaches a log file, after each message was already built
 * from safe parts.
 */
export function redactLine(line: string): string {
  return line
    .replace(/(https?:\/\/)[^\s/?#@"'<>]*@/gi, '$1')
    .replace(/(https?:\/\/[^\s?#"'<>]*)\?[^\s"'<>]*/gi, '$1?…')
    .replace(/(Bearer\s+)\S+/gi, '$1****');
}
