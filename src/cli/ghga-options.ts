/**
 * The GHGA options of `download`, `mount` and `view` (`--ghga`: the files of a GHGA work package,
 * as the GHGA Connector downloads them). Declared here, light; the work is in ./ghga-run.ts.
 *
 * The download token is never an option value (it would show in the process list and the shell
 * history): it comes from `--download-token-file` (refused when others may read it), from standard
 * input when that is not a terminal, or from a prompt that does not echo. The services come from
 * the well-known values at `--ghga-url` (else `GHGA_CONNECTOR_WKVS_API_URL`, the connector's name).
 */
import type { Argv } from 'yargs';
import { SlicefsError } from '../errors.js';

export interface GhgaArgs {
  ghga?: boolean;
  'ghga-url'?: string;
  'download-token-file'?: string;
  'max-wait'?: number;
  accession?: string;
  'index-accession'?: string;
}

export function withGhgaOptions<T>(y: Argv<T>, opts: { view?: boolean } = {}): Argv<T> {
  let out = y
    .option('ghga', { type: 'boolean', describe: 'the files of a GHGA work package (the download token from a prompt, stdin or --download-token-file)' })
    .option('ghga-url', { type: 'string', describe: "GHGA's well-known values (default: $GHGA_CONNECTOR_WKVS_API_URL, else https://data.ghga.de/.well-known)" })
    .option('download-token-file', { type: 'string', describe: 'file holding the download token from the GHGA data portal; must not be readable by others' })
    .option('max-wait', { type: 'number', describe: 'seconds to wait for files being staged (default: $GHGA_CONNECTOR_MAX_WAIT_TIME, else 3600)' });
  if (opts.view) {
    out = out
      .option('accession', { type: 'string', describe: 'with --ghga: the file (GHGAF…) to read' })
      .option('index-accession', { type: 'string', describe: 'with --ghga: its index, when the work package holds several' });
  }
  return out as Argv<T>;
}

/** The connector's default for how long staging may take (`max_wait_time`). */
const DEFAULT_MAX_WAIT_S = 3600;

/** `--ghga`'s settings, resolved: flag > the connector's environment variable > default. */
export interface GhgaSettings {
  /** The well-known values; undefined: GHGA's own (DEFAULT_GHGA_URL, ../source/ghga/services.ts, loaded with the GHGA code). */
  wellKnownUrl?: string;
  maxWaitS: number;
  downloadTokenFile?: string;
  /** `view`: the file and its index. */
  accession?: string;
  indexAccession?: string;
}

export function ghgaSettingsOf(args: GhgaArgs, env: NodeJS.ProcessEnv = process.env): GhgaSettings {
  const maxWaitS = args['max-wait'] ?? (Number(env.GHGA_CONNECTOR_MAX_WAIT_TIME) || DEFAULT_MAX_WAIT_S);
  if (!(maxWaitS > 0)) throw new SlicefsError('USAGE', '--max-wait must be a positive number of seconds');
  return {
    wellKnownUrl: args['ghga-url'] ?? (env.GHGA_CONNECTOR_WKVS_API_URL || undefined),
    maxWaitS,
    downloadTokenFile: args['download-token-file'],
    accession: args.accession,
    indexAccession: args['index-accession'],
  };
}
