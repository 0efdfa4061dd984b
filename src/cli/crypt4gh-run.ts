/**
 * The work of `slicefs decrypt` and `slicefs keygen` (options in ./crypt4gh-commands.ts).
 *
 * decrypt: each `x.c4gh` is read through the same Crypt4ghSource as the mount (every block
 * authenticated before a byte of it is written) into a hidden temporary file beside the output,
 * which is renamed into place only once complete; a failure removes it, and an existing output is
 * never replaced. Every output name is checked before the first file is decrypted (util/safe-fs.ts:
 * a symlink at the name, or a directory on the way leading out, stops the command, exit 2). One
 * failed file does not stop the others; the exit code says any failed.
 */
import { access, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ArgumentsCamelCase } from 'yargs';
import { encodePrivateKey, encodePublicKey, generateKeyPair } from '../crypt4gh/keys.js';
import { SlicefsError } from '../errors.js';
import { Crypt4ghSource } from '../source/crypt4gh-source.js';
import { LocalSource } from '../source/local-source.js';
import { PRIVATE_MODES, UnsafePathError, WriteRoot } from '../util/safe-fs.js';
import { formatBytes } from '../util/size.js';
import { errorAt, removeMadeDirs } from '../util/fs-problem.js';
import { EXIT_FAILURE, errorLine, prepareOutputDir, say, userPathError } from './common.js';
import type { DecryptArgs, KeygenArgs } from './crypt4gh-commands.js';
import { keysOf, promptHidden } from './keys.js';
import { modesOf } from './mode-options.js';

const exists = (p: string) => access(p).then(() => true, () => false);

export async function runDecrypt(args: ArgumentsCamelCase<DecryptArgs>): Promise<void> {
  const modes = modesOf(args);
  const keys = keysOf(args);
  if (!keys) throw new SlicefsError('USAGE', 'decrypt needs your Crypt4GH key: --private-key FILE (or C4GH_SECRET_KEY)');
  // The key is unlocked once, before the first file (a wrong passphrase is one error, not one per file).
  await keys();
  const outDir = args['output-dir']
    ? await prepareOutputDir(args['output-dir'], '--output-dir', args['output-dir'], modes.dir).then(() => WriteRoot.prepare(args['output-dir']!, modes, { create: false }))
    : undefined;
  // Where each file goes, every name checked before anything is written: a refusal stops it all.
  const plan: { file: string; out?: string; root?: WriteRoot; error?: unknown }[] = [];
  for (const file of args.files) {
    try {
      if (!/\.c4gh$/i.test(file) || basename(file).length <= 5) throw new SlicefsError('USAGE', 'not a .c4gh file name (the output is the name without .c4gh)');
      const root = outDir ?? (await WriteRoot.prepare(dirname(file), modes, { create: false }));
      const out = join(args['output-dir'] ?? dirname(file), basename(file).slice(0, -5));
      await root.check(out);
      plan.push({ file, out, root });
    } catch (err) {
      if (err instanceof UnsafePathError) throw err;
      plan.push({ file, error: err });
    }
  }
  let failed = 0;
  for (const { file, out, root, error } of plan) {
    try {
      if (error !== undefined) throw error;
      if (await exists(out!)) throw new SlicefsError('USAGE', `${out} already exists: not overwritten`);
      const bytes = await decryptTo(new Crypt4ghSource(new LocalSource(file), { keys }), root!, out!);
      if (!args.quiet) say(`decrypted ${file} → ${out} (${formatBytes(bytes)})`);
    } catch (err) {
      failed++;
      const msg = errorLine(err);
      say(`error: ${msg.startsWith(`${file}: `) || msg.includes(file) ? msg : `${file}: ${msg}`}`);
    }
  }
  if (failed > 0) process.exitCode = EXIT_FAILURE;
}

