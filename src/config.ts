/**
 * Typed configuration, one object per layer, with the defaults and the reason for each number.
 * Only `src/cli/` turns argv/env into these; every layer below takes its own Config and nothing else.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

export interface RetryConfig {
  /** Attempts in all (first try included). */
  maxAttempts: number;
  /** First backoff; doubled per attempt, with full jitter (AWS architecture blog's "full jitter"). */
  baseDelayMs: number;
  /** Cap of one computed backoff. A server's Retry-After is obeyed as given, if it fits in the budget. */
  maxDelayMs: number;
  /**
   * Budget of one logical request without progress, retries and backoff included: the clock
   * restarts whenever body bytes arrive (a slow but moving body is never cut), and no new attempt
   * starts once it is spent. Below fuse-native's per-operation timeout (15 s) so a dead server
   * gives a clean errno; the filesystem's own read deadline bounds a trickling body.
   */
  budgetMs: number;
}

export interface TransportConfig {
  /** Sockets per origin. 32: enough for several readers' readahead in parallel (design notes: 16–32). */
  connectionsPerOrigin: number;
  /** A TCP+TLS connect slower than this on one attempt is a failed attempt. */
  connectTimeoutMs: number;
  /** Time to the response headers of one attempt. A stalled server costs at most this per attempt. */
  headersTimeoutMs: number;
  /** Longest silence inside a body before the attempt is abandoned (and resumed where it stopped). */
  bodyIdleTimeoutMs: number;
  retry: RetryConfig;
  /**
   * `--cache-proxy`: base URL of a shared cache tier (nginx, docker/cache-tier/) that object-byte
   * requests (probes and ranged GETs) are sent through, rewritten to its
   * `/fetch/<scheme>/<host>/<path>?<query>` form; API calls never are. A tier that fails a request
   * is bypassed for it, with one warning (src/transport/cache-proxy.ts). Unset: no tier.
   */
  cacheProxy?: string;
  /** Called with one line per HTTP request when `--verbose` (never with a query string or token). */
  log?: (line: string) => void;
}

export const DEFAULT_TRANSPORT: TransportConfig = {
  connectionsPerOrigin: 32,
  connectTimeoutMs: 3000,
  headersTimeoutMs: 5000,
  bodyIdleTimeoutMs: 5000,
  retry: {
    maxAttempts: 6,
    baseDelayMs: 100,
    maxDelayMs: 2000,
    // 12 s: inside fuse-native's 15 s, leaving room for the copy into the kernel buffer.
    budgetMs: 12_000,
  },
};

export interface CacheConfig {
  /**
   * Cache unit and alignment of every Range request. 1 MiB (measured in docs/benchmarks.md): a cold
   * random read (samtools seeking to a BGZF block) costs one round trip and ~1 MiB, and the kernel's
   * 128 KiB reads hit the same block eight times. Smaller blocks multiply requests on sequential
   * reads; larger ones waste bandwidth on random reads.
   */
  blockSize: number;
  /** Byte budget of cached blocks (`--cache-size`). */
  budgetBytes: number;
  /**
   * How long a block whose fetch failed answers with that error without a new request. Covers the
   * kernel's immediate retry of a failed read (which would otherwise wait a second retry budget);
   * short enough that a user who tries again later gets a fresh attempt.
   */
  failureTtlMs: number;
}

export const DEFAULT_CACHE: CacheConfig = {
  blockSize: 1 * MiB,
  budgetBytes: 256 * MiB,
  failureTtlMs: 3000,
};

export interface ReaderConfig {
  /** Cap of the window: at 20 ms RTT, 16 MiB in flight keeps ~800 MB/s moving. */
  readaheadMaxBytes: number;
  /** Largest single Range request of a readahead; larger windows are split into parallel requests. */
  maxRequestBytes: number;
  /** A forward jump up to this size still counts as sequential (samtools skips small gaps). */
  sequentialToleranceBytes: number;
}

export const DEFAULT_READER: ReaderConfig = {
  readaheadMaxBytes: 16 * MiB,
  maxRequestBytes: 4 * MiB,
  sequentialToleranceBytes: 16 * MiB,
};

