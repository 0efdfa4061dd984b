// Trains the V8 code cache of the CLI bundle: dist/bundle/main.cjs → dist/bundle/main.cjs.v8cache,
// which bin/slicefs.js hands to V8 when it compiles the bundle. Run by scripts/bundle.mjs.
//
//   node scripts/code-cache.mjs
//
// How: V8 caches the bytecode of the functions a script has compiled so far
// (`script.createCachedData()`), so the cache holds what a training run ran. The training is a
// chain of commands, each a fresh process (the CLI ends its process) that compiles the bundle with
// the previous step's cache, runs one command and, at exit, writes the cache again, now with that
// command's functions too: `--version`, `view --help`, then a view of a small BAM region
// (test/data/conformance/htslib-test/range.bam) over HTTP from a server on 127.0.0.1, cold and then
// warm (a fresh XDG_CACHE_HOME: the disk tier and the index cache as users have them), so that the
// transport, the disk tier and the BAM reader are in it. Each step must find the previous cache
// accepted; the build then checks that bin/slicefs.js itself accepts the result in a view.
//
// V8 rejects a cache made under other V8 flags (it records a hash of them). A BAM view sets
// `--liftoff-only` at run time (src/cli/view-run.ts), after the bundle is compiled; a cache written
// after that would be rejected by every later start, which compiles under the default flags. So a
// training step does not let the CLI change V8's flags: the functions compiled are the same.
//
// File format: the line `slicefs-v8-code-cache <bundle id>\n` (the id from the bundle's last line,
// `//# slicefs-bundle-id=…`, scripts/bundle.mjs), then V8's bytes. The cache is written only here,
// into dist/bundle/; nothing writes one at run time.
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import process from 'node:process';
import { dirname, join } from 'node:path';
import { URL, fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundlePath = join(root, 'dist/bundle/main.cjs');
const cachePath = `${bundlePath}.v8cache`;
const binPath = join(root, 'bin/slicefs.js');
const bamDir = join(root, 'test/data/conformance/htslib-test');
const bamName = 'range.bam';
/** 1 kb with 12 records, as a small view of users': the records of the region, not an empty answer. */
const region = 'CHROMOSOME_I:1-1000';

const source = readFileSync(bundlePath, 'latin1'); // as bin/slicefs.js reads it: the same string for V8
const bundleId = /\/\/# slicefs-bundle-id=([0-9a-f]{64})\s*$/.exec(source.slice(-100))?.[1];
if (!bundleId) throw new Error(`${bundlePath}: no slicefs-bundle-id line at its end (scripts/bundle.mjs writes it)`);
const header = Buffer.from(`slicefs-v8-code-cache ${bundleId}\n`, 'latin1');

if (process.argv[2] === '--step') trainingStep(process.argv[3], process.argv[4], process.argv.slice(5));
else await train();

/** One step, in its own process: compile with the cache IN ('-': none), run the CLI with ARGS, write the cache to OUT at exit. */
function trainingStep(input, output, args) {
  let cachedData;
  if (input !== '-') {
    const file = readFileSync(input);
    if (!file.subarray(0, header.length).equals(header)) throw new Error(`${input}: not a code cache of this bundle`);
    cachedData = file.subarray(header.length);
  }
  const script = new Script(source, { filename: bundlePath, cachedData });
  if (cachedData && script.cachedDataRejected) throw new Error(`V8 rejected the code cache of the previous training step (${input})`);
  createRequire(import.meta.url)('node:v8').setFlagsFromString = () => {};
  process.argv = [process.execPath, binPath, ...args];
  process.on('exit', () => writeFileSync(output, Buffer.concat([header, script.createCachedData()])));
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
}

async function train() {
  for (const f of [bamName, `${bamName}.bai`]) statSync(join(bamDir, f)); // a clear ENOENT before anything runs
  const work = mkdtempSync(join(tmpdir(), 'slicefs-code-cache-'));
  const server = await serveFiles(bamDir);
  try {
    const url = `http://127.0.0.1:${server.address().port}/${bamName}`;
    // None of the builder's settings (a cache tier, profiles, tokens): the view goes to this server only.
    const env = { PATH: process.env.PATH, HOME: work, XDG_CACHE_HOME: join(work, 'cache'), XDG_CONFIG_HOME: join(work, 'config') };
    const view = ['view', '--url', url, '-q', region];
    let previous = '-';
    for (const [i, args] of [['--version'], ['view', '--help'], view, view].entries()) {
      const next = join(work, `step-${i}.v8cache`);
      await run([fileURLToPath(import.meta.url), '--step', previous, next, ...args], env);
      previous = next;
    }
    const temporary = `${cachePath}.${process.pid}.tmp`;
    writeFileSync(temporary, readFileSync(previous));
    renameSync(temporary, cachePath);
    // The launcher, in the command the cache is for: V8 must accept it there, not only in training.
    const check = await run([binPath, ...view], { ...env, SLICEFS_DEBUG_CODE_CACHE: '1' });
    if (!/^slicefs: code cache: accepted$/m.test(check)) {
      rmSync(cachePath, { force: true });
      throw new Error(`bin/slicefs.js did not accept the code cache just trained: ${check.trim()}`);
    }
    process.stdout.write(`code-cache: ${cachePath} (${statSync(cachePath).size} bytes), accepted in a view\n`);
  } finally {
    server.close();
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Runs `node ARGS` (asynchronously: the HTTP server answers from this process), its output dropped;
 * resolves to its stderr, rejects when it fails or takes more than a minute.
 */
function run(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(stderr);
      else reject(new Error(`training step failed (${signal ?? `exit ${code}`}): node ${args.join(' ')}\n${stderr.trim()}`));
    });
  });
}

/** A minimal HTTP server of DIR's files on 127.0.0.1 (HEAD, GET, one `Range: bytes=a-b`), for the training view. */
function serveFiles(dir) {
  const server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname.slice(1));
    let body;
    try {
      if (name.includes('/') || name.startsWith('.')) throw new Error('not served');
      body = readFileSync(join(dir, name));
    } catch {
      res.writeHead(404).end();
      return;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (start >= body.length && body.length > 0) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    const end = range && range[2] !== '' ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
    const part = body.subarray(start, end + 1);
    const headers = { 'content-length': part.length, 'accept-ranges': 'bytes', etag: `"${body.length}"` };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
    res.writeHead(range ? 206 : 200, headers);
    res.end(req.method === 'HEAD' ? undefined : part);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
