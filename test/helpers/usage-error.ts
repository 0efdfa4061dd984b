/** Asserting the one-line bad-input error (`SlicefsError` USAGE, exit 2) of a settings resolver. */
import assert from 'node:assert/strict';
import { SlicefsError } from '../../src/errors.js';

/** Asserts that `p` rejects with a USAGE error whose message matches `re`. */
export async function rejectsWithUsage(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: SlicefsError) => {
    assert.ok(err instanceof SlicefsError, String(err));
    assert.equal(err.code, 'USAGE');
    assert.match(err.message, re);
    return true;
  });
}
