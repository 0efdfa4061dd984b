/**
 * The object identity (src/source/identity.ts) through every cache and record but the mount's
 * (test/fuse/mount-identity.test.ts) and the nginx tier's (./cache-tier-identity.test.ts), against
 * a portal-like fixture whose download endpoint selects its object by the query: `dl?id=A` and
 * `dl?id=B` have the same size and Last-Modified and no ETag, so only the query tells them apart.
 *
 * - the disk tier (in this process, and again after a restart) keeps them apart, and an entry the
 *   old rule keyed by the URL without its query is never read for the plain URL;
 * - `view` (disk tier and index/header cache) prints each BAM's own header and records, and a
 *   second view of one BAM under another signature fetches no data byte;
 * - `cache stats` shows identities without their query, `cache clear --url` drops one of them;
 * - `download` writes each file's own bytes, and neither a journal (resume) nor a catalogue row
 *   (skip, --verify) of `dl?id=A` is taken for `dl?id=B`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DiskTier, type TierObject } from '../../src/cache/disk-tier.js';
import { OBJECTS } from '../../src/cache/disk-layout.js';
import { DEFAULT_DISK_CACHE, DEFAULT_TRANSPORT } from '../../src/config.js';
import { HttpSource, type ObjectSource } from '../../src/source/object-source.js';
import { Stats } from '../../src/stats.js';
import { HttpTransport } from '../../src/transport/http-transport.js';
import { versionTag } from '../../src/transport/version.js';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';
import { samtools } from '../helpers/sample-data.js';

const MiB = 1024 * 1024;
let server: FixtureServer;
let work: string;
const transports: HttpTransport[] = [];
/** One Last-Modified for every object, and no ETag: the version cannot tell the objects apart. */
const lastModified = new Date('2024-05-01T10:00:00Z');
const same = { etag: null, lastModified };

before(async () => {
  server = await FixtureServer.start();
  work = await tempDir('slicefs-identity-');
});
after(async () => {
  for (const t of transports) await t.close().catch(() => {});
  await server?.close();
  await cleanup(work);
});

const slicefs = (args: string[]) => run(process.execPath, [BIN, ...args], { timeoutMs: 120_000 });
const dataGets = (pathPrefix: string) => server.requests.filter((r) => r.method === 'GET' && r.path.startsWith(pathPrefix));

function transport(): HttpTransport {
  const t = new HttpTransport(DEFAULT_TRANSPORT, new Stats());
  transports.push(t);
  return t;
}

async function openTier(dir: string): Promise<DiskTier> {
  const t = await DiskTier.open({ ...DEFAULT_DISK_CACHE, dir }, () => {}, new Stats());
  assert.ok(t, 'the tier opens');
  return t;
}

async function readAll(src: ObjectSource, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  await src.read(0, size, (c) => void parts.push(Buffer.from(c)));
  return Buffer.concat(parts);
}

test('disk tier: dl?id=A and dl?id=B are kept apart, in this process and after a restart', async () => {
  const a = seededBytes(1, 2 * MiB + 77);
  const b = seededBytes(2, a.length);
  server.addFile('/tier/dl?id=A', a, same);
  server.addFile('/tier/dl?id=B', b, same);
  const dir = join(work, 'tier-ab');
  const t1 = await openTier(dir);
  assert.ok((await readAll(t1.wrap(new HttpSource(transport(), server.url('/tier/dl?id=A'))), a.length)).equals(a));
  assert.ok((await readAll(t1.wrap(new HttpSource(transport(), server.url('/tier/dl?id=B'))), b.length)).equals(b), "dl?id=B: B's bytes, not A's");
  await t1.close();

  server.resetLog();
  const t2 = await openTier(dir);
  const signed = (id: string) => server.url(`/tier/dl?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=s${id}&id=${id}`);
  assert.ok((await readAll(t2.wrap(new HttpSource(transport(), signed('B'))), b.length)).equals(b));
  assert.ok((await readAll(t2.wrap(new HttpSource(transport(), signed('A'))), a.length)).equals(a));
  await t2.close();
  assert.deepEqual(dataGets('/tier/'), [], 'after the restart, under signed URLs, every byte came from disk');
});

