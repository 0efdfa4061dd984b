/**
 * `slicefs download` stopped inside a part, and files that fail verification, as a user meets them
 * (a child process against the fixture server on 127.0.0.1):
 *   - SIGKILL mid-part over a slow link (the server throttles each body): the journal holds what
 *     was fetched up to about a second before the kill, and the resumed run asks the server for
 *     little more than the killed run had not received;
 *   - SIGKILL at seeded random moments, again and again: the journal never names a byte that is
 *     not in the part file, and the end result is byte-identical;
 *   - Ctrl-C mid-part keeps what each stream had received;
 *   - `--verify` sets a corrupt file aside and forgets it, so the next run fetches it anew;
 *   - a file changed in place since it was verified (same size, same mtime) is hashed again, not
 *     trusted, and fetched anew.
 * Byte counts come from the server's log (bytes handed to the socket), never from timings.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, cleanup, runSlicefs, tempDir, writeManifest } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom, seededBytes } from '../helpers/random.js';
import { assertNoSecrets } from '../helpers/secret-scan.js';

let server: FixtureServer;
let work: string;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  server = await FixtureServer.start();
  work = await tempDir('slicefs-download-resume-');
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** Serves `data` at /NAME/f.bin and writes a manifest of it (url, path, size, md5) in its own directory. */
async function serve(name: string, data: Buffer): Promise<{ manifest: string; out: string; url: string }> {
  const url = server.url(`/${name}/f.bin`);
  server.addFile(`/${name}/f.bin`, data);
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  return { manifest: await writeManifest(dir, [{ url, path: 'f.bin', size: data.length, md5: md5(data) }]), out: join(dir, 'out'), url };
}

/** Body bytes the server sent for GETs of `path` since the last resetLog. */
const sentFor = (path: string) => server.requests.filter((q) => q.method === 'GET' && q.path === path).reduce((n, q) => n + q.bytesSent, 0);

interface Journal {
  done: [number, number][];
}
const readJournal = async (file: string): Promise<Journal | undefined> =>
  readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as Journal,
    () => undefined,
  );
const journaled = (j: Journal | undefined) => (j?.done ?? []).reduce((n, [a, b]) => n + (b - a), 0);

/** Polls (every 50 ms, up to `ms`) until `check` holds; returns whether it did. */
async function waitFor(check: () => Promise<boolean>, ms = 15_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (await check()) return true;
  return false;
}

/** `slicefs download` in the background; `exited` gives its exit code (or signal name). */
function startDownload(args: string[]) {
  const p = spawn(process.execPath, [BIN, 'download', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string | null>((r) => p.once('exit', (code, sig) => r(code ?? sig)));
  return { p, exited, stderr: () => stderr };
}

const PARALLEL = 2;
/** Bytes per second the server sends each response at: a slow link, on which one 4 MiB part takes 16 s. */
const RATE = 256 * 1024;

test('kill -9 inside a part over a slow link: the journal is at most about a second behind each stream, and the resume fetches little more than was never received', async (t) => {
  const data = seededBytes(301, 8 * 1024 * 1024);
  const { manifest, out, url } = await serve('slowkill', data);
  const path = new URL(url).pathname;
  const journalFile = join(out, 'f.bin.part.journal');
  server.setFault(path, { kind: 'throttle-body', bytesPerSecond: RATE });
  server.resetLog();
  const args = ['-m', manifest, '-d', out, '--part-size', '4M', '--parallel', String(PARALLEL), '-q'];
  const first = startDownload(args);
  // Under way, and its journal shows progress (the first checkpoint, about a second in) ...
  await waitFor(async () => journaled(await readJournal(journalFile)) > 0);
  // ... then the kill lands at a moment of the checkpoint rhythm (seeded).
  await sleep(new SeededRandom(17).int(1500, 3500));
  first.p.kill('SIGKILL');
  assert.equal(await first.exited, 'SIGKILL', first.stderr());
  const received = sentFor(path);
  const had = journaled(await readJournal(journalFile));
  assert.ok(received < data.length, `the kill landed mid-download (${received} of ${data.length} sent)`);

  server.setFault(path, undefined);
  server.resetLog();
  const r = await runSlicefs(['download', ...args]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(out, 'f.bin'))).equals(data), 'byte-identical (and the MD5 checked out: exit 0)');
  const refetched = sentFor(path);
  // The journal never claims what is not there: the resume asks for exactly what it lacks.
  assert.equal(refetched, data.length - had, `the resume fetched ${refetched}, the journal lacked ${data.length - had}`);
  // What the kill cost: bytes the killed run received but its journal did not keep. A checkpoint
  // every second per stream (while a whole part is 16 s at this rate) bounds it by about a second
  // of each stream's transfer; two seconds each are allowed for a checkpoint's own fsyncs on a
  // busy machine, and a throttle slice in flight.
  const lost = refetched - (data.length - received);
  const allowed = PARALLEL * 2 * RATE;
  t.diagnostic(`killed run received ${received}, journal had ${had}; resume fetched ${refetched}, ${lost} beyond what never arrived (${(lost / PARALLEL / RATE).toFixed(2)} s per stream)`);
  assert.ok(lost <= allowed, `re-fetched ${lost} bytes beyond what the killed run never received (allowed ${allowed}: ${PARALLEL} streams x 2 s)`);
});

