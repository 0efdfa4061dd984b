/**
 * The Crypt4GH key options every command that reads encrypted files shares (declared here, light:
 * the key code itself, ./keys.ts, is loaded only when an encrypted file is read).
 */
import type { Argv } from 'yargs';

export interface KeyArgs {
  /** One, or several when repeated (not a yargs array, which would swallow the positional files after it). */
  'private-key'?: string | string[];
}

export function withKeyOptions<T>(y: Argv<T>): Argv<T> {
  return y.option('private-key', {
    type: 'string',
    describe: 'your Crypt4GH private key, for encrypted files (repeatable; default: $C4GH_SECRET_KEY); its passphrase from $C4GH_PASSPHRASE or a prompt',
  }) as Argv<T>;
}

/** The key files: `--private-key` (each one given), else `C4GH_SECRET_KEY` (the reference tool's name), else none. */
export function keyFilesOf(args: KeyArgs, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = args['private-key'];
  if (given !== undefined) return ([] as string[]).concat(given);
  return env.C4GH_SECRET_KEY ? [env.C4GH_SECRET_KEY] : [];
}