test("disk tier: an entry keyed by the old rule (the URL without its query) is never read", async () => {
  const a = seededBytes(3, MiB + 5);
  const plain = seededBytes(4, a.length);
  server.addFile('/old/dl?id=A', a, same);
  server.addFile('/old/dl', plain, same);
  const dir = join(work, 'tier-old');
  // What slicefs before the identity rule 2 wrote for a read of dl?id=A: the object's directory
  // named by sha256(<URL without its query>@<version>), meta.json naming that identity.
  const oldTier = await openTier(dir);
  const ruleOne = new Map<string, TierObject>();
  oldTier.object = (source, version) => {
    const name = `${source.identity}@${versionTag(version)}`;
    const keyHash = createHash('sha256').update(name).digest();
    const key = keyHash.toString('hex');
    let o = ruleOne.get(key);
    if (!o) {
      o = { key, keyHash, dir: join(dir, OBJECTS, key), size: version.size, meta: { identity: source.identity, version: versionTag(version), size: version.size, chunkBytes: oldTier.chunkBytes } };
      ruleOne.set(key, o);
    }
    return o;
  };
  const viaA = new HttpSource(transport(), server.url('/old/dl?id=A'));
  const oldIdentity: ObjectSource = { identity: server.url('/old/dl'), label: viaA.label, version: () => viaA.version(), read: (s, e, onData, signal) => viaA.read(s, e, onData, signal) };
  assert.ok((await readAll(oldTier.wrap(oldIdentity), a.length)).equals(a));
  await oldTier.close();
  assert.equal((await readdir(join(dir, OBJECTS))).length, 1, 'the old entry is on disk');

  server.resetLog();
  const now = await openTier(dir);
  assert.ok((await readAll(now.wrap(new HttpSource(transport(), server.url('/old/dl'))), plain.length)).equals(plain), "the plain URL's own bytes");
  await now.close();
  assert.ok(dataGets('/old/').length > 0, 'fetched, not read from the old entry');
});

/** A BAM with `n` reads named `<tag>NNNN` and a `@CO <tag>` line, stored uncompressed (its size depends only on its text's). */
async function bamOf(tag: string): Promise<{ bam: Buffer; bai: Buffer }> {
  const lines = ['@HD\tVN:1.6\tSO:coordinate', '@SQ\tSN:chr1\tLN:200000', `@CO\tsample-${tag}`];
  for (let i = 0; i < 400; i++) {
    const pos = 1 + i * 400;
    lines.push([`${tag}${String(i).padStart(4, '0')}`, '0', 'chr1', pos, '60', '50M', '*', '0', '0', 'ACGT'.repeat(12) + 'AC', 'I'.repeat(50)].join('\t'));
  }
  const sam = join(work, `${tag}.sam`);
  const bam = join(work, `${tag}.bam`);
  await writeFile(sam, lines.join('\n') + '\n');
  for (const args of [['view', '--no-PG', '-O', 'bam,level=0', '-o', bam, sam], ['index', bam]]) {
    const r = await samtools(args);
    assert.equal(r.code, 0, r.stderr);
  }
  return { bam: await readFile(bam), bai: await readFile(`${bam}.bai`) };
}