export interface MountConfig {
  /**
   * Seconds the kernel may keep attributes and directory entries. A manifest does not change while
   * mounted, so long timeouts spare a JS round trip on every `stat`.
   */
  attrTimeoutSec: number;
  entryTimeoutSec: number;
  /** fuse-native's per-operation timeout; every read answers before it. */
  opTimeoutMs: number;
  allowOther: boolean;
  /**
   * `--group`: the group whose members may read the mount (besides its owner). Files are 0440 and
   * directories 0550 of that group, with allow_other and default_permissions so the kernel checks
   * the modes: others get EACCES. Undefined: 0444/0555 of the daemon's group.
   */
  group?: number;
  /** `--debug-fuse`: libfuse's own request log. */
  debug: boolean;
  /**
   * Page-cache READs the kernel keeps in flight to this mount (its default is 12). 64: parallel
   * readers (samtools threads, several files) are not serialised behind 12 slots; each waiting READ
   * holds one libfuse thread, so this also bounds the threads.
   */
  maxBackground: number;
}

export const DEFAULT_MOUNT: MountConfig = {
  attrTimeoutSec: 3600,
  entryTimeoutSec: 3600,
  opTimeoutMs: 15_000,
  allowOther: false,
  debug: false,
  maxBackground: 64,
};

/** How many size probes (HEAD) run at once while mounting a manifest without sizes. */
export const DEFAULT_PROBE_CONCURRENCY = 32;

export interface DiskCacheConfig {
  /** The tier's directory: `<--cache-dir>/blocks` (the view's index cache is `<--cache-dir>/index`). */
  dir: string;
  /**
   * Byte budget of the directory (`--disk-cache-size`); undefined: the default, `defaultBudgetBytes`
   * but at most `freeSpaceShare` of (free space + what the tier already holds) at start.
   */
  budgetBytes?: number;
  /**
   * 10 GiB: the working set of a re-run analysis (indexes and the regions of a few dozen BAMs, a
   * whole BAM or two) on a node's local disk, small next to today's disks.
   */
  defaultBudgetBytes: number;
  /**
   * 0.5: a cache is a convenience and must never be what fills the disk that the analysis writes
   * its outputs (and `download` its files) to. Counting the tier's own bytes as free keeps the
   * default stable from one start to the next (a full cache does not shrink its own next budget).
   */
  freeSpaceShare: number;
  /**
   * Size and alignment of a chunk file's slot. 1 MiB: the mount's block size, so one BlockCache
   * miss is one chunk file read or fetched, whole; 10 GiB is ~10,000 files, so a scan for eviction
   * stays in the tens of milliseconds and the 64-byte header is 0.006 %. Smaller slots multiply
   * files and syscalls per byte.
   */
  chunkBytes: number;
  /**
   * The unit a slot is filled in: a chunk file holds one contiguous run of pages of its slot, and a
   * read is widened to whole pages, not whole slots. 64 KiB: the view's block size (a BGZF block is
   * at most 64 KiB), so a cold `view` fetches what it fetches without the tier instead of a whole
   * 1 MiB around each region (3.3× the bytes, measured in docs/benchmarks.md); later reads of the
   * same slot grow its run.
   */
  pageBytes: number;
  /**
   * On shutdown, fetches under way (the mount's last readahead) are given this long to land on
   * disk before the connections close: otherwise the next run fetches them again. Well inside
   * `docker stop`'s 10 s and a user's patience with Ctrl-C.
   */
  drainMs: number;
  /**
   * Eviction deletes down to this share of the budget, not to the budget itself, so that it runs
   * once per ~10 % of the budget written, not on every chunk.
   */
  lowWaterShare: number;
  /**
   * Rescan the directory after this share of the budget was written by this process since the
   * last scan: the other processes sharing the directory are seen at least that often, so the
   * directory exceeds its budget by at most this share per writing process between scans.
   */
  rescanShare: number;
  /**
   * A chunk read from disk gets a new mtime (its "last used" time for eviction) only when its mtime
   * is older than this: least-recently-used to the minute, with one utimes per chunk per minute.
   */
  touchAfterMs: number;
  /**
   * Chunks waiting to be written are dropped (not cached) beyond this many bytes: a slow disk must
   * not make the process hold the network's bytes in memory.
   */
  maxPendingWriteBytes: number;
  /** Temporary files older than this are left by a crashed process: eviction removes them. */
  staleTmpMs: number;
  /** How often a process writes its hit/miss counters into the directory (and at exit). */
  statsFlushMs: number;
}

export const DEFAULT_DISK_CACHE: Omit<DiskCacheConfig, 'dir'> = {
  defaultBudgetBytes: 10 * 1024 * MiB,
  freeSpaceShare: 0.5,
  chunkBytes: 1 * MiB,
  pageBytes: 64 * 1024,
  drainMs: 3000,
  lowWaterShare: 0.9,
  rescanShare: 1 / 16,
  touchAfterMs: 60_000,
  maxPendingWriteBytes: 64 * MiB,
  staleTmpMs: 3600_000,
  statsFlushMs: 30_000,
};