test("a portal's token in the URL's query (kept in the identity) lands in no file: the journal a kill leaves, the catalogue", async () => {
  const data = seededBytes(303, 6 * 1024 * 1024);
  const { out, url } = await serve('portaltoken', data);
  const token = 'portal-tok-7e51c9a08b3d';
  const manifest = await writeManifest(join(work, 'portaltoken'), [{ url: `${url}?id=7&token=${token}`, path: 'f.bin', size: data.length, md5: md5(data) }]);
  const path = new URL(url).pathname;
  server.setFault(path, { kind: 'throttle-body', bytesPerSecond: RATE });
  const args = ['-m', manifest, '-d', out, '--part-size', '4M', '-q'];
  const first = startDownload(args);
  assert.ok(await waitFor(async () => journaled(await readJournal(join(out, 'f.bin.part.journal'))) > 0), 'a journal was written');
  first.p.kill('SIGKILL');
  await first.exited;
  await assertNoSecrets([token], { paths: [out] });
  server.setFault(path, undefined);
  // The journal is still recognised as this URL's: the resume asks only for what it lacks.
  server.resetLog();
  const had = journaled(await readJournal(join(out, 'f.bin.part.journal')));
  const r = await runSlicefs(['download', ...args]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sentFor(path), data.length - had);
  assert.match(await readFile(join(out, 'slicefs-catalogue.tsv'), 'utf8'), /\/portaltoken\/f\.bin\?sha256=[0-9a-f]{64}\t/);
  await assertNoSecrets([token], { outputs: { stderr: r.stderr + first.stderr() }, paths: [out] });
});

test('kill -9 at seeded random moments, again and again: the journal never names a byte the part file does not hold; the end result is right', async () => {
  const data = seededBytes(302, 8 * 1024 * 1024);
  const { manifest, out, url } = await serve('randkill', data);
  const path = new URL(url).pathname;
  const journalFile = join(out, 'f.bin.part.journal');
  // Each stream's part takes 16 s: every bit of progress below is a checkpoint inside a part.
  server.setFault(path, { kind: 'throttle-body', bytesPerSecond: RATE });
  const rnd = new SeededRandom(4242);
  const args = ['-m', manifest, '-d', out, '--part-size', '4M', '--parallel', String(PARALLEL), '-q'];
  let had = 0;
  for (let round = 0; round < 6 && had < data.length; round++) {
    const run1 = startDownload(args);
    // Progress since the last round (a checkpoint), then a kill at a random moment of the rhythm.
    const progressed = await waitFor(async () => journaled(await readJournal(journalFile)) > had || (await stat(join(out, 'f.bin')).then(() => true, () => false)), 10_000);
    await sleep(rnd.int(0, 1500));
    run1.p.kill('SIGKILL');
    await run1.exited;
    assert.ok(progressed, `round ${round}: the journal grew within 10 s (it had ${had} bytes)`);
    const j = await readJournal(journalFile);
    if (!j) break; // finished before the kill
    const part = await readFile(join(out, 'f.bin.part'));
    for (const [a, b] of j.done) assert.ok(part.subarray(a, b).equals(data.subarray(a, b)), `round ${round}: journaled bytes [${a}, ${b}) are the object's`);
    had = journaled(j);
  }
  server.setFault(path, undefined);
  const r = await runSlicefs(['download', ...args]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(out, 'f.bin'))).equals(data));
});

