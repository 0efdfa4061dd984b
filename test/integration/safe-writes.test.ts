/**
 * Nothing planted in a directory slicefs writes to leads a write outside it (util/safe-fs.ts), for
 * every writer as a user runs it (child processes, the fixture server on 127.0.0.1): a symlink at
 * a download's part file, journal, final name, catalogue, lock and md5-mismatch name, at a
 * directory on the way, at `download --decrypt`'s output, `view -o`'s, `decrypt`'s and `keygen`'s,
 * and in the cache directory; a file where a directory should be. Each refusal is exit 2 (the
 * caches: a warning, and the command goes on without them), one line naming the path, and the
 * file outside keeps its bytes and its mtime, with nothing new beside it. Then the modes: 0600 and
 * 0700 by default under umask 022, `--file-mode`/`--dir-mode` exactly (under umask 077 too),
 * directories that already exist left alone, bad values refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, readdir, readFile, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { privateKeyFile, VECTORS } from '../helpers/c4gh-vectors.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';
import { ensureSampleData, type SampleData } from '../helpers/sample-data.js';

let server: FixtureServer;
let work: string;
let sample: SampleData;
let manifest: string;
let bamUrl: string;
const ALICE = privateKeyFile('keys/alice.nocrypt.sec');
const DATA = seededBytes(1501, 300_000);
const VICTIM_TEXT = 'outside the directory: must not change\n';
/** An mtime far from now: a write through a link would move it. */
const VICTIM_MTIME = new Date('2001-02-03T04:05:06Z');

