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
//
// This file is CommonJS (bin/package.json says so): Node loads a CommonJS entry without setting up its
// ES module loader, ~7 ms less of every start. The bundle is ASCII (scripts/bundle.mjs), read as
// latin1: a plain copy, where decoding it as UTF-8 costs ~6 ms.
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const bundlePath = join(__dirname, '../dist/bundle/main.cjs');
const cachePath = `${bundlePath}.v8cache`;

let source;
try {
  source = readFileSync(bundlePath, 'latin1');
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
const bundleModule = { exports: {} };
script.runInThisContext()(bundleModule.exports, createRequire(bundlePath), bundleModule, bundlePath, dirname(bundlePath));
