/**
 * The ARGO and ICGC 25K score manifests: detection from the header, columns by name, `|` lists,
 * index rows folded into their files, errors with line and column, and the mount layouts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { buildTree, walkFiles } from '../../src/fs/tree.js';
import { indexNameFor } from '../../src/manifest/index-name.js';
import { parseManifest } from '../../src/manifest/load.js';
import { applyLayout, defaultLayout, needsBundles } from '../../src/manifest/tree-layout.js';
import type { ObjectSource } from '../../src/source/object-source.js';

const ARGO_HEADER = 'repository_code\tanalysis_id\tobject_id\tfile_type\tfile_name\tfile_size\tmd5sum\tindex_object_id\tdonor_id\tsample_id(s)\tproject_id';
const MD5_A = '9e107d9d372bb6826bd81d3542a419d6';
const MD5_I = 'e4d909c290d0fb1ca068ffaddf22cbd0';

function argo(rows: string[][]): string {
  return [ARGO_HEADER, ...rows.map((r) => r.join('\t'))].join('\n') + '\n';
}

function rejects(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseManifest(text, 'argo.tsv'),
    (e: unknown) => e instanceof SlicefsError && e.code === 'MANIFEST' && pattern.test(e.message),
    `expected ${pattern}`,
  );
}

test('an ARGO manifest: score entries in the bundle layout, lists split, the index row folded into its file', () => {
  const m = parseManifest(
    argo([
      ['collab', 'AN1', 'obj-a', 'BAM', 'DO1.bam', '1234', MD5_A.toUpperCase(), 'obj-i', 'DO1', 'SA1|SA2', 'TEST-CA'],
      ['collab', 'AN1', 'obj-i', 'BAI', 'DO1.bam.bai', '56', MD5_I, '', 'DO1', 'SA1|SA2', 'TEST-CA'],
      ['collab', 'AN2', 'obj-v', 'VCF', 'calls.vcf.gz', '99', 'null', 'obj-t', 'DO2', 'SA3', 'TEST-CA'],
    ]),
    'argo.tsv',
  );
  assert.equal(m.format, 'argo');
  assert.deepEqual(m.entries, [
    {
      path: 'AN1/DO1.bam',
      url: 'score:obj-a',
      objectId: 'obj-a',
      id: 'obj-a',
      fileName: 'DO1.bam',
      bundle: 'AN1',
      size: 1234,
      md5: MD5_A,
      indexUrl: 'score:obj-i',
      indexFileName: 'DO1.bam.bai',
      columns: { repository_code: 'collab', file_type: 'BAM', donor_id: 'DO1', 'sample_id(s)': ['SA1', 'SA2'], project_id: 'TEST-CA' },
      line: 2,
    },
    {
      path: 'AN2/calls.vcf.gz',
      url: 'score:obj-v',
      objectId: 'obj-v',
      id: 'obj-v',
      fileName: 'calls.vcf.gz',
      bundle: 'AN2',
      size: 99,
      indexUrl: 'score:obj-t',
      columns: { repository_code: 'collab', file_type: 'VCF', donor_id: 'DO2', 'sample_id(s)': 'SA3', project_id: 'TEST-CA' },
      line: 4,
    },
  ]);
  const tree = buildTree(m, () => ({}) as ObjectSource);
  assert.deepEqual(
    [...walkFiles(tree)].map((f) => f.name).sort(),
    ['DO1.bam', 'DO1.bam.bai', 'calls.vcf.gz', 'calls.vcf.gz.tbi'],
  );
});

test('columns are read by name in any order; an ICGC 25K manifest has no analysis: file names until a layout asks', () => {
  const text =
    'repo_code\tfile_id\tobject_id\tfile_format\tfile_name\tfile_size\tmd5_sum\tindex_object_id\tdonor_id/donor_count\tproject_id/project_count\tstudy\n' +
    `collaboratory\tFI1\to-1\tBAM\tx.bam\t10\t${MD5_A}\to-2\tDO1\tPRAD-CA\tPCAWG\n` +
    `collaboratory\tFI2\to-3\tCRAM\ty.cram\t20\t\t\tDO2\tPRAD-CA\tPCAWG\n`;
  const m = parseManifest(text, 'k25.tsv');
  assert.equal(m.format, 'icgc-25k');
  assert.deepEqual(m.entries.map((e) => [e.path, e.url, e.size, e.md5, e.indexUrl, e.bundle]), [
    ['x.bam', 'score:o-1', 10, MD5_A, 'score:o-2', undefined],
    ['y.cram', 'score:o-3', 20, undefined, undefined, undefined],
  ]);
  assert.equal(m.entries[0].columns?.['file_id'], 'FI1');
  assert.equal(defaultLayout(m), 'bundle');
  assert.equal(needsBundles(m, 'bundle'), true);
  assert.throws(() => applyLayout(m, 'bundle'), /k25\.tsv:2: --layout bundle needs the file's analysis/);
  m.entries[0].bundle = 'G1';
  m.entries[1].bundle = 'G2';
  assert.deepEqual(applyLayout(m, 'bundle').entries.map((e) => e.path), ['G1/x.bam', 'G2/y.cram']);

  const reordered = parseManifest(`file_name\tobject_id\tanalysis_id\nz.cram\to-9\tAN9\n`, 'r.tsv');
  assert.equal(reordered.format, 'argo');
  assert.equal(reordered.entries[0].path, 'AN9/z.cram');
});

test('layouts: object-id is flat with indexes named for htslib; path keeps the manifest paths', () => {
  const m = parseManifest(
    argo([
      ['c', 'AN1', 'obj-a', 'BAM', 'a.bam', '1', MD5_A, 'obj-i', '', '', ''],
      ['c', 'AN1', 'obj-c', 'CRAM', 'c.cram', '1', MD5_A, 'obj-ci', '', '', ''],
      ['c', 'AN2', 'obj-b', 'BAM', 'a.bam', '1', MD5_A, '', '', '', ''],
    ]),
    'argo.tsv',
  );
  const flat = applyLayout(m, 'object-id');
  const names = [...walkFiles(buildTree(flat, () => ({}) as ObjectSource))].map((f) => f.name).sort();
  assert.deepEqual(names, ['obj-a', 'obj-a.bai', 'obj-b', 'obj-c', 'obj-c.crai']);
  assert.deepEqual(applyLayout(m, 'path').entries.map((e) => e.path), ['AN1/a.bam', 'AN1/c.cram', 'AN2/a.bam']);
  // The same file name in two analyses is fine in bundle, a clash nowhere.
  assert.deepEqual(applyLayout(m, 'bundle').entries.map((e) => e.path), ['AN1/a.bam', 'AN1/c.cram', 'AN2/a.bam']);
  const url = parseManifest('url\nhttp://h/a.bam\n', 'u.tsv');
  assert.equal(defaultLayout(url), 'path');
  assert.throws(() => applyLayout(url, 'object-id'), /u\.tsv:2: --layout object-id needs an object id/);
});

test('index names of Score indexes: the listed file name, else by the data file kind', () => {
  assert.equal(indexNameFor('a.bam', 'score:i1', { indexFileName: 'a.bai' }), 'a.bam.bai');
  assert.equal(indexNameFor('a.bam', 'score:i1', { indexFileName: 'A.BAM.CSI' }), 'a.bam.csi');
  assert.equal(indexNameFor('a.bam', 'score:i1'), 'a.bam.bai');
  assert.equal(indexNameFor('obj-1', 'score:i1', { dataFileName: 'x.cram' }), 'obj-1.crai');
  assert.equal(indexNameFor('c.CRAM', 'score:i1'), 'c.CRAM.crai');
  assert.equal(indexNameFor('v.vcf.gz', 'score:i1'), 'v.vcf.gz.tbi');
  assert.equal(indexNameFor('v.bcf', 'score:i1'), 'v.bcf.csi');
});

test('bad score manifests name the line and the column', () => {
  const row = (over: Partial<Record<number, string>>) => {
    const r = ['c', 'AN1', 'obj-a', 'BAM', 'a.bam', '12', MD5_A, 'obj-i', 'DO1', 'SA1', 'P'];
    for (const [k, v] of Object.entries(over)) r[Number(k)] = v!;
    return r;
  };
  rejects(argo([row({ 2: '' })]), /^argo\.tsv:2:\d+: column 'object_id': empty$/);
  rejects(argo([row({ 2: 'a/b' })]), /^argo\.tsv:2:7: column 'object_id': 'a\/b' is not an object id$/);
  rejects(argo([row({ 4: '' })]), /^argo\.tsv:2:\d+: column 'file_name': empty$/);
  rejects(argo([row({ 4: 'x/a.bam' })]), /column 'file_name': 'x\/a\.bam' is a path/);
  rejects(argo([row({ 4: '..' })]), /column 'file_name': path '\.\.' contains '\.\.'/);
  rejects(argo([row({ 1: '..' })]), /column 'analysis_id': path '\.\.\/a\.bam' contains '\.\.'/);
  rejects(argo([row({ 5: '12kb' })]), /^argo\.tsv:2:\d+: column 'file_size': '12kb' is not a byte count$/);
  rejects(argo([row({ 6: 'xyz' })]), /column 'md5sum': 'xyz' is not an MD5/);
  rejects(argo([row({ 7: 'obj-a' })]), /column 'index_object_id': the file cannot be its own index/);
  rejects(argo([row({}), row({ 7: '' })]), /^argo\.tsv:3: object obj-a is listed twice \(first on line 2\)$/);
  rejects(argo([[...row({}), 'extra']]), /^argo\.tsv:2:\d+: 12 fields, but the header has 11$/);
  rejects(`${ARGO_HEADER}\tobject_id\n`, /^argo\.tsv:1:\d+: column 'object_id' appears twice$/);
  rejects('object_id\tanalysis_id\no1\tA\n', /needs a 'file_name' column/);
  rejects(argo([]), /lists no files/);
});
