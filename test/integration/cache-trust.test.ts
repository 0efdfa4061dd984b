/**
 * The caches trust no directory another user controls (util/safe-fs.ts `owned` roots,
 * cache/file-cache.ts, cache/disk-tier.ts). A cache directory holding planted entries (an index
 * entry whose bytes are another BAM's index, a header entry with a planted @CO line, disk tier
 * chunks whose bytes are flipped, all with valid checksums: the checksums are unkeyed) is
 * offered to `view` as another user would leave it: owned by uid 65534, writable by others, or
 * behind a symlink; and, within the user's own directory, entries that belong to 65534. Each time
 * the view writes the right records (the ones of a view with no cache, equal to samtools), says
 * one warning, and, where the directory is refused, leaves every planted file as it was: same
 * bytes, same mtime, same atime (on a relatime mount a read would move an atime this old), and
 * nothing added.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, chown, cp, lstat, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { CHUNK_HEADER_BYTES, sealChunk } from '../../src/cache/chunk-file.js';
import { DEFAULT_DISK_CACHE } from '../../src/config.js';
import { cleanup, runSlicefs, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

const NOBODY = 65534;
/** A time far from now: any read of a planted file on a relatime mount moves its atime off it. */
const OLD = new Date('2001-02-03T04:05:06Z');
const REGION = 'chr1:1-200000';

let server: FixtureServer;
let sample: SampleData;
let work: string;
let bamUrl: string;
/** The view's output with no cache at all: what every run below must write. */
let want: Buffer;
/** A cache directory filled by a normal run, then altered as an attacker would. */
let planted: string;

