#!/usr/bin/env node
// Launcher. The CLI is built into dist/bundle/ (`npm run build`: tsc, then scripts/bundle.mjs):
// main.cjs, one function expression wrapping the CommonJS bundle, and main.cjs.v8cache, V8's code
// cache for it, made at build time by a training run (scripts/code-cache.mjs). With the cache, V8
// takes the bytecode of the functions a command runs from the file instead of parsing and compiling
// ~2 MB of JavaScript on every start (docs/benchmarks.md, "Start-up of `view`").
//
// The cache is used only when its header names this bundle (its slicefs-bundle-id line), and V8
// accepts it only when it was made by the same V8 with the same flags for a source of the same
// length; otherwise (absent, unreadable, stale, rejected) the bundle is compiled from its text, with
// the same result, only slower. Nothing is written here: a cache is executable code, and it is made
// only by the build, in dist/bundle/. Like the bundle beside it, the file is trusted as built: V8 does
// not checksum a code cache's payload in release builds.
//
// SLICEFS_DEBUG_CODE_CACHE=1 prints one line on stderr: `slicefs: code cache: accepted` (or absent,
// unreadable, stale, rejected, as above).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const bundlePath = join(dirname(fileURLToPath(import.meta.url)), '../dist/bundle/main.cjs');
const cachePath = `${bundlePath}.v8cache`;

let source;
try {
  source = readFileSync(bundlePath, 'utf8');
} catch (err) {
  process.stderr.write(`slicefs: error: cannot read the CLI bundle ${bundlePath} (${err.code ?? err.message}): run \`npm run build\`\n`);
  process.exit(1);
}

/** The cache's bytes for V8 when its header names this bundle, and why not otherwise. */
function readCodeCache() {
  let file;
  try {
    file = readFileSync(cachePath);
  } catch (err) {
    return { state: err.code === 'ENOENT' ? 'absent' : 'unreadable' };
  }
  // The bundle's last line: `//# slicefs-bundle-id=<64 hex digits>` (scripts/bundle.mjs).
  const id = /\/\/# slicefs-bundle-id=([0-9a-f]{64})\s*$/.exec(source.slice(-100))?.[1];
  const header = `slicefs-v8-code-cache ${id}\n`;
  if (id === undefined || file.length <= header.length || file.toString('latin1', 0, header.length) !== header) return { state: 'stale' };
  return { state: 'read', data: file.subarray(header.length) };
}

const cache = readCodeCache();
const script = new Script(source, { filename: bundlePath, cachedData: cache.data });
if (process.env.SLICEFS_DEBUG_CODE_CACHE === '1') {
  const state = cache.state !== 'read' ? cache.state : script.cachedDataRejected ? 'rejected' : 'accepted';
  process.stderr.write(`slicefs: code cache: ${state}\n`);
}
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
