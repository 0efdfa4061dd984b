/**
 * A bad BGZF block among the blocks being inflated ahead of the record parser (in batches, on
 * libuv's thread pool: src/view/bgzf.ts). Over HTTP from the fixture server, `view` of a region
 * whose blocks hold a block that does not inflate, a block whose CRC32 does not match its bytes,
 * or a file cut inside a block must end with one `slicefs: error:` line naming the file and that
 * block's offset, exit 1; what it printed before must be the start of samtools's output for the
 * sound file, and hold no record with a byte in the bad block or after it (nothing out of order).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { runSlicefs } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { ensureSampleData, samtools } from '../helpers/sample-data.js';

/** The region viewed: its blocks are many batches of inflating. */
const REGION = 'chr1';
/** The bad block: the 21st of the file, inside chr1's records, with 20 blocks of records before it. */
const BAD = 20;

let server: FixtureServer;
let bam: Buffer;
let bai: Buffer;
/** samtools's SAM text of REGION in the sound file, as lines. */
let want: string[];
/** The BGZF blocks of the file: where each starts and its size. */
let blocks: { pos: number; size: number }[];
/** How many of REGION's records lie wholly in the blocks before the bad one. */
let before_: number;

before(async () => {
  const sample = await ensureSampleData();
  bam = await readFile(sample.bam);
  bai = await readFile(sample.bai);
  want = (await samtools(['view', sample.bam, REGION])).stdout.toString('latin1').split('\n').slice(0, -1);
  blocks = [];
  for (let p = 0; p < bam.length; p += blocks.at(-1)!.size) blocks.push({ pos: p, size: bam.readUInt16LE(p + 16) + 1 });
  assert.ok(blocks.length > BAD + 10, `the sample has ${blocks.length} blocks`);
  // Records of chr1 (refID 0) that end before the bad block's first inflated byte.
  let badStart = 0;
  for (let i = 0; i < BAD; i++) badStart += bam.readUInt32LE(blocks[i].pos + blocks[i].size - 4);
  const stream = gunzipSync(bam);
  let p = 8 + stream.readInt32LE(4);
  const nRef = stream.readInt32LE(p);
  p += 4;
  for (let i = 0; i < nRef; i++) p += 8 + stream.readInt32LE(p);
  before_ = 0;
  for (let size: number; p < stream.length; p += 4 + size) {
    size = stream.readInt32LE(p);
    if (p + 4 + size <= badStart && stream.readInt32LE(p + 4) === 0) before_++;
  }
  assert.ok(before_ > 1000 && before_ < want.length - 1000, `${before_} of ${want.length} records before the bad block`);
  server = await FixtureServer.start();
});
after(async () => {
  await server?.close();
});

/** Serves `file` with the sound index and views REGION of it. */
async function viewOf(name: string, file: Buffer): Promise<{ code: number | null; lines: string[]; stderr: string }> {
  server.addFile(`/e/${name}.bam`, file);
  server.addFile(`/e/${name}.bam.bai`, bai);
  const r = await runSlicefs(['view', '--no-index-cache', '--url', server.url(`/e/${name}.bam`), '-q', REGION, '--no-header']);
  const text = r.stdout.toString('latin1');
  assert.ok(text.length === 0 || text.endsWith('\n'), `${name}: the output ends with a whole line`);
  return { code: r.code, lines: text.split('\n').slice(0, -1), stderr: r.stderr };
}

/** The output is one error line naming the file and `message`; what was printed is the sound file's start, before the bad block. */
function assertStopsAtBadBlock(name: string, r: { code: number | null; lines: string[]; stderr: string }, message: RegExp): void {
  assert.equal(r.code, 1, `${name}: ${r.stderr}`);
  const errLines = r.stderr.trimEnd().split('\n');
  assert.equal(errLines.length, 1, `${name}: one line: ${r.stderr}`);
  assert.match(errLines[0], new RegExp(`^slicefs: error: \\S*${name}\\.bam: `), name);
  assert.match(errLines[0], message, name);
  assert.ok(r.lines.length > 0, `${name}: the records before the bad block were printed`);
  assert.ok(r.lines.length <= before_, `${name}: ${r.lines.length} records printed, ${before_} lie before the bad block`);
  assert.deepEqual(r.lines, want.slice(0, r.lines.length), `${name}: the records printed are samtools's, in order`);
}

test('the sound file views as samtools views it (the errors below are the patches)', async () => {
  const r = await viewOf('sound', bam);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.lines, want);
});

test('a block that does not inflate, among blocks inflated ahead: named, and nothing after it printed', async () => {
  const bad = Buffer.from(bam);
  const { pos } = blocks[BAD];
  // Its deflate stream's first bytes made a block of the reserved type 3 (BTYPE 11): invalid.
  bad.fill(0xff, pos + 18, pos + 26);
  assertStopsAtBadBlock('inflate', await viewOf('inflate', bad), new RegExp(`corrupt BGZF block at byte ${pos}: `));
});

test('a block whose CRC32 does not match its bytes: named, and nothing after it printed', async () => {
  const bad = Buffer.from(bam);
  const { pos, size } = blocks[BAD];
  bad.writeUInt32LE(bad.readUInt32LE(pos + size - 8) ^ 1, pos + size - 8);
  assertStopsAtBadBlock('crc', await viewOf('crc', bad), new RegExp(`corrupt BGZF block at byte ${pos}: CRC32 mismatch`));
});

test('uncompressed BAM output (-u inflates every block it copies): a block whose CRC32 does not match is named, exit 1', async () => {
  const bad = Buffer.from(bam);
  const { pos, size } = blocks[BAD];
  bad.writeUInt32LE(bad.readUInt32LE(pos + size - 8) ^ 1, pos + size - 8);
  server.addFile('/e/crc-u.bam', bad);
  server.addFile('/e/crc-u.bam.bai', bai);
  const r = await runSlicefs(['view', '--no-index-cache', '--url', server.url('/e/crc-u.bam'), '-q', REGION, '-u']);
  assert.equal(r.code, 1, r.stderr);
  const errLines = r.stderr.trimEnd().split('\n');
  assert.equal(errLines.length, 1, `one line: ${r.stderr}`);
  assert.match(errLines[0], new RegExp(`^slicefs: error: \\S*crc-u\\.bam: corrupt BGZF block at byte ${pos}: CRC32 mismatch`));
});

test('a file cut inside a block: named, and nothing after it printed', async () => {
  const { pos, size } = blocks[BAD];
  const cut = bam.subarray(0, pos + (size >> 1));
  assertStopsAtBadBlock('cut', await viewOf('cut', cut), new RegExp(`truncated BGZF block at byte ${pos}`));
});
