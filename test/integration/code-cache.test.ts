/**
 * The CLI's V8 code cache (bin/slicefs.js, scripts/code-cache.mjs): a build makes a cache that the
 * launcher's V8 accepts in a real view (whose run changes V8's flags: a cache trained after that
 * would be rejected), and the CLI prints the same bytes and exits the same way whatever the cache is:
 * present, absent, random bytes, V8's part random, made for another bundle (stale), made under other
 * V8 flags, or unreadable (a directory in its place). Each state is seen through
 * SLICEFS_DEBUG_CODE_CACHE=1 (one line on stderr), so a cache that silently stopped being used, or a
 * bad one used, fails here. The altered caches live in a copy of the built CLI, never in dist/.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Script } from 'node:vm';
import { REPO, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';

const BAM = join(REPO, 'test/data/conformance/htslib-test/range.bam');
const DEBUG_LINE = /^slicefs: code cache: (\w+)\n/;

let base: string;
let server: FixtureServer;
/** A copy of the built CLI (bin/, dist/bundle/, package.json) whose cache the cases replace. */
let copy: string;
let cachePath: string;
let builtCache: Buffer;

before(async () => {
  base = await tempDir('slicefs-code-cache-');
  server = await FixtureServer.start();
  server.addFile('/range.bam', await readFile(BAM));
  server.addFile('/range.bam.bai', await readFile(`${BAM}.bai`));
  copy = join(base, 'cli');
  await cp(join(REPO, 'bin'), join(copy, 'bin'), { recursive: true });
  await cp(join(REPO, 'dist/bundle'), join(copy, 'dist/bundle'), { recursive: true });
  await cp(join(REPO, 'package.json'), join(copy, 'package.json'));
  cachePath = join(copy, 'dist/bundle/main.cjs.v8cache');
  builtCache = await readFile(cachePath);
});

after(async () => {
  await server?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

/** The commands compared: a view as SAM (its records and @PG) and as BAM, help, --version, and a usage error. */
const commands = (): string[][] => [
  ['view', '--url', server.url('/range.bam'), '-q', 'CHROMOSOME_I:1-1000'],
  ['view', '--url', server.url('/range.bam'), '-q', 'CHROMOSOME_II', '-b'],
  ['view', '--help'],
  ['--version'],
  ['view', '--no-such-option'],
];

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What the launcher said of the cache (SLICEFS_DEBUG_CODE_CACHE=1). */
  cacheState: string;
}

async function slicefs(bin: string, args: string[], nodeFlags: string[] = []): Promise<Outcome> {
  const xdg = await tempDir('slicefs-code-cache-xdg-');
  try {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, XDG_CACHE_HOME: xdg, SLICEFS_DEBUG_CODE_CACHE: '1' };
    const r = await run(process.execPath, [...nodeFlags, bin, ...args], { env, timeoutMs: 60_000 });
    const m = DEBUG_LINE.exec(r.stderr);
    assert.ok(m, `no code cache line first on stderr of ${args.join(' ')}: ${JSON.stringify(r.stderr)}`);
    return { code: r.code, stdout: r.stdout.toString('latin1'), stderr: r.stderr.slice(m[0].length), cacheState: m[1] };
  } finally {
    await rm(xdg, { recursive: true, force: true });
  }
}

/** Runs every command with the copy's cache as it is now; each must report `state` and print what `expected` printed. */
async function assertSameAs(expected: Outcome[], state: string, nodeFlags: string[] = []): Promise<void> {
  const cmds = commands();
  for (const [i, args] of cmds.entries()) {
    const got = await slicefs(join(copy, 'bin/slicefs.js'), args, nodeFlags);
    assert.equal(got.cacheState, state, `${args.join(' ')}: code cache state`);
    assert.deepEqual({ ...got, cacheState: state }, { ...expected[i], cacheState: state }, `${args.join(' ')}: output with the cache ${state}`);
  }
}

let reference: Outcome[];

