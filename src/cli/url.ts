/**
 * `slicefs url --object-id ID`: a presigned URL of a Score object, for a program that reads URLs
 * itself (samtools, IGV, curl). The URL is a secret until it expires (anyone holding it may read the
 * object): it is printed only on this explicit request, alone on stdout, and nowhere else.
 *
 * This module declares the options; the transport and ScoreSource are imported when the command runs.
 */
import type { Argv, CommandModule } from 'yargs';
import { SlicefsError } from '../errors.js';
import { checkTimeout, reportError, say, timestamped, transportConfig } from './common.js';
import { scoreEndpoint, withScoreEndpointOptions, type ScoreArgs } from './score.js';

interface UrlArgs extends Omit<ScoreArgs, 'object-id'> {
  'object-id': string | string[];
  timeout: number;
  verbose: boolean;
}

export const urlCommand: CommandModule<object, UrlArgs> = {
  command: 'url',
  describe: 'Print a presigned URL of a Score object (a secret until it expires: it lets anyone read the object)',
  builder: (y: Argv) =>
    withScoreEndpointOptions(y, { verifyConnection: false })
      .option('object-id', { type: 'string', demandOption: true, describe: 'the Score object id' })
      .option('timeout', { type: 'number', default: 15, describe: 'seconds without progress before a request fails' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'log every HTTP request (no query strings)' }) as unknown as Argv<UrlArgs>,
  handler: async (args) => {
    try {
      await runUrl(args);
    } catch (err) {
      reportError(err);
    }
  },
};

async function runUrl(args: UrlArgs): Promise<void> {
  const id = args['object-id'];
  if (Array.isArray(id) || id === '') throw new SlicefsError('USAGE', 'give one --object-id');
  checkTimeout(args.timeout);
  // The connection is checked below, over this command's transport (its --timeout, --verbose).
  const endpoint = await scoreEndpoint({ ...args, 'object-id': [id], 'verify-connection': false }, say);
  const [{ HttpTransport }, { ScoreSource }, { Stats }] = await Promise.all([
    import('../transport/http-transport.js'),
    import('../source/score-source.js'),
    import('../stats.js'),
  ]);
  const api = new HttpTransport(transportConfig({ connections: 2, verbose: args.verbose, timeout: args.timeout }, timestamped), new Stats(), say);
  try {
    if (args['verify-connection']) {
      const { verifyScoreConnection } = await import('../source/score-connection.js');
      await verifyScoreConnection(api, endpoint);
    }
    const url = await new ScoreSource(api, api, endpoint, id).presignedUrl();
    process.stdout.write(`${url}\n`);
  } finally {
    await api.close();
  }
}