before(async () => {
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  for (const f of [sample.bam, sample.bai]) server.addFile(`/d/${basename(f)}`, await readFile(f));
  bamUrl = server.url(`/d/${basename(sample.bam)}`);
  work = await tempDir('slicefs-cache-trust-');
  // A root the other user can enter, so that paths under it stay reachable after the chowns.
  await chmod(work, 0o755);

  const plain = await runSlicefs(['view', '--url', bamUrl, '-q', REGION, '--no-PG', '--no-index-cache', '--disk-cache-size', '0']);
  assert.equal(plain.code, 0, plain.stderr);
  want = plain.stdout;
  const st = await samtools(['view', '-h', '--no-PG', sample.bam, REGION]);
  assert.equal(want.toString('latin1'), st.stdout.toString('latin1'), 'the view with no cache equals samtools');
  assert.ok(want.toString('latin1').split('\n').filter((l) => l !== '' && !l.startsWith('@')).length > 10, 'records');

  // A cache filled by a normal run: the index entry, the header entry, the data's chunks.
  planted = join(work, 'planted');
  const fill = await runSlicefs(['view', '--url', bamUrl, '-q', REGION, '--no-PG', '--cache-dir', planted]);
  assert.equal(fill.code, 0, fill.stderr);
  assert.ok(fill.stdout.equals(want));

  // What would change the output if it were read: the index of a BAM without reads (same
  // header), the start of a BAM with a planted @CO line, chunks with every byte flipped.
  const empty = join(work, 'empty.bam');
  assert.equal((await samtools(['view', '-H', '-b', '-o', empty, sample.bam])).code, 0);
  assert.equal((await samtools(['index', empty])).code, 0);
  const emptyBai = await readFile(`${empty}.bai`);
  const header = (await samtools(['view', '-H', sample.bam])).stdout.toString('latin1');
  await writeFile(join(work, 'planted.sam'), `${header}@CO\tPLANTED\n`);
  const reheadered = (await samtools(['reheader', join(work, 'planted.sam'), sample.bam])).stdout;
  assert.ok(reheadered.length > 1000);
  const realBai = await readFile(sample.bai);
  const realHead = (await readFile(sample.bam)).subarray(0, 128 * 1024);
  let entries = 0;
  for (const name of await readdir(join(planted, 'index'), { recursive: true })) {
    const p = join(planted, 'index', name);
    if (!(await stat(p)).isFile()) continue;
    const file = await readFile(p);
    // Entries are "SFI1", SHA-256 of the key, SHA-256 of the bytes, the bytes (cache/file-cache.ts);
    // before that format, the bytes alone: a planted entry is written in the format that is read.
    const framed = file.subarray(0, 4).toString('latin1') === 'SFI1';
    const bytes = framed ? file.subarray(68) : file;
    const fake = bytes.equals(realBai) ? emptyBai : bytes.equals(realHead) ? reheadered.subarray(0, 128 * 1024) : undefined;
    assert.ok(fake, `${name}: an index or a header entry`);
    await writeFile(p, framed ? Buffer.concat([file.subarray(0, 36), createHash('sha256').update(fake).digest(), fake]) : fake);
    entries++;
  }
  assert.equal(entries, 2, 'the index and the header were cached');
  let chunks = 0;
  const objects = join(planted, 'blocks', 'objects');
  for (const key of await readdir(objects)) {
    for (const name of (await readdir(join(objects, key))).filter((n) => /^c\d+$/.test(n))) {
      const p = join(objects, key, name);
      const record = await readFile(p);
      for (let i = CHUNK_HEADER_BYTES; i < record.length; i++) record[i] ^= 0xff;
      await sealChunk(record, DEFAULT_DISK_CACHE.chunkBytes, record.readUInt32BE(40), record.readUInt32BE(44), Buffer.from(key, 'hex'));
      await writeFile(p, record);
      chunks++;
    }
  }
  assert.ok(chunks > 0, 'chunks of the data were cached');
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

interface FileState {
  size: number;
  mtimeMs: number;
  atimeMs: number;
  uid: number;
}

/** Every file under `dir` with its size, times and owner (stat only: nothing is read). */
async function snapshot(dir: string): Promise<Map<string, FileState>> {
  const out = new Map<string, FileState>();
  for (const name of await readdir(dir, { recursive: true })) {
    const s = await lstat(join(dir, name));
    if (s.isFile()) out.set(name, { size: s.size, mtimeMs: s.mtimeMs, atimeMs: s.atimeMs, uid: s.uid });
  }
  return out;
}

/** Every file's bytes (read after the snapshots: reading moves atimes). */
async function contents(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of await readdir(dir, { recursive: true })) {
    const p = join(dir, name);
    if ((await lstat(p)).isFile()) out.set(name, createHash('sha256').update(await readFile(p)).digest('hex'));
  }
  return out;
}

/** A copy of the planted cache, every file's times set far back. */
async function plantedCopy(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(planted, dir, { recursive: true });
  for (const entry of await readdir(dir, { recursive: true })) await utimes(join(dir, entry), OLD, OLD);
  return dir;
}

async function chownTree(dir: string, self: boolean): Promise<void> {
  if (self) await chown(dir, NOBODY, NOBODY);
  for (const entry of await readdir(dir, { recursive: true })) await chown(join(dir, entry), NOBODY, NOBODY);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function viewWith(cacheDir: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return runSlicefs(['view', '--url', bamUrl, '-q', REGION, '--no-PG', '--cache-dir', cacheDir]);
}

test('a cache directory another user owns, one others can write, or a symlink: refused with one warning, the right records, nothing planted read', async () => {
  const cases: { name: string; setup: (dir: string) => Promise<string>; reason: (dir: string, given: string) => RegExp }[] = [
    {
      name: 'owned by uid 65534',
      setup: async (dir) => (await chownTree(dir, true), dir),
      reason: (dir) => new RegExp(`${esc(dir)} belongs to uid ${NOBODY}, not to this user \\(uid 0\\); a cache must be the user's alone`),
    },
    {
      name: 'writable by others (0777), its entries planted by uid 65534',
      setup: async (dir) => {
        await chownTree(dir, false);
        await chmod(dir, 0o777);
        return dir;
      },
      reason: (dir) => new RegExp(`${esc(dir)} is writable by others \\(mode 777\\); a cache must be the user's alone`),
    },
    {
      name: 'a symlink to a directory of uid 65534',
      setup: async (dir) => {
        await chownTree(dir, true);
        const link = `${dir}-link`;
        await symlink(dir, link);
        return link;
      },
      reason: (_dir, given) => new RegExp(`${esc(given)} is a symbolic link; a cache directory must be a directory of the user's, not a link to one`),
    },
  ];
  for (const c of cases) {
    const dir = await plantedCopy(c.name.replace(/\W+/g, '-'));
    const given = await c.setup(dir);
    const before = await snapshot(dir);
    const r = await viewWith(given);
    assert.equal(r.code, 0, `${c.name}: ${r.stderr}`);
    assert.ok(r.stdout.equals(want), `${c.name}: the right records, not the planted ones`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${c.name}: one warning: ${r.stderr}`);
    assert.match(lines[0], new RegExp(`^slicefs: warning: cannot use the cache directory ${esc(given)} \\(`), c.name);
    assert.match(lines[0], c.reason(dir, given), c.name);
    assert.match(lines[0], /\); going on without it$/, c.name);
    assert.deepEqual(await snapshot(dir), before, `${c.name}: every planted file as it was (size, mtime, atime, owner), nothing added`);
    const planted0 = await contents(planted);
    assert.deepEqual(await contents(dir), planted0, `${c.name}: the planted bytes untouched`);
  }
});

test("entries of another user inside the user's own cache directory are never read", async () => {
  const dir = await plantedCopy('foreign-entries');
  // The directories are the user's (0700); the files in them belong to uid 65534.
  for (const entry of await readdir(dir, { recursive: true })) {
    const p = join(dir, entry);
    if ((await lstat(p)).isFile()) await chown(p, NOBODY, NOBODY);
  }
  const indexBefore = await snapshot(join(dir, 'index'));
  const r = await viewWith(dir);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.equals(want), 'the right records, not the planted ones');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 2, r.stderr);
  // The index cache stops at the first foreign entry; the disk tier ignores each foreign chunk
  // (and replaces it by the one it fetches: the directory is the user's).
  assert.match(r.stderr, new RegExp(`slicefs: warning: cannot use the cache directory ${esc(dir)} \\(${esc(dir)}/index/[0-9a-f]{2}/[0-9a-f]{64} belongs to uid ${NOBODY}, not to this user \\(uid 0\\); a cache must be the user's alone\\); going on without it`));
  assert.match(r.stderr, new RegExp(`slicefs: warning: a cached chunk of ${esc(bamUrl)} was ignored \\(.*/blocks/objects/[0-9a-f]{64}/c\\d+ belongs to uid ${NOBODY}, not to this user \\(uid 0\\); a cache must be the user's alone\\)`));
  assert.deepEqual(await snapshot(join(dir, 'index')), indexBefore, 'the planted index entries untouched and unread');
});

test("the user's own cache directory is still used: a second view reads the index and header from it", async () => {
  const dir = join(work, 'own');
  await mkdir(dir, { mode: 0o700 });
  const first = await viewWith(dir);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stderr, '');
  server.resetLog();
  const second = await viewWith(dir);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stderr, '');
  assert.ok(second.stdout.equals(want));
  assert.equal(server.count({ path: `/d/${basename(sample.bai)}`, method: 'GET' }), 0, 'the index came from the cache');
});
