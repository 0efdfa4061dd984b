/**
 * What `slicefs download` tells the user, run as a child process against the fixture server: the
 * `--verify` summary says how many bytes it hashed (it said `0 B in 0.0 s`), an interrupted run's
 * last progress line says `interrupted` (it said `ETA 0 s`), and a resumed run says how much was
 * already on disk.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';

let server: FixtureServer;
let work: string;

before(async () => {
  server = await FixtureServer.start();
  work = await tempDir('slicefs-download-messages-');
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

async function manifestOf(name: string, data: Buffer): Promise<string> {
  server.addFile(`/${name}/f.bin`, data);
  const file = join(work, `${name}.tsv`);
  await writeFile(file, `url\tpath\tsize\tmd5\n${server.url(`/${name}/f.bin`)}\tf.bin\t${data.length}\t${md5(data)}\n`);
  return file;
}

const download = (args: string[]) => run(process.execPath, [BIN, 'download', ...args], { timeoutMs: 120_000, env: { ...process.env, XDG_CACHE_HOME: join(work, 'cache') } });

test('--verify reports the bytes it hashed and the time it took', async () => {
  const m = await manifestOf('verify', seededBytes(61, 7 * 1024 * 1024));
  const out = join(work, 'verify-out');
  const got = await download(['-m', m, '-d', out, '-q']);
  assert.equal(got.code, 0, got.stderr);
  const v = await download(['-m', m, '-d', out, '--verify']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stderr, /^slicefs: 1 verified, 0 failed, 0 missing; 7\.00 MiB hashed in \d+\.\d\d s$/m);
});

test('Ctrl-C: the last progress line says interrupted; the next run says what was already here', async () => {
  const m = await manifestOf('resume', seededBytes(62, 8 * 1024 * 1024));
  const out = join(work, 'resume-out');
  const p = spawn(process.execPath, [BIN, 'download', '-m', m, '-d', out, '--part-size', '512K', '--parallel', '2', '--limit-rate', '4M'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, XDG_CACHE_HOME: join(work, 'cache') },
  });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => p.once('exit', res));
  // Interrupted once a first part is journaled (up to 10 s for a slow start).
  for (let i = 0; i < 200 && !(await readdir(out).catch(() => [] as string[])).includes('f.bin.part.journal'); i++) await new Promise((r) => setTimeout(r, 50));
  p.kill('SIGINT');
  assert.equal(await exited, 130, err);
  const lines = err.split('\n').filter((l) => l.startsWith('download: '));
  assert.match(lines.at(-1) ?? '', /^download: 0\/1 file, .*, interrupted$/, err);
  assert.doesNotMatch(err, /ETA 0 s/);

  const again = await download(['-m', m, '-d', out]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /^resuming: [\d.]+ [KM]iB of 8\.00 MiB already here$/m);
});
