import { SlicefsError } from '../errors.js';

/** Blank lines and comments ('#' as the first non-blank character) are skipped in every format. */
export function isBlankOrComment(line: string): boolean {
  const t = line.trim();
  return t === '' || t.startsWith('#');
}

/** `manifest.tsv:12:3: ...`: file, line and column (1-based) of the bad input, as compilers print them. */
export function manifestError(file: string, line: number, column: number | undefined, message: string): SlicefsError {
  const where = column === undefined ? `${file}:${line}` : `${file}:${line}:${column}`;
  return new SlicefsError('MANIFEST', `${where}: ${message}`);
}
