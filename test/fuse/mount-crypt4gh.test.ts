/**
 * Crypt4GH through the mount: every positive reference vector served over HTTP shows its plaintext
 * name and size and reads back to its SHA-256 (a header served apart too); a block that fails its
 * MAC is EIO while the blocks around it still read; a file for another key stops the mount with one
 * line; random reads around segment edges and edit-list boundaries equal the plaintext; samtools on
 * an encrypted BAM (and its encrypted index) through the mount equals samtools on the plaintext.
 */
import assert from 'node:assert/strict';
import { chmod, copyFile, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateKeyPair, encodePrivateKey } from '../../src/crypt4gh/keys.js';
import { SEGMENT_SIZE } from '../../src/crypt4gh/segments.js';
import { encryptC4gh } from '../helpers/c4gh-encrypt.js';
import { index, plaintext, privateKeyFile, sha256, VECTORS } from '../helpers/c4gh-vectors.js';
import { cleanup, mounted, requireFuse, run, startDaemon, tempDir, writeManifest } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom, seededBytes } from '../helpers/random.js';
import { ensureSampleData, samtools, type SampleData } from '../helpers/sample-data.js';

let work: string;
let server: FixtureServer;
let sample: SampleData;
const ALICE = { key: privateKeyFile('keys/alice.sec'), pass: 'alice-secret-phrase' };

