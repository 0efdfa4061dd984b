/**
 * `--file-mode` and `--dir-mode` of the commands that write controlled data (`download`,
 * `decrypt`, `view -o`): the modes of the files and directories they create, octal, default 0600
 * and 0700 (readable by the owner only). Set exactly (chmod after create: the umask does not
 * narrow them); directories that already exist keep theirs (util/safe-fs.ts).
 */
import type { Argv } from 'yargs';
import { SlicefsError } from '../errors.js';
import { PRIVATE_MODES, type Modes } from '../util/safe-fs.js';

export interface ModeArgs {
  'file-mode'?: string;
  'dir-mode'?: string;
}

export function withModeOptions<T>(y: Argv<T>, opts: { dirs: boolean }): Argv<T> {
  const withFile = y.option('file-mode', { type: 'string', describe: 'mode of the files written, octal (default 0600: owner only; e.g. 0640 for a shared project group)' });
  return (opts.dirs ? withFile.option('dir-mode', { type: 'string', describe: 'mode of the directories made, octal (default 0700; e.g. 0750)' }) : withFile) as Argv<T>;
}

/** An octal mode of permission bits that leaves its owner `ownerNeeds` (read+write, +search for a directory). */
function parseMode(given: string, option: string, ownerNeeds: number, example: string): number {
  if (!/^0?[0-7]{3}$/.test(given)) throw new SlicefsError('USAGE', `${option} '${given}': not an octal mode such as ${example}`);
  const mode = parseInt(given, 8);
  if ((mode & ownerNeeds) !== ownerNeeds) {
    throw new SlicefsError('USAGE', `${option} ${given}: slicefs must be able to ${ownerNeeds === 0o700 ? 'read, write and enter' : 'read and write'} what it makes (at least 0${ownerNeeds.toString(8)})`);
  }
  return mode;
}

/** The modes the options ask for, checked (exit 2 on a bad value). */
export function modesOf(args: ModeArgs): Modes {
  return {
    file: args['file-mode'] === undefined ? PRIVATE_MODES.file : parseMode(args['file-mode'], '--file-mode', 0o600, '0640'),
    dir: args['dir-mode'] === undefined ? PRIVATE_MODES.dir : parseMode(args['dir-mode'], '--dir-mode', 0o700, '0750'),
  };
}