before(async () => {
  server = await FixtureServer.start();
  work = await tempDir('slicefs-safe-writes-');
  sample = await ensureSampleData();
  server.addFile('/sw/range.bam', DATA);
  manifest = join(work, 'm.tsv');
  await writeFile(manifest, `url\tpath\tsize\tmd5\n${server.url('/sw/range.bam')}\tdonor1/range.bam\t${DATA.length}\t${createHash('md5').update(DATA).digest('hex')}\n`);
  for (const f of [sample.bam, sample.bai]) server.addFile(`/bam/${basename(f)}`, await readFile(f));
  bamUrl = server.url(`/bam/${basename(sample.bam)}`);
  server.addFile('/c4gh/p65535.alice.c4gh', await readFile(join(VECTORS, 'enc/p65535.alice.c4gh')));
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** slicefs with `args`; `umask` (octal) set for it by the shell. The cache is the test's own. */
function slicefs(args: string[], umask = '022') {
  return run('/bin/sh', ['-c', `umask ${umask}; exec "$0" "$@"`, process.execPath, BIN, ...args], {
    timeoutMs: 60_000,
    env: { ...process.env, XDG_CACHE_HOME: join(work, 'xdg-cache'), C4GH_SECRET_KEY: undefined, C4GH_PASSPHRASE: undefined, SLICEFS_CACHE_PROXY: undefined },
  });
}

let outsides = 0;
/** A fresh directory outside every output, holding one file that nothing may touch. */
async function outside(): Promise<{ dir: string; victim: string }> {
  const dir = join(work, `outside-${++outsides}`);
  await mkdir(dir);
  const victim = join(dir, 'victim');
  await writeFile(victim, VICTIM_TEXT);
  await utimes(victim, VICTIM_MTIME, VICTIM_MTIME);
  return { dir, victim };
}

async function assertUntouched(o: { dir: string; victim: string }): Promise<void> {
  assert.deepEqual(await readdir(o.dir, { recursive: true }), ['victim'], 'nothing written beside the file outside');
  assert.equal(await readFile(o.victim, 'utf8'), VICTIM_TEXT, 'the file outside keeps its bytes');
  assert.equal((await stat(o.victim)).mtimeMs, VICTIM_MTIME.getTime(), 'the file outside keeps its mtime');
}

function assertRefused(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, /^slicefs: error: /);
  assert.match(r.stderr, pattern);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const modeOf = async (p: string) => (await stat(p)).mode & 0o777;

let outs = 0;
const freshOut = () => join(work, `out-${++outs}`);

test('download: a symlink at any name it writes is refused before a byte is written, the target untouched', async () => {
  const names = ['donor1/range.bam.part', 'donor1/range.bam.part.journal', 'donor1/range.bam', 'slicefs-catalogue.tsv', '.slicefs-download.lock', 'donor1/range.bam.md5-mismatch'];
  for (const name of names) {
    // To the file outside, and dangling (O_CREAT through it would make a new file outside).
    for (const dangling of [false, true]) {
      const o = await outside();
      const out = freshOut();
      await mkdir(join(out, 'donor1'), { recursive: true });
      await symlink(dangling ? join(o.dir, 'new') : o.victim, join(out, name));
      server.resetLog();
      const r = await slicefs(['download', '-m', manifest, '-d', out, '-q']);
      assertRefused(r, new RegExp(`${esc(join(out, name))} is a symbolic link; refusing to write through it\\n$`));
      await assertUntouched(o);
      assert.ok((await lstat(join(out, name))).isSymbolicLink(), `${name}: the link is left as it was`);
      if (name !== 'donor1/range.bam') assert.equal(await lstat(join(out, 'donor1/range.bam')).catch(() => undefined), undefined, `${name}: no final file`);
      assert.equal(server.requests.length, 0, `${name}: refused before any request`);
    }
  }
});

test('download: a directory on the way that leads outside, or a file where a directory should be, is refused', async () => {
  const o = await outside();
  const out = freshOut();
  await mkdir(out);
  await symlink(o.dir, join(out, 'donor1'));
  assertRefused(await slicefs(['download', '-m', manifest, '-d', out, '-q']), new RegExp(`${esc(join(out, 'donor1'))} is a symbolic link that leads outside ${esc(out)}; refusing to write through it\\n$`));
  await assertUntouched(o);

  const out2 = freshOut();
  await mkdir(out2);
  await writeFile(join(out2, 'donor1'), 'a file of mine\n');
  assertRefused(await slicefs(['download', '-m', manifest, '-d', out2, '-q']), new RegExp(`${esc(join(out2, 'donor1'))} is not a directory; refusing to write under it\\n$`));
  assert.equal(await readFile(join(out2, 'donor1'), 'utf8'), 'a file of mine\n');

  // A link that stays inside the directory is followed: the file lands in its target.
  const out3 = freshOut();
  await mkdir(join(out3, 'real'), { recursive: true });
  await symlink(join(out3, 'real'), join(out3, 'donor1'));
  const r = await slicefs(['download', '-m', manifest, '-d', out3, '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(out3, 'real', 'range.bam'))).equals(DATA));
});

test('download --decrypt: a symlink at the plaintext part file is refused', async () => {
  const m = join(work, 'dec.tsv');
  await writeFile(m, `url\tpath\n${server.url('/c4gh/p65535.alice.c4gh')}\tp65535.alice.c4gh\n`);
  const o = await outside();
  const out = freshOut();
  await mkdir(out);
  await symlink(o.victim, join(out, 'p65535.alice.part'));
  const r = await slicefs(['download', '-m', m, '-d', out, '--decrypt', '--private-key', ALICE, '-q']);
  assertRefused(r, /p65535\.alice\.part is a symbolic link; refusing to write through it\n$/);
  await assertUntouched(o);
});

test('view -o: a symlink at the output is refused; the file is 0600, or --file-mode', async () => {
  const o = await outside();
  const out = freshOut();
  await mkdir(out);
  await symlink(o.victim, join(out, 'h.sam'));
  const r = await slicefs(['view', '--url', bamUrl, '--header-only', '-o', join(out, 'h.sam'), '--cache-dir', join(out, 'cache')]);
  assertRefused(r, new RegExp(`${esc(join(out, 'h.sam'))} is a symbolic link; refusing to write through it\\n$`));
  await assertUntouched(o);

  const ok = await slicefs(['view', '--url', bamUrl, '--header-only', '-o', join(out, 'plain.sam'), '--cache-dir', join(out, 'cache')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(await readFile(join(out, 'plain.sam'), 'utf8'), /^@HD/);
  assert.equal(await modeOf(join(out, 'plain.sam')), 0o600);
  const shared = await slicefs(['view', '--url', bamUrl, '--header-only', '-o', join(out, 'shared.sam'), '--file-mode', '0640', '--cache-dir', join(out, 'cache')], '077');
  assert.equal(shared.code, 0, shared.stderr);
  assert.equal(await modeOf(join(out, 'shared.sam')), 0o640);
});

test('decrypt: a symlink at the output is refused before any file is decrypted; modes 0600/0700 or as asked', async () => {
  const dir = freshOut();
  await mkdir(dir);
  await copyFile(join(VECTORS, 'enc/p1.alice.c4gh'), join(dir, 'p1.alice.c4gh'));
  await copyFile(join(VECTORS, 'enc/p65535.alice.c4gh'), join(dir, 'p65535.alice.c4gh'));
  for (const dangling of [false, true]) {
    const o = await outside();
    await symlink(dangling ? join(o.dir, 'new') : o.victim, join(dir, 'p65535.alice'));
    // The first file's output is fine, the second's is a link: neither is written.
    const r = await slicefs(['decrypt', '--private-key', ALICE, join(dir, 'p1.alice.c4gh'), join(dir, 'p65535.alice.c4gh')]);
    assertRefused(r, new RegExp(`${esc(join(dir, 'p65535.alice'))} is a symbolic link; refusing to write through it\\n$`));
    await assertUntouched(o);
    assert.equal(await lstat(join(dir, 'p1.alice')).catch(() => undefined), undefined, 'nothing decrypted');
    await unlink(join(dir, 'p65535.alice'));
  }

  const made = join(freshOut(), 'plain');
  const r = await slicefs(['decrypt', '--private-key', ALICE, join(dir, 'p1.alice.c4gh'), '-d', made, '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await modeOf(made), 0o700);
  assert.equal(await modeOf(join(made, 'p1.alice')), 0o600);
  const shared = join(freshOut(), 'plain');
  const r2 = await slicefs(['decrypt', '--private-key', ALICE, join(dir, 'p1.alice.c4gh'), '-d', shared, '-q', '--file-mode', '640', '--dir-mode', '0750'], '077');
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(await modeOf(shared), 0o750);
  assert.equal(await modeOf(join(shared, 'p1.alice')), 0o640);
});

test('keygen: a symlink at the .sec or .pub name is refused, nothing written through it', async () => {
  for (const [ext, dangling] of [
    ['sec', true],
    ['pub', false],
  ] as const) {
    const o = await outside();
    const dir = freshOut();
    await mkdir(dir);
    await symlink(dangling ? join(o.dir, `new.${ext}`) : o.victim, join(dir, `me.${ext}`));
    const r = await slicefs(['keygen', '--out', join(dir, 'me'), '--nocrypt']);
    assertRefused(r, new RegExp(`${esc(join(dir, `me.${ext}`))} is a symbolic link; refusing to write through it\\n$`));
    await assertUntouched(o);
    assert.deepEqual(await readdir(dir), [`me.${ext}`], 'no key written');
  }
});

test('the cache directory: a symlink leading out of it stops the cache (one warning), never the command', async () => {
  for (const planted of ['blocks', 'blocks/objects', 'index']) {
    const o = await outside();
    const cache = join(freshOut(), 'cache');
    await mkdir(join(cache, planted, '..'), { recursive: true });
    await symlink(o.dir, join(cache, planted));
    const r = await slicefs(['view', '--url', bamUrl, '--header-only', '--cache-dir', cache]);
    assert.equal(r.code, 0, `${planted}: ${r.stderr}`);
    assert.match(r.stdout.toString(), /^@HD/);
    assert.match(r.stderr, new RegExp(`warning: cannot (use|write) the (disk )?cache (in|directory) .*\\(${esc(join(cache, planted))} is a symbolic link that leads outside ${esc(cache)}; refusing to write through it\\)`), planted);
    await assertUntouched(o);
  }
});

test('modes: 0600 files and 0700 directories by default (umask 022); --file-mode/--dir-mode exactly; existing directories kept', async () => {
  const out = freshOut();
  const r = await slicefs(['download', '-m', manifest, '-d', out, '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await modeOf(out), 0o700);
  assert.equal(await modeOf(join(out, 'donor1')), 0o700);
  assert.equal(await modeOf(join(out, 'donor1/range.bam')), 0o600);
  assert.equal(await modeOf(join(out, 'slicefs-catalogue.tsv')), 0o600);

  // A shared project folder: the directory exists (the user's, 0775), slicefs makes donor1 in it.
  const shared = freshOut();
  await mkdir(shared);
  await chmod(shared, 0o775);
  const r2 = await slicefs(['download', '-m', manifest, '-d', shared, '-q', '--file-mode', '0640', '--dir-mode', '0750'], '077');
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(await modeOf(shared), 0o775, 'an existing directory keeps its mode');
  assert.equal(await modeOf(join(shared, 'donor1')), 0o750);
  assert.equal(await modeOf(join(shared, 'donor1/range.bam')), 0o640);
  assert.equal(await modeOf(join(shared, 'slicefs-catalogue.tsv')), 0o640);
});

test('bad --file-mode and --dir-mode values are one line, exit 2, and nothing is written', async () => {
  const cases: [string[], RegExp][] = [
    [['--file-mode', '644x'], /--file-mode '644x': not an octal mode such as 0640/],
    [['--file-mode', '0888'], /--file-mode '0888': not an octal mode/],
    [['--file-mode', '04755'], /--file-mode '04755': not an octal mode/],
    [['--file-mode', '0400'], /--file-mode 0400: slicefs must be able to read and write what it makes \(at least 0600\)/],
    [['--dir-mode', '0600'], /--dir-mode 0600: slicefs must be able to read, write and enter what it makes \(at least 0700\)/],
  ];
  for (const [args, pattern] of cases) {
    const out = freshOut();
    assertRefused(await slicefs(['download', '-m', manifest, '-d', out, ...args]), pattern);
    assert.equal(await lstat(out).catch(() => undefined), undefined, `${args.join(' ')}: nothing made`);
  }
  assertRefused(await slicefs(['decrypt', '--private-key', ALICE, join(VECTORS, 'enc/p1.alice.c4gh'), '-d', freshOut(), '--dir-mode', '7']), /--dir-mode '7': not an octal mode/);
  const out = freshOut();
  assertRefused(await slicefs(['view', '--url', bamUrl, '--header-only', '-o', `${out}.sam`, '--file-mode', '0200']), /--file-mode 0200: slicefs must be able to read and write/);
  assert.equal(await lstat(`${out}.sam`).catch(() => undefined), undefined);
});
