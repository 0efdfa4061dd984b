/**
 * A hostile BAM (issue 15, finding 15): a record whose block_size is patched to −4 made the record
 * loop stop advancing (`view` grew to 2.5 GB in 8 s), a huge one concatenated whole blocks. Each
 * patched length (−4, 0, 31, 2^31−1, and one that runs just past the end of the data) must end
 * `view` with one `slicefs: error:` line naming the file, the compressed offset of the block and
 * the length, exit 1, within the test's timeout and under 300 MB of peak memory: from a local file
 * and from the fixture server.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { inflatedSize, loadBam, storedBam, withRecordLength, type RecordAt } from '../helpers/hostile-bam.js';
import { ensureSampleData } from '../helpers/sample-data.js';

const REPORT_RSS = fileURLToPath(new URL('../helpers/report-rss.js', import.meta.url));
/** Peak memory allowed for a view of a corrupt file (a plain view of this sample peaks near 100 MB). */
const MAX_RSS_KB = 300 * 1024;
/** The region queried: it holds the patched record. */
const REGION = 'chr1:140000-160000';

let work: string;
let server: FixtureServer;
let target: RecordAt;
const cases: { name: string; length: number; blockPos: number; file: string; message: RegExp }[] = [];

before(async () => {
  work = await tempDir('slicefs-hostile-');
  const sample = await ensureSampleData();
  const stored = await storedBam(sample.bam, work);
  const { bytes, records } = await loadBam(stored);
  target = records.find((r) => r.tid === 0 && r.pos >= 150_000)!;
  const bai = await readFile(`${stored}.bai`);
  // Just past the end: the record would need one byte more than the rest of the inflated stream.
  const pastEnd = inflatedSize(bytes) - target.offset - 4 + 1;
  const lengths: [string, number, RegExp][] = [
    ['minus4', -4, /length -4 \(under the 32 bytes of its fixed fields\)/],
    ['zero', 0, /length 0 \(under the 32 bytes/],
    ['l31', 31, /length 31 \(under the 32 bytes/],
    ['max', 2 ** 31 - 1, /length 2147483647 \(over the 64 MiB a record may have\)/],
    ['pastend', pastEnd, /truncated BAM record at compressed offset \d+: the file ends first/],
  ];
  server = await FixtureServer.start();
  for (const [name, length, message] of lengths) {
    const { bam, blockPos } = withRecordLength(bytes, target, length);
    const file = join(work, `${name}.bam`);
    await writeFile(file, bam);
    await writeFile(`${file}.bai`, bai);
    server.addFile(`/h/${name}.bam`, bam);
    server.addFile(`/h/${name}.bam.bai`, bai);
    cases.push({ name, length, blockPos, file, message });
  }
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** Runs `slicefs view` on `input` with a time bound, and returns its result and peak memory. */
async function viewBounded(input: string[]): Promise<{ code: number | null; stderr: string; rssKb: number }> {
  const rssFile = join(work, 'rss');
  await writeFile(rssFile, '');
  const r = await run(process.execPath, ['--import', REPORT_RSS, BIN, 'view', '--no-index-cache', ...input, '-q', REGION], {
    timeoutMs: 30_000,
    env: { ...process.env, SLICEFS_TEST_RSS_FILE: rssFile, SLICEFS_CACHE_PROXY: undefined },
  });
  return { code: r.code, stderr: r.stderr, rssKb: Number(await readFile(rssFile, 'utf8')) };
}

test('the unpatched file views cleanly (the patch is what the errors are about)', async () => {
  const r = await viewBounded(['--input-file', join(work, 'stored.bam')]);
  assert.equal(r.code, 0, r.stderr);
});

for (const where of ['local file', 'HTTP'] as const) {
  test(`a record length of -4, 0, 31, 2^31-1 or past the end (${where}): one clear line, exit 1, bounded time and memory`, async () => {
    for (const c of cases) {
      const input = where === 'HTTP' ? ['--url', server.url(`/h/${c.name}.bam`)] : ['--input-file', c.file];
      const r = await viewBounded(input);
      assert.equal(r.code, 1, `${c.name}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${c.name}: one line: ${r.stderr}`);
      assert.match(lines[0], new RegExp(`^slicefs: error: \\S*${c.name}\\.bam: `), c.name);
      assert.match(lines[0], c.message, c.name);
      assert.match(lines[0], new RegExp(`at compressed offset ${c.blockPos}: `), c.name);
      assert.ok(r.rssKb > 0 && r.rssKb < MAX_RSS_KB, `${c.name}: peak RSS ${r.rssKb} KiB`);
    }
  });
}
