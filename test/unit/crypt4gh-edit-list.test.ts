import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SlicefsError } from '../../src/errors.js';
import { EditList } from '../../src/crypt4gh/edit-list.js';

/** The reference's semantics, the slow way: walk the plaintext byte by byte. */
function visibleBytes(lengths: number[], plainSize: number): number[] {
  const out: number[] = [];
  let p = 0;
  for (let i = 0; i < lengths.length && p < plainSize; i++) {
    const n = lengths[i]!;
    if (i % 2 === 1) for (let j = p; j < Math.min(p + n, plainSize); j++) out.push(j);
    p += n;
  }
  if (lengths.length % 2 === 1) for (let j = p; j < plainSize; j++) out.push(j);
  return out;
}

function viaRuns(list: EditList, start: number, end: number, plainSize: number): number[] {
  const out: number[] = [];
  let expectVisible = start;
  for (const r of list.runs(start, end, plainSize)) {
    assert.equal(r.visibleStart, expectVisible, 'runs are contiguous in visible space');
    assert.ok(r.plainEnd > r.plainStart, 'no empty runs');
    for (let j = r.plainStart; j < r.plainEnd; j++) out.push(j);
    expectVisible += r.plainEnd - r.plainStart;
  }
  return out;
}

test('the vectors\' edit lists', () => {
  // editlist-cli: [4464, 70000] over the 2 blocks kept (131072 bytes of plaintext).
  const cli = new EditList([4464, 70000]);
  assert.equal(cli.visibleSize(131072), 70000);
  assert.deepEqual(cli.runs(0, 70000, 131072), [{ plainStart: 4464, plainEnd: 74464, visibleStart: 0 }]);
  assert.deepEqual(cli.runs(100, 200, 131072), [{ plainStart: 4564, plainEnd: 4664, visibleStart: 100 }]);
  // editlist-api: [1000, 70000, 60000, 5000, 100]: odd count, the tail after the last skip is kept.
  const api = new EditList([1000, 70000, 60000, 5000, 100]);
  assert.equal(api.visibleSize(200000), 138900);
  assert.deepEqual(api.runs(0, 138900, 200000), [
    { plainStart: 1000, plainEnd: 71000, visibleStart: 0 },
    { plainStart: 131000, plainEnd: 136000, visibleStart: 70000 },
    { plainStart: 136100, plainEnd: 200000, visibleStart: 75000 },
  ]);
  assert.deepEqual(api.runs(69990, 75010, 200000), [
    { plainStart: 70990, plainEnd: 71000, visibleStart: 69990 },
    { plainStart: 131000, plainEnd: 136000, visibleStart: 70000 },
    { plainStart: 136100, plainEnd: 136110, visibleStart: 75000 },
  ]);
  assert.deepEqual(api.runs(138900, 140000, 200000), []);
  assert.deepEqual(api.runs(5, 5, 200000), []);
  // The plaintext may end inside the list.
  assert.equal(api.visibleSize(50000), 49000);
  assert.equal(api.visibleSize(133000), 72000);
  assert.equal(api.visibleSize(500), 0);
});

test('runs and visibleSize agree with a byte-by-byte model of the reference', () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat(60), { minLength: 1, maxLength: 8 }),
      fc.nat(300),
      fc.nat(300),
      fc.nat(300),
      (lengths, plainSize, a, b) => {
        const list = new EditList(lengths);
        const all = visibleBytes(lengths, plainSize);
        assert.equal(list.visibleSize(plainSize), all.length);
        assert.deepEqual(viaRuns(list, 0, all.length, plainSize), all);
        const [start, end] = a <= b ? [a, b] : [b, a];
        assert.deepEqual(viaRuns(list, start, end, plainSize), all.slice(start, end));
      },
    ),
    { numRuns: 2000 },
  );
});

test('malformed lists are DECRYPT errors', () => {
  for (const bad of [[], [-1], [1.5], [Number.MAX_SAFE_INTEGER, 1]]) {
    assert.throws(() => new EditList(bad), (e: unknown) => e instanceof SlicefsError && e.code === 'DECRYPT', JSON.stringify(bad));
  }
  // Zero-length runs are harmless.
  assert.equal(new EditList([0, 0, 0]).visibleSize(10), 10);
  assert.equal(new EditList([0, 0]).visibleSize(10), 0);
});
