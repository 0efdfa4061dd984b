/**
 * Text from a file or from a user, fit to quote in a one-line message: control characters (C0,
 * DEL, C1, and the Unicode line and paragraph separators) become `\xNN` / `\uNNNN`, so a hostile
 * file can neither break the `slicefs: error: …` line nor send escape sequences to a terminal.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

export function printable(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
