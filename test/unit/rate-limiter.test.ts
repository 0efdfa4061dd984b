/**
 * RateLimiter (`slicefs download --limit-rate`): the long-run rate is the limit, short windows stay
 * close to it (smooth, not bursts), concurrent takers share it in FIFO order, and unlimited never
 * waits. All but the last test run on a simulated clock: a discrete-event loop that jumps to the next
 * timer once every promise has settled, so ten simulated seconds take milliseconds and every run is
 * identical. The last test checks the real timers for about a second.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { RateLimiter } from '../../src/download/rate-limiter.js';

const MiB = 1024 * 1024;
const KiB = 1024;

/** A simulated clock: `sleep` registers a timer; `runUntil` fires timers in time order. */
class SimClock {
  t = 0;
  private timers: { at: number; seq: number; resolve: () => void }[] = [];
  private seq = 0;
  readonly now = () => this.t;
  readonly sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      this.timers.push({ at: this.t + ms, seq: this.seq++, resolve });
    });

  /** Runs until simulated time `end` (or until nothing is left to run). */
  async runUntil(end: number): Promise<void> {
    for (;;) {
      // setImmediate runs after every pending microtask: all promise chains have settled.
      await new Promise((r) => setImmediate(r));
      if (this.timers.length === 0) return;
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (next.at > end) {
        this.t = end;
        return;
      }
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.resolve();
    }
  }
}

interface Release {
  t: number;
  n: number;
  stream: number;
}

/**
 * A stream that always has data: each chunk arrives `arrivalMs` after the previous one was let
 * through (the network), then waits for the limiter. `chunkSize(i)` is the size of its i-th chunk;
 * `pauseMs(i)` an optional idle gap before it (a stalled server).
 */
async function stream(
  clock: SimClock,
  limiter: RateLimiter,
  id: number,
  end: number,
  out: Release[],
  opts: { chunkSize?: (i: number) => number; arrivalMs?: number; pauseMs?: (i: number) => number } = {},
): Promise<void> {
  const chunkSize = opts.chunkSize ?? (() => 64 * KiB);
  for (let i = 0; clock.t < end; i++) {
    const pause = opts.pauseMs?.(i) ?? 0;
    await clock.sleep((opts.arrivalMs ?? 0.05) + pause);
    if (clock.t >= end) return;
    const n = chunkSize(i);
    const wait = limiter.take(n);
    if (wait) await wait;
    out.push({ t: clock.t, n, stream: id });
  }
}

/** Runs `streams` simulated streams for `seconds`; returns every release. */
async function simulate(
  rate: number,
  streams: number,
  seconds: number,
  opts: Parameters<typeof stream>[5] | ((id: number) => Parameters<typeof stream>[5]) = {},
): Promise<Release[]> {
  const clock = new SimClock();
  const limiter = new RateLimiter(rate, { now: clock.now, sleep: clock.sleep });
  const out: Release[] = [];
  const end = seconds * 1000;
  const done = Array.from({ length: streams }, (_, id) =>
    stream(clock, limiter, id, end, out, typeof opts === 'function' ? opts(id) : opts),
  );
  await clock.runUntil(end + 1000);
  await Promise.all(done);
  return out.filter((r) => r.t <= end);
}

/** Largest number of bytes released in any window [t, t + windowMs), windows starting at releases. */
function maxWindowBytes(releases: Release[], windowMs: number): number {
  const sorted = [...releases].sort((a, b) => a.t - b.t);
  let best = 0;
  let sum = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j].t < sorted[i].t + windowMs) sum += sorted[j++].n;
    best = Math.max(best, sum);
    sum -= sorted[i].n;
  }
  return best;
}

const total = (rs: Release[]) => rs.reduce((s, r) => s + r.n, 0);

test('the long-run rate is the limit within 2 %', async () => {
  for (const rate of [4 * MiB, 100 * MiB]) {
    const releases = await simulate(rate, 4, 10);
    const measured = total(releases) / 10;
    assert.ok(Math.abs(measured / rate - 1) < 0.02, `rate ${rate}: measured ${measured} B/s`);
  }
});

test('a limit above what the streams can do does not slow them', async () => {
  // 4 streams of 64 KiB per 1 ms = 256 MiB/s in all, under a 1 GiB/s limit: all of it passes.
  const releases = await simulate(1024 * MiB, 4, 1, { arrivalMs: 1 });
  const measured = total(releases);
  assert.ok(measured >= 4 * 1000 * 64 * KiB * 0.98, `measured ${measured} B in 1 s`);
});

