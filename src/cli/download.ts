/**
 * `slicefs download`: parallel, resumable, verified downloads of a manifest (or one URL) into a
 * directory. This module declares the options; the work is in ./download-run.ts, imported when
 * the command runs.
 */
import type { Argv, CommandModule } from 'yargs';
import { reportError, withCacheProxyOption, type TransportArgs } from './common.js';
import { cliEnv } from './daemon-protocol.js';
import { withDiskCacheOptions, type DiskCacheArgs } from './disk-cache-options.js';
import { withModeOptions, type ModeArgs } from './mode-options.js';
import { profileLoader } from './settings.js';
import { withSourceOptions, type SourceArgs } from './source-registry.js';

export interface DownloadArgs extends TransportArgs, SourceArgs, DiskCacheArgs, ModeArgs {
  decrypt: boolean;
  manifest?: string;
  url?: string;
  'output-dir': string;
  path?: string[];
  parallel: number;
  'part-size': string;
  index: boolean;
  'output-layout': string;
  'limit-rate'?: string;
  quiet: boolean;
  json: boolean;
  force: boolean;
  verify: boolean;
}

export const downloadCommand: CommandModule<object, DownloadArgs> = {
  command: 'download',
  describe: 'Download the files of a manifest: parallel, resumable after any interruption, verified',
  builder: (y: Argv) =>
    withModeOptions(withDiskCacheOptions(withCacheProxyOption(withSourceOptions(y, 'download')), { download: true }), { dirs: true })
      .option('decrypt', { type: 'boolean', default: false, describe: 'save Crypt4GH-encrypted files decrypted (default: as they are, NAME.c4gh)' })
      .option('manifest', { alias: 'm', type: 'string', describe: 'manifest of the files' })
      .option('url', { type: 'string', describe: 'one file by URL instead of a manifest' })
      .option('output-dir', { alias: 'd', type: 'string', demandOption: true, describe: 'directory to download into (created if missing)' })
      .option('path', { type: 'string', array: true, describe: "only these manifest paths (repeatable)" })
      .option('parallel', { alias: 'p', type: 'number', default: 8, describe: 'Range requests in flight, all files together' })
      .option('part-size', { type: 'string', default: '8M', describe: 'bytes per request' })
      .option('index', { type: 'boolean', default: true, describe: 'download index files beside their files (--no-index: do not)' })
      .option('output-layout', { type: 'string', default: 'path', choices: ['path', 'bundle', 'filename', 'id'], describe: 'names under the directory: the manifest path, analysis_id/file_name (score manifests), the file name, or the object id (id column)' })
      .option('limit-rate', { type: 'string', describe: 'cap total throughput, bytes per second (e.g. 100M)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress output' })
      .option('json', { type: 'boolean', default: false, describe: 'a JSON summary on stdout at the end' })
      .option('force', { type: 'boolean', default: false, describe: 'download again files already present and verified' })
      .option('verify', { type: 'boolean', default: false, describe: 'check the files already present (MD5), download nothing; a file that fails is set aside, to be fetched anew by the next run' })
      .option('connections', { type: 'number', default: 32, describe: 'HTTP connections per server at most' })
      .option('timeout', { type: 'number', default: 60, describe: 'seconds without progress before a request fails' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log every HTTP request (no query strings)' }) as unknown as Argv<DownloadArgs>,
  handler: async (args) => {
    try {
      // Every setting resolved once (flag > env > profile > default); the runs never see `args`.
      const env = cliEnv();
      const { resolveDownloadSettings } = await import('./download-settings.js');
      const settings = await resolveDownloadSettings(args, env, profileLoader(args, env));
      if (settings.input.kind === 'ghga') {
        const { runGhgaDownload } = await import('./ghga-run.js');
        await runGhgaDownload(settings);
      } else {
        const { runDownloadCommand } = await import('./download-run.js');
        await runDownloadCommand(settings);
      }
    } catch (err) {
      reportError(err);
    }
  },
};