test('Ctrl-C inside a part keeps what each stream received: the resume fetches only what never arrived', async (t) => {
  const data = seededBytes(303, 8 * 1024 * 1024);
  const { manifest, out, url } = await serve('slowint', data);
  const path = new URL(url).pathname;
  const journalFile = join(out, 'f.bin.part.journal');
  server.setFault(path, { kind: 'throttle-body', bytesPerSecond: RATE });
  server.resetLog();
  const args = ['-m', manifest, '-d', out, '--part-size', '4M', '--parallel', String(PARALLEL)];
  const first = startDownload(args);
  await waitFor(async () => journaled(await readJournal(journalFile)) > 0);
  await sleep(800);
  first.p.kill('SIGINT');
  assert.equal(await first.exited, 130, first.stderr());
  assert.match(first.stderr(), /interrupted: what was fetched is kept; run the same command again to resume/);
  const received = sentFor(path);
  const had = journaled(await readJournal(journalFile));
  // All but what was still on its way (a throttle slice of 12.8 KiB per stream, and TCP's buffers).
  const allowed = PARALLEL * 64 * 1024;
  t.diagnostic(`received ${received}, journaled ${had}`);
  assert.ok(received - had <= allowed, `received ${received}, journaled ${had}: ${received - had} lost (allowed ${allowed})`);
  server.setFault(path, undefined);
  server.resetLog();
  const r = await runSlicefs(['download', ...args]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(out, 'f.bin'))).equals(data));
  assert.equal(sentFor(path), data.length - had);
});

test('--verify sets a corrupt file aside and forgets it; the next run fetches it anew', async () => {
  const data = seededBytes(304, 1_500_000);
  const { manifest, out, url } = await serve('repair', data);
  const path = new URL(url).pathname;
  const first = await runSlicefs(['download', '-m', manifest, '-d', out]);
  assert.equal(first.code, 0, first.stderr);
  const file = join(out, 'f.bin');
  const bad = Buffer.from(data);
  bad[700_000] ^= 0x40; // same size
  await writeFile(file, bad);

  const v = await runSlicefs(['download', '-m', manifest, '-d', out, '--verify']);
  assert.equal(v.code, 1, v.stderr);
  assert.match(v.stderr, /error: f\.bin: MD5 [0-9a-f]{32}, expected [0-9a-f]{32}; set aside as f\.bin\.md5-mismatch; run again to fetch it anew/);
  assert.ok((await readFile(join(out, 'f.bin.md5-mismatch'))).equals(bad), 'the bad bytes are set aside');
  assert.ok(!(await readdir(out)).includes('f.bin'));
  assert.ok(!(await readFile(join(out, 'slicefs-catalogue.tsv'), 'utf8')).includes('f.bin\t'), 'its catalogue row is dropped');

  server.resetLog();
  const again = await runSlicefs(['download', '-m', manifest, '-d', out]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /1 downloaded, 0 already present/);
  assert.equal(sentFor(path), data.length, 'fetched anew');
  assert.ok((await readFile(file)).equals(data));
  const ok = await runSlicefs(['download', '-m', manifest, '-d', out, '--verify']);
  assert.equal(ok.code, 0, ok.stderr);
});

test('a file changed in place since it was verified (same size and mtime) is hashed again, not trusted; one only touched is kept', async () => {
  const data = seededBytes(305, 1_200_000);
  const { manifest, out, url } = await serve('changed', data);
  const path = new URL(url).pathname;
  const first = await runSlicefs(['download', '-m', manifest, '-d', out]);
  assert.equal(first.code, 0, first.stderr);
  const file = join(out, 'f.bin');

  // Touched only: its ctime is later than its verification, so it is hashed (no GET) and kept.
  await sleep(20);
  const now = new Date();
  await utimes(file, now, now);
  server.resetLog();
  const touched = await runSlicefs(['download', '-m', manifest, '-d', out]);
  assert.equal(touched.code, 0, touched.stderr);
  assert.match(touched.stderr, /0 downloaded, 1 already present/);
  assert.equal(sentFor(path), 0, 'nothing fetched');

  // Written in place, with its size and mtime as before: the catalogue row no longer vouches for it.
  const before = await stat(file);
  const bad = Buffer.from(data);
  bad[1000] ^= 1;
  await sleep(20);
  await writeFile(file, bad);
  await utimes(file, before.atime, before.mtime);
  server.resetLog();
  const r = await runSlicefs(['download', '-m', manifest, '-d', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /1 downloaded, 0 already present/);
  assert.equal(sentFor(path), data.length, 'fetched anew');
  assert.ok((await readFile(file)).equals(data));
});
