/**
 * Daemon operations, with real mounts: `mount --daemon` returns only once the mount answers (and
 * fails with the reason otherwise), writes its pid and log files (levels, no query strings), and
 * registers for `status`; `unmount` waits for the processes using a mount and names them if they
 * stay; `unmount --lazy` detaches a mount in use and its daemon serves the reader to the end, then
 * exits; a daemon killed with SIGKILL leaves a stale mount that `status` reports and `unmount` removes;
 * and the Docker entrypoint's init (tini) passes SIGTERM on, so the mount is released within seconds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodePrivateKey, generateKeyPair } from '../../src/crypt4gh/keys.js';
import { encryptC4gh } from '../helpers/c4gh-encrypt.js';
import { BIN, cleanup, mounted, requireFuse, run, tempDir, writeManifest } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';
import { assertNoSecrets } from '../helpers/secret-scan.js';

let server: FixtureServer;
let work: string;
let manifest: string;
const data = seededBytes(71, 3_000_000);
const SECRET = 'Sig-0f9e8d7c6b5a';

before(async () => {
  requireFuse();
  server = await FixtureServer.start();
  server.addFile('/d/a.bin', data);
  server.addFile('/d/b.bin', data.subarray(0, 1000));
  work = await tempDir('slicefs-daemon-');
  // A presigned-looking query string that must never reach a log.
  manifest = await writeManifest(work, [
    { url: `${server.url('/d/a.bin')}?X-Amz-Signature=${SECRET}`, path: 'a.bin' },
    { url: server.url('/d/b.bin'), path: 'sub/b.bin', size: 1000 },
  ]);
});
after(async () => {
  await server?.close();
  for (const d of ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']) await run('fusermount', ['-uz', join(work, d)]).catch(() => {});
  await cleanup(work);
});

const env = () => ({ ...process.env, XDG_STATE_HOME: join(work, 'state') });

/** Runs the CLI to its end with `extraEnv`; `onStderr` sees its stderr so far as it comes. */
function slicefs(args: string[], extraEnv: Record<string, string> = {}, onStderr?: (soFar: string) => void) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((res, rej) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...env(), ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      onStderr?.(err);
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', rej);
    p.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout: out, stderr: err });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(what: string, cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Status {
  mounts: { pid: number; mountPoint: string; state: string; files: number; counters: Record<string, number>; logFile?: string; pidFile?: string }[];
}

test('mount --daemon returns once the mount answers, with its log and pid file; status lists it; unmount ends it', async () => {
  const mnt = join(work, 'm1');
  const r = await slicefs(['mount', '--daemon', '-m', manifest, mnt, '--verbose']);
  assert.equal(r.code, 0, r.stderr);
  // Ready means ready: no polling before the first access.
  assert.deepEqual((await readdir(mnt)).sort(), ['a.bin', 'sub']);
  const logFile = /log: (\S+)/.exec(r.stderr)?.[1];
  const pidFile = /pid file: (\S+)/.exec(r.stderr)?.[1];
  assert.ok(logFile && pidFile, r.stderr);
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  assert.ok(alive(pid));
  assert.equal((await stat(logFile)).mode & 0o777, 0o600);

  assert.ok((await readFile(join(mnt, 'a.bin'))).equals(data));
  // Counters reach status within its refresh period (2 s).
  let st: Status | undefined;
  await waitUntil('status counters', async () => {
    const s = await slicefs(['status', '--json']);
    st = JSON.parse(s.stdout) as Status;
    return (st.mounts[0]?.counters.bytesServed ?? 0) >= data.length;
  });
  assert.equal(st!.mounts.length, 1);
  assert.deepEqual([st!.mounts[0].mountPoint, st!.mounts[0].pid, st!.mounts[0].state, st!.mounts[0].files], [mnt, pid, 'mounted', 2]);
  const table = await slicefs(['status']);
  assert.match(table.stdout, new RegExp(`^${mnt.replace(/[/.]/g, '\\$&')}\\s+${pid}\\s+mounted\\s+2\\s`, 'm'));
  assert.equal((await slicefs(['status', '--health'])).code, 0);
  assert.equal((await slicefs(['status', '--health', '--mount-point', mnt])).code, 0);

  const u = await slicefs(['unmount', mnt]);
  assert.equal(u.code, 0, u.stderr);
  assert.equal(await mounted(mnt), false);
  await waitUntil('the daemon exits', () => !alive(pid));
  await assert.rejects(stat(pidFile), { code: 'ENOENT' });
  assert.match((await slicefs(['status'])).stderr, /no slicefs mounts/);
  const health = await slicefs(['status', '--health', '--mount-point', mnt]);
  assert.equal(health.code, 1);
  assert.match(health.stderr, /unhealthy: .*m1: not mounted by slicefs/);

  const log = await readFile(logFile, 'utf8');
  assert.match(log, /^\S+Z INFO {2}mounted 2 files at /m);
  assert.match(log, /^\S+Z DEBUG GET \/d\/a\.bin /m);
  assert.match(log, /^\S+Z INFO {2}SIGTERM: unmounting /m);
  assert.ok(!log.includes(SECRET), 'the query string reached the log');
});

test("mount --daemon: the token and passphrase go over the IPC channel, never into the daemon's argv or environment", async () => {
  const pass = 'daemon-pass-5d0c71e9';
  const secrets = { flag: 'flag-tok-3a9e6b2c1d', ACCESSTOKEN: 'env-tok-8f2d4c6a0b', SLICEFS_TOKEN: 'env-tok2-1b7e9d3f5a', C4GH_PASSPHRASE: pass };
  const pair = generateKeyPair();
  const keyFile = join(work, 'daemon.sec');
  await writeFile(keyFile, await encodePrivateKey(pair, pass), { mode: 0o600 });
  const plain = data.subarray(0, 300_000);
  server.addFile('/d/enc.bin.c4gh', encryptC4gh(plain, [pair.public]).file);
  const dir = join(work, 'secret-daemon');
  await mkdir(dir, { recursive: true });
  const encManifest = await writeManifest(dir, [{ url: server.url('/d/enc.bin.c4gh'), path: 'enc.bin.c4gh' }]);
  const mnt = join(work, 'm5');
  const cache = join(dir, 'cache');
  const r = await slicefs(['mount', '--daemon', '-m', encManifest, mnt, '--private-key', keyFile, '--token', secrets.flag, '--cache-dir', cache], {
    ACCESSTOKEN: secrets.ACCESSTOKEN,
    SLICEFS_TOKEN: secrets.SLICEFS_TOKEN,
    C4GH_PASSPHRASE: secrets.C4GH_PASSPHRASE,
  });
  assert.equal(r.code, 0, r.stderr);
  const pid = Number(/daemon pid (\d+)/.exec(r.stderr)?.[1]);
  try {
    // The passphrase reached the daemon: the file reads decrypted.
    assert.ok((await readFile(join(mnt, 'enc.bin'))).equals(plain));
    await assertNoSecrets(Object.values(secrets), { outputs: { stderr: r.stderr }, pids: [pid], running: true, paths: [join(work, 'state'), cache] });
  } finally {
    assert.equal((await slicefs(['unmount', mnt])).code, 0);
  }
  await waitUntil('the daemon exits', () => !alive(pid));
  await assertNoSecrets(Object.values(secrets), { paths: [join(work, 'state'), cache] });
});

test('mount --daemon that cannot mount: non-zero exit, the reason, nothing left running or registered', async () => {
  const bad = await slicefs(['mount', '--daemon', '-m', join(work, 'missing.tsv'), join(work, 'm2')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^slicefs: error: .*missing\.tsv: cannot read the manifest/m);
  const busyDir = join(work, 'not-empty');
  await run('mkdir', ['-p', busyDir]);
  await run('touch', [join(busyDir, 'x')]);
  const r = await slicefs(['mount', '--daemon', '-m', manifest, busyDir]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /error: mount point .* is not empty/);
  assert.equal((JSON.parse((await slicefs(['status', '--json'])).stdout) as Status).mounts.length, 0);
});

test('unmount waits for the processes using the mount, and names them when they stay', async () => {
  const mnt = join(work, 'm3');
  assert.equal((await slicefs(['mount', '--daemon', '-m', manifest, mnt])).code, 0);
  const holder = spawn('sleep', ['30'], { cwd: join(mnt, 'sub'), stdio: 'ignore' });
  try {
    const r = await slicefs(['unmount', mnt, '--wait', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`error: .* is busy: pid ${holder.pid} \\(sleep: cwd\\); close them, or use --lazy`));
    assert.equal(await mounted(mnt), true, 'a busy mount is left alone');
    // A holder that goes while unmount waits (once it says so): the unmount then succeeds.
    const r2 = await slicefs(['unmount', mnt, '--wait', '10'], {}, (soFar) => void (/waiting up to/.test(soFar) && holder.kill()));
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /in use by pid \d+ \(sleep: cwd\); waiting up to 10 s/);
    assert.equal(await mounted(mnt), false);
  } finally {
    holder.kill();
  }
  const again = await slicefs(['unmount', mnt]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /error: .* is not mounted/);
});

/**
 * A reader in its own process: opens `file`, reads its first `half` bytes, prints `half`, waits for a
 * line on stdin, reads the rest, and prints the SHA-256 of all it read (or the errno it got).
 */
const READER = `
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const [file, half] = process.argv.slice(1);
const hash = createHash('sha256');
const fd = fs.openSync(file, 'r');
const buf = Buffer.alloc(128 * 1024);
let pos = 0;
const readUpTo = (end) => {
  for (;;) {
    const n = fs.readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
    if (n === 0) return;
    hash.update(buf.subarray(0, n));
    pos += n;
  }
};
readUpTo(Number(half));
process.stdout.write('half\\n');
process.stdin.once('data', () => {
  try {
    readUpTo(Infinity);
    fs.closeSync(fd);
    process.stdout.write('sha256 ' + hash.digest('hex') + ' ' + pos + '\\n');
  } catch (e) {
    process.stdout.write('error ' + e.code + '\\n');
  }
  process.exit(0);
});
`;

test('unmount --lazy detaches a mount in use; its daemon serves the reader to the end, then exits', async () => {
  const mnt = join(work, 'm6');
  const r = await slicefs(['mount', '--daemon', '-m', manifest, mnt]);
  assert.equal(r.code, 0, r.stderr);
  const pid = Number((await readFile(/pid file: (\S+)/.exec(r.stderr)![1], 'utf8')).trim());
  const logFile = /log: (\S+)/.exec(r.stderr)![1];
  const half = Math.floor(data.length / 2);
  const reader = spawn(process.execPath, ['-e', READER, join(mnt, 'a.bin'), String(half)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const readerDone = new Promise<number | null>((res) => reader.on('exit', (code) => res(code)));
  try {
    await waitUntil('the reader read half the file', () => out.includes('half\n'));
    const u = await slicefs(['unmount', mnt, '--lazy', '--wait', '0']);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(await mounted(mnt), false, 'detached at once');
    // Past the daemon's 2 s check for an unmount from outside (or its end): it must go on serving.
    await waitUntil('the daemon noticed the detach', async () => !alive(pid) || (await readFile(logFile, 'utf8')).includes('was detached while in use'));
    reader.stdin.write('go\n');
    await waitUntil('the reader finished', () => /\n(sha256|error) /.test(out));
    assert.equal(out.split('\n')[1], `sha256 ${createHash('sha256').update(data).digest('hex')} ${data.length}`, 'the reader got every byte');
    assert.equal(await readerDone, 0);
    assert.match(u.stderr, new RegExp(`detaching .* while in use by pid ${reader.pid} `));
    assert.match(u.stderr, new RegExp(`detached ${mnt}; slicefs pid ${pid} serves the files still open`));
    await waitUntil('the daemon exits after its last reader', () => !alive(pid), 15_000);
  } finally {
    reader.kill();
  }
  assert.deepEqual(await readdir(mnt), [], 'no stale mount left');
  assert.match((await slicefs(['status'])).stderr, /no slicefs mounts/);
  assert.match(await readFile(logFile, 'utf8'), /the last user of the detached mount is gone: exiting/);
});

test('a new mount on the path of a detached one: the old daemon serves its reader and exits, and leaves the new mount alone', async () => {
  const mnt = join(work, 'm7');
  const first = await slicefs(['mount', '--daemon', '-m', manifest, mnt]);
  assert.equal(first.code, 0, first.stderr);
  const pidFile = /pid file: (\S+)/.exec(first.stderr)![1];
  const oldPid = Number((await readFile(pidFile, 'utf8')).trim());
  const reader = spawn(process.execPath, ['-e', READER, join(mnt, 'a.bin'), '1000000'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  let newPid: number | undefined;
  try {
    await waitUntil('the reader read a part', () => out.includes('half\n'));
    assert.equal((await slicefs(['unmount', mnt, '--lazy', '--wait', '0'])).code, 0);
    const second = await slicefs(['mount', '--daemon', '-m', manifest, mnt]);
    assert.equal(second.code, 0, second.stderr);
    newPid = Number((await readFile(pidFile, 'utf8')).trim());
    assert.notEqual(newPid, oldPid);
    // The old daemon must see its own mount gone, though a mount is on its path again.
    const logFile = /log: (\S+)/.exec(first.stderr)![1];
    await waitUntil('the old daemon noticed the detach', async () => (await readFile(logFile, 'utf8')).includes('was detached while in use'));
    reader.stdin.write('go\n');
    await waitUntil('the reader finished', () => /\n(sha256|error) /.test(out));
    assert.equal(out.split('\n')[1], `sha256 ${createHash('sha256').update(data).digest('hex')} ${data.length}`);
    await waitUntil('the old daemon exits after its reader', () => !alive(oldPid), 15_000);
    assert.equal(await mounted(mnt), true, 'the new mount stays');
    assert.equal(Number((await readFile(pidFile, 'utf8')).trim()), newPid, "the new mount's pid file stays");
    const st = JSON.parse((await slicefs(['status', '--json'])).stdout) as Status;
    assert.deepEqual(st.mounts.filter((m) => m.mountPoint === mnt).map((m) => [m.pid, m.state]), [[newPid, 'mounted']]);
    assert.ok((await readFile(join(mnt, 'sub/b.bin'))).equals(data.subarray(0, 1000)));
    const u = await slicefs(['unmount', mnt]);
    assert.equal(u.code, 0, u.stderr);
    await waitUntil('the new daemon exits', () => !alive(newPid!));
  } finally {
    reader.kill();
    if (newPid !== undefined && alive(newPid)) process.kill(newPid, 'SIGTERM');
  }
});

test('a daemon killed with SIGKILL: status reports the stale mount, unmount removes it', async () => {
  const mnt = join(work, 'm4');
  const r = await slicefs(['mount', '--daemon', '-m', manifest, mnt]);
  assert.equal(r.code, 0, r.stderr);
  const pid = Number((await readFile(/pid file: (\S+)/.exec(r.stderr)![1], 'utf8')).trim());
  process.kill(pid, 'SIGKILL');
  await waitUntil('the daemon is gone', () => !alive(pid));
  await assert.rejects(readdir(mnt), { code: 'ENOTCONN' });
  const st = await slicefs(['status']);
  assert.match(st.stdout, /\sstale\s/);
  assert.match(st.stderr, /is gone and the mount is stale; run 'slicefs unmount /);
  const health = await slicefs(['status', '--health']);
  assert.equal(health.code, 1);
  assert.match(health.stderr, /unhealthy: .*m4: stale/);
  const u = await slicefs(['unmount', mnt]);
  assert.equal(u.code, 0, u.stderr);
  assert.match(u.stderr, /is gone: removing the stale mount/);
  assert.equal(await mounted(mnt), false);
  assert.deepEqual(await readdir(mnt), []);
  assert.match((await slicefs(['status'])).stderr, /no slicefs mounts/);
});

test("the container entrypoint's init (tini) passes SIGTERM on: a clean unmount within seconds", async () => {
  const mnt = join(work, 'm5');
  const p = spawn('tini', ['--', process.execPath, BIN, 'mount', '-m', manifest, mnt], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((res) => p.on('exit', (code) => res(code)));
  await waitUntil('mounted', () => /mounted 2 files/.test(err), 30_000);
  assert.ok((await readFile(join(mnt, 'sub/b.bin'))).equals(data.subarray(0, 1000)));
  const t0 = Date.now();
  p.kill('SIGTERM'); // to tini, as `docker stop` does to PID 1
  const code = await exited;
  const took = Date.now() - t0;
  assert.equal(code, 0, err);
  assert.ok(took < 5000, `took ${took} ms`);
  assert.match(err, /SIGTERM: unmounting/);
  assert.equal(await mounted(mnt), false);
});
