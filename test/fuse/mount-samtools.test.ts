/**
 * samtools as the oracle: `samtools view -c` and `samtools view` of several regions through the
 * mount equal the same commands on the local files (BAM + BAI, BAM + CSI, CRAM + CRAI with a local
 * reference), and a region query fetches a small part of the file, not all of it.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { FixtureServer } from '../helpers/fixture-server.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';
import { cleanup, requireFuse, startDaemon, tempDir, writeManifest, type Daemon } from '../helpers/daemon.js';

let server: FixtureServer;
let work: string;
let sample: SampleData;
let daemon: Daemon;

before(async () => {
  requireFuse();
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  for (const f of [sample.bam, sample.bai, sample.csiBam, sample.csi, sample.cram, sample.crai]) {
    server.addFile(`/s3/bucket/${basename(f)}`, await readFile(f));
  }
  work = await tempDir('slicefs-samtools-');
  const u = (f: string) => server.url(`/s3/bucket/${basename(f)}`);
  const manifest = await writeManifest(work, [
    { url: u(sample.bam), path: 'bai/sample.bam', index_url: u(sample.bai) },
    { url: u(sample.csiBam), path: 'csi/sample.bam', index_url: u(sample.csi) },
    { url: u(sample.cram), path: 'cram/sample.cram', index_url: u(sample.crai) },
  ]);
  await mkdir(join(work, 'mnt'));
  daemon = await startDaemon(manifest, join(work, 'mnt'));
});

after(async () => {
  await daemon?.stop();
  await server?.close();
  await cleanup(work);
});

async function same(args: (file: string) => string[], local: string, mounted: string): Promise<Buffer> {
  const want = await samtools(args(local));
  const got = await samtools(args(mounted));
  assert.equal(want.code, 0, want.stderr);
  assert.equal(got.code, 0, got.stderr);
  assert.ok(got.stdout.equals(want.stdout), `samtools ${args(mounted).join(' ')} differs from the local file`);
  return got.stdout;
}

const cases = () => [
  { name: 'BAM with BAI', local: sample.bam, mounted: join(daemon.mountPoint, 'bai/sample.bam'), extra: [] as string[] },
  { name: 'BAM with CSI', local: sample.csiBam, mounted: join(daemon.mountPoint, 'csi/sample.bam'), extra: [] as string[] },
  { name: 'CRAM with CRAI', local: sample.cram, mounted: join(daemon.mountPoint, 'cram/sample.cram'), extra: ['-T', sample.ref] },
];

test('samtools view -c of every test region through the mount equals the local file', async () => {
  assert.ok(sample.regions.length >= 4);
  for (const c of cases()) {
    for (const region of sample.regions) {
      const out = await same((f) => ['view', '-c', ...c.extra, f, region], c.local, c.mounted);
      assert.match(out.toString(), /^\d+\n$/, `${c.name} ${region}`);
    }
    const total = await same((f) => ['view', '-c', ...c.extra, f], c.local, c.mounted);
    assert.ok(Number(total.toString()) > 1000, `${c.name}: whole-file count`);
  }
});

test('samtools view (records, with header) of several regions at once equals the local file', async () => {
  for (const c of cases()) {
    const regions = sample.regions.slice(0, 4);
    const out = await same((f) => ['view', '-h', '--no-PG', ...c.extra, f, ...regions], c.local, c.mounted);
    assert.ok(out.length > 0);
  }
});

test('a region query reads a small part of the BAM, not the whole file', async () => {
  const fresh = await tempDir('slicefs-samtools-region-');
  const manifest = await writeManifest(fresh, [
    { url: server.url(`/s3/bucket/${basename(sample.bam)}`), path: 'x.bam', index_url: server.url(`/s3/bucket/${basename(sample.bai)}`) },
  ]);
  const d = await startDaemon(manifest, join(fresh, 'mnt'));
  try {
    server.resetLog();
    const region = sample.regions[1];
    await same((f) => ['view', '-c', f, region], sample.bam, join(d.mountPoint, 'x.bam'));
    const bamBytes = server.requests.filter((r) => r.path.endsWith(basename(sample.bam))).reduce((n, r) => n + r.bytesSent, 0);
    const size = (await readFile(sample.bam)).length;
    assert.ok(bamBytes < size, `fetched ${bamBytes} of ${size} bytes for one region`);
  } finally {
    await d.stop();
    await cleanup(fresh);
  }
});
