/**
 * Counters every layer adds to, printed on exit and on SIGUSR1 (`slicefs stats: ...`), and used by
 * tests and benchmarks to count requests. Plain numbers: incrementing must cost nothing on the read path.
 */
export class Stats {
  /** HTTP requests sent (every attempt counts). */
  requests = 0;
  /** Body bytes received from servers. */
  bytesFetched = 0;
  /** Attempts that were retried (after a 5xx, 429, timeout, reset or short body). */
  retries = 0;
  /** Logical requests that failed after their retries. */
  errors = 0;
  /** Ranged requests answered with 200 (the server ignored Range). */
  rangeIgnored = 0;
  cacheHits = 0;
  cacheMisses = 0;
  /** Bytes served to readers (FUSE reads, view, download). */
  bytesServed = 0;
  /** Chunks of the disk tier read from disk, and fetched from the network (cache/disk-tier.ts). */
  diskHits = 0;
  diskMisses = 0;
  /** CRAM slices whose output a `view` worker thread made (src/view/cram/slice-pool.ts); not printed. */
  cramSlicesOnWorkers = 0;

  line(): string {
    return (
      `slicefs stats: requests=${this.requests} bytes=${this.bytesFetched} hits=${this.cacheHits} ` +
      `misses=${this.cacheMisses} retries=${this.retries} errors=${this.errors} ` +
      `served=${this.bytesServed} range_ignored=${this.rangeIgnored} disk_hits=${this.diskHits} disk_misses=${this.diskMisses}`
    );
  }
}

/** The Stats fields the transport counts (a fetch worker reports them; the main thread adds them up). */
export const TRANSPORT_COUNTERS = ['requests', 'bytesFetched', 'retries', 'errors', 'rangeIgnored'] as const;
export type TransportCounters = Record<(typeof TRANSPORT_COUNTERS)[number], number>;

export function transportCounters(stats: Stats): TransportCounters {
  return Object.fromEntries(TRANSPORT_COUNTERS.map((k) => [k, stats[k]])) as TransportCounters;
}
