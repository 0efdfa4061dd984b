/**
 * `slicefs view` of a BAM stops where htslib's iterator stops: at the first record that starts past
 * every region (an indexed BAM is sorted by position). The index also names chunks of larger bins
 * further on in the file (reads that span a bin boundary, all starting after the region here); a
 * small view that inflated and parsed them spent most of its time on records it could not keep.
 * Shown on a copy of the sample BAM whose first block of such a chunk is destroyed: samtools reads
 * the region from the copy without an error, so slicefs must give the same records, not an error.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BamFile } from '@gmod/bam';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

let sample: SampleData;
let work: string;

before(async () => {
  sample = await ensureSampleData();
  work = await tempDir('slicefs-view-stop-');
});
after(async () => {
  await cleanup(work);
});

test('a view stops at the first record past the region: a damaged chunk further on is never read, as with samtools', async () => {
  const region = { tid: 0, start: 10_000, end: 11_000 };
  const name = sample.contigs[region.tid].name;
  const text = `${name}:${region.start + 1}-${region.end}`;
  // The chunks the index names for the region, by the block they start at.
  const index = new BamFile({ bamPath: sample.bam, baiPath: sample.bai }).index!;
  const chunks = await index.blocksForRange(region.tid, region.start, region.end);
  const starts = [...new Set(chunks.map((c) => c.minv.blockPosition))].sort((a, b) => a - b);
  const want = await samtools(['view', sample.bam, text]);
  assert.equal(want.code, 0, want.stderr);
  assert.ok(want.stdout.length > 0, `no records in ${text}`);

  const bam = await readFile(sample.bam);
  const copy = join(work, 'damaged.bam');
  await copyFile(sample.bai, `${copy}.bai`);
  // The first chunk's start that samtools never reads: its block's gzip magic zeroed, samtools
  // still prints the same records from the copy.
  let damagedAt: number | undefined;
  for (const at of starts.slice(1)) {
    const damaged = Buffer.from(bam);
    damaged.fill(0, at, at + 4);
    await writeFile(copy, damaged);
    const got = await samtools(['view', copy, text]);
    if (got.code === 0 && got.stdout.equals(want.stdout)) {
      damagedAt = at;
      break;
    }
  }
  assert.ok(damagedAt !== undefined, `the sample's index names no chunk past ${text} (chunks at ${starts.join(', ')})`);

  const r = await run(process.execPath, [BIN, 'view', '--cache-dir', join(work, 'cache'), '--input-file', copy, '-q', text, '--no-header'], { timeoutMs: 60_000 });
  assert.equal(r.stderr, '', `block ${damagedAt} was read`);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.toString('latin1'), want.stdout.toString('latin1'));
});