test('view: each BAM its own header and records; another signature of one shares every cache; cache stats and clear by identity', async () => {
  const A = await bamOf('A');
  const B = await bamOf('B');
  assert.equal(A.bam.length, B.bam.length, 'the two BAMs have one size');
  assert.ok(!A.bam.equals(B.bam));
  for (const [id, f] of [['A', A], ['B', B]] as const) {
    server.addFile(`/view/get?id=${id}`, f.bam, same);
    server.addFile(`/view/get.bai?id=${id}`, f.bai, same);
  }
  const cacheDir = join(work, 'view-cache');
  const url = (path: string, id: string, sig?: string) =>
    server.url(`/view/${path}?id=${id}${sig ? `&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=${sig}` : ''}`);
  const view = (id: string, extra: string[], sig?: string) => slicefs(['view', '--cache-dir', cacheDir, '--url', url('get', id, sig), '--index-url', url('get.bai', id, sig), ...extra]);
  const region = 'chr1:20000-60000';
  const records = async (id: string) => (await samtools(['view', join(work, `${id}.bam`), region])).stdout;

  for (const id of ['A', 'B']) {
    const head = await view(id, ['--header-only']);
    assert.equal(head.code, 0, head.stderr);
    assert.match(head.stdout.toString(), new RegExp(`@CO\\tsample-${id}\\n`), `${id}: its own header`);
    const got = await view(id, ['--no-header', '-q', region]);
    assert.equal(got.code, 0, got.stderr);
    assert.ok(got.stdout.length > 0);
    assert.ok(got.stdout.equals(await records(id)), `${id}: its own records`);
  }

  // The same object under another signature: header, index and records all from the caches.
  server.resetLog();
  const again = await view('B', ['-q', region], 'resigned');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout.toString(), /@CO\tsample-B\n/);
  assert.deepEqual(dataGets('/view/').map((r) => `${r.path}?${r.query} ${r.range ?? ''}`), [], 'no data request');

  const stats = await slicefs(['cache', 'stats', '--json', '--cache-dir', cacheDir]);
  assert.equal(stats.code, 0, stats.stderr);
  const items = (JSON.parse(stats.stdout.toString()) as { items: { identity: string }[] }).items.map((i) => i.identity).sort();
  const base = server.url('/view');
  assert.deepEqual(items, [`${base}/get.bai?…`, `${base}/get.bai?…`, `${base}/get?…`, `${base}/get?…`], 'four objects, shown without their query');

  const cleared = await slicefs(['cache', 'clear', '--cache-dir', cacheDir, '--url', url('get', 'A', 'whatever')]);
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.match(cleared.stderr, /cleared 1 cached version of http:\/\/127\.0\.0\.1:\d+\/view\/get\?… \(/);
  assert.doesNotMatch(cleared.stderr, /whatever|id=A/);
  server.resetLog();
  assert.equal((await view('B', ['--no-index-cache', '--no-header', '-q', region])).code, 0);
  assert.deepEqual(dataGets('/view/get'), [], "B's chunks were kept");
  assert.equal((await view('A', ['--no-index-cache', '--no-header', '-q', region])).code, 0);
  assert.ok(dataGets('/view/get').some((r) => r.query === 'id=A'), "A's were dropped: fetched again");
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** Waits (up to 10 s) until `dir` holds `name`. */
async function until(dir: string, name: string): Promise<void> {
  for (let i = 0; i < 200 && !(await readdir(dir).catch(() => [] as string[])).includes(name); i++) await new Promise((r) => setTimeout(r, 50));
}

const dlA = seededBytes(5, 4_000_000);
const dlB = seededBytes(6, dlA.length);

/** A manifest (url, path) of `dl/get?id=<id>` rows. */
async function dlManifest(name: string, rows: [string, string][]): Promise<string> {
  server.addFile('/dl/get?id=A', dlA, same);
  server.addFile('/dl/get?id=B', dlB, same);
  const file = join(work, name);
  await writeFile(file, ['url\tpath', ...rows.map(([id, path]) => `${server.url(`/dl/get?id=${id}`)}\t${path}`)].join('\n') + '\n');
  return file;
}

test('download: each file its own bytes, two catalogue rows that name two sources (no query values)', async () => {
  const out = join(work, 'dl-both');
  const both = await slicefs(['download', '-m', await dlManifest('both.tsv', [['A', 'a.bin'], ['B', 'b.bin']]), '-d', out, '-q']);
  assert.equal(both.code, 0, both.stderr);
  assert.ok((await readFile(join(out, 'a.bin'))).equals(dlA));
  assert.ok((await readFile(join(out, 'b.bin'))).equals(dlB));
  const catalogue = await readFile(join(out, 'slicefs-catalogue.tsv'), 'utf8');
  const sources = catalogue.trim().split('\n').slice(1).map((l) => l.split('\t')[3]);
  assert.equal(new Set(sources).size, 2, catalogue);
  assert.doesNotMatch(catalogue, /id=/);
});

test("download: a catalogue row of dl?id=A is not taken for dl?id=B (skip, --verify)", async () => {
  const out = join(work, 'dl-switch');
  const first = await slicefs(['download', '-m', await dlManifest('first.tsv', [['A', 'a.bin']]), '-d', out, '-q']);
  assert.equal(first.code, 0, first.stderr);
  // The manifest now names B for a.bin (no MD5 in it): --verify does not take A's row for B, and a
  // download fetches B instead of skipping the file as listed.
  const switched = await dlManifest('switched.tsv', [['B', 'a.bin']]);
  const verify = await slicefs(['download', '-m', switched, '-d', out, '--verify']);
  assert.equal(verify.code, 1, verify.stderr);
  assert.match(verify.stderr, /listed from another source/);
  const refetch = await slicefs(['download', '-m', switched, '-d', out, '-q']);
  assert.equal(refetch.code, 0, refetch.stderr);
  assert.ok((await readFile(join(out, 'a.bin'))).equals(dlB), "a.bin now holds B's bytes");
});

test('download: a journal of dl?id=A is not resumed for dl?id=B', async () => {
  // A download of A into x.bin killed half-way, then resumed with the manifest naming B: the
  // journal and the part are A's, so the file starts again.
  const out = join(work, 'dl-resume');
  const p = spawn(process.execPath, [BIN, 'download', '-m', await dlManifest('x-a.tsv', [['A', 'x.bin']]), '-d', out, '--part-size', '256K', '--parallel', '2', '--limit-rate', '2M', '-q'], { stdio: 'ignore' });
  const exited = new Promise((r) => p.once('exit', r));
  await until(out, 'x.bin.part.journal');
  p.kill('SIGKILL');
  await exited;
  assert.ok((await readdir(out)).includes('x.bin.part.journal'), 'a journal was left');
  const resumed = await slicefs(['download', '-m', await dlManifest('x-b.tsv', [['B', 'x.bin']]), '-d', out]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /x\.bin changed on the server since the last run \(the journal is of another URL\); starting it again/);
  assert.equal(md5(await readFile(join(out, 'x.bin'))), md5(dlB), "x.bin holds B's bytes only");
});
