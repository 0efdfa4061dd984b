/**
 * `ls -l` of a mounted directory of 200 BAMs with their indexes (sizes in the manifest for the
 * BAMs, none for the indexes, as portals give them), through the 20 ms / 1 Gbit/s latency proxy:
 * how long the mount takes (the index sizes are probed then, `--probe-concurrency` at a time) and
 * how long the first listing takes after it.
 *
 *   node dist/test/bench/ls-bench.js
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startLatencyProxy } from './latency-proxy.js';
import { startNginx } from './nginx.js';
import { forceUnmount, runCleanups, stopChild } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const FILES = 200;

async function main(): Promise<void> {
  const data = join(REPO, '.bench/lsdata');
  await mkdir(join(data, 'idx'), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    await writeFile(join(data, 'idx', `s${i}.bam`), Buffer.alloc(5000, i));
    await writeFile(join(data, 'idx', `s${i}.bam.bai`), Buffer.alloc(300 + i, i));
  }
  const nginx = await startNginx(data);
  const proxy = await startLatencyProxy({ upstreamPort: nginx.port, oneWayDelayMs: 10 });
  const work = await mkdtemp(join(tmpdir(), 'slicefs-lsbench-'));
  const mnt = join(work, 'mnt');
  try {
    const o = `http://127.0.0.1:${proxy.port}`;
    const rows = Array.from({ length: FILES }, (_, i) => `${o}/idx/s${i}.bam\td/s${i}.bam\t5000\t${o}/idx/s${i}.bam.bai`);
    await writeFile(join(work, 'm.tsv'), `url\tpath\tsize\tindex_url\n${rows.join('\n')}\n`);
    const t0 = performance.now();
    const d = spawn(process.execPath, [join(REPO, 'bin/slicefs.js'), 'mount', '-m', join(work, 'm.tsv'), mnt, '--disk-cache-size', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await new Promise<void>((res, rej) => {
        d.stderr!.on('data', (c: Buffer) => /mounted/.test(c.toString()) && res());
        d.once('exit', () => rej(new Error('slicefs exited before mounting')));
      });
      const mounted = performance.now();
      const ls = await promisify(execFile)('ls', ['-l', join(mnt, 'd')]);
      const lines = ls.stdout.trim().split('\n').length - 1;
      const s = (ms: number) => (ms / 1000).toFixed(2);
      process.stdout.write(`${FILES} BAMs + ${FILES} indexes, 20 ms RTT: mount ${s(mounted - t0)} s, then ls -l of ${lines} entries ${s(performance.now() - mounted)} s\n`);
    } finally {
      await stopChild(d);
      forceUnmount(mnt);
    }
  } finally {
    await proxy.close();
    await nginx.stop();
    await rm(work, { recursive: true, force: true });
    await runCleanups();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`ls-bench: ${e.message}\n`);
  process.exit(1);
});
