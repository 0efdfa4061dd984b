/**
 * Every command of slicefs (the list is read from `slicefs --help`, so a new command without cells
 * fails here) run with bad input: an unknown option, a missing required option or argument, bad
 * numbers and sizes, a manifest that is missing, a directory, or unreadable, and outputs (`-o`,
 * `-d`, `--out`, a mount point, `--log-file`) that are missing, a file, on a read-only file system
 * (a tmpfs mounted `ro`), on a full disk (a 64 KiB tmpfs, filled), under /proc, and under a slicefs
 * FUSE mount. Each cell asserts what a user must get: exactly one line on stderr, starting
 * `slicefs: error: `, no stack frame, the right exit code (2 bad input, 1 a failed run), nothing on
 * stdout, and the test's whole file tree as it was (every name, type, size and mode, and the
 * files' mtimes: nothing created, changed or left behind).
 *
 * The unreadable-manifest cells need a user that permissions apply to (root reads a mode-000 file):
 * they run as `nobody` through setpriv, and are skipped, with the reason, where that cannot be done.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, copyFile, lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { SETPRIV } from '../helpers/cache-tier.js';
import { privateKeyFile, VECTORS } from '../helpers/c4gh-vectors.js';
import { BIN, cleanup, run, runSlicefs, startDaemon, tempDir, writeManifest } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';
import { ensureSampleData, type SampleData } from '../helpers/sample-data.js';

let base: string;
/** The tree every cell must leave unchanged. */
let tree: string;
let server: FixtureServer;
let sample: SampleData;
let manifest: string;
/** A manifest of one file larger than the full disk's free space (none). */
let bigManifest: string;
const mounted: string[] = [];

/** Paths in the tree. */
const at = (...p: string[]) => join(tree, ...p);

before(async () => {
  base = await tempDir('slicefs-cli-errors-');
  tree = join(base, 'tree');
  sample = await ensureSampleData();
  server = await FixtureServer.start();
  server.addFile('/d/small.bin', seededBytes(1, 1000));
  server.addFile('/d/big.bin', seededBytes(2, 200_000));
  await mkdir(at('adir'), { recursive: true });
  await writeFile(at('afile'), 'a file where a directory is wanted\n');
  await mkdir(at('full-dir'));
  await writeFile(at('full-dir', 'keep.txt'), 'precious');
  manifest = await writeManifest(tree, [{ url: server.url('/d/small.bin'), path: 'small.bin', size: 1000 }]);
  const bigDir = at('big');
  await mkdir(bigDir);
  bigManifest = await writeManifest(bigDir, [{ url: server.url('/d/big.bin'), path: 'big.bin', size: 200_000 }]);
  await copyFile(join(VECTORS, 'enc/p200000.alice.c4gh'), at('secret.bin.c4gh'));
  await writeFile(at('unreadable.tsv'), await readFile(manifest));
  await chmod(at('unreadable.tsv'), 0o000);
  // Read-only and full file systems (the tests run as root, as the FUSE tests do).
  for (const [dir, opts] of [
    ['ro', 'ro,size=64k'],
    ['full', 'size=64k'],
  ]) {
    await mkdir(at(dir));
    const m = await run('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', at(dir)]);
    assert.equal(m.code, 0, `mount -t tmpfs -o ${opts} (as root): ${m.stderr}`);
    mounted.push(at(dir));
  }
  // Filled to the last block: any write fails with ENOSPC.
  await run('dd', ['if=/dev/zero', `of=${at('full', 'filler')}`, 'bs=4k', 'count=1000']);
  // `nobody` must reach the files it is given (mkdtemp makes 0700 directories).
  await chmod(base, 0o755);
  await chmod(tree, 0o755);
});

after(async () => {
  for (const dir of mounted) await run('umount', ['-l', dir]);
  await server?.close();
  await cleanup(base);
});

/** Every path under `dir` with its type, size, mode and mtime; mount points of FUSE not entered. */
async function snapshot(dir: string, skip: readonly string[] = []): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const st = await lstat(p);
      // A directory's mtime is left out: a file made and removed again (view's -o on a full disk) moves it.
      out.set(p, `${st.isDirectory() ? 'd' : st.isFile() ? 'f' : 'o'} ${st.size} ${st.mode.toString(8)} ${st.isDirectory() ? '' : st.mtimeMs}`);
      if (st.isDirectory() && !skip.includes(p)) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

