/**
 * `slicefs manifest` checks a manifest as `slicefs mount` builds its tree (one shared function,
 * src/manifest/tree-files.ts): what mount refuses, `manifest` refuses too, also `--offline`, with the
 * same line and exit code, in every layout. No server is asked: the URLs point at a closed port.
 */
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, runSlicefs, tempDir } from '../helpers/daemon.js';

let work: string;
/** Port 9 (discard) on 127.0.0.1: nothing listens, and nothing may be asked. */
const H = 'http://127.0.0.1:9';

before(async () => {
  work = await tempDir('slicefs-manifest-cli-');
});
after(async () => {
  await cleanup(work);
});

async function refusedAlike(name: string, text: string, extra: string[], expected: string): Promise<void> {
  const m = join(work, name);
  await writeFile(m, text);
  const listed = await runSlicefs(['manifest', '-m', m, '--offline', ...extra]);
  const mnt = join(work, `${name}.mnt`);
  const mounted = await runSlicefs(['mount', '-m', m, mnt, ...extra]);
  assert.equal(mounted.code, 2, mounted.stderr);
  assert.equal(mounted.stderr, `slicefs: error: ${m}:${expected}\n`);
  assert.equal(listed.code, 2, listed.stderr);
  assert.equal(listed.stderr, mounted.stderr, 'manifest --offline says what mount says');
  assert.equal(listed.stdout.length, 0, 'no rows for a manifest mount refuses');
  await assert.rejects(stat(mnt), { code: 'ENOENT' });
  const online = await runSlicefs(['manifest', '-m', m, ...extra]);
  assert.equal(online.stderr, mounted.stderr, 'manifest (asking the servers) refuses it before asking');
}

test("manifest --offline refuses an index on another entry's path, as mount does", async () => {
  await refusedAlike(
    'index-clash.tsv',
    `url\tpath\tindex_url\n${H}/a.bam\td/a.bam\t${H}/a.bai\n${H}/b.bam\td/a.bam.bai\t\n`,
    [],
    "2: 'd/a.bam.bai' is already the file from line 3",
  );
});

test('manifest --offline refuses an index on a directory of the tree, as mount does', async () => {
  await refusedAlike(
    'index-dir.tsv',
    `url\tpath\tindex_url\n${H}/a.bam\ta.bam\t${H}/a.bam.bai\n${H}/b.bam\ta.bam.bai/b.bam\t\n`,
    [],
    "2: 'a.bam.bai' is already a directory",
  );
});

test('in a layout too: the index of one id on the path of another (--layout object-id)', async () => {
  await refusedAlike(
    'layout-clash.tsv',
    `url\tid\tindex_url\n${H}/a.bam\tx\t${H}/a.bam.bai\n${H}/b.bam\tx.bai\t\n`,
    ['--layout', 'object-id'],
    "2: 'x.bai' is already the file from line 3",
  );
});
