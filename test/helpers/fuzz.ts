/**
 * Seeded, time-bounded fuzzing with fast-check: what every fuzzer shares (test/unit/fuzz-*.test.ts).
 *
 * A case starts from a real input (a BAM, a CRAM, an index, a manifest, a key file, a service's JSON
 * answer) and mutates it the way damage and malice do: bit flips, truncation, inserted and deleted
 * bytes, 32-bit fields set to huge, negative or boundary values, and (for text and JSON) hostile
 * tokens and values of the wrong type or size.
 *
 * The contract: a parser given any input either answers, or throws a SlicefsError whose message is
 * one non-empty line (what the CLI prints as `slicefs: error: …`). Any other exception (a TypeError
 * or RangeError from a library, an allocation refused) would reach the user as a stack trace or a
 * meaningless line, and fails the case. A hang fails the test by its timeout.
 *
 * Runs are seeded (`SLICEFS_FUZZ_SEED` overrides, so a failure printed by CI can be replayed, or
 * other cases explored) and bounded by count and by wall-clock time, so `npm test` stays fast;
 * `SLICEFS_FUZZ_RUNS` raises the count for a longer session by hand.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SlicefsError, type ErrorCode } from '../../src/errors.js';

/** The seed of every property: a failure names its path, and re-running gives the same cases. */
export const FUZZ_SEED = Number(process.env.SLICEFS_FUZZ_SEED ?? 1515);
/** Runs per property, and the wall-clock budget after which a property stops early (not a failure). */
export const FUZZ_RUNS = Number(process.env.SLICEFS_FUZZ_RUNS ?? 150);
export const FUZZ_TIME_MS = Number(process.env.SLICEFS_FUZZ_TIME_MS ?? 4000);
export const fuzzOptions = { seed: FUZZ_SEED, numRuns: FUZZ_RUNS, interruptAfterTimeLimit: FUZZ_TIME_MS, endOnFailure: true, includeErrorInReport: true } as const;

/** fast-check's parameters with another number of runs (the cheap text parsers take more). */
export function fuzzParams(runs: number = FUZZ_RUNS): fc.Parameters<unknown> {
  return { ...fuzzOptions, numRuns: runs, markInterruptAsFailure: false };
}

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set32'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number };

/** Values a length or offset field lies with. */
const HOSTILE_INT32 = [-1, -4, 0, 1, 31, 32, 0x7fffffff, -0x80000000, 0xffff, 0x10000, 0x1000000];

/**
 * Mutations of a buffer of `size` bytes. `inPlace`: only those that keep every byte where it is
 * (flips and 32-bit stores), for bytes whose offsets an index points into.
 */
export function mutations(size: number, inPlace = false, maxCount = 4): fc.Arbitrary<Mutation[]> {
  const at = fc.integer({ min: 0, max: Math.max(0, size - 1) });
  const inPlaceOnes: fc.Arbitrary<Mutation>[] = [
    fc.record({ kind: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set32' as const), at, value: fc.oneof(fc.constantFrom(...HOSTILE_INT32), fc.integer({ min: -0x80000000, max: 0x7fffffff })) }),
  ];
  const shifting: fc.Arbitrary<Mutation>[] = [
    fc.record({ kind: fc.constant('truncate' as const), at }),
    fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ kind: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 64 }) }),
  ];
  return fc.array(fc.oneof(...inPlaceOnes, ...(inPlace ? [] : shifting)), { minLength: 1, maxLength: maxCount });
}

/** `buf` with the mutations applied, in order (a copy). */
export function mutate(buf: Buffer, muts: readonly Mutation[]): Buffer {
  let b = Buffer.from(buf);
  for (const m of muts) {
    const at = Math.min(m.at, Math.max(0, b.length - 1));
    switch (m.kind) {
      case 'flip':
        if (b.length > 0) b[at] ^= 1 << m.bit;
        break;
      case 'set32':
        if (b.length >= 4) b.writeInt32LE(m.value | 0, Math.min(at, b.length - 4));
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
    }
  }
  return b;
}

/** Fails unless `err` keeps the contract: a SlicefsError (of one of `codes`, any when undefined) with a one-line message. */
export function assertCleanError(err: unknown, codes: readonly ErrorCode[] | undefined, what: string): void {
  if (!(err instanceof SlicefsError)) {
    const e = err as Error;
    assert.fail(`${what}: threw ${e?.constructor?.name ?? typeof err} instead of a SlicefsError: ${e?.message}\n${e?.stack ?? ''}`);
  }
  assert.ok(codes === undefined || codes.includes(err.code), `${what}: code ${err.code} (${err.message})`);
  assert.ok(err.message.length > 0 && !err.message.includes('\n'), `${what}: the message must be one line: ${JSON.stringify(err.message)}`);
}

/** Runs `fn`; returns 'ok' or 'refused' (a clean error), and fails the case on anything else. */
export async function outcome(fn: () => unknown, codes: readonly ErrorCode[], what: string): Promise<'ok' | 'refused'> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    assertCleanError(err, codes, what);
    return 'refused';
  }
}

/** Byte strings made from one of `seeds` by one to four mutations (the seeds themselves now and then). */
export function mutatedBytes(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.nat(seeds.length - 1).chain((i) => fc.oneof({ arbitrary: mutations(seeds[i]!.length).map((ms) => mutate(seeds[i]!, ms)), weight: 9 }, { arbitrary: fc.constant(seeds[i]!), weight: 1 }));
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

/** The contract: `fn` returns, or throws a SlicefsError with a one-line message. */
export function returnsOrRefuses<T>(fn: () => T): T | SlicefsError {
  try {
    return fn();
  } catch (err) {
    assertCleanError(err, undefined, 'a parser');
    return err as SlicefsError;
  }
}

/** The async form of `returnsOrRefuses`. */
export async function resolvesOrRefuses<T>(fn: () => Promise<T>): Promise<T | SlicefsError> {
  try {
    return await fn();
  } catch (err) {
    assertCleanError(err, undefined, 'a parser');
    return err as SlicefsError;
  }
}