interface Cell {
  /** The command line after `slicefs`. */
  args: string[];
  code: 1 | 2;
  /** What the one line must say (after `slicefs: error: `). */
  says?: RegExp;
  /** Must not say (e.g. yargs' second name of an option). */
  never?: RegExp;
  /** Run as `nobody` (permissions apply). */
  asNobody?: boolean;
  env?: Record<string, string | undefined>;
}

/** The environment of every cell: caches and state outside the tree, no config file of the host's. */
function cellEnv(): Record<string, string | undefined> {
  return { XDG_CACHE_HOME: join(base, 'cache'), XDG_STATE_HOME: join(base, 'state'), XDG_CONFIG_HOME: join(base, 'config'), HOME: join(base, 'home'), C4GH_SECRET_KEY: undefined, C4GH_PASSPHRASE: 'not asked' };
}

function runCell(cell: Cell) {
  const env = { ...cellEnv(), ...cell.env };
  if (!cell.asNobody) return runSlicefs(cell.args, env);
  const clean = { ...process.env, SLICEFS_CACHE_PROXY: undefined, ACCESSTOKEN: undefined, SLICEFS_TOKEN: undefined, STORAGE_URL: undefined, METADATA_URL: undefined, ...env };
  return run(SETPRIV!, ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, ...cell.args], { env: clean });
}

async function check(t: TestContext, cell: Cell, skip: readonly string[] = []): Promise<void> {
  await t.test(cell.args.join(' ').replaceAll(tree, 'T'), async (st) => {
    if (cell.asNobody && (!SETPRIV || process.getuid?.() !== 0)) {
      st.skip(SETPRIV ? 'needs root to run a cell as nobody' : 'setpriv is not installed: cannot run a cell as a user that permissions apply to');
      return;
    }
    const before = await snapshot(tree, skip);
    const r = await runCell(cell);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, `exactly one line on stderr:\n${r.stderr}`);
    assert.match(lines[0], /^slicefs: error: /);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack frame');
    assert.equal(r.code, cell.code, r.stderr);
    assert.equal(r.stdout.length, 0, `nothing on stdout: ${r.stdout.toString().slice(0, 200)}`);
    if (cell.says) assert.match(lines[0], cell.says);
    if (cell.never) assert.doesNotMatch(lines[0], cell.never);
    assert.deepEqual(await snapshot(tree, skip), before, 'the tree is unchanged');
  });
}

/** The commands `slicefs --help` lists. */
async function listedCommands(): Promise<string[]> {
  const r = await runSlicefs(['--help']);
  assert.equal(r.code, 0, r.stderr);
  return [...r.stdout.toString().matchAll(/^\s+slicefs (\w+)/gm)].map((m) => m[1]);
}

