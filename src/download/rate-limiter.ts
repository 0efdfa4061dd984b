/**
 * RateLimiter: `slicefs download --limit-rate 100M`, a cap on the total throughput of all parallel
 * HTTP streams of one download, kept smooth (like `ascp -l`) rather than met on average by bursts.
 *
 * The algorithm is a token bucket that may go into debt. The bucket fills at `bytesPerSecond` up to
 * `BURST_MS` worth of bytes. A stream calls `take(n)` for each chunk it received: the chunk's bytes
 * are taken from the bucket at once; if the bucket still holds them, the chunk passes now (the fast
 * path: a clock read and two subtractions, nothing allocated); otherwise the bucket is left in debt
 * and the caller gets a promise that resolves when the refill has paid that debt, i.e. at the moment
 * the chunk's own bytes would have passed at the limit. The stream awaits it before reading again,
 * so the kernel's receive buffer fills and TCP slows the sender: real backpressure, not a buffer.
 *
 * Fairness comes from the debt: a take that finds the bucket in debt queues behind every earlier one
 * (its release time is computed from the whole debt, which includes theirs), so release times grow
 * in call order and waiters are served first in, first out, whichever stream they belong to. While
 * anyone waits the bucket is in debt, so a newcomer can never slip past the queue on the fast path.
 * Streams that read chunks of equal size therefore share the limit equally.
 *
 * Smoothness: by construction the bytes released in any interval of length W are at most
 * `bytesPerSecond · W + burst` (plus the one chunk that straddles the interval's start, as every
 * chunk is released whole): with a 20 ms burst, any 1 s window stays within 2 % of the limit and
 * any 250 ms window within 8 %. A bigger bucket would let a stream idle for a moment send a burst
 * the network sees; a smaller one would lose throughput to late timers (below).
 *
 * What it cannot smooth: the first receive window of each new connection arrives at line speed
 * before the first chunk reaches us (the kernel buffers it); from then on the sender is paced.
 *
 * One timer serves the whole queue: it sleeps until the head's release time, then releases every
 * waiter that is due. Timers fire late under load; the bucket refills by the clock, not by wake-ups,
 * so a late wake-up leaves credit in the bucket that the next takes spend at once, and no
 * throughput is lost as long as the lateness stays under the burst.
 */
import { setTimeout as sleepMs } from 'node:timers/promises';
import { SlicefsError } from '../errors.js';

/**
 * The bucket holds 20 ms of bytes at the limit: enough to absorb a timer or event-loop delay of
 * that size without losing throughput, small enough that a 250 ms window never exceeds the limit by
 * more than 8 %. (At 100 MB/s this is 2 MB, so most 64 KiB chunks below the limit take the fast path.)
 */
const BURST_MS = 20;

/**
 * Waiters due within this much of the head are released with it: a timer cannot wait for less than
 * 1 ms anyway, and releasing them together saves a wake-up per waiter under a saturated limit. The
 * early release is at most 1 ms of bytes.
 */
const RELEASE_SLACK_MS = 1;

interface Waiter {
  /** The clock time (ms) at which the refill has paid for this waiter's bytes. */
  releaseAt: number;
  resolve: () => void;
}

export class RateLimiter {
  /** The limit, in bytes per second; `Infinity` means unlimited. */
  readonly bytesPerSecond: number;
  private readonly unlimited: boolean;
  private readonly bytesPerMs: number;
  private readonly burstBytes: number;
  /** Bytes the bucket holds at `refilledAt`; negative while takers wait (the debt they queue behind). */
  private tokens: number;
  private refilledAt: number;
  /** Waiters in call order, which is also release order (see the header). */
  private readonly queue: Waiter[] = [];
  private pumping = false;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  /**
   * `bytesPerSecond`: a positive number, or `Infinity` for no limit (then `take` never waits and
   * never reads the clock). Zero, negative and NaN are refused: a limit of 0 would never transfer
   * anything, and the caller decides whether its own "0" means unlimited (rsync) or is an error.
   * `now` (ms, monotonic) and `sleep` are for tests; they default to `performance.now` and a timer.
   */
  constructor(bytesPerSecond: number, opts: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {}) {
    if (!(bytesPerSecond > 0)) {
      throw new SlicefsError('USAGE', `invalid rate limit ${bytesPerSecond} bytes/s (must be positive, or Infinity for no limit)`);
    }
    this.bytesPerSecond = bytesPerSecond;
    this.unlimited = bytesPerSecond === Infinity;
    this.bytesPerMs = bytesPerSecond / 1000;
    this.burstBytes = this.bytesPerMs * BURST_MS;
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms) => sleepMs(ms));
    this.tokens = this.unlimited ? 0 : this.burstBytes;
    this.refilledAt = this.unlimited ? 0 : this.now();
  }

  /**
   * Accounts for `n` bytes a stream received. Returns undefined when they may pass now; otherwise a
   * promise, resolved in FIFO order across all callers, that the stream must await before it reads
   * more. It never rejects.
   */
  take(n: number): Promise<void> | undefined {
    if (this.unlimited || !(n > 0)) return undefined;
    const now = this.now();
    this.tokens = Math.min(this.burstBytes, this.tokens + (now - this.refilledAt) * this.bytesPerMs);
    this.refilledAt = now;
    this.tokens -= n;
    if (this.tokens >= 0) return undefined;
    // The debt includes the bytes of everyone already queued, so this release time is after theirs.
    const releaseAt = now - this.tokens / this.bytesPerMs;
    return new Promise<void>((resolve) => {
      this.queue.push({ releaseAt, resolve });
      if (!this.pumping) void this.pump();
    });
  }

  /** Number of takers waiting (for tests and diagnostics). */
  get waiting(): number {
    return this.queue.length;
  }

  /** The one timer loop: sleeps until the head is due, releases what is due, until the queue is empty. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const wait = this.queue[0].releaseAt - this.now();
        if (wait > RELEASE_SLACK_MS) await this.sleep(Math.ceil(wait));
        const due = this.now() + RELEASE_SLACK_MS;
        while (this.queue.length > 0 && this.queue[0].releaseAt <= due) this.queue.shift()!.resolve();
      }
    } finally {
      this.pumping = false;
    }
  }
}
