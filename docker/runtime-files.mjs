// Used by the Dockerfile's build stage: collects into OUT what the image runs, and nothing else.
//
//   node docker/runtime-files.mjs OUT      (in the repository root, after `npm ci` and `npm run build`)
//
// OUT/package.json, OUT/bin/, OUT/dist/bundle/*.js, main.cjs and its V8 code cache main.cjs.v8cache
// (no source maps: nothing loads them), and
// OUT/node_modules/ holding only the packages the bundle leaves external (scripts/bundle.mjs:
// fuse-native, which loads a native addon from its own directory) with their production
// dependencies, at the versions package-lock.json installed (`npm query`). Everything else is inside
// the bundle, so the image needs no other package. Other platforms' prebuilt binaries are dropped.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import process from 'node:process';

const out = process.argv[2];
if (!out) throw new Error('usage: node docker/runtime-files.mjs OUT');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'dist/bundle'), { recursive: true });

cpSync('package.json', join(out, 'package.json'));
cpSync('bin', join(out, 'bin'), { recursive: true });
const bundle = readdirSync('dist/bundle').filter((f) => f.endsWith('.js') || f.endsWith('.cjs'));
for (const f of ['main.cjs', 'main.cjs.v8cache']) if (!existsSync(join('dist/bundle', f))) throw new Error(`dist/bundle/${f} is missing: run \`npm run build\` first`);
for (const f of [...bundle, 'main.cjs.v8cache']) cpSync(join('dist/bundle', f), join(out, 'dist/bundle', f));

// The bare specifiers the bundle still imports: static imports, dynamic imports and require()s.
const builtins = new Set(builtinModules);
const external = new Set();
for (const f of bundle) {
  const text = readFileSync(join('dist/bundle', f), 'utf8');
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)(["'])([@a-z0-9][\w@./-]*)\1/g)) {
    const spec = m[2];
    if (spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0])) continue;
    external.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
}
if (external.size === 0) throw new Error('found no external package in dist/bundle: expected at least fuse-native');

// Each external package and every package it depends on, as installed (`#name *` = its descendants).
const selector = [...external].flatMap((name) => [`#${name}`, `#${name} *`]).join(', ');
const nodes = JSON.parse(execFileSync('npm', ['query', selector], { encoding: 'utf8' }));
const installed = new Set(nodes.map((n) => n.name));
for (const name of external) if (!installed.has(name)) throw new Error(`the bundle imports '${name}', which is not installed`);

// fuse-shared-library picks one of these by platform (its index.js); the others are dead weight.
const here = process.platform + (process.arch === 'arm' ? '-arm' : '');
const otherPlatform = (name) => /^fuse-shared-library-/.test(name) && name !== `fuse-shared-library-${here}`;

const kept = [];
for (const n of nodes) {
  if (!n.location.startsWith('node_modules/') || n.dev || otherPlatform(n.name)) continue;
  cpSync(n.location, join(out, n.location), { recursive: true, dereference: true });
  kept.push(`${n.name}@${n.version}`);
}
// Prebuilt addons for other platforms (fuse-native ships darwin-x64 beside linux-x64).
for (const pkg of kept.map((k) => k.slice(0, k.lastIndexOf('@')))) {
  const prebuilds = join(out, 'node_modules', pkg, 'prebuilds');
  if (!existsSync(prebuilds)) continue;
  for (const dir of readdirSync(prebuilds)) {
    if (dir !== `${process.platform}-${process.arch}`) rmSync(join(prebuilds, dir), { recursive: true, force: true });
  }
}
process.stdout.write(`runtime-files: ${bundle.length} bundle files; node_modules: ${kept.sort().join(' ')}\n`);
