// Bundles the compiled CLI (dist/src) into dist/bundle/ with esbuild: what `bin/slicefs.js` runs,
// then trains its V8 code cache (scripts/code-cache.mjs).
//
// Why: a view of a small region is mostly Node start-up: loading, compiling and running the CLI's
// JavaScript once (docs/benchmarks.md, "Start-up of `view`"). Two builds:
// - the CLI, `main.cjs`: one CommonJS file without code splitting, so that bin/slicefs.js can compile
//   it with `vm.Script` and a code cache (V8 caches scripts, not ES modules, in Node 20). What a
//   command imports lazily (`await import()`: the mount's FUSE session, the view's run, BAM vs CRAM
//   readers) becomes a lazily evaluated module closure (esbuild's `__esm` / `__commonJS`), run at its
//   first import as before. The file is one function expression, `(function (exports, require,
//   module, __filename, __dirname) { 'use strict'; … })`, the wrapper Node gives a CommonJS module
//   (strict, as the ES modules it is built from were): the launcher and the training compile the
//   file's text as it is, so both hand V8 the same source. Its last line is
//   `//# slicefs-bundle-id=<SHA-256 of the rest>`: a code cache names the bundle it was made for,
//   because V8 itself checks only the source's length.
// - the workers, ES modules with code splitting, each its own entry point: worker-transport starts
//   `./fetch-worker.js` next to the bundle, the download's hasher `./md5-worker.js`, view's SAM
//   formatting pool `./sam-format-worker.js`, its CRAM slice decoders `./cram-slice-worker.js`,
//   the mount's Crypt4GH decryptor `./decrypt-worker.js`,
//   the disk tier's writer `./slot-writer-worker.js` (`new URL(name, import.meta.url)`: in main.cjs
//   `import.meta.url` is the bundle file's URL, so they resolve to the same directory).
// fuse-native stays external: it loads a native addon from its own directory.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import process from 'node:process';
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

/**
 * CommonJS has no top-level await, and src/cli/main.ts awaits yargs' parse (and, for --version,
 * the version) at its top level. Nothing imports main, so nothing waits for its evaluation: its body
 * after the imports runs as an async function instead, started at once. Errors still leave through
 * its own `.catch` and the fatal handlers it installs first. A main.js whose import block this
 * does not recognise (a statement other than a one-line import before the body) fails the build.
 */
const mainWithoutTopLevelAwait = {
  name: 'main-without-top-level-await',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]src[\\/]cli[\\/]main\.js$/ }, async (args) => {
      const lines = (await readFile(args.path, 'utf8')).split('\n');
      const isHead = (l) => /^\s*$|^\s*(\/\/|\/\*|\*)/.test(l) || /^import\s.*;\s*$/.test(l);
      let body = 0;
      while (body < lines.length && isHead(lines[body])) body++;
      const rest = lines.slice(body);
      if (rest.some((l) => /^(import|export)\s/.test(l))) throw new Error(`${args.path}: an import or export after the first statement: cannot wrap its body for CommonJS`);
      return { contents: [...lines.slice(0, body), 'void (async () => {', ...rest, '})();', ''].join('\n'), loader: 'js' };
    });
  },
};

/**
 * undici's Client requires its HTTP/2 half (client-h2.js) when it is loaded, and that requires
 * `node:http2`, which requires `node:tls`: ~10 ms of Node compiling its own modules at every start,
 * for HTTP/2, which slicefs never asks for (no `allowH2`). The require moves into the one call that
 * uses it (an h2 connection), so it runs only then.
 */
const lazyUndiciH2 = {
  name: 'lazy-undici-h2',
  setup(b) {
    b.onLoad({ filter: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const eager = "const connectH2 = require('./client-h2.js')";
      if (!text.includes(eager)) throw new Error(`${args.path}: no \`${eager}\` to make lazy (undici changed: look again)`);
      return { contents: text.replace(eager, "const connectH2 = (client, socket) => require('./client-h2.js')(client, socket)"), loader: 'js' };
    });
  },
};

/**
 * The command modules (mount, status, unmount) and the mount-point helpers import `node:child_process`
 * at load for a call they make only when they run: ~4 ms of every start. In dist/src, the import
 * gets a stand-in whose functions require the real module at their first call (execFile keeps its
 * promisify form, which resolves to { stdout, stderr }). An import of another name fails the build.
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) => (/[\\/]dist[\\/]src[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'lazy-child-process' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-child-process' }, () => ({
      contents: [
        "import { promisify } from 'node:util';",
        'let real;',
        "const childProcess = () => (real ??= require('node:child_process'));",
        'export function execFile(...args) { return childProcess().execFile(...args); }',
        'execFile[promisify.custom] = (...args) => promisify(childProcess().execFile)(...args);',
        'export function spawn(...args) { return childProcess().spawn(...args); }',
        '',
      ].join('\n'),
      loader: 'js',
    }));
  },
};

const common = { absWorkingDir: root, bundle: true, platform: 'node', target: 'node20', external: ['fuse-native'], plugins: [lazyStringWidth], sourcemap: true, logLevel: 'warning' };
const outdir = join(root, 'dist/bundle');
await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });

const cli = await build({
  ...common,
  entryPoints: { main: 'dist/src/cli/main.js' },
  outdir,
  outExtension: { '.js': '.cjs' },
  // Comments and indentation out: 1.5 MB instead of 2.1 MB to read at every start (the source map keeps the lines).
  minifyWhitespace: true,
  format: 'cjs',
  plugins: [lazyStringWidth, mainWithoutTopLevelAwait, lazyUndiciH2, lazyChildProcess],
  define: { 'import.meta.url': '__slicefsImportMetaUrl' },
  banner: { js: "(function (exports, require, module, __filename, __dirname) {\n'use strict';\nvar __slicefsImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  footer: { js: '})' },
  write: false,
});
for (const out of cli.outputFiles) {
  if (!out.path.endsWith('.cjs')) {
    await writeFile(out.path, out.contents);
    continue;
  }
  // ASCII only, so that the launcher can read it as latin1: a copy into a one-byte string, where
  // decoding 2 MB of UTF-8 costs ~6 ms of every start. esbuild escapes non-ASCII characters in code
  // (its default charset); what remains is in comments, escaped the same way.
  const text = out.text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const id = createHash('sha256').update(text).digest('hex');
  await writeFile(out.path, `${text}\n//# slicefs-bundle-id=${id}\n`, 'latin1');
}

await build({
  ...common,
  entryPoints: {
    'fetch-worker': 'dist/src/transport/fetch-worker.js',
    'md5-worker': 'dist/src/download/md5-worker.js',
    'sam-format-worker': 'dist/src/view/sam-format-worker.js',
    'cram-slice-worker': 'dist/src/view/cram/cram-slice-worker.js',
    'decrypt-worker': 'dist/src/crypt4gh/decrypt-worker.js',
    'slot-writer-worker': 'dist/src/cache/slot-writer-worker.js',
  },
  outdir,
  splitting: true,
  format: 'esm',
  // CommonJS dependencies call require() for Node built-ins; an ES module has no require.
  banner: { js: "import { createRequire as __slicefsCreateRequire } from 'node:module'; const require = __slicefsCreateRequire(import.meta.url);" },
});

// The code cache: trained in fresh processes, by the Node that built the bundle.
execFileSync(process.execPath, [join(root, 'scripts/code-cache.mjs')], { stdio: 'inherit' });
