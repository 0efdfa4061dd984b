/**
 * `slicefs manifest`: what a manifest resolves to, without mounting or downloading: one row per file
 * (the path in the chosen layout, size, MD5, the index beside it, and where the bytes come from),
 * as TSV or `--json` on stdout. Sizes and MD5s the manifest lacks are asked of the servers (HEAD,
 * or the storage service's object specification), unless `--offline`.
 */
import type { Argv, CommandModule } from 'yargs';
import { TREE_LAYOUTS } from '../manifest/tree-layout.js';
import { reportError, type TransportArgs } from './common.js';
import { withScoreOptions, type ScoreArgs } from './score.js';

export interface ManifestArgs extends TransportArgs, ScoreArgs {
  manifest: string;
  layout?: string;
  json: boolean;
  offline: boolean;
}

export const manifestCommand: CommandModule<object, ManifestArgs> = {
  command: 'manifest',
  describe: 'Resolve a manifest and print its files: path, size, md5, index, source (TSV, or --json)',
  builder: (y: Argv) =>
    withScoreOptions(y)
      .option('manifest', { alias: 'm', type: 'string', demandOption: true, describe: 'manifest file' })
      .option('layout', { type: 'string', choices: TREE_LAYOUTS, describe: 'paths as the mount would show them: bundle, object-id or path' })
      .option('json', { type: 'boolean', default: false, describe: 'JSON on stdout instead of TSV' })
      .option('offline', { type: 'boolean', default: false, describe: 'ask no server: print what the manifest says' })
      .option('connections', { type: 'number', default: 8, describe: 'requests in flight' })
      .option('timeout', { type: 'number', default: 30, describe: 'seconds without progress before a request fails' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log every HTTP request (no query strings, no tokens)' }) as unknown as Argv<ManifestArgs>,
  handler: async (args) => {
    try {
      const { runManifestCommand } = await import('./manifest-run.js');
      await runManifestCommand(args);
    } catch (err) {
      reportError(err);
    }
  },
};
