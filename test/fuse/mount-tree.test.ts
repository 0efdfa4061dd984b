/**
 * Real FUSE mounts of manifests served by the fixture server: the tree (ls, du, find, stat),
 * requests made (at mount only for what the manifest does not size, indexes included; none for
 * absent names), files that cannot be sized (the mount fails naming them, or `--skip-missing`
 * leaves them out), read-only semantics, mount point checks and clean shutdown.
 */
import assert from 'node:assert/strict';
import { mkdir, open, readdir, stat, writeFile, rename, rm, unlink, chmod, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';
import { cleanup, mounted, readAt, requireFuse, run, startDaemon, tempDir, writeManifest, BIN } from '../helpers/daemon.js';

let server: FixtureServer;
let work: string;
const A = seededBytes(1, 2 * 1024 * 1024 + 333);
const B = seededBytes(2, 70_001);
const BAI = seededBytes(3, 4321);

before(async () => {
  requireFuse();
  server = await FixtureServer.start();
  server.addFile('/data/a.bam', A);
  server.addFile('/data/a.bam.bai', BAI);
  server.addFile('/other/b.cram', B);
  work = await tempDir('slicefs-tree-');
});
after(async () => {
  await server.close();
  await cleanup(work);
});

test('ls -lR, du, find and stat show the manifest tree with the right sizes; at mount, only the index is asked for its size', async () => {
  const dir = join(work, 't1');
  await mkdir(dir);
  const manifest = await writeManifest(dir, [
    { url: server.url('/data/a.bam'), path: 'donor1/sample/a.bam', size: A.length, index_url: server.url('/data/a.bam.bai') },
    { url: server.url('/other/b.cram'), path: 'donor2/b.cram', size: B.length },
  ]);
  server.resetLog();
  const d = await startDaemon(manifest, join(dir, 'mnt'));
  try {
    // Data files with a manifest size are not asked; the index (no column gives its size) is, once.
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.path}`),
      ['HEAD /data/a.bam.bai'],
    );
    server.resetLog();
    const ls = await run('ls', ['-lR', d.mountPoint]);
    assert.equal(ls.code, 0, ls.stderr);
    const text = ls.stdout.toString();
    assert.match(text, new RegExp(`-r--r--r-- +1 +\\S+ +\\S+ +${A.length} .* a\\.bam\\n`));
    assert.match(text, new RegExp(`-r--r--r-- +1 +\\S+ +\\S+ +${BAI.length} .* a\\.bam\\.bai\\n`));
    assert.match(text, new RegExp(`${B.length} .* b\\.cram\\n`));
    assert.match(text, /dr-xr-xr-x .* donor1\n/);
    const find = await run('find', [d.mountPoint, '-type', 'f']);
    assert.deepEqual(
      find.stdout.toString().trim().split('\n').map((p) => p.slice(d.mountPoint.length)).sort(),
      ['/donor1/sample/a.bam', '/donor1/sample/a.bam.bai', '/donor2/b.cram'],
    );
    const du = await run('du', ['-sb', d.mountPoint]);
    const total = Number(du.stdout.toString().split('\t')[0]);
    assert.ok(total >= A.length + B.length + BAI.length, `du -sb says ${total}`);
    const st = await stat(join(d.mountPoint, 'donor2/b.cram'));
    assert.equal(st.size, B.length);
    assert.ok(st.blocks * 512 >= B.length, 'st_blocks covers the size (du)');
    assert.equal(server.requests.length, 0, 'listing and stat answer from memory');

    for (const absent of ['donor1/sample/a.bam.csi', 'donor1/sample/a.csi', 'donor1/sample/a.bai', 'nope/x']) {
      await assert.rejects(stat(join(d.mountPoint, absent)), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    }
    assert.equal(server.requests.length, 0, 'absent names are answered without a request');
  } finally {
    assert.equal(await d.stop(), 0);
  }
  assert.equal(await mounted(d.mountPoint), false, 'SIGTERM leaves no mount');
  assert.match(d.stderr(), /slicefs stats: requests=\d+/);
});

test('the mount is read-only: every kind of write gets EROFS', async () => {
  const dir = join(work, 't2');
  await mkdir(dir);
  const manifest = await writeManifest(dir, [{ url: server.url('/other/b.cram'), size: B.length }]);
  const d = await startDaemon(manifest, join(dir, 'mnt'));
  try {
    const f = join(d.mountPoint, 'b.cram');
    const erofs = (e: NodeJS.ErrnoException) => e.code === 'EROFS';
    await assert.rejects(writeFile(join(d.mountPoint, 'new'), 'x'), erofs);
    await assert.rejects(open(f, 'r+'), erofs);
    await assert.rejects(open(f, 'w'), erofs);
    await assert.rejects(mkdir(join(d.mountPoint, 'd')), erofs);
    await assert.rejects(unlink(f), erofs);
    await assert.rejects(rename(f, join(d.mountPoint, 'c')), erofs);
    await assert.rejects(chmod(f, 0o777), erofs);
    await assert.rejects(truncate(f, 0), erofs);
    await assert.rejects(rm(f), erofs);
    const fh = await open(f, 'r');
    const buf = Buffer.alloc(100);
    const { bytesRead } = await fh.read(buf, 0, 100, 5);
    await fh.close();
    assert.equal(bytesRead, 100);
    assert.ok(buf.equals(B.subarray(5, 105)));
  } finally {
    await d.stop('SIGINT');
  }
  assert.equal(await mounted(d.mountPoint), false, 'SIGINT leaves no mount');
});

test('without sizes, the mount asks each file once (HEAD) with bounded concurrency; 10,000 entries', async () => {
  const dir = join(work, 't3');
  await mkdir(dir);
  const rows = [];
  for (let i = 0; i < 10_000; i++) {
    const p = `/many/f${i}.bin`;
    server.addFile(p, B.subarray(0, (i % 97) + 1));
    rows.push({ url: server.url(p), path: `d${i % 10}/f${i}.bin` });
  }
  const manifest = await writeManifest(dir, rows);
  server.resetLog();
  const d = await startDaemon(manifest, join(dir, 'mnt'));
  try {
    assert.equal(server.count({ method: 'HEAD' }), 10_000);
    assert.equal(server.requests.length, 10_000);
    const names = await readdir(join(d.mountPoint, 'd7'));
    assert.equal(names.length, 1000);
    assert.equal((await stat(join(d.mountPoint, 'd4/f1234.bin'))).size, (1234 % 97) + 1);
  } finally {
    await d.stop();
  }
});

test('mount point checks: non-empty refused, missing created, stale mount explained and cleaned with --force', async () => {
  const dir = join(work, 't4');
  await mkdir(join(dir, 'full'), { recursive: true });
  await writeFile(join(dir, 'full', 'keep.txt'), 'precious');
  const manifest = await writeManifest(dir, [{ url: server.url('/other/b.cram'), size: B.length }]);
  const refused = await run(process.execPath, [BIN, 'mount', '-m', manifest, join(dir, 'full')]);
  assert.equal(refused.code, 2, 'a mount point that cannot be used is bad input');
  assert.match(refused.stderr, /^slicefs: error: mount point \S+full is not empty/m);
  assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line');

  const mnt = join(dir, 'created/deep');
  const d = await startDaemon(manifest, mnt);
  // A crash: the daemon dies without unmounting; the kernel keeps a dead mount (ENOTCONN).
  await d.stop('SIGKILL');
  await assert.rejects(stat(join(mnt, 'b.cram')), (e: NodeJS.ErrnoException) => e.code === 'ENOTCONN');
  const stale = await run(process.execPath, [BIN, 'mount', '-m', manifest, mnt]);
  assert.equal(stale.code, 1, stale.stderr);
  assert.match(stale.stderr, /is a stale FUSE mount .*--force/);
  const d2 = await startDaemon(manifest, mnt, ['--force']);
  try {
    assert.equal((await stat(join(mnt, 'b.cram'))).size, B.length);
  } finally {
    await d2.stop();
  }
  assert.equal(await mounted(mnt), false);
});

test('bad manifests fail with file:line:column before anything is mounted', async () => {
  const dir = join(work, 't5');
  await mkdir(dir);
  const bad = join(dir, 'bad.tsv');
  await writeFile(bad, `url\tpath\n${server.url('/other/b.cram')}\t../escape\n`);
  const r = await run(process.execPath, [BIN, 'mount', '-m', bad, join(dir, 'mnt')]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `slicefs: error: ${bad}:2:${server.url('/other/b.cram').length + 2}: path '../escape' contains '..'\n`);
  assert.equal(await mounted(join(dir, 'mnt')), false);
});

test('the mount is read-only for the kernel too (/proc/mounts says ro); files are not executable', async () => {
  const dir = join(work, 't6');
  await mkdir(dir);
  const manifest = await writeManifest(dir, [{ url: server.url('/other/b.cram'), size: B.length }]);
  const d = await startDaemon(manifest, join(dir, 'mnt'));
  try {
    const line = (await run('grep', [` ${d.mountPoint} `, '/proc/mounts'])).stdout.toString();
    assert.match(line, /^slicefs \S+ fuse\.slicefs ro[, ]/);
    assert.notEqual((await run('test', ['-x', join(d.mountPoint, 'b.cram')])).code, 0, 'test -x is false');
    assert.equal((await run('test', ['-r', join(d.mountPoint, 'b.cram')])).code, 0, 'test -r is true');
  } finally {
    await d.stop();
  }
});

test('an external fusermount -u ends the daemon cleanly', async () => {
  const dir = join(work, 't7');
  await mkdir(dir);
  const manifest = await writeManifest(dir, [{ url: server.url('/other/b.cram'), size: B.length }]);
  const d = await startDaemon(manifest, join(dir, 'mnt'));
  const um = await run('fusermount', ['-u', d.mountPoint]);
  assert.equal(um.code, 0, um.stderr);
  const code = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
  if (code === 'still running') await d.stop('SIGKILL');
  assert.equal(code, 0);
  assert.match(d.stderr(), /was unmounted from outside/);
});

test('a file that cannot be sized fails the mount with its name, and a created mount point is removed', async () => {
  const dir = join(work, 't8');
  await mkdir(dir);
  server.addFile('/gone/x.bam', B, { fault: { kind: 'status', status: 404 } });
  const manifest = await writeManifest(dir, [{ url: server.url('/gone/x.bam') + '?sig=SECRET' }]);
  const mnt = join(dir, 'new/mnt');
  const r = await run(process.execPath, [BIN, 'mount', '-m', manifest, mnt]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.split('\n').length, 2, 'one line');
  assert.match(r.stderr, /^slicefs: error: \S+manifest\.tsv:2: x\.bam: HEAD http:\/\/127\.0\.0\.1:\d+\/gone\/x\.bam\?…: HTTP 404 \(not found\) \(--skip-missing mounts the rest without it\)\n$/);
  assert.doesNotMatch(r.stderr, /SECRET/);
  await assert.rejects(stat(join(dir, 'new')), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');

  const odd = join(dir, 'we$ird');
  const r2 = await run(process.execPath, [BIN, 'mount', '-m', manifest, odd]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /cannot be unmounted safely/);
});

test('a directory of indexed files: every index is sized once at mount; ls -l then makes no request', async () => {
  const dir = join(work, 't9');
  await mkdir(dir);
  const rows = [];
  for (let i = 0; i < 40; i++) {
    server.addFile(`/idx/s${i}.bam`, B);
    server.addFile(`/idx/s${i}.bam.bai`, BAI.subarray(0, 100 + i));
    rows.push({ url: server.url(`/idx/s${i}.bam`), path: `d/s${i}.bam`, size: B.length, index_url: server.url(`/idx/s${i}.bam.bai`) });
  }
  const manifest = await writeManifest(dir, rows);
  server.resetLog();
  const d = await startDaemon(manifest, join(dir, 'mnt'));
  try {
    const heads = server.requests.filter((r) => r.path.startsWith('/idx/') && r.path.endsWith('.bai'));
    assert.equal(heads.length, 40, 'each index probed once');
    assert.equal(server.requests.length, 40, 'and nothing else');
    assert.ok(heads.every((r) => r.method === 'HEAD'));
    server.resetLog();
    const ls = await run('ls', ['-l', join(d.mountPoint, 'd')]);
    assert.equal(ls.code, 0, ls.stderr);
    for (let i = 0; i < 40; i++) assert.match(ls.stdout.toString(), new RegExp(` ${100 + i} .* s${i}\\.bam\\.bai\\n`));
    assert.equal(server.requests.length, 0, 'ls -l answers from memory');
  } finally {
    await d.stop();
  }
});

test('an index that cannot be sized (404, 403) fails the mount like a data file, in one line naming its entry', async () => {
  const dir = join(work, 't10');
  await mkdir(dir);
  server.addFile('/noidx/x.bam', B);
  server.addFile('/noidx/x.bam.bai', BAI, { fault: { kind: 'status', status: 404 } });
  server.addFile('/noidx/y.bam', B);
  server.addFile('/noidx/y.bam.bai', BAI, { fault: { kind: 'status', status: 403 } });
  for (const [name, status, why] of [['x', 404, 'not found'], ['y', 403, 'access denied']] as const) {
    const manifest = await writeManifest(dir, [
      { url: server.url('/other/b.cram'), path: 'ok/b.cram', size: B.length },
      { url: server.url(`/noidx/${name}.bam`), path: `s/${name}.bam`, size: B.length, index_url: server.url(`/noidx/${name}.bam.bai`) + '?sig=SECRET' },
    ]);
    const mnt = join(dir, 'new/mnt');
    const r = await run(process.execPath, [BIN, 'mount', '-m', manifest, mnt]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(`^slicefs: error: \\S+manifest\\.tsv:3: index s/${name}\\.bam\\.bai: (HEAD|GET) http://127\\.0\\.0\\.1:\\d+/noidx/${name}\\.bam\\.bai\\?…( \\(size probe\\))?: HTTP ${status} \\(${why}`),
    );
    assert.doesNotMatch(r.stderr, /SECRET/);
    assert.equal(await mounted(mnt), false);
    await assert.rejects(stat(join(dir, 'new')), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  }
});

