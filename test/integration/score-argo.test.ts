/**
 * Score manifests end to end, through a Score-compatible service on 127.0.0.1 that checks its
 * presigned URLs: `download --manifest` of an ARGO manifest in each output layout (indexes beside
 * their files, verified against the manifest's MD5s), a download interrupted and resumed across the
 * expiry of its presigned URLs (nothing restarts from zero), an ICGC 25K manifest whose analyses come
 * from the metadata service, `slicefs manifest` (TSV and --json), refused objects as one clear line,
 * and neither the token nor a signature anywhere in what the commands print.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, tempDir } from '../helpers/daemon.js';
import { seededBytes } from '../helpers/random.js';
import { ScoreServer } from '../helpers/score-server.js';
import { assertNoSecrets } from '../helpers/secret-scan.js';

const TOKEN = 'c0ffee00-1234-4a5b-8c9d-0e1f2a3b4c5d';
let score: ScoreServer;
let work: string;
const printed: string[] = [];

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const big = seededBytes(601, 6_000_000);
const bigIndex = seededBytes(602, 5_000);
const small = seededBytes(603, 300_000);
const cram = seededBytes(604, 700_000);

const ARGO_HEADER = 'repository_code\tanalysis_id\tobject_id\tfile_type\tfile_name\tfile_size\tmd5sum\tindex_object_id\tdonor_id\tsample_id(s)\tproject_id';

before(async () => {
  score = await ScoreServer.start(TOKEN);
  score.addObject('obj-big', big, { fileName: 'DO1.bam', gnosId: 'AN-1' });
  score.addObject('obj-big-bai', bigIndex, { fileName: 'DO1.bam.bai', gnosId: 'AN-1' });
  score.addObject('obj-small', small, { fileName: 'DO2.vcf.gz', gnosId: 'AN-2' });
  score.addObject('obj-cram', cram, { fileName: 'DO3.cram', gnosId: 'AN-3' });
  score.addObject('obj-denied', Buffer.from('secret'), { fileName: 'x.bam', gnosId: 'AN-9' });
  score.denied.add('obj-denied');
  work = await tempDir('slicefs-score-argo-');
});
after(async () => {
  const all = printed.join('\n');
  assert.ok(all.length > 0);
  assert.ok(!all.includes(TOKEN), 'the token appears in the output');
  for (const sig of score.issuedSignatures()) assert.ok(!all.includes(sig), 'a signature appears in the output');
  await score?.close();
  await cleanup(work);
});

async function argoManifest(name: string, rows: string[][]): Promise<string> {
  const file = join(work, name);
  await writeFile(file, [ARGO_HEADER, ...rows.map((r) => r.join('\t'))].join('\n') + '\n');
  return file;
}

const rowBig = ['collab', 'AN-1', 'obj-big', 'BAM', 'DO1.bam', String(big.length), md5(big), 'obj-big-bai', 'DO1', 'SA1|SA2', 'TEST-CA'];
const rowBigIndex = ['collab', 'AN-1', 'obj-big-bai', 'BAI', 'DO1.bam.bai', String(bigIndex.length), md5(bigIndex), '', 'DO1', 'SA1|SA2', 'TEST-CA'];
const rowSmall = ['collab', 'AN-2', 'obj-small', 'VCF', 'DO2.vcf.gz', String(small.length), md5(small), '', 'DO2', 'SA3', 'TEST-CA'];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with the token in ACCESSTOKEN; `during` may act on the running process. */
function slicefs(args: string[], opts: { env?: Record<string, string | undefined>; during?: (p: ReturnType<typeof spawn>) => void } = {}): Promise<Run> {
  return new Promise((res, rej) => {
    const env = { ...process.env, ACCESSTOKEN: TOKEN, STORAGE_URL: score.origin, SLICEFS_TOKEN: undefined, METADATA_URL: undefined, SLICEFS_CONFIG: undefined, SLICEFS_PROFILE: undefined, XDG_CONFIG_HOME: join(work, 'xdg'), ...opts.env };
    const p = spawn(process.execPath, [BIN, ...args], { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('error', rej);
    p.on('close', (code) => {
      clearTimeout(timer);
      printed.push(out, err);
      res({ code, stdout: out, stderr: err });
    });
    opts.during?.(p);
  });
}

test('download --manifest of an ARGO manifest: bundle paths, the index beside its file, verified; id and filename layouts', async () => {
  const m = await argoManifest('argo.tsv', [rowBig, rowBigIndex, rowSmall]);
  const dir = join(work, 'bundle');
  const r = await slicefs(['download', '-m', m, '-d', dir, '--verbose']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(dir, 'AN-1/DO1.bam'))).equals(big));
  assert.ok((await readFile(join(dir, 'AN-1/DO1.bam.bai'))).equals(bigIndex));
  assert.ok((await readFile(join(dir, 'AN-2/DO2.vcf.gz'))).equals(small));
  assert.match(r.stderr, /3 downloaded/);

  const byId = join(work, 'by-id');
  const r2 = await slicefs(['download', '-m', m, '-d', byId, '--output-layout', 'id', '-q']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual((await readdir(byId)).filter((n) => !n.startsWith('slicefs-') && !n.startsWith('.')).sort(), ['obj-big', 'obj-big.bai', 'obj-small']);
  assert.ok((await readFile(join(byId, 'obj-big.bai'))).equals(bigIndex));

  const byName = join(work, 'by-name');
  const r3 = await slicefs(['download', '-m', m, '-d', byName, '--output-layout', 'filename', '--no-index', '-q']);
  assert.equal(r3.code, 0, r3.stderr);
  assert.deepEqual((await readdir(byName)).filter((n) => !n.startsWith('slicefs-') && !n.startsWith('.')).sort(), ['DO1.bam', 'DO2.vcf.gz']);
  await assertNoSecrets([TOKEN, ...score.issuedSignatures()], { outputs: { stderr: r.stderr + r2.stderr + r3.stderr }, paths: [dir, byId, byName] });
});

test('a download interrupted and resumed across the expiry of its presigned URLs: new URLs, no restart, verified', async () => {
  const m = await argoManifest('argo-big.tsv', [rowBig]);
  const dir = join(work, 'resume');
  score.resetCounters();
  score.urlLifetimeS = 2;
  try {
    // ~6 s at 1 MB/s: URLs expire (and are replaced) while it runs; interrupted after 3.5 s.
    const first = await slicefs(['download', '-m', m, '-d', dir, '--limit-rate', '1M', '--part-size', '256K', '--parallel', '2', '--no-index'], {
      during: (p) => setTimeout(() => p.kill('SIGINT'), 3500),
    });
    assert.equal(first.code, 130, first.stderr);
    // What the interruption left (part files, journals) holds neither the token nor a signature.
    await assertNoSecrets([TOKEN, ...score.issuedSignatures()], { outputs: { stderr: first.stderr }, paths: [dir] });
    const specsFirst = score.specRequests;
    assert.ok(specsFirst >= 2, `URLs replaced during the first run: ${specsFirst} specification requests`);
    const servedFirst = score.dataBytes;
    assert.ok(servedFirst > 1_000_000 && servedFirst < big.length, `served before the interruption: ${servedFirst}`);
    await new Promise((r) => setTimeout(r, 2100)); // every URL of the first run has expired
    const second = await slicefs(['download', '-m', m, '-d', dir, '--no-index']);
    assert.equal(second.code, 0, second.stderr);
    assert.ok((await readFile(join(dir, 'AN-1/DO1.bam'))).equals(big));
    // The resume fetched what was missing (plus the parts in flight at the interruption), not the whole file again.
    const servedSecond = score.dataBytes - servedFirst;
    assert.ok(servedSecond <= big.length - servedFirst + 2 * 256 * 1024 + 4096, `the resume fetched ${servedSecond} bytes`);
    assert.ok(score.specRequests > specsFirst, 'the resume asked for a new URL');
  } finally {
    score.urlLifetimeS = 86_400;
  }
});

test('Azure SAS presigned URLs (se=): a download replaced across their expiry too', async () => {
  score.resetCounters();
  score.urlStyle = 'azure';
  // Azure's se= has whole seconds: a URL issued for 3 s is good for 2–3 s (1 s was racy).
  score.urlLifetimeS = 3;
  try {
    const dir = join(work, 'azure');
    const r = await slicefs(['download', '--object-id', 'obj-small', '-d', dir, '--limit-rate', '100K', '--part-size', '64K', '--parallel', '1', '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await readFile(join(dir, 'obj-small'))).equals(small));
    assert.ok(score.specRequests >= 2, `URLs replaced: ${score.specRequests} specification requests`);
    assert.ok(score.log.some((l) => /[?&]se=/.test(l)), 'Azure-style URLs were used');
    assert.ok(score.dataBytes <= small.length + 64 * 1024, `no restart: ${score.dataBytes} bytes served`);
  } finally {
    score.urlStyle = 's3';
    score.urlLifetimeS = 86_400;
  }
});

test('an ICGC 25K manifest: --output-layout bundle asks the metadata service for the analyses', async () => {
  const file = join(work, 'k25.tsv');
  await writeFile(
    file,
    'repo_code\tfile_id\tobject_id\tfile_format\tfile_name\tfile_size\tmd5_sum\tindex_object_id\tdonor_id/donor_count\tproject_id/project_count\tstudy\n' +
      `collaboratory\tFI1\tobj-small\tVCF\tDO2.vcf.gz\t${small.length}\t${md5(small)}\t\tDO2\tTEST-CA\tPCAWG\n` +
      `collaboratory\tFI2\tobj-cram\tCRAM\tDO3.cram\t${cram.length}\t\t\tDO3\tTEST-CA\tPCAWG\n`,
  );
  const dir = join(work, 'k25');
  const r = await slicefs(['download', '-m', file, '-d', dir, '--output-layout', 'bundle', '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(dir, 'AN-2/DO2.vcf.gz'))).equals(small));
  // No MD5 in the manifest: verified against the one the storage service states.
  assert.ok((await readFile(join(dir, 'AN-3/DO3.cram'))).equals(cram));
});

test('slicefs manifest: one row per file with its index and source, TSV or JSON; sizes and MD5s resolved', async () => {
  const m = await argoManifest('argo-list.tsv', [rowBig, rowBigIndex, ['collab', 'AN-3', 'obj-cram', 'CRAM', 'DO3.cram', '', '', '', 'DO3', 'SA4|SA5', 'TEST-CA']]);
  const tsv = await slicefs(['manifest', '-m', m]);
  assert.equal(tsv.code, 0, tsv.stderr);
  assert.deepEqual(tsv.stdout.trim().split('\n'), [
    'path\tsize\tmd5\tindex\tsource\tindex_source',
    `AN-1/DO1.bam\t${big.length}\t${md5(big)}\tAN-1/DO1.bam.bai\tscore:obj-big\tscore:obj-big-bai`,
    `AN-3/DO3.cram\t${cram.length}\t${md5(cram)}\t-\tscore:obj-cram\t-`,
  ]);
  const json = await slicefs(['manifest', '-m', m, '--json', '--layout', 'object-id', '--offline']);
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { format: string; files: { path: string; size: number | null; index: string | null; columns: Record<string, unknown> }[] };
  assert.equal(parsed.format, 'argo');
  assert.deepEqual(parsed.files.map((f) => [f.path, f.size, f.index]), [
    ['obj-big', big.length, 'obj-big.bai'],
    ['obj-cram', null, null],
  ]);
  assert.deepEqual(parsed.files[1].columns['sample_id(s)'], ['SA4', 'SA5']);
});

test('an object the token may not read, and a service that answers HTML pages: one clear line, non-zero exit', async () => {
  const m = await argoManifest('argo-denied.tsv', [rowSmall, ['collab', 'AN-9', 'obj-denied', 'BAM', 'x.bam', '6', '', '', '', '', 'TEST-CA']]);
  const r = await slicefs(['download', '-m', m, '-d', join(work, 'denied'), '-q', '--no-verify-connection']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /x\.bam: .*403/);
  assert.ok((await readFile(join(work, 'denied/AN-2/DO2.vcf.gz'))).equals(small), 'the other file is downloaded');

  score.htmlErrors = true;
  try {
    const v = await slicefs(['view', '--object-id', 'no-such-object', '-q', 'chr1'], {});
    assert.notEqual(v.code, 0);
    const lines = v.stderr.trim().split('\n');
    assert.equal(lines.length, 1, v.stderr);
    assert.match(lines[0], /404/);
    assert.doesNotMatch(v.stderr, /<html|<!DOCTYPE/i);
  } finally {
    score.htmlErrors = false;
  }
});
