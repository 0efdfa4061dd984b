// Seeded, deterministic pseudo-random helpers for tests and fixtures.
//
// Everything here is reproducible from a single integer seed so a failing test can be re-run
// on exactly the same bytes. The generator is xoshiro128** (32-bit state words), which only
// needs Math.imul and 32-bit shifts: it is fast in V8 without BigInt and has no short cycles
// that would show up in a few GiB of output.

/** splitmix32: spreads a small integer seed over the 128-bit state, so seeds 1 and 2 diverge at once. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function initialState(seed: number): Uint32Array {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  const mix = splitmix32(Math.trunc(seed));
  const state = new Uint32Array([mix(), mix(), mix(), mix()]);
  // xoshiro's only fixed point is the all-zero state; splitmix32 cannot give four zeros in a row,
  // but guard anyway because a stuck generator would silently produce a zero-filled "random" file.
  if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1;
  return state;
}

/**
 * `size` deterministic pseudo-random bytes. `seededBytes(s, n)` is a prefix of `seededBytes(s, m)`
 * for n <= m, so a test can regenerate any prefix of a big fixture to compare against.
 * Words are stored little-endian regardless of the host so the bytes are the same everywhere.
 */
export function seededBytes(seed: number, size: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`size must be a non-negative integer, got ${size}`);
  const words = Math.ceil(size / 4);
  // A fresh ArrayBuffer (not Buffer.allocUnsafe's shared pool) so the Uint32Array view is aligned.
  const backing = new ArrayBuffer(words * 4);
  const out = new Uint32Array(backing);
  const st = initialState(seed);
  // Locals instead of typed-array slots: this loop runs 134M times for a 512 MiB fixture.
  let s0 = st[0], s1 = st[1], s2 = st[2], s3 = st[3];
  for (let i = 0; i < words; i++) {
    const m = Math.imul(s1, 5);
    const rot = (m << 7) | (m >>> 25);
    out[i] = Math.imul(rot, 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
  }
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < words; i++) {
      const v = out[i];
      out[i] = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
    }
  }
  return Buffer.from(backing, 0, size);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A seeded stream of numbers for generating test data (reads, positions, choices). */
export class SeededRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    const st = initialState(seed);
    this.s0 = st[0];
    this.s1 = st[1];
    this.s2 = st[2];
    this.s3 = st[3];
  }

  /** Next raw 32-bit unsigned integer. */
  uint32(): number {
    const m = Math.imul(this.s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] — both ends inclusive, so `int(0, 3)` can return 3. */
  int(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo) {
      throw new RangeError(`int(lo, hi) needs integers with lo <= hi, got ${lo}, ${hi}`);
    }
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen element; throws on an empty array rather than returning undefined. */
  pick<T>(a: readonly T[]): T {
    if (a.length === 0) throw new RangeError('pick() from an empty array');
    return a[Math.floor(this.next() * a.length)];
  }
}
