/**
 * FUSE operation latency under a streaming load, with and without the fetch worker: while `cat`
 * streams a 512 MiB file through the mount (served by nginx on 127.0.0.1), another process lists
 * the mount's root (readdir always reaches the daemon: the kernel does not cache it) as fast as it
 * can, and we report how many listings were served and their p50/p99. This is what a user's `ls`
 * or samtools' metadata calls feel while a big file is being read.
 *
 *   node dist/test/bench/op-latency.js [--seconds 3]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx } from './nginx.js';
import { ensureDataFile } from './prng.js';
import { dropCaches, forceUnmount, runCleanups, stopChild } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SIZE = 512 * 1024 * 1024;

async function measure(mnt: string, file: string, seconds: number): Promise<{ n: number; p50: number; p99: number }> {
  const cat = spawn('cat', [join(mnt, file)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const done = new Promise((r) => cat.once('exit', r));
  const lat: number[] = [];
  const until = Date.now() + seconds * 1000;
  let catDone = false;
  void done.then(() => (catDone = true));
  while (Date.now() < until && !catDone) {
    const t0 = performance.now();
    await readdir(mnt);
    lat.push(performance.now() - t0);
  }
  cat.kill();
  await done;
  lat.sort((a, b) => a - b);
  return { n: lat.length, p50: lat[Math.floor(lat.length / 2)] ?? NaN, p99: lat[Math.floor(lat.length * 0.99)] ?? NaN };
}

async function main(): Promise<void> {
  const secIdx = process.argv.indexOf('--seconds');
  const seconds = secIdx > 0 ? Number(process.argv[secIdx + 1]) : 3;
  const dataDir = join(REPO, '.bench/data');
  const path = await ensureDataFile(dataDir, SIZE, 1);
  const nginx = await startNginx(dataDir);
  const work = await mkdtemp(join(tmpdir(), 'slicefs-oplat-'));
  const rows: string[] = [];
  try {
    const manifest = join(work, 'm.tsv');
    await writeFile(manifest, `url\tpath\tsize\n${nginx.origin}/${basename(path)}\tdata.bin\t${SIZE}\n`);
    for (const mode of ['--fetch-worker', '--no-fetch-worker']) {
      const mnt = join(work, `mnt${mode}`);
      dropCaches();
      const d = spawn(process.execPath, [join(REPO, 'bin/slicefs.js'), 'mount', '-m', manifest, mnt, mode, '--disk-cache-size', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
      try {
        await new Promise<void>((res, rej) => {
          let err = '';
          d.stderr!.on('data', (c: Buffer) => {
            err += c.toString();
            if (/mounted \d+ files? at/.test(err)) res();
          });
          d.once('exit', () => rej(new Error(`slicefs exited: ${err}`)));
        });
        const r = await measure(mnt, 'data.bin', seconds);
        rows.push(`| ${mode} | ${r.n} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
      } finally {
        await stopChild(d);
        forceUnmount(mnt);
      }
    }
  } finally {
    await nginx.stop();
    await rm(work, { recursive: true, force: true });
    await runCleanups();
  }
  process.stdout.write(
    `readdir on the mount while cat streams 512 MiB through it (${seconds} s at most, loopback nginx)\n\n` +
      `| daemon | readdirs served | p50 ms | p99 ms |\n|---|---:|---:|---:|\n${rows.join('\n')}\n`,
  );
}

main().catch((e: Error) => {
  process.stderr.write(`op-latency: ${e.message}\n`);
  process.exit(1);
});
