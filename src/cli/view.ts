/**
 * `slicefs view`: the records of regions of a remote (or local) BAM or CRAM, through its index,
 * fetching only the index and the blocks that overlap (and, for CRAM, only the reference slices
 * needed), as SAM text or BAM on stdout.
 *
 * This module only declares the options: the work is in ./view-run.ts, imported when the command
 * runs, so that `slicefs mount` and `--help` do not load (and compile) the view's dependencies.
 */
import type { Argv, CommandModule } from 'yargs';
import type { CommandLineSpec } from './command-line.js';
import { reportError, withCacheProxyOption, type CacheArgs, type TransportArgs } from './common.js';
import { cliEnv } from './daemon-protocol.js';
import { withDiskCacheOptions, type DiskCacheArgs } from './disk-cache-options.js';
import { withModeOptions, type ModeArgs } from './mode-options.js';
import { profileLoader } from './settings.js';
import { withSourceOptions, type SourceArgs } from './source-registry.js';

/** `view` has no --readahead-max: it prefetches exactly the chunks the index names. */
export interface ViewArgs extends TransportArgs, Omit<CacheArgs, 'readahead-max'>, SourceArgs, DiskCacheArgs, ModeArgs {
  'index-object-id'?: string;
  'metadata-url'?: string;
  url?: string;
  'input-file'?: string;
  manifest?: string;
  path?: string;
  'index-url'?: string;
  'reference-file'?: string;
  'reference-url'?: string;
  query?: string[];
  'bed-query'?: string;
  contained: boolean;
  output?: string;
  'output-format'?: string;
  bam: boolean;
  uncompressed: boolean;
  header: boolean;
  'header-only': boolean;
  pg: boolean;
  stats: boolean;
  'index-cache': boolean;
  threads?: number;
}

/**
 * What of a `view` command line its @PG header line may show (./command-line.ts): every option
 * above, by kind. An option added to `view` and not listed here is written as `…`.
 */
export const VIEW_COMMAND_LINE: CommandLineSpec = {
  shown: [
    'url', 'input-file', 'manifest', 'path', 'index-url', 'object-id', 'index-object-id', 'storage-url', 'metadata-url', 'profile',
    'ghga-url', 'accession', 'index-accession', 'max-wait', 'reference-file', 'reference-url', 'query', 'bed-query', 'output',
    'output-format', 'cache-size', 'block-size', 'connections', 'timeout', 'cache-proxy', 'cache-dir', 'disk-cache-size', 'file-mode',
    'threads',
  ],
  // Credentials, and the files that hold them (a key, a token, a config file with tokens).
  hidden: ['token', 'token-file', 'download-token-file', 'private-key', 'config'],
  flags: ['bam', 'uncompressed', 'contained', 'header', 'header-only', 'pg', 'stats', 'index-cache', 'verbose', 'verify-connection', 'ghga', 'help', 'version'],
  aliases: { b: 'bam', u: 'uncompressed', m: 'manifest', T: 'reference-file', q: 'query', o: 'output', 'output-file': 'output', v: 'verbose', PG: 'pg', h: 'help', '@': 'threads' },
};

export const viewCommand: CommandModule<object, ViewArgs> = {
  command: 'view',
  describe: 'Stream the records of regions of a remote BAM or CRAM (SAM or BAM on stdout), fetching only what overlaps',
  builder: (y: Argv) =>
    withModeOptions(withDiskCacheOptions(withCacheProxyOption(withSourceOptions(y, 'view'))), { dirs: false })
      .option('index-object-id', { type: 'string', describe: "with --object-id: the index's object id (default: found through the metadata service)" })
      .option('url', { type: 'string', describe: 'URL of the BAM or CRAM' })
      .option('input-file', { type: 'string', describe: 'a local BAM or CRAM instead of a URL' })
      .option('manifest', { alias: 'm', type: 'string', describe: 'manifest with the file (with --path)' })
      .option('path', { type: 'string', describe: "the manifest entry's path" })
      .option('index-url', { type: 'string', describe: 'URL (or file) of the index; default: X.bai, X.csi, X with .bam→.bai (CRAM: X.crai, X with .cram→.crai)' })
      .option('reference-file', { alias: 'T', type: 'string', describe: 'CRAM: the reference FASTA (its .fai is made beside it if missing)' })
      .option('reference-url', { type: 'string', describe: 'CRAM: URL of an indexed reference FASTA (URL.fai beside it); only the slices needed are fetched' })
      .option('query', { alias: 'q', type: 'string', array: true, describe: 'region, samtools syntax (chr, chr:beg-end, {name:with:colons}:beg-end, *); repeatable' })
      .option('bed-query', { type: 'string', describe: 'BED file of regions (0-based, half-open)' })
      .option('contained', { type: 'boolean', default: false, describe: 'only records entirely inside a region' })
      .option('output', { alias: ['o', 'output-file'], type: 'string', describe: 'write to this file instead of stdout' })
      .option('output-format', { type: 'string', choices: ['sam', 'bam', 'ubam'], describe: 'SAM text (the default), BAM, or uncompressed BAM (ubam)' })
      .option('bam', { alias: 'b', type: 'boolean', default: false, describe: 'BAM output (--output-format bam)' })
      .option('uncompressed', { alias: 'u', type: 'boolean', default: false, describe: 'uncompressed BAM output, for pipes (--output-format ubam; implies -b)' })
      .option('header', { type: 'boolean', default: true, describe: 'print the header (--no-header: records only)' })
      .option('header-only', { type: 'boolean', default: false, describe: 'print only the header' })
      .option('pg', { alias: 'PG', type: 'boolean', default: true, describe: 'add a @PG line for slicefs (--no-PG / --no-pg: do not)' })
      .option('stats', { type: 'boolean', default: false, describe: 'print requests, bytes, records and time to stderr' })
      .option('threads', { alias: '@', type: 'number', describe: 'threads besides the main one, like samtools -@: formatting SAM from a BAM, decoding slices of a CRAM (default 0: none; on 2 shared cores they cost CPU for no gain in time, docs/benchmarks.md; worth it where cores are idle)' })
      .option('index-cache', { type: 'boolean', default: true, describe: 'keep indexes on disk (--no-index-cache: fetch every time)' })
      // A view reads each byte once: the cache only holds what is read ahead (16 MiB) and the header.
      .option('cache-size', { type: 'string', default: '64M', describe: 'memory budget of the block cache' })
      .option('block-size', { type: 'string', default: '64K', describe: 'cache block size (a BGZF block is at most 64K)' })
      .option('connections', { type: 'number', default: 32, describe: 'HTTP connections per server' })
      .option('timeout', { type: 'number', default: 15, describe: 'seconds without progress before a request fails' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log every HTTP request (no query strings)' }) as unknown as Argv<ViewArgs>,
  handler: async (args) => {
    try {
      // Every setting resolved once (flag > env > profile > default); the run never sees `args`.
      const env = cliEnv();
      const { resolveViewSettings } = await import('./view-settings.js');
      const settings = await resolveViewSettings(args, env, profileLoader(args, env));
      const { runViewCommand } = await import('./view-run.js');
      await runViewCommand(settings);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') return; // `| head`: a quiet, successful end
      reportError(err);
    }
  },
};

