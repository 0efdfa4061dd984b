/**
 * Mounting an ICGC ARGO score manifest through a Score-compatible service on 127.0.0.1 that checks
 * its presigned URLs: the bundle layout (default) and the flat object-id layout, `ls` and
 * `samtools view` on the mount equal to the local files (samtools finds each index beside its file),
 * a URL that expires while mounted replaced without a failed read, and neither the token nor a
 * signature in the daemon's output.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, requireFuse, run, startDaemon, tempDir, type Daemon } from '../helpers/daemon.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';
import { ScoreServer } from '../helpers/score-server.js';
import { assertNoSecrets } from '../helpers/secret-scan.js';

const TOKEN = '6d1e9b2a-7c4f-4a80-b3e5-91f2c0d8a7e6';
let score: ScoreServer;
let sample: SampleData;
let work: string;
let manifest: string;
const outputs: string[] = [];

const ARGO_HEADER = ['repository_code', 'analysis_id', 'object_id', 'file_type', 'file_name', 'file_size', 'md5sum', 'index_object_id', 'donor_id', 'sample_id(s)', 'project_id'];

before(async () => {
  requireFuse();
  sample = await ensureSampleData();
  score = await ScoreServer.start(TOKEN);
  const files = { bam: await readFile(sample.bam), bai: await readFile(sample.bai), cram: await readFile(sample.cram), crai: await readFile(sample.crai) };
  score.addObject('0b5e6a3c-bam', files.bam, { fileName: 'DO1.bam', gnosId: 'AN-1' });
  score.addObject('0b5e6a3c-bai', files.bai, { fileName: 'DO1.bam.bai', gnosId: 'AN-1' });
  score.addObject('7f2d9e10-cram', files.cram, { fileName: 'DO2.cram', gnosId: 'AN-2' });
  score.addObject('7f2d9e10-crai', files.crai, { fileName: 'DO2.cram.crai', gnosId: 'AN-2' });
  work = await tempDir('slicefs-score-mount-');
  const rows = [
    ['collab', 'AN-1', '0b5e6a3c-bam', 'BAM', 'DO1.bam', files.bam.length, md5(files.bam), '0b5e6a3c-bai', 'DO1', 'SA1|SA2', 'TEST-CA'],
    ['collab', 'AN-1', '0b5e6a3c-bai', 'BAI', 'DO1.bam.bai', files.bai.length, md5(files.bai), '', 'DO1', 'SA1|SA2', 'TEST-CA'],
    // The CRAM's index is not a row of its own: it is known by its object id only.
    ['collab', 'AN-2', '7f2d9e10-cram', 'CRAM', 'DO2.cram', files.cram.length, md5(files.cram), '7f2d9e10-crai', 'DO2', 'SA3', 'TEST-CA'],
  ];
  manifest = join(work, 'score-manifest.tsv');
  await writeFile(manifest, [ARGO_HEADER, ...rows].map((r) => r.join('\t')).join('\n') + '\n');
});

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

after(async () => {
  // No line any command printed holds the token or a signature the service issued.
  const all = outputs.join('\n');
  assert.ok(all.length > 0);
  assert.ok(!all.includes(TOKEN), 'the token appears in the output');
  for (const sig of score.issuedSignatures()) assert.ok(!all.includes(sig), 'a signature appears in the output');
  await run('fusermount', ['-uz', join(work, 'mnt-daemon')]).catch(() => {});
  await score?.close();
  await cleanup(work);
});

const env = { ACCESSTOKEN: TOKEN, STORAGE_URL: '', METADATA_URL: undefined, SLICEFS_TOKEN: undefined };

async function withMount(layout: string[], body: (d: Daemon) => Promise<void>): Promise<void> {
  const mnt = join(work, 'mnt');
  await mkdir(mnt, { recursive: true });
  const d = await startDaemon(manifest, mnt, ['--verbose', ...layout], { ...env, STORAGE_URL: score.origin });
  try {
    await body(d);
  } finally {
    assert.equal(await d.stop(), 0, d.stderr());
    outputs.push(d.stderr());
  }
}

async function sameAsLocal(local: string, mounted: string, region: string, extra: string[] = []): Promise<void> {
  const want = await samtools(['view', ...extra, local, region]);
  const got = await samtools(['view', ...extra, mounted, region]);
  assert.equal(want.code, 0, want.stderr);
  assert.equal(got.code, 0, got.stderr);
  assert.ok(want.stdout.length > 0, `region ${region} has records`);
  assert.ok(got.stdout.equals(want.stdout), `samtools view ${mounted} ${region} differs from the local file`);
}

test('bundle layout (default): analysis/file_name, indexes beside their files, samtools equals the local files', async () => {
  await withMount([], async (d) => {
    assert.deepEqual((await readdir(d.mountPoint)).sort(), ['AN-1', 'AN-2']);
    assert.deepEqual((await readdir(join(d.mountPoint, 'AN-1'))).sort(), ['DO1.bam', 'DO1.bam.bai']);
    assert.deepEqual((await readdir(join(d.mountPoint, 'AN-2'))).sort(), ['DO2.cram', 'DO2.cram.crai']);
    assert.equal((await stat(join(d.mountPoint, 'AN-1/DO1.bam'))).size, (await stat(sample.bam)).size);
    assert.equal((await stat(join(d.mountPoint, 'AN-2/DO2.cram.crai'))).size, (await stat(sample.crai)).size);
    for (const region of sample.regions.slice(0, 3)) {
      await sameAsLocal(sample.bam, join(d.mountPoint, 'AN-1/DO1.bam'), region);
      await sameAsLocal(sample.cram, join(d.mountPoint, 'AN-2/DO2.cram'), region, ['-T', sample.ref]);
    }
  });
});

test('object-id layout: flat, indexes named <id>.bai/.crai so samtools finds them; an expired URL is replaced while mounted', async () => {
  score.resetCounters();
  score.urlLifetimeS = 3; // replaced after 80 % of its life: every few seconds
  try {
    await withMount(['--layout', 'object-id', '--cache-size', '1M', '--block-size', '64K'], async (d) => {
      assert.deepEqual((await readdir(d.mountPoint)).sort(), ['0b5e6a3c-bam', '0b5e6a3c-bam.bai', '7f2d9e10-cram', '7f2d9e10-cram.crai']);
      const region = sample.regions[0];
      await sameAsLocal(sample.bam, join(d.mountPoint, '0b5e6a3c-bam'), region);
      const firstSpecs = score.specRequests;
      // Past the URLs' expiry: the next reads get new URLs (before reading, or after a 403) and succeed.
      await new Promise((r) => setTimeout(r, 3500));
      const whole = await readFile(join(d.mountPoint, '0b5e6a3c-bam'));
      assert.ok(whole.equals(await readFile(sample.bam)), 'the whole file through the mount');
      await sameAsLocal(sample.cram, join(d.mountPoint, '7f2d9e10-cram'), region, ['-T', sample.ref]);
      assert.ok(score.specRequests > firstSpecs, `new URLs were asked for (${firstSpecs} → ${score.specRequests})`);
      const stats = await d.stats();
      assert.equal(stats.errors ?? 0, 0, d.stderr());
    });
  } finally {
    score.urlLifetimeS = 86_400;
  }
});

test("mount --daemon --token: the token reaches the daemon over its channel, not its argv or environment; no signature in its log, state or cache", async () => {
  const mnt = join(work, 'mnt-daemon');
  const state = join(work, 'state');
  const cache = join(work, 'daemon-cache');
  // A wrong token in the environment: the flag's must still win in the daemon (flag > environment).
  const daemonEnv = { ...process.env, ...env, ACCESSTOKEN: 'not-the-token', STORAGE_URL: undefined, XDG_STATE_HOME: state };
  const r = await run(process.execPath, [BIN, 'mount', '--daemon', '-m', manifest, mnt, '--token', TOKEN, '--storage-url', score.origin, '--cache-dir', cache, '--verbose'], { env: daemonEnv });
  outputs.push(r.stderr);
  assert.equal(r.code, 0, r.stderr);
  const pid = Number(/daemon pid (\d+)/.exec(r.stderr)?.[1]);
  try {
    assert.ok((await readFile(join(mnt, 'AN-1/DO1.bam.bai'))).equals(await readFile(sample.bai)));
    await sameAsLocal(sample.bam, join(mnt, 'AN-1/DO1.bam'), sample.regions[0]);
    await assertNoSecrets([TOKEN, ...score.issuedSignatures()], { outputs: { stderr: r.stderr }, pids: [pid], running: true, paths: [state, cache] });
  } finally {
    const u = await run(process.execPath, [BIN, 'unmount', mnt], { env: daemonEnv });
    assert.equal(u.code, 0, u.stderr);
  }
  await assertNoSecrets([TOKEN, ...score.issuedSignatures()], { paths: [state, cache] });
});

test('a wrong token: the mount fails with one clear line and leaves no mount', async () => {
  const mnt = join(work, 'mnt-bad');
  await mkdir(mnt, { recursive: true });
  await assert.rejects(
    startDaemon(manifest, mnt, [], { ...env, STORAGE_URL: score.origin, ACCESSTOKEN: 'not-the-token' }),
    (err: Error) => {
      outputs.push(err.message);
      assert.match(err.message, /error: .*(401|token)/);
      assert.ok(!err.message.includes('not-the-token'));
      return true;
    },
  );
});
