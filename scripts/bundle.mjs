// Bundles the compiled CLI (dist/src) into dist/bundle/ with esbuild: what `bin/slicefs.js` runs.
//
// Why: a view of a small region is mostly Node start-up, and most of that was the ES module loader
// resolving, reading and compiling ~400 files of undici, yargs and @gmod/* one by one
// (docs/benchmarks.md: 0.49 s → 0.30 s for a 1 kb region). Code splitting keeps what a command
// imports lazily (the mount's FUSE session, the view's run, BAM vs CRAM readers) in chunks loaded
// only when used. fuse-native stays external: it loads a native addon from its own directory.
// The workers are their own entry points: worker-transport starts `./fetch-worker.js` next to it,
// the download's hasher `./md5-worker.js`, view's SAM formatting pool `./sam-format-worker.js`, its CRAM slice decoders `./cram-slice-worker.js`, the
// mount's Crypt4GH decryptor `./decrypt-worker.js`, the disk tier's writer `./slot-writer-worker.js`.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * string-width (three copies: yargs', cliui's and wrap-ansi's) builds an Intl.Segmenter and
 * Unicode property regexes (`\p{RGI_Emoji}` with the v flag) when its module is evaluated: ~10-20 ms
 * of every start-up, for widths yargs only measures when it prints help. Each import of it gets a
 * stand-in that evaluates the real module (bundled as a lazily run module: esbuild's `require` of
 * an ES module) at its first call.
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData?.real) return undefined;
      const real = await b.resolve('string-width', { resolveDir: args.resolveDir, kind: args.kind, importer: args.importer, pluginData: { real: true } });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-string-width' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      contents: `let real;\nexport default function stringWidth(string, options) {\n  real ??= require(${JSON.stringify(args.path)});\n  return real.default(string, options);\n}\n`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};
const outdir = join(root, 'dist/bundle');
await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: {
    main: 'dist/src/cli/main.js',
    'fetch-worker': 'dist/src/transport/fetch-worker.js',
    'md5-worker': 'dist/src/download/md5-worker.js',
    'sam-format-worker': 'dist/src/view/sam-format-worker.js',
    'cram-slice-worker': 'dist/src/view/cram/cram-slice-worker.js',
    'decrypt-worker': 'dist/src/crypt4gh/decrypt-worker.js',
    'slot-writer-worker': 'dist/src/cache/slot-writer-worker.js',
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['fuse-native'],
  plugins: [lazyStringWidth],
  // CommonJS dependencies call require() for Node built-ins; an ES module has no require.
  banner: { js: "import { createRequire as __slicefsCreateRequire } from 'node:module'; const require = __slicefsCreateRequire(import.meta.url);" },
  sourcemap: true,
  logLevel: 'warning',
});