test('the build makes a cache that the launcher accepts, in a view as in --version; the view prints the records', async () => {
  reference = [];
  for (const args of commands()) reference.push(await slicefs(join(REPO, 'bin/slicefs.js'), args));
  for (const [i, args] of commands().entries()) assert.equal(reference[i].cacheState, 'accepted', args.join(' '));
  const [view, bam, help, version, usage] = reference;
  assert.equal(view.code, 0);
  assert.equal(view.stderr, '');
  const records = view.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('@'));
  assert.ok(records.length > 0, 'the view printed records');
  assert.ok(records.every((l) => l.split('\t')[2] === 'CHROMOSOME_I'));
  assert.equal(bam.code, 0);
  assert.ok(bam.stdout.startsWith('\x1f\x8b'), 'BAM output is BGZF');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--query/);
  assert.equal(version.code, 0);
  assert.equal(version.stdout, `${JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')).version}\n`);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^slicefs: error: .*no-such-option.*\n$/);
});

test('the bundle is strict mode code, as the ES modules it is built from', async () => {
  // Only compiled here, never called. A sloppy function has own `caller` and `arguments`; a strict one has neither.
  const bundle = new Script(await readFile(join(REPO, 'dist/bundle/main.cjs'), 'latin1')).runInThisContext() as () => void;
  assert.equal(typeof bundle, 'function');
  assert.equal(Object.hasOwn(bundle, 'caller'), false);
});

test('without the debug variable the launcher says nothing of the cache', async () => {
  const r = await run(process.execPath, [join(REPO, 'bin/slicefs.js'), '--version'], { env: { PATH: process.env.PATH }, timeoutMs: 60_000 });
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
});

test('the copy with the built cache prints the same as the build', async () => {
  await writeFile(cachePath, builtCache);
  await assertSameAs(reference, 'accepted');
});

test('cache absent: the same output', async () => {
  await rm(cachePath, { force: true });
  await assertSameAs(reference, 'absent');
});

test('cache of random bytes: the same output', async () => {
  await writeFile(cachePath, randomBytes(builtCache.length));
  await assertSameAs(reference, 'stale');
});

test("the header right, V8's part random bytes: V8 rejects it, the same output", async () => {
  const headerEnd = builtCache.indexOf(0x0a) + 1;
  await writeFile(cachePath, Buffer.concat([builtCache.subarray(0, headerEnd), randomBytes(builtCache.length - headerEnd)]));
  await assertSameAs(reference, 'rejected');
});

test('a cache made under other V8 flags is rejected: the same output', async () => {
  await writeFile(cachePath, builtCache);
  await assertSameAs(reference, 'rejected', ['--stack-size=900']);
});

test('cache unreadable (a directory in its place): the same output', async () => {
  await rm(cachePath, { force: true });
  await mkdir(cachePath);
  try {
    await assertSameAs(reference, 'unreadable');
  } finally {
    await rm(cachePath, { recursive: true, force: true });
  }
});

test('a cache made for another bundle (stale) is not used: the same output as that bundle without one', async () => {
  // Another build of the bundle: one statement more, and its own id (as scripts/bundle.mjs makes it).
  const bundlePath = join(copy, 'dist/bundle/main.cjs');
  const original = await readFile(bundlePath, 'utf8');
  const idLine = original.lastIndexOf('\n//# slicefs-bundle-id=');
  assert.ok(idLine > 0, 'the bundle ends with its id line');
  const end = original.lastIndexOf('\n})', idLine);
  const text = `${original.slice(0, end)}\nvoid 'another build';${original.slice(end, idLine)}`;
  assert.notEqual(text, original.slice(0, idLine));
  await writeFile(bundlePath, `${text}\n//# slicefs-bundle-id=${createHash('sha256').update(text).digest('hex')}\n`);
  try {
    await writeFile(cachePath, builtCache);
    await assertSameAs(reference, 'stale');
  } finally {
    await writeFile(bundlePath, original);
  }
});
