/**
 * `slicefs view` and `slicefs download` (the CLI, as a user runs it) against hostile servers
 * (test/helpers/hostile-modes.ts: HTML and JSON answers, gzip bytes, lying lengths and ranges, an
 * endless body, trickled headers, redirect chains, loops, other origins, expiring presigned
 * targets, a token that stops working): every mode gives the right bytes (samtools is the oracle
 * for view) or exit 1 with one clear line naming the cause and no stack trace, within the run's
 * time limit. `--verbose` shows a redirect chain without its query strings.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, runSlicefs, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { hostileModes, type Expect, type HostileMode } from '../helpers/hostile-modes.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

let server: FixtureServer;
let other: FixtureServer;
let sample: SampleData;
let bam: Buffer;
let work: string;
let modes: HostileMode[];

const REGION = 'chr1:100000-140000';
/** Bounds every run: a mode that hangs fails the test instead of the suite. */
const RUN_LIMIT_MS = 60_000;

before(async () => {
  sample = await ensureSampleData();
  bam = await readFile(sample.bam);
  const bai = await readFile(sample.bai);
  server = await FixtureServer.start();
  other = await FixtureServer.start();
  modes = hostileModes(other.origin);
  // Each command reads its own copy (faults count requests), data and index alike misbehaving.
  for (const command of ['view', 'download']) {
    for (const m of modes) {
      for (const [name, data] of [['x.bam', bam], ['x.bam.bai', bai]] as const) {
        server.addFile(`/${command}/${m.name}/${name}`, data, { fault: m.fault });
        other.addFile(`/${command}/${m.name}/${name}`, data, { fault: m.onOther });
      }
    }
  }
  work = await tempDir('slicefs-hostile-');
});
after(async () => {
  await server?.close();
  await other?.close();
  await cleanup(work);
});

/** Runs the CLI with a fresh disk cache, bounded in time. */
async function slicefs(args: string[]) {
  const cache = await tempDir('slicefs-hostile-cache-');
  const run = runSlicefs(args, { XDG_CACHE_HOME: cache });
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`slicefs ${args.join(' ')} ran longer than ${RUN_LIMIT_MS} ms`)), RUN_LIMIT_MS);
  });
  try {
    return await Promise.race([run, limit]);
  } finally {
    clearTimeout(timer);
    await cleanup(cache);
  }
}

/** Exit 1, a line `slicefs: <prefix>` naming the cause, and nothing that looks like a stack trace. */
function assertClearError(mode: string, r: { code: number | null; stderr: string }, prefix: RegExp, want: Expect & { error: RegExp }): void {
  assert.equal(r.code, 1, `${mode}: exit code; stderr:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `${mode}: a stack trace`);
  assert.doesNotMatch(r.stderr, /X-Amz-Signature|SECRET/, `${mode}: a secret in the output`);
  const lines = r.stderr.split('\n').filter((l) => prefix.test(l));
  assert.equal(lines.length, 1, `${mode}: one error line; stderr:\n${r.stderr}`);
  assert.match(lines[0], want.error, `${mode}: the cause`);
}

test('view: every hostile mode gives the records samtools gives, or one clear error', async () => {
  const want = (await samtools(['view', sample.bam, REGION])).stdout;
  const failures: string[] = [];
  for (const m of modes) {
    const r = await slicefs(['view', '--url', server.url(`/view/${m.name}/x.bam`), '-q', REGION, '--no-header', '--timeout', '10']);
    try {
      if ('bytes' in m.expect) {
        assert.equal(r.code, 0, `${m.name}: exit code; stderr:\n${r.stderr}`);
        assert.ok(r.stdout.equals(want), `${m.name}: the records differ from samtools' (${r.stdout.length} bytes, want ${want.length})`);
      } else {
        assertClearError(m.name, r, /^slicefs: error: /, m.expect);
        assert.equal(r.stdout.length, 0, `${m.name}: no records`);
      }
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  assert.deepEqual(failures, []);
});

test('download: every hostile mode gives the file byte for byte, or one clear failure and no file', async () => {
  const failures: string[] = [];
  for (const m of modes) {
    const out = join(work, `download-${m.name}`);
    const r = await slicefs(['download', '--url', server.url(`/download/${m.name}/x.bam`), '-d', out, '--no-index', '--part-size', '512K', '--timeout', '10', '-q']);
    const file = await readFile(join(out, 'x.bam')).catch(() => undefined);
    try {
      if ('bytes' in m.expect) {
        assert.equal(r.code, 0, `${m.name}: exit code; stderr:\n${r.stderr}`);
        assert.ok(file?.equals(bam), `${m.name}: the file differs (${file?.length} bytes)`);
      } else {
        assertClearError(m.name, r, /^slicefs: error: x\.bam: /, m.expect);
        assert.equal(file, undefined, `${m.name}: a file was kept`);
      }
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  assert.deepEqual(failures, []);
});

test('--verbose shows a redirect chain without query strings', async () => {
  server.addFile('/verbose/x.bam', bam, { fault: { kind: 'presigned-redirect', uses: 100, to: other.origin } });
  other.addFile('/verbose/x.bam', bam, { fault: { kind: 'presigned-redirect', uses: 100 } });
  const out = join(work, 'verbose');
  const r = await slicefs(['download', '--url', server.url('/verbose/x.bam'), '-d', out, '--no-index', '--verbose', '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(out, 'x.bam'))).equals(bam));
  assert.match(r.stderr, new RegExp(`redirect 302: ${server.url('/verbose/x.bam')} → ${other.origin}/__store/verbose/x\\.bam\\?…`));
  assert.doesNotMatch(r.stderr, /X-Amz-(Signature|Date|Expires)/);
});
