/**
 * The README's demo: a local HTTP server on 127.0.0.1 serving sample data (a BAM + BAI and a CRAM +
 * CRAI + reference, generated and seeded), a manifest, `slicefs mount` in a temporary directory,
 * `ls -l`, a `samtools view -c` of a region through the mount and through `slicefs view` of the BAM
 * and of the CRAM (each checked against the local file), and a clean unmount. Each step is printed; nothing is left behind, whatever fails.
 */
import { spawnSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FixtureServer } from '../helpers/fixture-server.js';
import { ensureSampleData, samtools } from '../helpers/sample-data.js';
import { BIN, mounted, run, startDaemon, tempDir, writeManifest, type Daemon } from '../helpers/daemon.js';

const step = (s: string) => process.stdout.write(`\n==> ${s}\n`);
const show = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);

async function main(): Promise<number> {
  step('generating sample data (seeded; reused when present)');
  const sample = await ensureSampleData();
  show(`${sample.bam}\n${sample.cram}`);

  step('starting a local HTTP server on 127.0.0.1');
  const server = await FixtureServer.start();
  const work = await tempDir('slicefs-demo-');
  let daemon: Daemon | undefined;
  try {
    for (const f of [sample.bam, sample.bai, sample.cram, sample.crai, sample.ref, sample.fai]) server.addFile(`/data/${basename(f)}`, await readFile(f));
    show(`serving ${server.origin}/data/`);

    step('writing a manifest');
    const u = (f: string) => server.url(`/data/${basename(f)}`);
    const manifest = await writeManifest(work, [
      { url: u(sample.bam), path: 'donor1/sample.bam', index_url: u(sample.bai) },
      { url: u(sample.cram), path: 'donor1/sample.cram', index_url: u(sample.crai) },
    ]);
    show(await readFile(manifest, 'utf8'));

    const mnt = join(work, 'mnt');
    step(`slicefs mount --manifest ${manifest} ${mnt}`);
    daemon = await startDaemon(manifest, mnt);
    show(daemon.stderr().trim());

    step(`ls -lR ${mnt}`);
    show((await run('ls', ['-lR', mnt])).stdout.toString());

    // The widest bounded region of the sample: many records, several BGZF blocks.
    const span = (r: string) => {
      const m = /:(\d+)-(\d+)$/.exec(r.replace(/,/g, ''));
      return m ? Number(m[2]) - Number(m[1]) : -1;
    };
    const region = [...sample.regions].sort((a, b) => span(b) - span(a))[0];
    let ok = true;
    for (const [file, extra] of [
      ['donor1/sample.bam', []],
      ['donor1/sample.cram', ['-T', sample.ref]],
    ] as const) {
      const local = file.endsWith('.bam') ? sample.bam : sample.cram;
      step(`samtools view -c ${extra.join(' ')} ${join(mnt, file)} ${region}`);
      const got = await samtools(['view', '-c', ...extra, join(mnt, file), region]);
      const want = await samtools(['view', '-c', ...extra, local, region]);
      show(`${got.stdout.toString().trim()} records (local file: ${want.stdout.toString().trim()})${got.stderr ? `\n${got.stderr}` : ''}`);
      ok &&= got.code === 0 && got.stdout.equals(want.stdout);
    }

    for (const [file, extra] of [
      [sample.bam, []],
      [sample.cram, ['--reference-url', u(sample.ref)]],
    ] as const) {
      step(`slicefs view --url ${u(file)} ${extra.join(' ')} --query ${region} --output-format bam | samtools view -c -`);
      const viewed = await run(process.execPath, [BIN, 'view', '--cache-dir', join(work, 'cache'), '--url', u(file), ...extra, '--query', region, '--output-format', 'bam']);
      const counted = await samtools(['view', '-c', '-'], { input: viewed.stdout });
      const wantView = await samtools(['view', '-c', ...(file === sample.cram ? ['-T', sample.ref] : []), file, region]);
      show(`${counted.stdout.toString().trim()} records (local file: ${wantView.stdout.toString().trim()})${viewed.stderr ? `\n${viewed.stderr}` : ''}`);
      ok &&= viewed.code === 0 && counted.code === 0 && counted.stdout.equals(wantView.stdout);
    }

    step('unmounting (SIGTERM)');
    const code = await daemon.stop();
    show(daemon.stderr().split('\n').slice(-3).join('\n'));
    if (await mounted(mnt)) throw new Error(`${mnt} is still mounted`);
    show(`unmounted; slicefs exited with ${code}`);
    daemon = undefined;
    step(ok ? 'demo OK: the counts through the mount and through view match the local files' : 'demo FAILED: counts differ');
    return ok && code === 0 ? 0 : 1;
  } finally {
    if (daemon) {
      await daemon.stop().catch(() => {});
      spawnSync('fusermount', ['-uz', join(work, 'mnt')]);
    }
    await server.close();
    await rm(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`demo failed: ${err.message}\n`);
    process.exit(1);
  },
);
