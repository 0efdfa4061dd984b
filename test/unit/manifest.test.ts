import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { loadManifest, parseManifest } from '../../src/manifest/load.js';
import { buildTree } from '../../src/fs/tree.js';
import { indexNameFor } from '../../src/manifest/index-name.js';
import type { ObjectSource } from '../../src/source/object-source.js';

const H = 'url\tpath\tsize\tmd5\tindex_url';

function rejects(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseManifest(text, 'm.tsv'),
    (e: unknown) => e instanceof SlicefsError && e.code === 'MANIFEST' && pattern.test(e.message),
  );
}

test('a TSV with every column parses into entries', () => {
  const m = parseManifest(
    `${H}\nhttp://h/x/a.bam\tdonor1/a.bam\t123\t0123456789ABCDEF0123456789abcdef\thttp://h/x/a.bam.bai\n`,
    'm.tsv',
  );
  assert.equal(m.format, 'url-tsv');
  assert.deepEqual(m.entries, [
    { path: 'donor1/a.bam', url: 'http://h/x/a.bam', size: 123, md5: '0123456789abcdef0123456789abcdef', indexUrl: 'http://h/x/a.bam.bai', line: 2 },
  ]);
});

test('columns are found by name in any order; path defaults to the URL basename', () => {
  const m = parseManifest('# comment\nsize\turl\textra\n\n5\thttps://h/d/b%20c.cram?sig=1\tignored\r\n', 'm.tsv');
  assert.deepEqual(m.entries, [{ path: 'b c.cram', url: 'https://h/d/b%20c.cram?sig=1', size: 5, line: 4 }]);
});

test('a file of bare URLs is a manifest', () => {
  const m = parseManifest('http://h/a.bam\n\n# x\nhttp://h/b/c.bam\n', 'list.txt');
  assert.equal(m.format, 'url-list');
  assert.deepEqual(
    m.entries.map((e) => [e.path, e.line]),
    [
      ['a.bam', 1],
      ['c.bam', 4],
    ],
  );
});

test('errors name the file, the line and the column', () => {
  rejects(`${H}\nhttp://h/a\ta\tabc\n`, /^m\.tsv:2:14: column 'size': 'abc' is not a byte count$/);
  rejects(`${H}\nhttp://h/a\ta\t1\tnothex\n`, /^m\.tsv:2:16: column 'md5'/);
  rejects(`${H}\nftp://h/a\ta\n`, /^m\.tsv:2:1: column 'url': only http and https/);
  rejects(`${H}\nnot a url\ta\n`, /^m\.tsv:2:1: column 'url': not a URL/);
  rejects(`${H}\n\ta\n`, /^m\.tsv:2:1: column 'url' is empty/);
  rejects(`${H}\nhttp://h/a\ta\t1\t\thttp://h/a.bai\textra\n`, /^m\.tsv:2:\d+: 6 fields, but the header has 5/);
  rejects('path\tsize\na\t1\n', /^m\.tsv:1:1: unrecognised manifest/);
  rejects('url\tpath\turl\n', /^m\.tsv:1:\d+: column 'url' appears twice/);
  rejects('\n# only comments\n', /the manifest is empty/);
  rejects('url\n', /lists no files/);
});

test('unsafe and conflicting paths are rejected', () => {
  rejects(`url\tpath\nhttp://h/a\t../etc/passwd\n`, /^m\.tsv:2:12: path '\.\.\/etc\/passwd' contains '\.\.'/);
  rejects(`url\tpath\nhttp://h/a\t/abs\n`, /absolute path '\/abs'/);
  rejects(`url\tpath\nhttp://h/a\ta//b\n`, /empty name/);
  rejects(`url\tpath\nhttp://h/a\ta/./b\n`, /contains '\.'/);
  rejects(`url\tpath\nhttp://h/a\tdir/\n`, /empty name/);
  rejects(`url\tpath\nhttp://h/a\tx\nhttp://h/b\tx\n`, /^m\.tsv:3: duplicate path 'x' \(first on line 2\)/);
  rejects(`url\tpath\nhttp://h/a\tx\nhttp://h/b\tx/y\n`, /^m\.tsv:3: path 'x\/y' needs 'x' to be a directory/);
  rejects('url\nhttp://h/\n', /has no file name; add a 'path' column/);
  rejects('http://h/a\nhttp://h/sub/a\n', /duplicate path 'a'/);
});

test('a missing manifest file is a clear error', async () => {
  await assert.rejects(loadManifest('/nonexistent/m.tsv'), /\/nonexistent\/m\.tsv: cannot read the manifest \(\/nonexistent does not exist\)/);
  const dir = await mkdtemp(join(tmpdir(), 'slicefs-m-'));
  await writeFile(join(dir, 'm.tsv'), 'url\nhttp://h/a.bam\n');
  assert.equal((await loadManifest(join(dir, 'm.tsv'))).entries.length, 1);
});

test('index files appear beside their data file under the names htslib probes', () => {
  assert.equal(indexNameFor('a.bam', 'http://h/a.bam.bai'), 'a.bam.bai');
  assert.equal(indexNameFor('a.bam', 'http://h/a.bai?sig=x'), 'a.bam.bai');
  assert.equal(indexNameFor('a.bam', 'http://h/a.bam.csi'), 'a.bam.csi');
  assert.equal(indexNameFor('x.cram', 'http://h/x.cram.crai'), 'x.cram.crai');
  assert.equal(indexNameFor('v.vcf.gz', 'http://h/v.vcf.gz.tbi'), 'v.vcf.gz.tbi');
  const m = parseManifest('url\tpath\tindex_url\nhttp://h/a.bam\td/a.bam\thttp://h/a.bai\nhttp://h/b.bam\td/a.bam.bai\t\n', 'm.tsv');
  const fake = (url: string) => ({ identity: url }) as unknown as ObjectSource;
  assert.throws(() => buildTree(m, fake), /m\.tsv:2: 'd\/a\.bam\.bai' is already the file from line 3/);
  const ok = parseManifest('url\tpath\tindex_url\nhttp://h/a.bam\td/a.bam\thttp://h/a.bai\n', 'm.tsv');
  const root = buildTree(ok, fake);
  const d = root.children.get('d');
  assert.ok(d && d.kind === 'dir');
  assert.deepEqual([...d.children.keys()], ['a.bam', 'a.bam.bai']);
});
