/**
 * Seeded, time-bounded fuzzing of slicefs's input parsers with fast-check.
 *
 * A fuzz case starts from a real input (a manifest, a key file, a service's JSON answer) and mutates
 * it the way damage and malice do: bit flips, truncation, inserted and deleted bytes, and length or
 * count fields replaced by huge or negative numbers. The contract every parser must keep: it returns
 * (a correct result) or throws a `SlicefsError`, whose message is the CLI's one line. Any other
 * exception (TypeError, RangeError, …) would reach the user as a stack trace, so it fails the case.
 *
 * Runs are seeded (`SLICEFS_FUZZ_SEED` overrides, so a failure printed by CI can be replayed) and
 * bounded by count and by wall-clock time, so `npm test` stays fast; `SLICEFS_FUZZ_RUNS` raises the
 * count for a longer session by hand.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SlicefsError } from '../../src/errors.js';

/** The seed of every property in a run: fixed, so a CI failure reproduces; overridable to explore. */
export const FUZZ_SEED = Number(process.env.SLICEFS_FUZZ_SEED ?? 20261207);
/** Cases per property: enough to hit every mutation kind many times, small enough for CI. */
export const FUZZ_RUNS = Number(process.env.SLICEFS_FUZZ_RUNS ?? 400);
/** Wall-clock bound per property (ms): a parser slowed down by a bad case must not stall the suite. */
export const FUZZ_TIME_MS = Number(process.env.SLICEFS_FUZZ_TIME_MS ?? 4000);

/** One mutation of a byte string. */
type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'overwrite-u32'; at: number; value: number; littleEndian: boolean }
  | { kind: 'overwrite-u16'; at: number; value: number };

/** Numbers a length or count field is tried with: the edges parsers get wrong. */
const HOSTILE_NUMBERS = [0, 1, 2, 31, 32, 0x7f, 0xff, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff];

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({
    kind: fc.constant('overwrite-u32' as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(...HOSTILE_NUMBERS), fc.nat()),
    littleEndian: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('overwrite-u16' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7fff, 0xffff) }),
);

function apply(input: Buffer, m: Mutation): Buffer {
  if (input.length === 0) return m.kind === 'insert' ? Buffer.from(m.bytes) : input;
  const at = m.at % input.length;
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(input);
      out[at] = out[at]! ^ (1 << m.bit);
      return out;
    }
    case 'truncate':
      return input.subarray(0, at);
    case 'insert':
      return Buffer.concat([input.subarray(0, at), Buffer.from(m.bytes), input.subarray(at)]);
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.count)]);
    case 'overwrite-u32': {
      if (input.length < 4) return input;
      const out = Buffer.from(input);
      const pos = Math.min(at, input.length - 4);
      if (m.littleEndian) out.writeUInt32LE(m.value >>> 0, pos);
      else out.writeUInt32BE(m.value >>> 0, pos);
      return out;
    }
    case 'overwrite-u16': {
      if (input.length < 2) return input;
      const out = Buffer.from(input);
      out.writeUInt16BE(m.value, Math.min(at, input.length - 2));
      return out;
    }
  }
}

/** Byte strings made from one of `seeds` by one to four mutations (the seeds themselves now and then). */
export function mutatedBytes(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc
    .tuple(fc.nat(seeds.length - 1), fc.array(mutationArb, { minLength: 0, maxLength: 4 }))
    .map(([i, ms]) => ms.reduce((b, m) => apply(b, m), seeds[i]!));
}

/** Text made from one of `seeds` by mutating its UTF-8 bytes, or by swapping in a hostile token. */
export function mutatedText(seeds: readonly string[]): fc.Arbitrary<string> {
  const hostileTokens = fc.constantFrom('', '\t', '\n', '\r\n', '\0', '|', ':', '..', '/', '"', '{', '}', '[', ']', '-1', '1e400', '99999999999999999999', '\u202e', '\ud800', 'null', 'NA');
  const byToken = fc.tuple(fc.nat(seeds.length - 1), fc.nat(), hostileTokens).map(([i, at, tok]) => {
    const s = seeds[i]!;
    const p = s.length === 0 ? 0 : at % s.length;
    return s.slice(0, p) + tok + s.slice(p);
  });
  return fc.oneof(
    mutatedBytes(seeds.map((s) => Buffer.from(s, 'utf8'))).map((b) => b.toString('utf8')),
    byToken,
  );
}

/** JSON values made from `seed` by replacing parts of it with values of the wrong type or size. */
export function mutatedJson(seed: unknown): fc.Arbitrary<unknown> {
  const odd = fc.oneof(
    fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 53), 1e308, '', 'x', [], {}, [null], { url: 5 }),
    fc.string({ maxLength: 12 }),
    fc.jsonValue({ maxDepth: 2 }),
  );
  const paths = jsonPaths(seed);
  return fc.oneof(
    fc.tuple(fc.constantFrom(...paths), odd).map(([path, v]) => replaceAt(seed, path, v)),
    fc.tuple(fc.constantFrom(...paths), fc.constantFrom(...paths), odd).map(([a, b, v]) => replaceAt(replaceAt(seed, a, v), b, undefined)),
    odd,
  );
}

type JsonPath = (string | number)[];

function jsonPaths(v: unknown, prefix: JsonPath = []): JsonPath[] {
  const out: JsonPath[] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...jsonPaths(x, [...prefix, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...jsonPaths(x, [...prefix, k]));
  return out;
}

/** A deep copy of `v` with the value at `path` replaced (`undefined`: removed). */
function replaceAt(v: unknown, path: JsonPath, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy: unknown = structuredClone(v);
  let node: unknown = copy;
  for (const key of path.slice(0, -1)) {
    // An earlier replacement may have put a scalar where the path went on: nothing to replace.
    if (node === null || typeof node !== 'object') return copy;
    node = (node as Record<string | number, unknown>)[key];
  }
  if (node === null || typeof node !== 'object') return copy;
  const last = path[path.length - 1]!;
  if (value === undefined) delete (node as Record<string | number, unknown>)[last];
  else (node as Record<string | number, unknown>)[last] = value;
  return copy;
}

/** fast-check's parameters for every fuzz property: seeded and bounded. */
export function fuzzParams(runs = FUZZ_RUNS): fc.Parameters<unknown> {
  return { seed: FUZZ_SEED, numRuns: runs, interruptAfterTimeLimit: FUZZ_TIME_MS, markInterruptAsFailure: false };
}

/** The contract: `fn` returns, or throws a SlicefsError with a one-line message. */
export function returnsOrRefuses<T>(fn: () => T): T | SlicefsError {
  try {
    return fn();
  } catch (err) {
    assertCleanRefusal(err);
    return err as SlicefsError;
  }
}

/** The async form of `returnsOrRefuses`. */
export async function resolvesOrRefuses<T>(fn: () => Promise<T>): Promise<T | SlicefsError> {
  try {
    return await fn();
  } catch (err) {
    assertCleanRefusal(err);
    return err as SlicefsError;
  }
}

function assertCleanRefusal(err: unknown): void {
  assert.ok(err instanceof SlicefsError, `not a SlicefsError (would print a stack trace): ${err instanceof Error ? err.stack : String(err)}`);
  assert.ok(!err.message.includes('\n'), `a message of more than one line: ${JSON.stringify(err.message)}`);
  assert.ok(err.message.length > 0 && err.message.length < 1000, `an empty or runaway message (${err.message.length} chars)`);
}
