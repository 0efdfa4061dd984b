/**
 * Where Score objects come from, from the command line and the environment (the only layer that
 * reads either): the storage service's URL (`--storage-url`, else `STORAGE_URL`) and the access
 * token, by precedence `--token` (accepted with a warning: it shows in the process list), then
 * `--token-file` (refused when others may read it), then `ACCESSTOKEN` (score-client's name), then
 * `SLICEFS_TOKEN`. The token is never printed, logged or put in an error.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { SlicefsError } from '../errors.js';
import type { ScoreEndpoint } from '../source/score-source.js';

export interface ScoreArgs {
  'object-id'?: string[];
  'storage-url'?: string;
  token?: string;
  'token-file'?: string;
}

export function withScoreOptions<T>(y: Argv<T>): Argv<T> {
  return y
    .option('object-id', { type: 'string', array: true, describe: 'a Score object id (ICGC ARGO and other Score storage services)' })
    .option('storage-url', { type: 'string', describe: 'the Score storage service (default: $STORAGE_URL)' })
    .option('token-file', { type: 'string', describe: 'file holding the access token (default: $ACCESSTOKEN or $SLICEFS_TOKEN); must not be readable by others' })
    .option('token', { type: 'string', describe: 'the access token itself (visible in the process list: prefer --token-file or $ACCESSTOKEN)' }) as Argv<T>;
}

/** The storage service and token for Score objects; errors say what to set. */
export async function scoreEndpoint(args: ScoreArgs, warn: (line: string) => void): Promise<ScoreEndpoint> {
  const storageUrl = args['storage-url'] ?? process.env.STORAGE_URL;
  if (!storageUrl) throw new SlicefsError('USAGE', 'Score objects need the storage service: --storage-url URL or STORAGE_URL');
  if (!/^https?:\/\//i.test(storageUrl)) throw new SlicefsError('USAGE', '--storage-url / STORAGE_URL must be an http(s) URL');
  let token: string | undefined;
  if (args.token !== undefined) {
    warn('warning: --token shows the token in the process list; use --token-file or ACCESSTOKEN');
    token = args.token;
  } else if (args['token-file'] !== undefined) {
    const file = args['token-file'];
    const st = await stat(file).catch(() => undefined);
    if (!st) throw new SlicefsError('USAGE', `--token-file ${file}: no such file`);
    if (st.mode & 0o077) throw new SlicefsError('USAGE', `--token-file ${file}: readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    token = (await readFile(file, 'utf8')).trim();
  } else {
    token = process.env.ACCESSTOKEN ?? process.env.SLICEFS_TOKEN;
  }
  if (!token) throw new SlicefsError('USAGE', 'no access token: set ACCESSTOKEN (or SLICEFS_TOKEN), or give --token-file FILE');
  return { storageUrl, token };
}
