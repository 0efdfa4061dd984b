/**
 * CRAMs written by htsjdk (Picard 2.27.5 and htsjdk 3.0.4: test/data/conformance/htsjdk/, see its
 * README) printed by `slicefs view` over HTTP from the fixture server exactly as `samtools view`
 * (1.16) prints the local file, byte for byte: the header, the unplaced reads (`*`), each contig,
 * its first and last base, and seeded random regions around its reads (issue 17, class 3).
 * htsjdk writes reads without SEQ as RL 0 with read features for their whole alignment, ends CRAI
 * spans its own way, and writes multi-reference slices by default: each of these reaches the
 * decoder or the index query differently from what samtools writes.
 *
 * The reference of `X.cram` is `X.fa.gz` beside it; else, under hts-specs/, `ce.fa.gz`; else the
 * `.fa.gz` named after the part of its name before the first `-` (edge-slices.cram: edge.fa.gz).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { BIN, cleanup, REPO, run, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { SeededRandom } from '../helpers/random.js';
import { samtools } from '../helpers/sample-data.js';

const DATA = join(REPO, 'test/data/conformance/htsjdk');
/** Random regions per contig, around its reads. */
const RANDOM_REGIONS = 3;
/** The one file samtools cannot decode (README: a read without bases over the reference's N run). */
const REFUSED = 'edge-nref.cram';

function cramsUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? cramsUnder(join(dir, e.name)) : e.name.endsWith('.cram') ? [join(dir, e.name)] : []))
    .sort();
}

function referenceOf(cram: string): string {
  const dir = dirname(cram);
  const name = basename(cram, '.cram');
  const own = join(dir, `${name}.fa.gz`);
  if (existsSync(own)) return own;
  if (basename(dir) === 'hts-specs') return join(dir, 'ce.fa.gz');
  return join(dir, `${name.split('-')[0]}.fa.gz`);
}

let server: FixtureServer;
let work: string;
const references = new Map<string, string>();

before(async () => {
  server = await FixtureServer.start();
  work = await tempDir('slicefs-view-htsjdk-');
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

/** The gzipped reference unpacked (once) and indexed, for samtools -T and slicefs -T. */
async function unpacked(gz: string): Promise<string> {
  let fasta = references.get(gz);
  if (!fasta) {
    fasta = join(work, relative(DATA, gz).replaceAll('/', '_').replace(/\.gz$/, ''));
    await writeFile(fasta, gunzipSync(await readFile(gz)));
    const ix = await samtools(['faidx', fasta]);
    assert.equal(ix.code, 0, ix.stderr);
    references.set(gz, fasta);
  }
  return fasta;
}

/** samtools' region syntax for a whole contig, or a range of it (braces where the name has a colon). */
function region(contig: string, beg?: number, end?: number): string {
  const name = contig.includes(':') ? `{${contig}}` : contig;
  return beg === undefined ? name : `${name}:${beg}-${end}`;
}

interface Outcome {
  code: number | null;
  text: string;
  stderr: string;
}

async function both(path: string, file: string, ref: string, header: boolean, regions: string[]): Promise<[Outcome, Outcome]> {
  const want = await samtools(['view', '--no-PG', header ? '-h' : '--no-header', '-T', ref, ...(regions.length > 1 ? ['-M'] : []), file, ...regions]);
  const got = await run(process.execPath, [BIN, 'view', '--no-index-cache', '--no-PG', ...(header ? [] : ['--no-header']), '--url', server.url(path), '-T', ref, ...regions.flatMap((r) => ['-q', r])]);
  return [
    { code: got.code, text: got.stdout.toString('latin1'), stderr: got.stderr },
    { code: want.code, text: want.stdout.toString('latin1'), stderr: want.stderr },
  ];
}

for (const file of cramsUnder(DATA)) {
  const name = relative(DATA, file);
  test(`htsjdk CRAM ${name}: slicefs view prints what samtools view prints`, async () => {
    const path = `/htsjdk/${name}`;
    server.addFile(path, await readFile(file));
    server.addFile(`${path}.crai`, await readFile(`${file}.crai`));
    const ref = await unpacked(referenceOf(file));

    if (basename(file) === REFUSED) {
      // samtools refuses the slice whichever region is asked for; slicefs must refuse it too, in one line.
      const [got, want] = await both(path, file, ref, false, ['chr1']);
      assert.notEqual(want.code, 0, 'samtools refuses the file');
      assert.equal(got.code, 1, got.stderr);
      assert.match(got.stderr, /^slicefs: error: .*read feature at 51\b/);
      assert.equal(got.stderr.trim().split('\n').length, 1, got.stderr);
      return;
    }

    // The header, with the unplaced reads.
    const [gotH, wantH] = await both(path, file, ref, true, ['*']);
    assert.equal(wantH.code, 0, wantH.stderr);
    assert.equal(gotH.code, 0, gotH.stderr);
    assert.equal(gotH.text, wantH.text, `${name}: header and *`);

    const contigs = wantH.text
      .split('\n')
      .filter((l) => l.startsWith('@SQ\t'))
      .map((l) => {
        const fields = new Map(l.split('\t').slice(1).map((f) => [f.slice(0, 2), f.slice(3)] as [string, string]));
        return { name: fields.get('SN')!, length: Number(fields.get('LN')) };
      });
    const rnd = new SeededRandom(name.length * 7919 + contigs.length);
    for (const c of contigs) {
      const [got, want] = await both(path, file, ref, false, [region(c.name)]);
      assert.equal(want.code, 0, want.stderr);
      assert.equal(got.code, 0, got.stderr);
      assert.equal(got.text, want.text, `${name} ${c.name}`);
      // The contig's edges, and random regions around its reads, one query each: samtools -M
      // does not read braced names (`{HLA-A*01:01:01:01}:1-1` is an unknown contig to it).
      const starts = want.text
        .split('\n')
        .filter(Boolean)
        .map((l) => Number(l.split('\t')[3]));
      const regions = [region(c.name, 1, 1), region(c.name, c.length, c.length)];
      for (let i = 0; i < RANDOM_REGIONS && starts.length > 0; i++) {
        const beg = Math.max(1, rnd.pick(starts) - rnd.int(0, 300));
        regions.push(region(c.name, beg, beg + rnd.int(0, 600)));
      }
      for (const r of regions) {
        const [gotR, wantR] = await both(path, file, ref, false, [r]);
        assert.equal(wantR.code, 0, wantR.stderr);
        assert.equal(gotR.code, 0, gotR.stderr);
        assert.equal(gotR.text, wantR.text, `${name} ${r}`);
      }
    }
  });
}
