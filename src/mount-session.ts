/**
 * Wires one mount: manifest → sources → tree → (size probes) → ReadOnlyFs → FUSE. The CLI builds
 * the Configs and handles the process (signals, exit); this module owns the objects and their
 * order of shutdown (unmount first, then close the sockets).
 */
import { BlockCache } from './cache/block-cache.js';
import { DiskTier } from './cache/disk-tier.js';
import type { CacheConfig, DiskCacheConfig, MountConfig, ReaderConfig, TransportConfig } from './config.js';
import { mountFuse } from './fs/fuse/fuse-adapter.js';
import { prepareMountPoint, removeCreated, type PreparedMountPoint } from './fs/fuse/mount-point.js';
import { ReadOnlyFs } from './fs/readonly-fs.js';
import { sizeUnsized } from './fs/size-probe.js';
import { buildTree, type DirNode } from './fs/tree.js';
import type { Manifest } from './manifest/types.js';
import { anyScore, openSource, type GhgaContext } from './open-source.js';
import type { ScoreEndpoint } from './source/score-source.js';
import type { C4ghKeyPair } from './crypt4gh/keys.js';
import { Stats } from './stats.js';
import { HttpTransport } from './transport/http-transport.js';
import type { Transport } from './transport/transport.js';
import { WorkerTransport } from './transport/worker-transport.js';
import { WorkerDecryptor } from './crypt4gh/worker-decryptor.js';

export interface MountSessionOptions {
  manifest: Manifest;
  mountPoint: string;
  force: boolean;
  transport: TransportConfig;
  cache: CacheConfig;
  /** The disk tier below the block cache (`--cache-dir`, `--disk-cache-size`); undefined: off. */
  disk?: DiskCacheConfig;
  reader: ReaderConfig;
  mount: MountConfig;
  probeConcurrency: number;
  /** Leave out files whose probe says absent or refused, instead of failing (`--skip-missing`). */
  skipMissing?: boolean;
  /** The storage service and token, for manifests of Score objects. */
  score?: ScoreEndpoint;
  /** The reader's Crypt4GH keys, for encrypted objects. */
  keys?: () => Promise<C4ghKeyPair[]>;
  /** A GHGA work package's download service (`--ghga`), closed with the session. */
  ghga?: GhgaContext & { close(): Promise<void> };
  /** Fetch in a worker thread (default) or on the FUSE thread. */
  fetchWorker: boolean;
  /** Messages for the user (stderr). */
  warn: (msg: string) => void;
  /** Per-operation failures, for --verbose. */
  onFsError?: (op: string, path: string, err: unknown) => void;
  onProbeProgress?: (done: number, total: number) => void;
}

export interface MountSession {
  mountPoint: string;
  files: number;
  stats: Stats;
  /** Bytes in the block cache now, and its budget. */
  cacheUsage(): { bytes: number; budget: number };
  /** Unmounts (lazily: a busy mount is detached) and closes the connections. */
  unmount(): Promise<void>;
  /** For a mount already gone (an external `fusermount -u`): closes the connections only. */
  abandon(): Promise<void>;
  /** Files open now. */
  openFiles(): number;
  /** True while this mount (not another on the same path) is in the mount table. */
  attached(): Promise<boolean>;
  /**
   * False once the kernel has let go of the mount. A mount detached lazily (`fusermount -uz`) is
   * gone from the mount table but still connected while processes use it: keep serving until then.
   */
  connected(): Promise<boolean>;
}

export async function openMountSession(o: MountSessionOptions): Promise<MountSession> {
  const stats = new Stats();
  // The worker thread is created here but started below, after the manifest checks.
  const worker = o.fetchWorker ? new WorkerTransport(o.transport, stats, o.warn, o.cache.blockSize) : undefined;
  const transport: Transport = worker ?? new HttpTransport(o.transport, stats, o.warn);
  // The storage service's JSON answers (Score objects) go over an HttpTransport on this thread:
  // a few small requests per object per URL lifetime, not worth the worker's protocol.
  const scoreUrls = anyScore(o.manifest.entries.flatMap((e) => [e.url, e.indexUrl]));
  const api = scoreUrls ? (transport instanceof HttpTransport ? transport : new HttpTransport(o.transport, stats, o.warn)) : undefined;
  // Below the block cache and below decryption (what is on disk of an encrypted object is ciphertext).
  // Written behind the reads, in a thread of its own: the FUSE thread is the mount's bottleneck.
  const disk = o.disk ? await DiskTier.open(o.disk, o.warn, stats, { writerThread: true }) : undefined;
  // Crypt4GH blocks are opened in their own worker (started at the first encrypted read), not
  // between FUSE callbacks; its plaintext pieces are cache blocks, recycled like the fetch worker's.
  const decryptor = worker ? new WorkerDecryptor(o.cache.blockSize) : undefined;
  const closeAll = async () => {
    await transport.close().catch(() => {});
    await decryptor?.close().catch(() => {});
    if (api && api !== transport) await api.close().catch(() => {});
    await o.ghga?.close().catch(() => {});
    // Chunks still being written are finished, the budget kept, the counters recorded.
    await disk?.close().catch(() => {});
  };
  // The whole tree is checked (index names included) before anything starts or the mount point is touched.
  let root: DirNode;
  try {
    root = buildTree(o.manifest, (url, size, encryption) => openSource({ transport, api, score: o.score, keys: o.keys, ghga: o.ghga, disk, decryptor }, url, size, encryption));
  } catch (err) {
    await closeAll();
    throw err;
  }
  let prepared: PreparedMountPoint | undefined;
  try {
    // Started before the mount answers the kernel, so no read pays for a new isolate.
    await worker?.start();
    prepared = await prepareMountPoint(o.mountPoint, o.force);
    const mountPoint = prepared.path;
    // A block's buffers that a piece waiting for the disk tier still holds are refilled once it lets go.
    const cache = new BlockCache(o.cache, stats, worker ? (parts) => worker.recycle(disk ? disk.whenFree(parts, (p) => worker.recycle([p])) : parts) : undefined);
    // Files without a size (every index among them) are probed now, so the tree lists only what can be read.
    await sizeUnsized(root, { concurrency: o.probeConcurrency, skipMissing: o.skipMissing ?? false, manifestFile: o.manifest.file, warn: o.warn, onProgress: o.onProbeProgress });
    const fs = new ReadOnlyFs(root, cache, stats, {
      reader: o.reader,
      // One second below fuse-native's timeout: our ETIMEDOUT, not the binding's, reaches the reader.
      readDeadlineMs: Math.max(1000, o.mount.opTimeoutMs - 1000),
    });
    const handle = await mountFuse(fs, mountPoint, o.mount, { onError: o.onFsError });
    let closing: Promise<void> | undefined;
    return {
      mountPoint,
      files: fs.totals().files,
      stats,
      cacheUsage: () => ({ bytes: cache.cachedBytes, budget: o.cache.budgetBytes }),
      unmount: () =>
        (closing ??= (async () => {
          try {
            await handle.unmount();
            // The last readahead lands on disk (bounded), so a new mount does not fetch it again.
            await disk?.drain().catch(() => {});
          } finally {
            await closeAll();
          }
        })()),
      abandon: closeAll,
      openFiles: () => fs.openHandles,
      attached: () => handle.attached(),
      connected: () => handle.connected(),
    };
  } catch (err) {
    await closeAll();
    // Leave the machine as we found it: a mount point we created is removed again.
    if (prepared) await removeCreated(prepared).catch(() => {});
    throw err;
  }
}
