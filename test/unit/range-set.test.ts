/**
 * RangeSet (the journal's list of complete byte ranges) against a model: a boolean per byte.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RangeSet } from '../../src/download/range-set.js';

test('adds, coverage, prefix, missing ranges and byte counts agree with a byte-per-byte model', () => {
  const size = 200;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: size }), fc.integer({ min: 0, max: 60 })), { maxLength: 30 }), (adds) => {
      const set = new RangeSet();
      const model = new Array<boolean>(size + 60).fill(false);
      for (const [start, len] of adds) {
        set.add(start, start + len);
        for (let i = start; i < start + len; i++) model[i] = true;
      }
      // Ranges are sorted, disjoint and not touching.
      const list = set.toJSON();
      for (let i = 1; i < list.length; i++) assert.ok(list[i - 1][1] < list[i][0], JSON.stringify(list));
      assert.equal(set.bytes(), model.filter(Boolean).length);
      let prefix = 0;
      while (model[prefix]) prefix++;
      assert.equal(set.prefixEnd(), prefix);
      const missing: [number, number][] = [];
      for (let i = 0; i < size; i++) {
        if (model[i]) continue;
        const last = missing.at(-1);
        if (last && last[1] === i) last[1] = i + 1;
        else missing.push([i, i + 1]);
      }
      assert.deepEqual(set.missing(size), missing);
      for (let k = 0; k < 20; k++) {
        const a = (k * 37) % size;
        const b = Math.min(size, a + ((k * 13) % 40));
        assert.equal(set.covers(a, b), model.slice(a, b).every(Boolean), `covers(${a}, ${b})`);
      }
    }),
    { numRuns: 500, seed: 7 },
  );
});

test('a set rebuilt from its JSON is the same set (what a resume reads back)', () => {
  const s = new RangeSet([
    [10, 20],
    [0, 5],
    [5, 10],
    [30, 31],
  ]);
  assert.deepEqual(s.toJSON(), [
    [0, 20],
    [30, 31],
  ]);
  assert.deepEqual(new RangeSet(s.toJSON()).toJSON(), s.toJSON());
});
