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

/** A size cell as a byte count; throws the reason (the caller adds where). */
export function byteCountCell(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new Error(`'${value}' is not a byte count`);
  return Number(value);
}

/** An MD5 cell in lowercase; throws the reason (the caller adds where). */
export function md5Cell(value: string): string {
  if (!/^[0-9a-fA-F]{32}$/.test(value)) throw new Error(`'${value}' is not an MD5 (32 hex digits)`);
  return value.toLowerCase();
}
