// docker/smoke-test.sh's data: the project's seeded sample data (test/helpers/sample-data.ts) served
// on the host's loopback by its test HTTP server (test/helpers/fixture-server.ts), and a manifest.
//
//   node docker/sample-server.mjs HELPERS_DIR OUT_DIR
//
// HELPERS_DIR holds the compiled test helpers: dist/test/helpers after `npm run build`. Writes
// OUT_DIR/manifest.tsv (no sizes, so the mount asks the server) and then OUT_DIR/sample.env, a
// shell-sourceable description of the data (its appearance means the server is up), and serves
// until SIGTERM or SIGINT.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const [helpers, out] = process.argv.slice(2);
if (!helpers || !out) throw new Error('usage: node docker/sample-server.mjs HELPERS_DIR OUT_DIR');
const load = (name) => import(pathToFileURL(resolve(helpers, name)).href);
const { ensureSampleData } = await load('sample-data.js');
const { FixtureServer } = await load('fixture-server.js');

const sample = await ensureSampleData();
const server = await FixtureServer.start();
const files = [sample.bam, sample.bai, sample.cram, sample.crai, sample.ref, sample.fai];
for (const f of files) server.addFile(`/data/${basename(f)}`, await readFile(f));
const url = (f) => server.url(`/data/${basename(f)}`);

const rows = [
  ['path', 'url', 'index_url'],
  ['donor1/sample.bam', url(sample.bam), url(sample.bai)],
  ['donor1/sample.cram', url(sample.cram), url(sample.crai)],
  ['ref/sample.fa', url(sample.ref), url(sample.fai)],
];
await writeFile(join(out, 'manifest.tsv'), rows.map((r) => r.join('\t')).join('\n') + '\n');

// The widest bounded region of the sample (as the demo picks it): many records, several BGZF blocks.
const span = (r) => {
  const m = /:(\d+)-(\d+)$/.exec(r.replace(/,/g, ''));
  return m ? Number(m[2]) - Number(m[1]) : -1;
};
const region = [...sample.regions].sort((a, b) => span(b) - span(a))[0];
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
const env = {
  ORIGIN: server.origin,
  REGION: region,
  BAM: sample.bam,
  BAI: sample.bai,
  CRAM: sample.cram,
  CRAI: sample.crai,
  REF: sample.ref,
  FAI: sample.fai,
  BAM_URL: url(sample.bam),
  CRAM_URL: url(sample.cram),
  REF_URL: url(sample.ref),
};
const text = Object.entries(env).map(([k, v]) => `${k}=${q(v)}`).join('\n') + '\n';
await writeFile(join(out, 'sample.env.tmp'), text);
await rename(join(out, 'sample.env.tmp'), join(out, 'sample.env'));
process.stdout.write(`sample-server: serving ${server.origin}/data/ (${files.map((f) => basename(f)).join(', ')})\n`);

const stop = () => {
  server.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
