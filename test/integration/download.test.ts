/**
 * `slicefs download` as a user runs it (a child process) against the fixture server on 127.0.0.1:
 * whole manifests with MD5s, the catalogue, skipping what is there, resuming after SIGKILL at
 * random moments (the result is always right and a resume re-fetches little), an object changed
 * between runs, a corrupted byte, faults (503 storms, dropped and stalled bodies), names that would
 * escape the directory, two runs on one directory, --verify, and a manifest of 1,000 small files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom, seededBytes } from '../helpers/random.js';

let server: FixtureServer;
let work: string;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** Waits (up to 10 s) until `dir` holds `name`: a run under way, however slowly node started. */
async function until(dir: string, name: string): Promise<void> {
  for (let i = 0; i < 200 && !(await readdir(dir).catch(() => [] as string[])).includes(name); i++) await new Promise((r) => setTimeout(r, 50));
}

interface Served {
  path: string;
  data: Buffer;
}

before(async () => {
  server = await FixtureServer.start();
  work = await tempDir('slicefs-download-');
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** Serves `files` under `prefix` and writes a manifest (url, path, size, md5[, extra columns]). */
async function manifestOf(name: string, files: Served[], opts: { md5?: (f: Served) => string; columns?: Record<string, (f: Served) => string> } = {}): Promise<string> {
  const cols = ['url', 'path', 'size', 'md5', ...Object.keys(opts.columns ?? {})];
  const lines = [cols.join('\t')];
  for (const f of files) {
    server.addFile(`/${name}/${f.path}`, f.data);
    const extra = Object.values(opts.columns ?? {}).map((fn) => fn(f));
    lines.push([server.url(`/${name}/${f.path}`), f.path, String(f.data.length), (opts.md5 ?? ((x) => md5(x.data)))(f), ...extra].join('\t'));
  }
  const file = join(work, `${name}.tsv`);
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

function download(args: string[], timeoutMs = 120_000) {
  return run(process.execPath, [BIN, 'download', ...args], { timeoutMs });
}

async function assertSame(dir: string, files: Served[]): Promise<void> {
  for (const f of files) {
    const got = await readFile(join(dir, f.path));
    assert.equal(got.length, f.data.length, f.path);
    assert.ok(got.equals(f.data), `${f.path}: content`);
  }
}

const sizes = [0, 1, 100_000, 3_000_001, 20_000_000];
const sample = (tag: number): Served[] => sizes.map((n, i) => ({ path: `d${i % 2}/f${i}.bin`, data: seededBytes(tag * 100 + i, n) }));

test('a manifest downloads in parts, verified, with a catalogue; a second run skips everything', async () => {
  const files = sample(1);
  const manifest = await manifestOf('basic', files);
  const out = join(work, 'basic-out');
  const r = await download(['-m', manifest, '-d', out, '--part-size', '1M', '--parallel', '6', '--json']);
  assert.equal(r.code, 0, r.stderr);
  await assertSame(out, files);
  const summary = JSON.parse(r.stdout.toString()) as { files: { path: string; status: string; md5: string }[] };
  assert.deepEqual(summary.files.map((f) => f.status), files.map(() => 'done'));
  const cat = (await readFile(join(out, 'slicefs-catalogue.tsv'), 'utf8')).trim().split('\n');
  assert.equal(cat[0], 'path\tsize\tmd5\tsource\tverified');
  assert.equal(cat.length, files.length + 1);
  for (const f of files) assert.ok(cat.some((l) => l.startsWith(`${f.path}\t${f.data.length}\t${md5(f.data)}\t`)), f.path);
  const leftovers = (await readdir(out, { recursive: true })).filter((n) => /\.part|journal|lock/.test(String(n)));
  assert.deepEqual(leftovers, []);

  server.resetLog();
  const again = await download(['-m', manifest, '-d', out, '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(server.requests.filter((q) => q.method === 'GET').length, 0, 'nothing fetched again');
  assert.ok((JSON.parse(again.stdout.toString()) as { files: { status: string }[] }).files.every((f) => f.status === 'skipped'));
});

test('SIGKILL at random moments, then the same command: always the right bytes, little fetched twice', async () => {
  const files = [{ path: 'big.bin', data: seededBytes(77, 24_000_000) }, { path: 'small.bin', data: seededBytes(78, 300_000) }];
  const manifest = await manifestOf('kill', files);
  const out = join(work, 'kill-out');
  const rnd = new SeededRandom(99);
  let fetched = 0;
  for (let round = 0; round < 8; round++) {
    // Slow enough (24 MB at 16 MB/s) that a kill lands mid-download.
    const p = spawn(process.execPath, [BIN, 'download', '-m', manifest, '-d', out, '--part-size', '1M', '--parallel', '4', '--limit-rate', '16M', '-q'], { stdio: 'ignore' });
    let gone = false;
    const exited = new Promise((r) => p.once('exit', r)).then(() => (gone = true)); // it may finish before the kill
    // Past node's start-up (which a busy machine can stretch past a second): it holds the lock.
    const lock = join(out, '.slicefs-download.lock');
    for (let i = 0; i < 200 && !gone && !(await readFile(lock, 'utf8').catch(() => '')).startsWith(`${p.pid} `); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, rnd.int(100, 900)));
    p.kill('SIGKILL');
    await exited;
  }
  server.resetLog();
  const r = await download(['-m', manifest, '-d', out, '--part-size', '1M', '--parallel', '4']);
  assert.equal(r.code, 0, r.stderr);
  await assertSame(out, files);
  fetched = server.requests.filter((q) => q.method === 'GET').reduce((n, q) => n + q.bytesSent, 0);
  assert.ok(fetched < 24_300_000, `the last run fetched only what was missing (${fetched})`);
});

test('an object changed between runs restarts with a warning; a corrupted byte is an MD5 mismatch kept aside', async () => {
  const v1 = seededBytes(5, 4_000_000);
  const v2 = seededBytes(6, 4_000_000);
  const out = join(work, 'change-out');
  // First run interrupted after some parts: simulate with a limit and a kill.
  server.addFile('/change/x.bin', v1);
  const m = join(work, 'change.tsv');
  await writeFile(m, `url\tpath\n${server.url('/change/x.bin')}\tx.bin\n`);
  const p = spawn(process.execPath, [BIN, 'download', '-m', m, '-d', out, '--part-size', '256K', '--parallel', '2', '--limit-rate', '2M', '-q'], { stdio: 'ignore' });
  const exited = new Promise((r) => p.once('exit', r));
  await until(out, 'x.bin.part.journal');
  p.kill('SIGKILL');
  await exited;
  assert.ok((await readdir(out)).includes('x.bin.part.journal'), 'a journal was left');
  server.addFile('/change/x.bin', v2); // new content, new ETag
  const r = await download(['-m', m, '-d', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /x\.bin changed on the server since the last run \(ETag changed\); starting it again/);
  assert.ok((await readFile(join(out, 'x.bin'))).equals(v2));

  // A server that states the object's MD5 (Content-MD5) is checked even without a manifest MD5.
  const stated = seededBytes(9, 500_000);
  const wrong = Buffer.from(stated);
  wrong[99] ^= 1;
  server.addFile('/stated/s.bin', wrong, { wholeHeaders: { 'Content-MD5': createHash('md5').update(stated).digest('base64') } });
  const ms = join(work, 'stated.tsv');
  await writeFile(ms, `url\tpath\n${server.url('/stated/s.bin')}\ts.bin\n`);
  const st = await download(['-m', ms, '-d', join(work, 'stated-out')]);
  assert.equal(st.code, 1, st.stderr);
  assert.match(st.stderr, /s\.bin: MD5 [0-9a-f]{32} is not the server's [0-9a-f]{32}/);

  const good = seededBytes(8, 2_000_000);
  const bad = Buffer.from(good);
  bad[1_234_567] ^= 0xff;
  const m2 = await manifestOf('corrupt', [{ path: 'c.bin', data: bad }], { md5: () => md5(good) });
  const out2 = join(work, 'corrupt-out');
  const c = await download(['-m', m2, '-d', out2]);
  assert.equal(c.code, 1, c.stderr);
  assert.match(c.stderr, /c\.bin: MD5 [0-9a-f]{32} is not the manifest's [0-9a-f]{32}; set aside as c\.bin\.md5-mismatch; run again to fetch it anew/);
  assert.ok(!(await readdir(out2)).includes('c.bin'), 'no final file');
  assert.ok((await readdir(out2)).includes('c.bin.md5-mismatch'));
});

test('faults: 503 storms, dropped and stalled bodies are retried; the bytes are right', async () => {
  const data = seededBytes(11, 6_000_000);
  server.addFile('/faults/a.bin', data, { fault: { kind: 'status-then-ok', status: 503, times: 5 } });
  server.addFile('/faults/b.bin', data, { fault: { kind: 'drop-mid-body', times: 3, afterBytes: 300_000 } });
  server.addFile('/faults/c.bin', data, { fault: { kind: 'stall-body', times: 1, afterBytes: 100_000 } });
  const m = join(work, 'faults.tsv');
  await writeFile(m, ['url\tpath\tmd5', ...['a', 'b', 'c'].map((n) => `${server.url(`/faults/${n}.bin`)}\t${n}.bin\t${md5(data)}`)].join('\n') + '\n');
  const out = join(work, 'faults-out');
  const r = await download(['-m', m, '-d', out, '--part-size', '2M', '--timeout', '10']);
  assert.equal(r.code, 0, r.stderr);
  for (const n of ['a', 'b', 'c']) assert.ok((await readFile(join(out, `${n}.bin`))).equals(data), n);
});

test('names that would leave the directory are refused before anything is written', async () => {
  const data = seededBytes(12, 1000);
  server.addFile('/esc/a.bin', data);
  const out = join(work, 'esc-out');
  await mkdir(out, { recursive: true });
  const outside = join(work, 'outside');
  await mkdir(outside, { recursive: true });
  await symlink(outside, join(out, 'link'));
  const m1 = join(work, 'esc1.tsv');
  await writeFile(m1, `url\tpath\tid\n${server.url('/esc/a.bin')}\ta.bin\t../../evil\n`);
  const r1 = await download(['-m', m1, '-d', out, '--output-layout', 'id']);
  assert.equal(r1.code, 2, r1.stderr);
  assert.match(r1.stderr, /esc1\.tsv:2: refusing '\.\.\/\.\.\/evil' as an output name: it has a "\.\." segment/);
  const m2 = join(work, 'esc2.tsv');
  await writeFile(m2, `url\tpath\n${server.url('/esc/a.bin')}\tlink/a.bin\n`);
  const r2 = await download(['-m', m2, '-d', out]);
  assert.equal(r2.code, 2, r2.stderr);
  assert.match(r2.stderr, /esc2\.tsv:2: .*esc-out\/link is a symbolic link that leads outside .*esc-out; refusing to write through it\n$/);
  assert.deepEqual(await readdir(outside), []);
  const m3 = join(work, 'esc3.tsv');
  await writeFile(m3, `url\tpath\n${server.url('/esc/a.bin')}\tx/a.bin\n${server.url('/esc/a.bin')}\ty/a.bin\n`);
  const r3 = await download(['-m', m3, '-d', join(work, 'esc3-out'), '--output-layout', 'filename']);
  assert.equal(r3.code, 2, r3.stderr);
  assert.match(r3.stderr, /esc3\.tsv:3: 'a\.bin' would also be written by line 2 \(--output-layout filename\)/);
});

test('two runs on one directory: the second is refused; --verify checks what is there', async () => {
  const files = [{ path: 'v.bin', data: seededBytes(21, 3_000_000) }];
  const m = await manifestOf('lock', files);
  const out = join(work, 'lock-out');
  const first = spawn(process.execPath, [BIN, 'download', '-m', m, '-d', out, '--limit-rate', '2M', '-q'], { stdio: 'ignore' });
  const firstExit = new Promise<number | null>((r) => first.once('exit', r));
  await until(out, '.slicefs-download.lock');
  const second = await download(['-m', m, '-d', out]);
  assert.equal(second.code, 2, second.stderr);
  assert.match(second.stderr, /is being downloaded into by another slicefs download \(pid \d+\)/);
  assert.equal(await firstExit, 0);
  await assertSame(out, files);

  const ok = await download(['-m', m, '-d', out, '--verify']);
  assert.equal(ok.code, 0, ok.stderr);
  const f = join(out, 'v.bin');
  const bytes = await readFile(f);
  bytes[10] ^= 1;
  await writeFile(f, bytes);
  const broken = await download(['-m', m, '-d', out, '--verify']);
  assert.equal(broken.code, 1, broken.stderr);
  assert.match(broken.stderr, /error: v\.bin: MD5 [0-9a-f]{32}, expected [0-9a-f]{32}; set aside as v\.bin\.md5-mismatch/);
});

test('a manifest of 1,000 small files', async () => {
  const files: Served[] = Array.from({ length: 1000 }, (_, i) => ({ path: `many/${String(i).padStart(4, '0')}.txt`, data: seededBytes(1000 + i, 100 + (i % 50) * 37) }));
  const m = await manifestOf('many', files);
  const out = join(work, 'many-out');
  const r = await download(['-m', m, '-d', out, '--parallel', '16']);
  assert.equal(r.code, 0, r.stderr);
  await assertSame(out, files);
  assert.equal((await stat(join(out, 'slicefs-catalogue.tsv'))).isFile(), true);
});

test('a full disk: refused up front when it cannot fit; mid-way it stops with the journal intact and resumes', async () => {
  const mnt = join(work, 'tmpfs');
  await mkdir(mnt, { recursive: true });
  const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt]);
  assert.equal(m.code, 0, `mount tmpfs (the tests run as root): ${m.stderr}`);
  try {
    const big = [{ path: 'big.bin', data: seededBytes(31, 8_000_000) }];
    const mBig = await manifestOf('full-big', big);
    const r = await download(['-m', mBig, '-d', join(mnt, 'a')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /not enough space in .*: 7\.63 MiB still to download, [\d.]+ [KM]iB free/);

    const files = [{ path: 'x.bin', data: seededBytes(32, 4_000_000) }];
    const mx = await manifestOf('full-mid', files);
    const out = join(mnt, 'b');
    const p = spawn(process.execPath, [BIN, 'download', '-m', mx, '-d', out, '--part-size', '256K', '--parallel', '2', '--limit-rate', '4M'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((res) => p.once('exit', res));
    // Once the download is under way (a first part journaled): its free-space check is behind it.
    await until(out, 'x.bin.part.journal');
    // Something else fills the disk while the download runs.
    await writeFile(join(mnt, 'filler'), Buffer.alloc(4_000_000)).catch(() => {});
    assert.equal(await exited, 1, err);
    assert.match(err, /the disk of .* is full; what was fetched is kept: free some space and run the same command again/);
    assert.ok((await readdir(out)).includes('x.bin.part.journal'));
    await run('rm', ['-f', join(mnt, 'filler')]);
    const again = await download(['-m', mx, '-d', out]);
    assert.equal(again.code, 0, again.stderr);
    await assertSame(out, files);
  } finally {
    await run('umount', ['-l', mnt]);
  }
});

test('Ctrl-C (SIGINT) stops quickly, keeps the finished parts and says how to resume', async () => {
  const files = [{ path: 'i.bin', data: seededBytes(41, 8_000_000) }];
  const m = await manifestOf('sigint', files);
  const out = join(work, 'sigint-out');
  const p = spawn(process.execPath, [BIN, 'download', '-m', m, '-d', out, '--part-size', '512K', '--parallel', '2', '--limit-rate', '4M'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => p.once('exit', res));
  await until(out, 'i.bin.part.journal');
  const t0 = Date.now();
  p.kill('SIGINT');
  assert.equal(await exited, 130, err);
  assert.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms`);
  assert.match(err, /interrupted: what was fetched is kept; run the same command again to resume/);
  const journal = JSON.parse(await readFile(join(out, 'i.bin.part.journal'), 'utf8')) as { done: [number, number][] };
  assert.ok(journal.done.length > 0, 'some parts were journaled');
  assert.ok(!(await readdir(out)).includes('.slicefs-download.lock'), 'the lock is released');
  server.resetLog();
  const again = await download(['-m', m, '-d', out, '--part-size', '512K']);
  assert.equal(again.code, 0, again.stderr);
  await assertSame(out, files);
  const fetched = server.requests.filter((q) => q.method === 'GET').reduce((n, q) => n + q.bytesSent, 0);
  const had = journal.done.reduce((n, [a, b]) => n + (b - a), 0);
  assert.ok(fetched <= files[0].data.length - had, `the resume fetched ${fetched}, missing were ${files[0].data.length - had}`);
});

test('bad options are one clear line, exit 2, and nothing is written', async () => {
  const m = await manifestOf('opts', [{ path: 'o.bin', data: seededBytes(51, 1000) }]);
  const cases: [string[], RegExp][] = [
    [['-m', m, '--url', server.url('/opts/o.bin')], /^slicefs: error: give one of --manifest FILE, --url URL or --object-id ID\n$/],
    [['-m', m, '--parallel', '0'], /^slicefs: error: --parallel must be an integer from 1 to 256\n$/],
    [['-m', m, '--part-size', '1K'], /^slicefs: error: --part-size must be at least 64K\n$/],
    [['-m', m, '--limit-rate', '10'], /^slicefs: error: --limit-rate must be at least 1K \(bytes per second\)\n$/],
    [['-m', m, '--path', 'missing.bin'], /^slicefs: error: .*opts\.tsv: no entry with path 'missing\.bin'\n$/],
  ];
  for (const [args, pattern] of cases) {
    const out = join(work, 'opts-out');
    const r = await download([...args, '-d', out]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.deepEqual(await readdir(out).catch(() => []), [], 'nothing written');
  }
});
