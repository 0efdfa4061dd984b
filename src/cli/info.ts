/**
 * `slicefs info [--json] [--verify-connection]`: what slicefs would use, and where each setting
 * came from (flag, environment, config profile, default), so that "which token is it sending, to
 * which service?" has an answer without reading the code. The token is shown masked: its first
 * and last four characters only when it is long enough (≥ 20) that they do not give it away, and
 * its length. With `--verify-connection`, the storage service, the token and the object storage
 * are checked (../source/score-connection.ts) and a failure is the usual one-line error.
 *
 * This module declares the options; the transport and the check are imported when they are used.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { messageOf } from '../errors.js';
import { serviceUrl } from '../source/score-errors.js';
import { checkTimeout, reportError, say, timestamped, transportConfig } from './common.js';
import { slicefsVersion } from './version.js';
import { endpointOf, resolvedSettings, withScoreEndpointOptions, type ResolvedSettings, type ScoreArgs, type Setting } from './score.js';

interface InfoArgs extends Omit<ScoreArgs, 'object-id'> {
  json: boolean;
  timeout: number;
  verbose: boolean;
}

export const infoCommand: CommandModule<object, InfoArgs> = {
  command: 'info',
  describe: 'Show the configuration in use (config file, profile, Score URLs, masked token) and where each setting came from',
  builder: (y: Argv) =>
    withScoreEndpointOptions(y, { verifyConnection: false })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of text' })
      .option('timeout', { type: 'number', default: 15, describe: 'seconds without progress before a request of --verify-connection fails' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log every HTTP request (no query strings)' }) as unknown as Argv<InfoArgs>,
  handler: async (args) => {
    try {
      await runInfo(args);
    } catch (err) {
      reportError(err);
    }
  },
};

/** `3f9a…4a5b` for a token of 20 characters or more, else `****`: never enough to use it. */
export function maskToken(token: string): string {
  return token.length >= 20 ? `${token.slice(0, 4)}…${token.slice(-4)}` : '****';
}

/** Whether a mount could work here: /dev/fuse and fusermount (checked without running anything). */
function fuseStatus(): { available: boolean; detail: string } {
  const missing: string[] = [];
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse is missing');
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  if (!dirs.some((d) => existsSync(join(d, 'fusermount')) || existsSync(join(d, 'fusermount3')))) missing.push('fusermount is not installed');
  return missing.length === 0 ? { available: true, detail: 'available' } : { available: false, detail: `not available (${missing.join('; ')})` };
}

/** A URL as it may be shown: no query string, no user:password. */
const shownUrl = (s: Setting): string | undefined => (s.value === undefined ? undefined : serviceUrl(s.value));

/** `value (from X)`, or for a default `value (what the default is)`. */
function line(value: string | undefined, s: Setting): string {
  if (s.origin === 'default') return value === undefined ? s.from : `${value} (${s.from})`;
  return `${value ?? ''} (from ${s.from})`;
}

function tokenJson(t: ResolvedSettings['token']) {
  return { masked: t.value === undefined ? null : maskToken(t.value), length: t.value?.length ?? null, origin: t.origin, from: t.from, ...(t.file ? { file: t.file } : {}) };
}

async function runInfo(args: InfoArgs): Promise<void> {
  checkTimeout(args.timeout);
  const s = await resolvedSettings(args);
  const fuse = fuseStatus();
  const version = await slicefsVersion();
  let connection: { ok: true; objectStorage: string; ms: number } | { ok: false; error: string } | undefined;
  let failure: unknown;
  if (args['verify-connection']) {
    const [{ HttpTransport }, { verifyScoreConnection }, { Stats }] = await Promise.all([
      import('../transport/http-transport.js'),
      import('../source/score-connection.js'),
      import('../stats.js'),
    ]);
    try {
      const endpoint = endpointOf(s, say);
      const api = new HttpTransport(transportConfig({ connections: 2, verbose: args.verbose, timeout: args.timeout }, timestamped), new Stats(), say);
      try {
        connection = { ok: true, ...(await verifyScoreConnection(api, endpoint)) };
      } finally {
        await api.close();
      }
    } catch (err) {
      failure = err;
      connection = { ok: false, error: messageOf(err).split('\n')[0] };
    }
  }

  if (args.json) {
    const setting = (x: Setting, shown = x.value) => ({ value: shown ?? null, origin: x.origin, from: x.from });
    const out = {
      slicefs: version,
      node: process.version,
      fuse,
      config: { path: s.config.value, exists: s.config.exists, origin: s.config.origin, from: s.config.from },
      profile: setting(s.profile),
      storageUrl: setting(s.storageUrl, shownUrl(s.storageUrl)),
      metadataUrl: setting(s.metadataUrl, shownUrl(s.metadataUrl)),
      token: tokenJson(s.token),
      ...(connection ? { connection } : {}),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    const t = s.token;
    const token = t.value === undefined ? line(undefined, t) : `${maskToken(t.value)} (${t.value.length} chars, from ${t.from}${t.file ? ` ${t.file}` : ''})`;
    const rows: [string, string][] = [
      ['slicefs', `${version} (node ${process.version}; fuse ${fuse.detail})`],
      ['config file', `${s.config.value} (${s.config.exists ? 'found' : 'not found'}, from ${s.config.from})`],
      ['profile', line(s.profile.value, s.profile)],
      ['storage URL', line(shownUrl(s.storageUrl), s.storageUrl)],
      ['metadata URL', line(shownUrl(s.metadataUrl), s.metadataUrl)],
      ['token', token],
    ];
    if (connection) {
      rows.push(['connection', connection.ok ? `ok: storage service, token and object storage at ${connection.objectStorage} (${connection.ms} ms)` : 'failed (the error is on stderr)']);
    }
    const width = Math.max(...rows.map(([k]) => k.length)) + 2;
    process.stdout.write(rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}\n`).join(''));
  }
  if (failure !== undefined) reportError(failure);
}