test('every command: unknown options, missing and bad values are one line, exit 2, nothing written', async (t) => {
  const bam = sample.bam;
  const key = privateKeyFile('keys/alice.nocrypt.sec');
  const unknown = /^slicefs: error: unknown option '--bogus-option' \(slicefs --help for usage\)$/;
  const cells: Record<string, Cell[]> = {
    mount: [
      { args: ['mount', '-m', manifest, at('adir', 'm'), '--bogus-option'], code: 2, says: unknown, never: /bogusOption/ },
      { args: ['mount', '-m', manifest], code: 2, says: /give a mount point/ },
      { args: ['mount', at('adir', 'm')], code: 2, says: /give one of --manifest FILE or --ghga/ },
      { args: ['mount', '-m', manifest, at('adir', 'm'), '--cache-size', '12Q'], code: 2, says: /invalid --cache-size '12Q'/ },
      { args: ['mount', '-m', manifest, at('adir', 'm'), '--timeout', 'abc'], code: 2, says: /--timeout must be between 2 and 600/ },
      { args: ['mount', '-m', manifest, at('adir', 'm'), '--connections', '0'], code: 2, says: /--connections must be a positive integer/ },
      { args: ['mount', '-m', manifest, at('adir', 'm'), '--probe-concurrency', 'x'], code: 2, says: /--probe-concurrency must be an integer/ },
      { args: ['mount', '-m', manifest, at('adir', 'm'), '--layout', 'nope'], code: 2, says: /^slicefs: error: --layout: "nope" is not one of "/ },
    ],
    unmount: [
      { args: ['unmount', at('adir'), '--bogus-option'], code: 2, says: unknown },
      { args: ['unmount'], code: 2, says: /missing argument: slicefs unmount <mountpoint>/ },
      { args: ['unmount', at('adir'), '--wait', 'abc'], code: 2, says: /--wait must be between 0 and 3600/ },
      // Documented: a path that is not mounted is a failed unmount (exit 1).
      { args: ['unmount', at('afile')], code: 1, says: /afile is not mounted$/ },
    ],
    status: [{ args: ['status', '--bogus-option'], code: 2, says: unknown }],
    view: [
      { args: ['view', '--input-file', bam, '--bogus-option'], code: 2, says: unknown, never: /bogusOption/ },
      { args: ['view'], code: 2, says: /give exactly one of --url/ },
      { args: ['view', '-m', manifest], code: 2, says: /--manifest needs --path/ },
      { args: ['view', '--input-file', bam, '--cache-size', 'abc'], code: 2, says: /invalid --cache-size 'abc'/ },
      { args: ['view', '--input-file', bam, '--timeout', 'abc'], code: 2, says: /--timeout must be a number of seconds/ },
      { args: ['view', '--input-file', bam, '--connections', 'x'], code: 2, says: /--connections must be a positive integer/ },
      { args: ['view', '--input-file', bam, '--output-format', 'cram'], code: 2, says: /--output-format: "cram" is not one of "sam", "bam"/ },
    ],
    download: [
      { args: ['download', '-m', manifest, '-d', at('adir', 'out'), '--bogus-option'], code: 2, says: unknown, never: /bogusOption/ },
      { args: ['download', '-m', manifest], code: 2, says: /missing required option --output-dir/ },
      { args: ['download', '-d', at('adir', 'out')], code: 2, says: /give one of --manifest FILE, --url URL or --object-id ID/ },
      { args: ['download', '-m', manifest, '-d', at('adir', 'out'), '--parallel', 'abc'], code: 2, says: /--parallel must be an integer/ },
      { args: ['download', '-m', manifest, '-d', at('adir', 'out'), '--part-size', '1x'], code: 2, says: /invalid --part-size '1x'/ },
      { args: ['download', '-m', manifest, '-d', at('adir', 'out'), '--limit-rate', 'fast'], code: 2, says: /invalid --limit-rate 'fast'/ },
      { args: ['download', '-m', manifest, '-d', at('adir', 'out'), '--timeout', '-1'], code: 2, says: /--timeout must be a number of seconds/ },
      { args: ['download', '-m', manifest, '-d', at('adir', 'out'), '--disk-cache-size', '1Q'], code: 2, says: /invalid --disk-cache-size '1Q'/ },
    ],
    cache: [
      { args: ['cache', 'stats', '--bogus-option'], code: 2, says: unknown },
      { args: ['cache', 'clear', '--bogus-option'], code: 2, says: unknown },
      { args: ['cache'], code: 2, says: /give a command: slicefs cache stats, or slicefs cache clear/ },
      { args: ['cache', 'bogus'], code: 2, says: /unknown command 'cache bogus'/ },
      { args: ['cache', 'stats', '--cache-dir', at('afile')], code: 2, says: /--cache-dir \S+afile: not a directory/ },
    ],
    manifest: [
      { args: ['manifest', '-m', manifest, '--bogus-option'], code: 2, says: unknown },
      { args: ['manifest'], code: 2, says: /missing required option --manifest/ },
      { args: ['manifest', '-m', manifest, '--connections', '0'], code: 2, says: /--connections must be a positive integer/ },
      { args: ['manifest', '-m', manifest, '--timeout', 'abc'], code: 2, says: /--timeout must be a number of seconds/ },
    ],
    decrypt: [
      { args: ['decrypt', '--private-key', key, at('secret.bin.c4gh'), '--bogus-option'], code: 2, says: unknown },
      { args: ['decrypt', '--private-key', key], code: 2, says: /missing argument: slicefs decrypt <files\.\.>/ },
      { args: ['decrypt', at('secret.bin.c4gh')], code: 2, says: /decrypt needs your Crypt4GH key/ },
      { args: ['decrypt', '--private-key', at('nokey.sec'), at('secret.bin.c4gh')], code: 2, says: /--private-key \S+nokey\.sec: cannot read \(\S+nokey\.sec does not exist\)/ },
    ],
    keygen: [
      { args: ['keygen', '--nocrypt', '--out', at('adir', 'k'), '--bogus-option'], code: 2, says: unknown },
      { args: ['keygen', '--nocrypt'], code: 2, says: /missing required option --out/ },
    ],
    url: [
      { args: ['url', '--object-id', 'x', '--bogus-option'], code: 2, says: unknown },
      { args: ['url'], code: 2, says: /missing required option --object-id/ },
      { args: ['url', '--object-id', 'x', '--timeout', 'abc'], code: 2, says: /--timeout must be a number of seconds/ },
    ],
    info: [
      { args: ['info', '--bogus-option'], code: 2, says: unknown },
      { args: ['info', '--timeout', 'abc'], code: 2, says: /--timeout must be a number of seconds/ },
    ],
  };
  const listed = await listedCommands();
  assert.ok(listed.length >= 11, `commands listed by --help: ${listed.join(' ')}`);
  assert.deepEqual(listed.filter((c) => !(c in cells)), [], 'every command has cells');
  for (const cmd of listed) for (const cell of cells[cmd]) await check(t, cell);

  await check(t, { args: ['bogus'], code: 2, says: /^slicefs: error: unknown command 'bogus' \(/ });
  await check(t, { args: ['view', '--input-file', bam, '--bogus-one', '--bogus-two'], code: 2, says: /unknown options '--bogus-one', '--bogus-two' \(/, never: /bogusOne/ });
});

test('manifests that are missing, a directory or unreadable: one line naming the cause, exit 2', async (t) => {
  const missing = at('adir', 'missing.tsv');
  for (const [m, says, asNobody] of [
    [missing, /cannot read the manifest \(no such file or directory\)/, false],
    [at('adir'), /cannot read the manifest \(is a directory\)/, false],
    [at('unreadable.tsv'), /cannot read the manifest \(permission denied\)/, true],
  ] as const) {
    for (const args of [
      ['mount', '-m', m, at('adir', 'm')],
      ['view', '-m', m, '--path', 'small.bin'],
      ['download', '-m', m, '-d', at('adir', 'out')],
      ['manifest', '-m', m, '--offline'],
    ]) {
      await check(t, { args, code: 2, says, asNobody });
    }
  }
});

test('outputs in the wrong place: the real cause in words, exit 2 (bad path) or 1 (a full disk)', async (t) => {
  const bam = sample.bam;
  const key = privateKeyFile('keys/alice.nocrypt.sec');
  const c4gh = at('secret.bin.c4gh');
  const ro = /read-only file system \(tmpfs mounted at \S+\/ro\)/;
  const noSpace = /no space left on the device \(tmpfs mounted at \S+\/full\)/;
  const proc = /\/proc is a proc file system, where nothing can be created/;
  const cells: Cell[] = [
    // view -o (finding 5: these were Node's "Unhandled 'error' event" traces)
    { args: ['view', '--input-file', bam, '-o', at('adir', 'missing', 'out.sam')], code: 2, says: /-o \S+out\.sam: \S+\/adir\/missing does not exist$/ },
    { args: ['view', '--input-file', bam, '-o', at('afile', 'out.sam')], code: 2, says: /\S+\/afile is a file, not a directory$/ },
    { args: ['view', '--input-file', bam, '-o', at('adir')], code: 2, says: /-o \S+adir: is a directory$/ },
    { args: ['view', '--input-file', bam, '-o', at('ro', 'out.sam')], code: 2, says: ro },
    { args: ['view', '--input-file', bam, '-o', '/proc/slicefs-out.sam'], code: 2, says: proc },
    { args: ['view', '--input-file', bam, '-o', at('full', 'out.sam')], code: 1, says: noSpace },
    // download -d (finding 8: ENOENT, EEXIST and exit 1 named the wrong cause)
    { args: ['download', '-m', manifest, '-d', at('afile')], code: 2, says: /--output-dir (\S+)afile: \1afile is a file, not a directory$/ },
    { args: ['download', '-m', manifest, '-d', at('afile', 'sub')], code: 2, says: /\S+\/afile is a file, not a directory$/ },
    { args: ['download', '-m', manifest, '-d', at('ro')], code: 2, says: ro },
    { args: ['download', '-m', manifest, '-d', at('ro', 'sub', 'deeper')], code: 2, says: ro },
    { args: ['download', '-m', manifest, '-d', '/proc/slicefs-out/x'], code: 2, says: proc },
    // Not even the lock fits: the output directory is unusable (and a directory made for it is removed).
    { args: ['download', '-m', bigManifest, '-d', at('full')], code: 2, says: /cannot lock \S+full: no space left on the device \(tmpfs mounted at \S+\/full\)$/ },
    { args: ['download', '-m', bigManifest, '-d', at('full', 'new')], code: 2, says: /cannot lock \S+new: no space left on the device/ },
    // decrypt -d, keygen --out
    { args: ['decrypt', '--private-key', key, '-d', at('afile'), c4gh], code: 2, says: /afile is a file, not a directory$/ },
    { args: ['decrypt', '--private-key', key, '-d', at('ro', 'x'), c4gh], code: 2, says: ro },
    { args: ['decrypt', '--private-key', key, '-d', at('full'), c4gh], code: 1, says: noSpace },
    { args: ['keygen', '--nocrypt', '--out', at('afile', 'k')], code: 2, says: /--out \S+afile\/k: \S+\/afile is a file, not a directory$/ },
    { args: ['keygen', '--nocrypt', '--out', at('ro', 'k')], code: 2, says: ro },
    { args: ['keygen', '--nocrypt', '--out', '/proc/slicefs-k'], code: 2, says: proc },
    { args: ['keygen', '--nocrypt', '--out', at('full', 'k')], code: 1, says: noSpace },
    // A directory of root's, for nobody (permissions apply).
    { args: ['download', '-m', manifest, '-d', at('adir', 'out')], code: 2, says: /--output-dir \S+out: permission denied: cannot write in \S+\/adir$/, asNobody: true },
    { args: ['view', '--input-file', bam, '-o', at('adir', 'out.sam')], code: 2, says: /-o \S+out\.sam: permission denied: cannot write in \S+\/adir$/, asNobody: true },
    // mount points, --log-file
    { args: ['mount', '-m', manifest, at('afile')], code: 2, says: /mount point \S+afile is not a directory$/ },
    { args: ['mount', '-m', manifest, at('afile', 'm')], code: 2, says: /mount point \S+: \S+\/afile is a file, not a directory$/ },
    { args: ['mount', '-m', manifest, at('ro', 'm')], code: 2, says: ro },
    { args: ['mount', '-m', manifest, '/proc/slicefs-m'], code: 2, says: proc },
    { args: ['mount', '-m', manifest, at('full-dir')], code: 2, says: /is not empty \(1 entry\); choose an empty directory$/ },
    { args: ['mount', '-m', manifest, '--log-file', at('ro', 'log'), at('adir', 'm')], code: 2, says: /--log-file \S+: read-only file system/ },
    { args: ['mount', '-m', manifest, '--log-file', at('adir', 'missing', 'log'), at('adir', 'm')], code: 2, says: /--log-file \S+: \S+\/missing does not exist$/ },
  ];
  for (const cell of cells) await check(t, cell);

  // SLICEFS_DEBUG=1 adds the trace after the one line (and only then).
  const r = await runSlicefs(['download', '-m', manifest, '-d', at('afile')], { ...cellEnv(), SLICEFS_DEBUG: '1' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^slicefs: error: --output-dir \S+afile: \S+afile is a file, not a directory\n/);
  assert.match(r.stderr, /^\s+at /m, 'SLICEFS_DEBUG=1 shows the trace');
});

test('under a slicefs mount: the mount, and its read-only file system, are named', async (t) => {
  const mnt = at('fuse');
  const d = await startDaemon(manifest, mnt, [], cellEnv());
  try {
    // "mounted 1 files" was finding 16.
    assert.match(d.stderr(), /mounted 1 file at /);
    const ro = new RegExp(`read-only file system \\(fuse\\.slicefs mounted at ${mnt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`);
    for (const cell of [
      { args: ['mount', '-m', manifest, join(mnt, 'inner')], code: 2, says: ro },
      { args: ['download', '-m', manifest, '-d', join(mnt, 'out')], code: 2, says: ro },
      { args: ['view', '--input-file', sample.bam, '-o', join(mnt, 'out.sam')], code: 2, says: ro },
    ] satisfies Cell[]) {
      await check(t, cell, [mnt]);
    }
  } finally {
    await d.stop();
  }
});

test('a closed stdout ends quietly (EPIPE), with no trace', async () => {
  const p = spawn(process.execPath, [BIN, 'manifest', '-m', manifest, '--offline'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...cellEnv() } as NodeJS.ProcessEnv });
  // Closed before the child (still starting node) writes its first byte.
  p.stdout.destroy();
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((res) => p.once('close', res));
  clearTimeout(timer);
  assert.equal(err, '', 'nothing on stderr');
  assert.equal(code, 0);
});