test('no 250 ms window exceeds the limit by more than 10 %, with idle gaps and 1 MiB chunks', async () => {
  const rate = 100 * MiB;
  // Streams go idle now and then (the bucket refills to its burst) and sometimes deliver 1 MiB at once.
  const releases = await simulate(rate, 4, 10, (id) => ({
    chunkSize: (i) => (i % 97 === id ? MiB : 64 * KiB),
    pauseMs: (i) => (i % 150 === 149 ? 40 + 30 * id : 0),
  }));
  const windowMs = 250;
  const worst = maxWindowBytes(releases, windowMs);
  const allowed = (rate * windowMs) / 1000;
  assert.ok(worst <= allowed * 1.1, `worst 250 ms window: ${(worst / allowed).toFixed(3)} × the limit`);
  // And over 1 s windows, within 3 %.
  assert.ok(maxWindowBytes(releases, 1000) <= rate * 1.03);
});

test('a low limit paces 64 KiB chunks smoothly too', async () => {
  // 1 MiB/s: every chunk waits; a 250 ms window holds 256 KiB, i.e. four chunks, plus the straddler.
  const rate = 1 * MiB;
  const releases = await simulate(rate, 3, 20);
  assert.ok(Math.abs(total(releases) / 20 / rate - 1) < 0.02);
  assert.ok(maxWindowBytes(releases, 1000) <= rate + 64 * KiB);
});

test('concurrent takers share the limit equally', async () => {
  const releases = await simulate(8 * MiB, 5, 10);
  const perStream = [0, 1, 2, 3, 4].map((id) => total(releases.filter((r) => r.stream === id)));
  const mean = perStream.reduce((a, b) => a + b) / perStream.length;
  for (const b of perStream) assert.ok(Math.abs(b - mean) <= 64 * KiB, `per-stream bytes ${perStream.join(', ')}`);
});

test('waiters are released first in, first out, whoever they are', async () => {
  const clock = new SimClock();
  const limiter = new RateLimiter(1000, { now: clock.now, sleep: clock.sleep }); // 1000 B/s, 20 B burst
  const order: string[] = [];
  const a = limiter.take(500); // 480 B of debt: due at 480 ms
  const b = limiter.take(10); // behind a, although small: due at 490 ms
  const c = limiter.take(100); // due at 590 ms
  assert.ok(a && b && c);
  assert.equal(limiter.waiting, 3);
  for (const [name, p] of [['c', c], ['b', b], ['a', a]] as const) void p.then(() => order.push(`${name}@${clock.t}`));
  await clock.runUntil(10_000);
  assert.deepEqual(order, ['a@480', 'b@490', 'c@590']);
  assert.equal(limiter.waiting, 0);
  // Idle for a while: the bucket is full again (20 B), and no more.
  clock.t = 20_000;
  assert.equal(limiter.take(20), undefined);
  assert.ok(limiter.take(1));
});

test('unlimited takes never wait, never read the clock, never sleep', () => {
  const fail = () => {
    throw new Error('the clock must not be read');
  };
  const limiter = new RateLimiter(Infinity, { now: fail, sleep: fail });
  for (let i = 0; i < 100_000; i++) assert.equal(limiter.take(MiB), undefined);
  assert.equal(limiter.waiting, 0);
});

test('zero, negative and NaN limits are refused', () => {
  for (const bad of [0, -1, NaN]) {
    assert.throws(() => new RateLimiter(bad), (e: unknown) => e instanceof SlicefsError && e.code === 'USAGE');
  }
});

test('real time: 4 streams through a 4 MB/s limiter measure 3.6 to 4.4 MB/s', async () => {
  const rate = 4_000_000;
  const limiter = new RateLimiter(rate);
  const start = performance.now();
  const durationMs = 1000;
  let bytes = 0;
  let last = start;
  const run = async () => {
    while (performance.now() - start < durationMs) {
      const wait = limiter.take(64 * KiB);
      if (wait) await wait;
      else await new Promise((r) => setImmediate(r)); // the next chunk comes from I/O
      bytes += 64 * KiB;
      last = performance.now();
    }
  };
  await Promise.all([run(), run(), run(), run()]);
  const measured = bytes / ((last - start) / 1000);
  assert.ok(measured >= 3.6e6 && measured <= 4.4e6, `measured ${(measured / 1e6).toFixed(2)} MB/s`);
});
