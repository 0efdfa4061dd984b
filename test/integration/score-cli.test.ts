/**
 * `slicefs view --object-id` and `slicefs download --object-id` against a Score-compatible fixture
 * service that checks its presigned URLs (token from ACCESSTOKEN, a token file, or missing) on
 * 127.0.0.1; samtools is the oracle for view.
 */
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, runSlicefs, tempDir } from '../helpers/daemon.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';
import { ScoreServer } from '../helpers/score-server.js';
import { assertNoSecrets } from '../helpers/secret-scan.js';

const TOKEN = '3f9a1c7e-5b2d-4e8f-9a6b-0c1d2e3f4a5b';
let score: ScoreServer;
let sample: SampleData;
let work: string;

before(async () => {
  sample = await ensureSampleData();
  score = await ScoreServer.start(TOKEN);
  score.addObject('bam-object-1', await readFile(sample.bam), { fileName: 'sample.bam', gnosId: 'A1' });
  score.addObject('bai-object-1', await readFile(sample.bai), { fileName: 'SAMPLE.bam.BAI', gnosId: 'A1' });
  score.addObject('other-1', Buffer.from('x'), { fileName: 'notes.txt', gnosId: 'A1' });
  work = await tempDir('slicefs-score-cli-');
});
after(async () => {
  await score?.close();
  await cleanup(work);
});

const slicefs = runSlicefs;

test('view --object-id finds the index through the metadata service and equals samtools view', async () => {
  const env = { ACCESSTOKEN: TOKEN, STORAGE_URL: score.origin };
  const cache = join(work, 'view-cache');
  const r = await slicefs(['view', '--no-index-cache', '--cache-dir', cache, '--object-id', 'bam-object-1', '-q', 'chr1:1000-60000', '--no-header'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.equals((await samtools(['view', sample.bam, 'chr1:1000-60000'])).stdout));
  const direct = await slicefs(['view', '--no-index-cache', '--object-id', 'bam-object-1', '--index-object-id', 'bai-object-1', '-q', 'chrM', '--no-header'], env);
  assert.equal(direct.code, 0, direct.stderr);
  assert.ok(direct.stdout.equals((await samtools(['view', sample.bam, 'chrM'])).stdout));
  await assertNoSecrets([TOKEN, ...score.issuedSignatures()], { outputs: { stderr: r.stderr + direct.stderr }, paths: [cache] });
});

test('download --object-id: verified against the MD5 the storage service states', async () => {
  const tokenFile = join(work, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const out = join(work, 'dl');
  const r = await slicefs(['download', '--object-id', 'bam-object-1', '-d', out, '--token-file', tokenFile, '--storage-url', score.origin, '--json'], {});
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(out, 'bam-object-1'))).equals(await readFile(sample.bam)));
  const cat = await readFile(join(out, 'slicefs-catalogue.tsv'), 'utf8');
  assert.match(cat, /^bam-object-1\t\d+\t[0-9a-f]{32}\tscore:127\.0\.0\.1:\d+\/bam-object-1\t/m);
  const sigs = score.issuedSignatures();
  assert.ok(sigs.length > 0);
  await assertNoSecrets([TOKEN, ...sigs], { outputs: { stdout: r.stdout, stderr: r.stderr }, paths: [out] });
});

test('a missing, world-readable or wrong token is one clear line, and the token is never shown', async () => {
  const none = await slicefs(['view', '--object-id', 'bam-object-1', '-q', 'chr1'], { STORAGE_URL: score.origin });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^slicefs: error: no access token: set ACCESSTOKEN \(or SLICEFS_TOKEN\), or give --token-file FILE\n$/);
  const loose = join(work, 'loose-token');
  await writeFile(loose, TOKEN);
  await chmod(loose, 0o644);
  const l = await slicefs(['download', '--object-id', 'bam-object-1', '-d', join(work, 'x'), '--token-file', loose, '--storage-url', score.origin], {});
  assert.equal(l.code, 2);
  assert.match(l.stderr, /--token-file .*loose-token: readable by others \(mode 644\); chmod 600 it/);
  const wrong = await slicefs(['view', '--object-id', 'bam-object-1', '--index-object-id', 'bai-object-1', '-q', 'chr1'], { ACCESSTOKEN: 'not-the-token', STORAGE_URL: score.origin });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /^slicefs: error: score object bam-object-1: the storage service refused the token/);
  const shown = await slicefs(['download', '--object-id', 'bam-object-1', '-d', join(work, 'y'), '--token', TOKEN, '--storage-url', score.origin, '-q'], {});
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stderr, /warning: --token shows the token in the process list/);
  for (const r of [none, l, wrong, shown]) assert.doesNotMatch(r.stderr, new RegExp(TOKEN));
});

test('the token never goes over plain http to a host that is not loopback: one line, exit 2, before any request', async () => {
  const cases: [string[], RegExp][] = [
    // The metadata service (the storage URL by default) is asked first for the index.
    [['view', '--object-id', 'bam-object-1', '-q', 'chr1', '--storage-url', 'http://score.invalid:8080'], /http:\/\/score\.invalid:8080\/entities\/bam-object-1: /],
    [['view', '--object-id', 'bam-object-1', '-q', 'chr1', '--storage-url', score.origin, '--metadata-url', 'http://metadata.invalid/'], /http:\/\/metadata\.invalid\/entities\/bam-object-1: /],
    // download checks the connection first.
    [['download', '--object-id', 'bam-object-1', '-d', join(work, 'clear'), '--storage-url', 'http://score.invalid/'], /http:\/\/score\.invalid\/download\/ping: /],
  ];
  for (const [args, where] of cases) {
    const r = await slicefs(args, { ACCESSTOKEN: TOKEN });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^slicefs: error: refusing to send a bearer token over plain http to \S+: it would travel unencrypted; use an https:\/\/ URL[^\n]*\n$/);
    assert.match(r.stderr, where);
    await assertNoSecrets([TOKEN], { outputs: { stderr: r.stderr, stdout: r.stdout } });
  }
  // Without that check, the object's specification is the first request: the file fails (a download's
  // failed file is exit 1) with the same reason.
  const unchecked = await slicefs(['download', '--object-id', 'bam-object-1', '-d', join(work, 'clear'), '--storage-url', 'http://score.invalid/', '--no-verify-connection', '-q'], { ACCESSTOKEN: TOKEN });
  assert.equal(unchecked.code, 1, unchecked.stderr);
  assert.match(unchecked.stderr, /bam-object-1: refusing to send a bearer token over plain http to http:\/\/score\.invalid\/download\/bam-object-1\?…: /);
  await assertNoSecrets([TOKEN], { outputs: { stderr: unchecked.stderr }, paths: [join(work, 'clear')] });
});
