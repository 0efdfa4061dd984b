/**
 * `slicefs decrypt` and `slicefs keygen`: the local Crypt4GH tools (options here; the work in
 * ./crypt4gh-run.ts, loaded when one of them runs).
 *
 *   slicefs decrypt --private-key KEY FILE… [--output-dir DIR]   x.bam.c4gh → x.bam
 *   slicefs keygen --out PREFIX [--comment TEXT] [--nocrypt]     PREFIX.sec (0600) + PREFIX.pub
 */
import type { Argv, CommandModule } from 'yargs';
import { reportError } from './common.js';
import { withKeyOptions, type KeyArgs } from './key-options.js';
import { withModeOptions, type ModeArgs } from './mode-options.js';

export interface DecryptArgs extends KeyArgs, ModeArgs {
  files: string[];
  'output-dir'?: string;
  quiet: boolean;
}

export interface KeygenArgs {
  out: string;
  comment?: string;
  nocrypt: boolean;
}

export const decryptCommand: CommandModule<object, DecryptArgs> = {
  command: 'decrypt <files..>',
  describe: 'Decrypt local Crypt4GH files (x.bam.c4gh → x.bam): never overwrites, leaves nothing half-written',
  builder: (y: Argv) =>
    withModeOptions(withKeyOptions(y), { dirs: true })
      .positional('files', { type: 'string', array: true, demandOption: true, describe: '.c4gh files' })
      .option('output-dir', { alias: 'd', type: 'string', describe: 'where the plaintext goes (default: beside each file)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no line per file' }) as unknown as Argv<DecryptArgs>,
  handler: async (args) => {
    try {
      const { runDecrypt } = await import('./crypt4gh-run.js');
      await runDecrypt(args);
    } catch (err) {
      reportError(err);
    }
  },
};

export const keygenCommand: CommandModule<object, KeygenArgs> = {
  command: 'keygen',
  describe: 'Make a Crypt4GH key pair (the passphrase from $C4GH_PASSPHRASE or a prompt)',
  builder: (y: Argv) =>
    y
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'writes OUT.sec (private, 0600) and OUT.pub' })
      .option('comment', { alias: 'C', type: 'string', describe: 'a comment stored in the private key (e.g. your e-mail)' })
      .option('nocrypt', { type: 'boolean', default: false, describe: 'store the private key without a passphrase (not recommended)' }) as unknown as Argv<KeygenArgs>,
  handler: async (args) => {
    try {
      const { runKeygen } = await import('./crypt4gh-run.js');
      await runKeygen(args);
    } catch (err) {
      reportError(err);
    }
  },
};