/** Streams the plaintext into `out` (under `root`) through a temporary file; returns the bytes written. */
async function decryptTo(src: Crypt4ghSource, root: WriteRoot, out: string): Promise<number> {
  const { size } = await src.version();
  const tmp = join(dirname(out), `.${basename(out)}.slicefs-partial-${process.pid}`);
  const stream = (await root.open(tmp, 'create')).createWriteStream();
  // A write error (a full disk) fails the file: kept here, never an unhandled 'error' event.
  let failed: Error | undefined;
  stream.on('error', (err) => (failed ??= errorAt(err, out)));
  try {
    await src.read(0, size, (chunk) => {
      if (failed) throw failed;
      if (!stream.write(chunk)) return new Promise<void>((res, rej) => stream.once('drain', res).once('error', rej));
    });
    await new Promise<void>((res, rej) => stream.end((err?: Error | null) => (err ?? failed ? rej(err ?? failed) : res())));
    // A name taken while we wrote (another process) is not overwritten either.
    if (await exists(out)) throw new SlicefsError('USAGE', `${out} appeared while decrypting: not overwritten`);
    await root.rename(tmp, out);
    return size;
  } catch (err) {
    stream.destroy();
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** The passphrase for a new key: C4GH_PASSPHRASE, else typed twice on the terminal. */
async function newPassphrase(file: string): Promise<string> {
  const env = process.env.C4GH_PASSPHRASE;
  if (env) return env;
  const first = await promptHidden(`Passphrase for ${file}: `);
  if (first === undefined) throw new SlicefsError('USAGE', 'no terminal to ask a passphrase on: set C4GH_PASSPHRASE, or use --nocrypt');
  if (first === '') throw new SlicefsError('USAGE', 'an empty passphrase: use --nocrypt for a key without one');
  const again = await promptHidden('The same passphrase again: ');
  if (again !== first) throw new SlicefsError('USAGE', 'the passphrases differ');
  return first;
}

export async function runKeygen(args: ArgumentsCamelCase<KeygenArgs>): Promise<void> {
  const sec = `${args.out}.sec`;
  const pub = `${args.out}.pub`;
  // The names are checked before the passphrase is asked (a refusal costs no typing).
  const dir = dirname(sec);
  const existing = (await exists(dir))
    ? await WriteRoot.prepare(dir, PRIVATE_MODES, { create: false }).catch((err: unknown) => {
        throw userPathError(err, '--out', args.out);
      })
    : undefined;
  for (const f of [sec, pub]) {
    await existing?.check(f);
    if (await exists(f)) throw new SlicefsError('USAGE', `${f} already exists: not overwritten`);
  }
  // Before the passphrase is asked for: a directory that cannot be used costs no typing.
  const createdDir = existing ? undefined : await prepareOutputDir(dir, '--out', args.out);
  const root = existing ?? (await WriteRoot.prepare(dir, PRIVATE_MODES, { create: false }));
  const written: string[] = [];
  try {
    const passphrase = args.nocrypt ? undefined : await newPassphrase(sec);
    const pair = generateKeyPair(args.comment);
    // Created here (O_EXCL, O_NOFOLLOW), never over a file that appeared meanwhile; the secret readable by its owner only.
    const files: [string, Uint8Array | string, number][] = [
      [sec, await encodePrivateKey(pair, passphrase), 0o600],
      [pub, encodePublicKey(pair.public), 0o644],
    ];
    for (const [file, data, mode] of files) {
      const fh = await root.open(file, 'create', mode).catch((err: unknown) => {
        // A name that cannot be made there is a bad --out.
        throw userPathError(err, '--out', args.out);
      });
      written.push(file);
      try {
        // Opened (created) and then not written (a full disk) is a failed run, and the file ours to remove.
        await fh.writeFile(data).catch((err: unknown) => {
          throw errorAt(err, file);
        });
      } finally {
        await fh.close();
      }
    }
    say(`wrote ${sec} (private, ${passphrase === undefined ? 'no passphrase' : 'scrypt-protected'}) and ${pub}`);
  } catch (err) {
    // Both keys or neither: a half-made pair is removed, and the directories made for it.
    for (const f of written) await unlink(f).catch(() => {});
    await removeMadeDirs(dir, createdDir).catch(() => {});
    throw err;
  }
}
