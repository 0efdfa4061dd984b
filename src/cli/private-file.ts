/**
 * Files that hold a secret (a token file, a Crypt4GH private key, a config file with a token) must
 * be the owner's alone, as ssh asks of a private key: any group or other permission bit is refused
 * with one line saying how to fix it, before the secret is used.
 */
import type { Stats } from 'node:fs';
import { SlicefsError } from '../errors.js';

/** Throws (USAGE: exit 2) when `st` grants the group or others anything; `what` names the file. */
export function refuseOpenToOthers(st: Stats, what: string): void {
  if (st.mode & 0o077) throw new SlicefsError('USAGE', `${what}: readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
}
