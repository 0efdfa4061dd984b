/**
 * The command line `view` writes into its @PG header (src/cli/command-line.ts): allow-listed
 * options with their values, every URL redacted whatever form the argument takes, no credential,
 * and every option `view` declares on one of the lists.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { safeCommandLine } from '../../src/cli/command-line.js';
import { VIEW_COMMAND_LINE, viewCommand } from '../../src/cli/view.js';

const cl = (...argv: string[]) => safeCommandLine('slicefs', ['view', ...argv], VIEW_COMMAND_LINE);

test('URLs are redacted in every form: --url X, --url=X, a value of another option, a word of its own', () => {
  const signed = 'https://u:pw@s3.example.org/b/x.bam?X-Amz-Signature=abc&X-Amz-Credential=AKIA';
  assert.equal(cl('--url', signed), 'slicefs view --url https://s3.example.org/b/x.bam?…');
  assert.equal(cl(`--url=${signed}`), 'slicefs view --url=https://s3.example.org/b/x.bam?…');
  assert.equal(cl('--index-url', 'https://h/x.bai?token=t0k3n'), 'slicefs view --index-url https://h/x.bai?…');
  assert.equal(cl('--reference-url=s3://bucket/ref.fa?sig=1'), 'slicefs view --reference-url=s3://bucket/ref.fa?…');
  assert.equal(cl('-q', 'chr1', signed), 'slicefs view -q chr1 https://s3.example.org/b/x.bam?…');
  assert.equal(cl('--storage-url', 'https://user:secret@score.example.org/'), 'slicefs view --storage-url https://score.example.org/');
});

test('credentials and the files that hold them are never written: --token X, --token=X, --private-key, --config', () => {
  assert.equal(cl('--token', 'T0KEN-abc', '--object-id', 'o1'), 'slicefs view --token … --object-id o1');
  assert.equal(cl('--token=T0KEN-abc', '--object-id=o1'), 'slicefs view --token=… --object-id=o1');
  assert.equal(cl('--token-file', '/home/u/t', '--download-token-file=/t2', '--private-key', 'k.sec', '--config', 'c.json'), 'slicefs view --token-file … --download-token-file=… --private-key … --config …');
});

test('an option not on the lists is written as … with its value; a short-option cluster too', () => {
  assert.equal(cl('--secret-thing', 'v4lue', '-q', 'chr2'), 'slicefs view … -q chr2');
  assert.equal(cl('--secretThing=v4lue'), 'slicefs view …');
  assert.equal(cl('-qchr1:1-5'), 'slicefs view …');
  assert.equal(cl('--no-token'), 'slicefs view …');
});

test('booleans, negations, camelCase, aliases, arrays and -- are read as yargs reads them', () => {
  assert.equal(cl('--no-PG', '--contained', 'true', '-q', 'a', 'b', '--headerOnly', '--no-index-cache'), 'slicefs view --no-PG --contained true -q a b --headerOnly --no-index-cache');
  assert.equal(cl('-o', 'out.bam', '--output-format=bam', '-T', 'ref.fa', '-m', 'm.tsv', '--path', 'p/x.bam'), 'slicefs view -o out.bam --output-format=bam -T ref.fa -m m.tsv --path p/x.bam');
  assert.equal(cl('--', '--token', 'x'), 'slicefs view -- --token x');
  assert.equal(cl('--no-cache-proxy'), 'slicefs view --no-cache-proxy');
});

test('a tab or newline in a value cannot break the header line (samtools makes tabs spaces)', () => {
  assert.equal(cl('-q', 'chr1\tx', '--path', 'a\nb'), 'slicefs view -q chr1 x --path a b');
});

test("every option `view` declares is on one of the lists (an unlisted one would be written as '…')", () => {
  // The builder run against a recorder of its `.option(name, …)` calls (yargs has no typed list of them).
  const declared: string[] = [];
  const recorder: unknown = new Proxy({}, {
    get: (_, method) => (name: unknown) => {
      if (method === 'option' && typeof name === 'string') declared.push(name);
      return recorder;
    },
  });
  (viewCommand.builder as (y: unknown) => unknown)(recorder);
  assert.ok(declared.includes('url') && declared.includes('token') && declared.includes('private-key'), declared.join(' '));
  const listed = new Set([...VIEW_COMMAND_LINE.shown, ...VIEW_COMMAND_LINE.hidden, ...VIEW_COMMAND_LINE.flags]);
  assert.deepEqual(declared.filter((k) => !listed.has(k)), []);
});