before(async () => {
  requireFuse();
  work = await tempDir('slicefs-c4gh-mount-');
  server = await FixtureServer.start();
  sample = await ensureSampleData();
  for (const f of index.files) server.addFile(`/v/${f.file}`, await readFile(join(VECTORS, f.file)));
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

test('every vector for alice: plaintext names and sizes, contents by SHA-256 (a header served apart too)', async () => {
  const positives = index.files.filter((x) => x.expect?.plaintext_sha256 && x.opens_with!.includes('alice'));
  const rows: Record<string, string>[] = positives.map((f) => ({ url: server.url(`/v/${f.file}`) }));
  rows.push({ url: server.url(`/v/${index.split.body}`), path: 'split/p65537', header_url: server.url(`/v/${index.split.headers.alice}`) });
  const manifest = await writeManifest(work, rows);
  const mnt = join(work, 'mnt');
  const d = await startDaemon(manifest, mnt, ['--private-key', ALICE.key], { C4GH_PASSPHRASE: ALICE.pass, C4GH_SECRET_KEY: undefined });
  try {
    const names = await readdir(mnt);
    for (const f of positives) {
      const name = f.file.split('/').at(-1)!.slice(0, -5);
      assert.ok(names.includes(name), `${name} in ${names.join(' ')}`);
      assert.equal((await stat(join(mnt, name))).size, f.expect!.plaintext_size, name);
      assert.equal(sha256(await readFile(join(mnt, name))), f.expect!.plaintext_sha256, name);
    }
    assert.equal(sha256(await readFile(join(mnt, 'split/p65537'))), index.split.expect.plaintext_sha256);

    const stats = await d.stats();
    assert.ok(stats.requests > 0);
  } finally {
    assert.equal(await d.stop(), 0, d.stderr());
  }
  assert.doesNotMatch(d.stderr(), /alice-secret-phrase/);
});

test('a block that fails its MAC is EIO; the blocks after it still read (64 KiB cache blocks)', async () => {
  const manifest = await writeManifest(work, [{ url: server.url('/v/bad/p200000.alice.flipped-data.c4gh') }]);
  const mnt = join(work, 'mnt-bad');
  const d = await startDaemon(manifest, mnt, ['--private-key', privateKeyFile('keys/alice.nocrypt.sec'), '--block-size', '64K'], { C4GH_SECRET_KEY: undefined });
  try {
    const bad = join(mnt, 'p200000.alice.flipped-data');
    assert.equal((await stat(bad)).size, 200_000);
    const fh = await open(bad, 'r');
    try {
      // Segments 2 and 3 are intact: random access reads them (a read goes forward, never into segment 1).
      const tail = Buffer.alloc(200_000 - 2 * SEGMENT_SIZE);
      const { bytesRead } = await fh.read(tail, 0, tail.length, 2 * SEGMENT_SIZE);
      assert.equal(bytesRead, tail.length);
      assert.ok(tail.equals(plaintext(200_000).subarray(2 * SEGMENT_SIZE)), 'segments 2–3');
      await assert.rejects(fh.read(Buffer.alloc(100), 0, 100, 66_536), { code: 'EIO' });
    } finally {
      await fh.close();
    }
    // A whole-file read stops with the error (Node's readFile takes the short read before it as
    // the end of the file, so cat is the witness).
    const cat = await run('cat', [bad]);
    assert.notEqual(cat.code, 0);
    assert.match(cat.stderr, /Input\/output error/);
    assert.ok(cat.stdout.length <= SEGMENT_SIZE, 'nothing of or after the bad segment');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test("a file for another key stops the mount with one clear line", async () => {
  const manifest = await writeManifest(join(work), [{ url: server.url('/v/bad/p1.bob-only.c4gh') }]);
  await assert.rejects(startDaemon(manifest, join(work, 'mnt-bob'), ['--private-key', privateKeyFile('keys/alice.nocrypt.sec')]), (err: Error) => {
    assert.match(err.message, /error: \S+manifest\.tsv:2: p1\.bob-only: no key opens .*bob-only.*: it was not encrypted for key 861d636a/);
    return true;
  });
  const nokey = await writeManifest(join(work), [{ url: server.url('/v/enc/p1.alice.c4gh') }]);
  await assert.rejects(startDaemon(nokey, join(work, 'mnt-nokey'), [], { C4GH_SECRET_KEY: undefined }), /is Crypt4GH-encrypted: give --private-key FILE/);
});

test('a private key others can read stops the mount before it mounts: one line, exit 2', async () => {
  const manifest = await writeManifest(join(work), [{ url: server.url('/v/enc/p1.alice.c4gh'), path: 'p1', size: 153 }]);
  // Sized (the server's size): nothing is opened at mount time, so only the check at start refuses the key.
  const loose = join(work, 'loose.sec');
  await copyFile(privateKeyFile('keys/alice.nocrypt.sec'), loose);
  await chmod(loose, 0o644);
  const mnt = join(work, 'mnt-loose');
  await assert.rejects(startDaemon(manifest, mnt, ['--private-key', loose]), (err: Error) => {
    assert.match(err.message, /slicefs: error: --private-key .*loose\.sec: readable by others \(mode 644\); chmod 600 it/);
    return true;
  });
  assert.equal(await mounted(mnt), false);
});

test('random reads around segment edges and edit-list boundaries equal the plaintext (seeded)', async () => {
  const pair = generateKeyPair();
  const keyFile = join(work, 'prop.sec');
  await writeFile(keyFile, await encodePrivateKey(pair, undefined), { mode: 0o600 });
  const plain = seededBytes(81, 5 * SEGMENT_SIZE + 12_345);
  const editList = [1000, 3 * SEGMENT_SIZE, 7, 2 * SEGMENT_SIZE - 100];
  const visible = Buffer.concat([plain.subarray(1000, 1000 + 3 * SEGMENT_SIZE), plain.subarray(1007 + 3 * SEGMENT_SIZE, 1007 + 5 * SEGMENT_SIZE - 100)]);
  server.addFile('/p/plain.bin.c4gh', encryptC4gh(plain, [pair.public]).file);
  server.addFile('/p/edited.bin.c4gh', encryptC4gh(plain, [pair.public], { editList }).file);
  const manifest = await writeManifest(work, [{ url: server.url('/p/plain.bin.c4gh') }, { url: server.url('/p/edited.bin.c4gh') }]);
  const mnt = join(work, 'mnt-prop');
  // A small cache, so that reads go to the network and the decryption, not to earlier blocks.
  const d = await startDaemon(manifest, mnt, ['--private-key', keyFile, '--block-size', '64K', '--cache-size', '256K'], { C4GH_SECRET_KEY: undefined });
  try {
    const rnd = new SeededRandom(82);
    for (const [name, want] of [['plain.bin', plain], ['edited.bin', visible]] as const) {
      assert.equal((await stat(join(mnt, name))).size, want.length);
      const edges = [0, SEGMENT_SIZE, 2 * SEGMENT_SIZE, 3 * SEGMENT_SIZE, 3 * SEGMENT_SIZE - 1000, want.length];
      const fh = await open(join(mnt, name), 'r');
      try {
        for (let i = 0; i < 150; i++) {
          const edge = edges[rnd.int(0, edges.length - 1)];
          const pos = Math.max(0, Math.min(want.length - 1, edge + rnd.int(-100, 100)));
          const len = rnd.int(1, i % 3 === 0 ? 3 * SEGMENT_SIZE : 300);
          const buf = Buffer.alloc(len);
          const { bytesRead } = await fh.read(buf, 0, len, pos);
          const expect = want.subarray(pos, pos + len);
          assert.equal(bytesRead, expect.length, `${name} @${pos}+${len}`);
          assert.ok(buf.subarray(0, bytesRead).equals(expect), `${name} @${pos}+${len}`);
        }
      } finally {
        await fh.close();
      }
    }
  } finally {
    await d.stop();
  }
});

test('samtools on an encrypted BAM and its encrypted index through the mount equals samtools on the plaintext', async () => {
  const pair = generateKeyPair();
  const keyFile = join(work, 'bam.sec');
  await writeFile(keyFile, await encodePrivateKey(pair, undefined), { mode: 0o600 });
  server.addFile('/b/sample.bam.c4gh', encryptC4gh(await readFile(sample.bam), [pair.public]).file);
  server.addFile('/b/sample.bam.bai.c4gh', encryptC4gh(await readFile(sample.bai), [pair.public]).file);
  const manifest = await writeManifest(work, [{ url: server.url('/b/sample.bam.c4gh'), path: 'd/sample.bam.c4gh', index_url: server.url('/b/sample.bam.bai.c4gh') }]);
  const mnt = join(work, 'mnt-bam');
  const d = await startDaemon(manifest, mnt, ['--private-key', keyFile], { C4GH_SECRET_KEY: undefined });
  try {
    assert.deepEqual((await readdir(join(mnt, 'd'))).sort(), ['sample.bam', 'sample.bam.bai']);
    for (const region of sample.regions.slice(0, 4)) {
      const want = await samtools(['view', sample.bam, region]);
      const got = await samtools(['view', join(mnt, 'd/sample.bam'), region]);
      assert.equal(got.code, 0, got.stderr);
      assert.ok(want.stdout.length > 0 && got.stdout.equals(want.stdout), `region ${region}`);
    }
    const count = await run('samtools', ['view', '-c', join(mnt, 'd/sample.bam')]);
    assert.equal(count.stdout.toString().trim(), (await samtools(['view', '-c', sample.bam])).stdout.toString().trim());
  } finally {
    await d.stop();
  }
});
