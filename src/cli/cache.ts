/**
 * `slicefs cache stats [--json]` and `slicefs cache clear [--url URL]`: what the disk cache
 * (`<cache-dir>/blocks`, and view's index cache `<cache-dir>/index`) holds, and emptying it, all or
 * one object's chunks. This module declares the options; the work is in ./cache-run.ts.
 */
import type { Argv, CommandModule } from 'yargs';
import { reportError } from './common.js';

export interface CacheCommandArgs {
  'cache-dir'?: string;
  json?: boolean;
  url?: string[];
}

const withDir = <T>(y: Argv<T>) => y.option('cache-dir', { type: 'string', describe: 'the cache root (default: $XDG_CACHE_HOME/slicefs or ~/.cache/slicefs)' });

export const cacheCommand: CommandModule<object, CacheCommandArgs> = {
  command: 'cache',
  describe: 'Show or clear the disk cache (chunks of remote objects, and view\'s indexes)',
  builder: (y: Argv) =>
    y
      .command({
        command: 'stats',
        describe: 'Objects, chunks, bytes and hit rate of the disk cache',
        builder: (s: Argv) => withDir(s).option('json', { type: 'boolean', default: false, describe: 'one JSON object on stdout, with every object' }),
        handler: async (args: CacheCommandArgs) => {
          try {
            const { runCacheStats } = await import('./cache-run.js');
            await runCacheStats(args);
          } catch (err) {
            reportError(err);
          }
        },
      })
      .command({
        command: 'clear',
        describe: 'Delete everything in the disk cache, or (--url) the chunks of some objects',
        builder: (s: Argv) =>
          withDir(s).option('url', {
            type: 'string',
            array: true,
            describe: "only this object's chunks, every version (a URL, its query string ignored; score:ID; ghga:ACCESSION); repeatable",
          }),
        handler: async (args: CacheCommandArgs) => {
          try {
            const { runCacheClear } = await import('./cache-run.js');
            await runCacheClear(args);
          } catch (err) {
            reportError(err);
          }
        },
      })
      .demandCommand(1, 'give a command: slicefs cache stats, or slicefs cache clear') as unknown as Argv<CacheCommandArgs>,
  handler: () => {},
};
