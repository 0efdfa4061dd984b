/**
 * slicefs's version, from its own package.json (found upwards from this file: dist/src/cli or
 * dist/bundle), not from the current directory, where yargs would look.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version in slicefs's package.json, found upwards from this file (dist/src/cli or dist/bundle). */
export async function slicefsVersion(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = dirname(dir)) {
    const pkg = (await readFile(join(dir, 'package.json'), 'utf8').then(JSON.parse, () => undefined)) as { name?: string; version?: string } | undefined;
    if (pkg?.name === 'slicefs' && pkg.version) return pkg.version;
  }
  return 'unknown';
}

