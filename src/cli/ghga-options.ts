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
