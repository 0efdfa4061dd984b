/**
 * The reader's Crypt4GH key, from the command line and the environment (the only layer that reads
 * them): `--private-key FILE`, else `C4GH_SECRET_KEY` (the reference tool's name). A protected key's
 * passphrase comes from `C4GH_PASSPHRASE` or, on a terminal, from a prompt that does not echo; never
 * from the command line (it would show in the process list and the shell's history). The key is
 * read only when the first encrypted object is opened, and once; a key file the group or others
 * can read is refused when the command starts (./private-file.ts).
 */
import { closeSync, openSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { ReadStream, WriteStream } from 'node:tty';
import type { C4ghKeyPair } from '../crypt4gh/keys.js';
import { SlicefsError } from '../errors.js';
import { cliEnv } from './daemon-protocol.js';
import { keyFilesOf, type KeyArgs } from './key-options.js';
import { fsProblem } from '../util/fs-problem.js';
import { refuseOpenToOthers } from './private-file.js';

/**
 * Asks for a secret on the controlling terminal without echoing it (stdin may be a pipe: the
 * terminal is opened directly). Undefined when there is no terminal.
 */
export async function promptHidden(question: string): Promise<string | undefined> {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    return undefined;
  }
  const input = new ReadStream(fd);
  const output = new WriteStream(fd);
  try {
    input.setRawMode(true);
    output.write(question);
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      input.on('data', (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return resolve(text);
          if (ch === '\u0003') return reject(new SlicefsError('USAGE', 'interrupted at the passphrase prompt'));
          if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
          else text += ch;
        }
      });
    });
  } finally {
    output.write('\n');
    input.setRawMode(false);
    input.destroy();
    output.destroy();
    try {
      closeSync(fd);
    } catch {
      // Already closed with the streams.
    }
  }
}

/** The passphrase: C4GH_PASSPHRASE, else a prompt, else an error saying how to give it. */
async function passphraseFor(file: string): Promise<string> {
  const env = cliEnv().C4GH_PASSPHRASE;
  if (env !== undefined && env !== '') return env;
  const typed = await promptHidden(`Passphrase for ${file}: `);
  if (typed === undefined) throw new SlicefsError('USAGE', `${file} is protected by a passphrase: set C4GH_PASSPHRASE (there is no terminal to ask on)`);
  return typed;
}

/**
 * The key file's text, once its modes say it is the owner's alone: a key the group or others can
 * read is refused before it is read (as ssh refuses one), whatever its passphrase.
 */
async function readKeyFile(file: string): Promise<string> {
  const cannotRead = (e: NodeJS.ErrnoException) => {
    throw new SlicefsError('USAGE', `--private-key ${file}: cannot read (${fsProblem(e)})`);
  };
  refuseOpenToOthers(await stat(file).catch(cannotRead), `--private-key ${file}`);
  return readFile(file, 'utf8').catch(cannotRead);
}

/** Reads and unlocks the key file (prompting at most once). */
export async function loadKeyPair(file: string): Promise<C4ghKeyPair> {
  const text = await readKeyFile(file);
  // Loaded here: the key code (bcrypt-pbkdf among it) costs start-up only when a key is read.
  const { parsePrivateKey } = await import('../crypt4gh/keys.js');
  return parsePrivateKey(text, () => passphraseFor(file), file);
}

/** True when the key file is protected by a passphrase (read without unlocking it); a key open to others is refused. */
export async function keyNeedsPassphrase(file: string): Promise<boolean> {
  const st = await stat(file).catch(() => undefined);
  if (!st) return false;
  refuseOpenToOthers(st, `--private-key ${file}`);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  const { decodePrivateKeyFile } = await import('../crypt4gh/keys.js');
  try {
    return decodePrivateKeyFile(text, file).cipher !== 'none';
  } catch {
    return false;
  }
}

/**
 * The keys for a command's encrypted objects, loaded on first use; undefined when no key is given
 * (opening an encrypted object then says to give one).
 */
export function keysOf(args: KeyArgs): (() => Promise<C4ghKeyPair[]>) | undefined {
  return keysFrom(keyFilesOf(args));
}

/** The keys of these files (./key-options.ts, `keyFilesOf`), as `keysOf`. */
export function keysFrom(files: string[]): (() => Promise<C4ghKeyPair[]>) | undefined {
  if (files.length === 0) return undefined;
  // A key file open to others is refused now, when the command starts, not at the first
  // encrypted file (a mount would fail that open instead of refusing to mount).
  for (const f of files) {
    const st = statSync(f, { throwIfNoEntry: false });
    if (st) refuseOpenToOthers(st, `--private-key ${f}`);
  }
  let loading: Promise<C4ghKeyPair[]> | undefined;
  // One after the other: each may prompt on the terminal.
  return () =>
    (loading ??= (async () => {
      const out: C4ghKeyPair[] = [];
      for (const f of files) out.push(await loadKeyPair(f));
      return out;
    })());
}
