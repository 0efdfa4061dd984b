import { SlicefsError } from '../errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1024 ** 4,
  TIB: 1024 ** 4,
};

/** Parses `512M`, `1G`, `64KiB`, `1048576` (binary units, as `du -h` and `--cache-size` users expect). */
export function parseByteSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2].toUpperCase()] : undefined;
  if (!m || unit === undefined) {
    throw new SlicefsError('USAGE', `invalid ${what} '${text}' (expected a number with an optional unit: K, M, G, T)`);
  }
  return Math.round(Number(m[1]) * unit);
}

/** `821 B`, `12.3 MiB`: whole bytes below 1 KiB (a rate is a fraction, and reads no better with its digits). */
export function formatBytes(n: number): string {
  if (Math.round(n) < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
