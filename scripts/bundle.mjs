// Bundles the compiled CLI (dist/src) into dist/bundle/ with esbuild: what `bin/slicefs.js` runs.
//
// Why: a view of a small region is mostly Node start-up, and most of that was the ES module loader
// resolving, reading and compiling ~400 files of undici, yargs and @gmod/* one by one
// (docs/benchmarks.md: 0.49 s → 0.30 s for a 1 kb region). Code splitting keeps what a command
// imports lazily (the mount's FUSE session, the view's run, BAM vs CRAM readers) in chunks loaded
// only when used. fuse-native stays external: it loads a native addon from its own directory.
// The workers are their own entry points: worker-transport starts `./fetch-worker.js` next to it,
// the download's hasher `./md5-worker.js`, the disk tier's writer `./slot-writer-worker.js`.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/bundle');
await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: {
    main: 'dist/src/cli/main.js',
    'fetch-worker': 'dist/src/transport/fetch-worker.js',
    'md5-worker': 'dist/src/download/md5-worker.js',
    'slot-writer-worker': 'dist/src/cache/slot-writer-worker.js',
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['fuse-native'],
  // CommonJS dependencies call require() for Node built-ins; an ES module has no require.
  banner: { js: "import { createRequire as __slicefsCreateRequire } from 'node:module'; const require = __slicefsCreateRequire(import.meta.url);" },
  sourcemap: true,
  logLevel: 'warning',
});
