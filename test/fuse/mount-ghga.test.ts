/**
 * A GHGA work package through `mount --ghga` and `view --ghga`, against the GHGA fixture: files
 * shown as `<accession><ext>`, decrypted, with random access; the BAM's index (its own accession in
 * the package) beside it as `<accession>.bam.bai`, so samtools on the mount equals samtools on the
 * plaintext; `view --ghga --accession` equal too; the token never printed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodePrivateKey, generateKeyPair } from '../../src/crypt4gh/keys.js';
import { BIN, cleanup, requireFuse, startDaemon, tempDir } from '../helpers/daemon.js';
import { GhgaServer } from '../helpers/ghga-server.js';
import { seededBytes } from '../helpers/random.js';
import { assertNoSecrets } from '../helpers/secret-scan.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

let work: string;
let ghga: GhgaServer;
let sample: SampleData;
let keyFile: string;
let tokenFile: string;
const other = seededBytes(95, 1_500_000);
const printed: string[] = [];

before(async () => {
  requireFuse();
  work = await tempDir('slicefs-ghga-mount-');
  sample = await ensureSampleData();
  const pair = generateKeyPair();
  keyFile = join(work, 'me.sec');
  await writeFile(keyFile, await encodePrivateKey(pair, undefined), { mode: 0o600 });
  ghga = await GhgaServer.start({ userPublicKey: pair.public });
  ghga.addFile('GHGAF00000000000011', '.bam', await readFile(sample.bam));
  ghga.addFile('GHGAF00000000000012', '.bam.bai', await readFile(sample.bai));
  ghga.addFile('GHGAF00000000000013', '.txt.gz', other);
  ghga.setStagingDelay('GHGAF00000000000013', 1);
  tokenFile = join(work, 'token');
  await writeFile(tokenFile, ghga.downloadToken(), { mode: 0o600 });
});
/** Every secret of a run: what the GHGA fixture issued and the download token. */
const secrets = () => [...ghga.issuedSecrets(), ghga.downloadToken()];

after(async () => {
  const all = printed.join('\n');
  for (const secret of [...ghga.issuedSecrets(), ghga.downloadToken()]) assert.ok(!all.includes(secret), 'a secret in the output');
  await ghga?.close();
  await cleanup(work);
});

test('mount --ghga: decrypted files with the index beside the BAM; samtools equals the plaintext', async () => {
  const mnt = join(work, 'mnt');
  const cache = join(work, 'cache');
  const d = await startDaemon('', mnt, ['--ghga', '--ghga-url', ghga.wkvsUrl, '--private-key', keyFile, '--download-token-file', tokenFile, '--verbose', '--cache-dir', cache]);
  try {
    assert.deepEqual((await readdir(mnt)).sort(), ['GHGAF00000000000011.bam', 'GHGAF00000000000011.bam.bai', 'GHGAF00000000000013.txt.gz']);
    assert.equal((await stat(join(mnt, 'GHGAF00000000000011.bam'))).size, (await stat(sample.bam)).size);
    assert.ok((await readFile(join(mnt, 'GHGAF00000000000013.txt.gz'))).equals(other));
    for (const region of sample.regions.slice(0, 3)) {
      const want = await samtools(['view', sample.bam, region]);
      const got = await samtools(['view', join(mnt, 'GHGAF00000000000011.bam'), region]);
      assert.equal(got.code, 0, got.stderr);
      assert.ok(want.stdout.length > 0 && got.stdout.equals(want.stdout), region);
    }
    // The mount's argv and environment, its output and its disk cache hold none of the tokens.
    await assertNoSecrets(secrets(), { outputs: { stderr: d.stderr() }, pids: [d.proc.pid!], paths: [cache] });
  } finally {
    assert.equal(await d.stop(), 0, d.stderr());
    printed.push(d.stderr());
  }
  await assertNoSecrets(secrets(), { outputs: { stderr: d.stderr() }, paths: [cache] });
});

test('view --ghga --accession: the index found in the work package; equal to samtools on the plaintext', async () => {
  const cache = join(work, 'view-cache');
  const outputs: string[] = [];
  for (const region of sample.regions.slice(0, 3)) {
    const want = await samtools(['view', sample.bam, region]);
    const got = await new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((res) => {
      const p = spawn(process.execPath, [BIN, 'view', '--ghga', '--ghga-url', ghga.wkvsUrl, '--accession', 'GHGAF00000000000011', '--private-key', keyFile, '--download-token-file', tokenFile, '-q', region, '--no-header', '--cache-dir', cache], { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      p.stdout.on('data', (c: Buffer) => out.push(c));
      p.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      p.on('close', (code) => res({ code, stdout: Buffer.concat(out), stderr: err }));
    });
    printed.push(got.stderr);
    outputs.push(got.stderr);
    assert.equal(got.code, 0, got.stderr);
    assert.ok(got.stdout.equals(want.stdout), region);
  }
  // Its disk tier and index cache (the second and third views read the index from it) too.
  await assertNoSecrets(secrets(), { outputs: { stderr: outputs.join('') }, paths: [cache] });
});
