/**
 * `slicefs <command>`: the command-line entry. Each command is one module in this directory.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { cacheCommand } from './cache.js';
import { EXIT_USAGE, say } from './common.js';
import { decryptCommand, keygenCommand } from './crypt4gh-commands.js';
import { downloadCommand } from './download.js';
import { infoCommand } from './info.js';
import { manifestCommand } from './manifest.js';
import { mountCommand } from './mount.js';
import { statusCommand } from './status.js';
import { unmountCommand } from './unmount.js';
import { urlCommand } from './url.js';
import { slicefsVersion } from './version.js';
import { viewCommand } from './view.js';

await yargs(hideBin(process.argv))
  .scriptName('slicefs')
  .usage('$0 <command> [options]')
  .command(mountCommand)
  .command(unmountCommand)
  .command(statusCommand)
  .command(viewCommand)
  .command(downloadCommand)
  .command(cacheCommand)
  .command(manifestCommand)
  .command(decryptCommand)
  .command(keygenCommand)
  .command(urlCommand)
  .command(infoCommand)
  .demandCommand(1, 'give a command: slicefs mount --manifest FILE DIR, slicefs view --url URL --query REGION, or slicefs download --manifest FILE --output-dir DIR')
  .strict()
  .fail((msg, err) => {
    if (err) throw err;
    say(`error: ${msg} (slicefs --help for usage)`);
    process.exit(EXIT_USAGE);
  })
  .help()
  .alias('h', 'help')
  // Only `--version` pays for reading package.json.
  .version(process.argv.includes('--version') ? await slicefsVersion() : '')
  // yargs renders (and caches) the whole help text on every command run; wrapping it measures every
  // word's display width, ~30 ms of each start-up. Wrap only when the help is asked for.
  .wrap(process.argv.some((a) => a === '--help' || a === '-h') ? Math.min(110, process.stdout.columns || 100) : null)
  .parseAsync();
