/**
 * Who can read a mount (MountConfig.group, docs/SEMANTICS.md "Who can read the mount"), checked
 * by real processes of other users against a real mount made by root: with `--group G` files are
 * 0440 and directories 0550 of group G, with default_permissions, so the kernel lets a process of
 * uid 65534 read only when G is among its groups (EACCES otherwise); `--allow-other` alone lets
 * every user read and says so in one warning; a group name is looked up as the system does.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SETPRIV } from '../helpers/cache-tier.js';
import { cleanup, requireFuse, run, runSlicefs, startDaemon, tempDir, writeManifest } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';

const NOBODY = 65534;
/** A group uid 65534 is not in, unless a test gives it. */
const GROUP = 4242;
const DATA = seededBytes(1601, 300_000);

let server: FixtureServer;
let work: string;
let manifest: string;

before(async () => {
  requireFuse();
  assert.ok(SETPRIV, 'setpriv (util-linux) runs processes as other users here');
  server = await FixtureServer.start();
  server.addFile('/g/data.bin', DATA);
  work = await tempDir('slicefs-mount-group-');
  // Other users must reach the mount points; the mounts decide the rest.
  await chmod(work, 0o755);
  manifest = await writeManifest(work, [{ url: server.url('/g/data.bin'), path: 'donor/data.bin', size: DATA.length }]);
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** `cmd args` as uid 65534 with exactly `groups` (its primary group 65534 too). */
function asNobody(groups: number[], cmd: string, args: string[]) {
  const ids = groups.length > 0 ? ['--groups', groups.join(',')] : ['--clear-groups'];
  return run(SETPRIV!, ['--reuid', String(NOBODY), '--regid', String(NOBODY), ...ids, cmd, ...args], { timeoutMs: 30_000 });
}

async function mountPoint(name: string): Promise<string> {
  const mnt = join(work, name);
  await mkdir(mnt);
  await chmod(mnt, 0o755);
  return mnt;
}

test('--group G: files 0440 and directories 0550 of G; the kernel lets only members of G read', async () => {
  const mnt = await mountPoint('mnt-group');
  const d = await startDaemon(manifest, mnt, ['--group', String(GROUP)]);
  try {
    assert.equal(d.stderr().match(/warning/g), null, `no warning: ${d.stderr()}`);
    const file = join(mnt, 'donor/data.bin');
    const f = await stat(file);
    assert.equal(f.mode & 0o777, 0o440);
    assert.equal(f.gid, GROUP);
    const dir = await stat(join(mnt, 'donor'));
    assert.equal(dir.mode & 0o777, 0o550);
    assert.equal(dir.gid, GROUP);

    // Not in G: refused by the kernel, at the file and at the directories.
    const cat = await asNobody([], 'cat', [file]);
    assert.notEqual(cat.code, 0);
    assert.match(cat.stderr, /Permission denied/);
    assert.equal(cat.stdout.length, 0);
    const ls = await asNobody([], 'ls', [mnt]);
    assert.notEqual(ls.code, 0);
    assert.match(ls.stderr, /Permission denied/);
    // In another group only: the same.
    assert.match((await asNobody([GROUP + 1], 'cat', [file])).stderr, /Permission denied/);

    // In G (a supplementary group): reads the right bytes, lists the directory.
    const member = await asNobody([GROUP], 'cat', [file]);
    assert.equal(member.code, 0, member.stderr);
    assert.ok(member.stdout.equals(DATA), 'a member of G reads the file');
    const memberLs = await asNobody([GROUP], 'ls', [join(mnt, 'donor')]);
    assert.equal(memberLs.stdout.toString(), 'data.bin\n');
    // The owner (root, who mounted) reads too.
    const own = await run('cat', [file]);
    assert.ok(own.stdout.equals(DATA));
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('--allow-other alone: every user reads, and the mount says so in one warning', async () => {
  const mnt = await mountPoint('mnt-other');
  const d = await startDaemon(manifest, mnt, ['--allow-other']);
  try {
    const warnings = d.stderr().split('\n').filter((l) => l.includes('warning'));
    assert.deepEqual(warnings, ['slicefs: warning: --allow-other lets every local user read the files of this mount (0444); give --group NAME to let only that group read them']);
    assert.equal((await stat(join(mnt, 'donor/data.bin'))).mode & 0o777, 0o444);
    const cat = await asNobody([], 'cat', [join(mnt, 'donor/data.bin')]);
    assert.equal(cat.code, 0, cat.stderr);
    assert.ok(cat.stdout.equals(DATA));
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('--group NAME is looked up as the system does; an unknown name is one line, exit 2', async () => {
  const name = (await run('getent', ['group', String(NOBODY)])).stdout.toString().split(':')[0];
  assert.ok(name, `a name for gid ${NOBODY}`);
  const mnt = await mountPoint('mnt-name');
  const d = await startDaemon(manifest, mnt, ['--group', name]);
  try {
    assert.equal((await stat(join(mnt, 'donor/data.bin'))).gid, NOBODY);
    // uid 65534's own primary group is that group: it reads.
    const cat = await asNobody([NOBODY], 'cat', [join(mnt, 'donor/data.bin')]);
    assert.ok(cat.stdout.equals(DATA), cat.stderr);
  } finally {
    assert.equal(await d.stop(), 0);
  }
  const bad = await runSlicefs(['mount', '--manifest', manifest, await mountPoint('mnt-bad'), '--group', 'no-such-group-slicefs']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'slicefs: error: --group no-such-group-slicefs: no such group\n');
});
