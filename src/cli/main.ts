/**
 * `slicefs <command>`: the command-line entry. Each command is one module in this directory.
 * Every failure leaves through the one error path of ./common.ts: the fatal handlers are installed
 * first, yargs' usage failures become one line (./usage-error.ts), and a command's error that
 * escaped its handler is reported here, never as Node's trace.
 */
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { cacheCommand } from './cache.js';
import { EXIT_FAILURE, EXIT_USAGE, installFatalHandlers, reportError, say } from './common.js';
import { decryptCommand, keygenCommand } from './crypt4gh-commands.js';
import { downloadCommand } from './download.js';
import { infoCommand } from './info.js';
import { manifestCommand } from './manifest.js';
import { mountCommand } from './mount.js';
import { statusCommand } from './status.js';
import { unmountCommand } from './unmount.js';
import { urlCommand } from './url.js';
import { usageLine } from './usage-error.js';
import { slicefsVersion } from './version.js';
import { viewCommand } from './view.js';

installFatalHandlers();

const commands = [
  mountCommand,
  unmountCommand,
  statusCommand,
  viewCommand,
  downloadCommand,
  cacheCommand,
  manifestCommand,
  decryptCommand,
  keygenCommand,
  urlCommand,
  infoCommand,
];
/** Every command as declared (`unmount <mountpoint>`), and each alias with the same positionals (`umount <mountpoint>`). */
const commandUsages = (commands as { command?: string | readonly string[]; aliases?: string | readonly string[] }[]).flatMap((c) => {
  const [usage = ''] = [c.command ?? []].flat();
  const rest = usage.split(' ').slice(1).join(' ');
  return [usage, ...[c.aliases ?? []].flat().map((a) => `${a} ${rest}`.trim())];
});
const argv = hideBin(process.argv);

/**
 * Before it runs a command's handler, yargs renders that command's whole help text and keeps it
 * (command.js: `cacheHelpMessage`), only so that a `showHelp()` from inside the handler shows the
 * command's help. slicefs never calls it (a failure is one line, ./usage-error.ts), and the
 * rendering (the display width of every word of ~60 option rows) is ~30 ms of every run, more than
 * a small `view` spends on its work. `--help` renders on its own path and is not affected. If a
 * yargs version no longer has this internal, nothing is changed.
 */
function skipHelpCache(parser: object): void {
  type Internals = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: unknown } } };
  const usage = (parser as Internals).getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

const parser = yargs(argv);
skipHelpCache(parser);
// A command still waiting when nothing is left that could wake it (a promise no handle will
// settle: a bug) must not end the process as a success with its output cut short. Node exits 0 then
// (the bundle runs this module as a function: no top-level await to report unsettled).
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  say('error: internal: the command stopped before it finished (nothing left to wait for); its output is incomplete');
  process.exit(EXIT_FAILURE);
});
await parser
  .scriptName('slicefs')
  .usage('$0 <command> [options]')
  // The usage messages are rewritten (./usage-error.ts) from yargs' English; the user's locale must not change them.
  .locale('en')
  .command(commands as unknown as CommandModule[])
  .demandCommand(1, 'give a command: slicefs mount --manifest FILE DIR, slicefs view --url URL --query REGION, or slicefs download --manifest FILE --output-dir DIR')
  .strict()
  .strictCommands()
  .fail((msg, err) => {
    if (err) {
      reportError(err);
      process.exit(process.exitCode || EXIT_FAILURE);
    }
    say(`error: ${usageLine(msg, argv, commandUsages)} (slicefs --help for usage)`);
    process.exit(EXIT_USAGE);
  })
  .help()
  .alias('h', 'help')
  // Only `--version` pays for reading package.json.
  .version(process.argv.includes('--version') ? await slicefsVersion() : '')
  // Wrapping the help text measures every word's display width: only when the help is asked for.
  .wrap(process.argv.some((a) => a === '--help' || a === '-h') ? Math.min(110, process.stdout.columns || 100) : null)
  .parseAsync()
  .catch((err: unknown) => {
    reportError(err);
    process.exitCode ||= EXIT_FAILURE;
  })
  .finally(() => {
    settled = true;
  });