test('--skip-missing leaves out what is absent or refused, one warning per entry: a file with its index, an index alone', async () => {
  const dir = join(work, 't11');
  await mkdir(dir);
  server.addFile('/skip/gone.bam', B, { fault: { kind: 'status', status: 404 } });
  server.addFile('/skip/gone.bam.bai', BAI);
  server.addFile('/skip/noidx.bam', B);
  server.addFile('/skip/noidx.bam.bai', BAI, { fault: { kind: 'status', status: 404 } });
  server.addFile('/skip/denied.bam', B, { fault: { kind: 'status', status: 403 } });
  const manifest = await writeManifest(dir, [
    { url: server.url('/data/a.bam'), path: 'a/a.bam', size: A.length, index_url: server.url('/data/a.bam.bai') },
    { url: server.url('/skip/gone.bam'), path: 'g/gone.bam', index_url: server.url('/skip/gone.bam.bai') },
    { url: server.url('/skip/noidx.bam'), path: 'a/noidx.bam', size: B.length, index_url: server.url('/skip/noidx.bam.bai') },
    { url: server.url('/skip/denied.bam'), path: 'a/denied.bam' },
  ]);
  const d = await startDaemon(manifest, join(dir, 'mnt'), ['--skip-missing']);
  try {
    const warnings = d.stderr().split('\n').filter((l) => l.includes('warning:'));
    assert.equal(warnings.length, 3, d.stderr());
    assert.match(warnings[0], /manifest\.tsv:3: g\/gone\.bam: HEAD \S+\/skip\/gone\.bam: HTTP 404 \(not found\): left out, with its index$/);
    assert.match(warnings[1], /manifest\.tsv:4: index a\/noidx\.bam\.bai: HEAD \S+: HTTP 404 \(not found\): left out; a\/noidx\.bam is mounted without an index/);
    assert.match(warnings[2], /manifest\.tsv:5: a\/denied\.bam: (HEAD|GET) \S+ .*HTTP 403 \(access denied/);
    assert.match(d.stderr(), /mounted 3 files/);
    assert.deepEqual((await readdir(d.mountPoint)).sort(), ['a'], 'the directory left empty is gone too');
    assert.deepEqual((await readdir(join(d.mountPoint, 'a'))).sort(), ['a.bam', 'a.bam.bai', 'noidx.bam']);
    const ls = await run('ls', ['-lR', d.mountPoint]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.doesNotMatch(ls.stdout.toString(), /\?/, 'every file listed can be stat-ed');
    assert.ok((await readAt(join(d.mountPoint, 'a/noidx.bam'), 0, B.length)).equals(B), 'the data file without its index is still read');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
