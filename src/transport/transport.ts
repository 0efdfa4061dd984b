/**
 * The transport interface sources read through. Two implementations share one retry policy and one
 * set of response checks (./http-transport.ts): `HttpTransport` runs undici on the calling thread;
 * `WorkerTransport` runs the same HttpTransport in a worker thread and hands bytes over in
 * transferred buffers, so the FUSE thread is not the one parsing HTTP (see docs/ARCHITECTURE.md).
 */
import type { ObjectVersion } from './version.js';

export interface FetchRangeOptions {
  /** The pinned version; responses of another version fail with STALE. */
  version: ObjectVersion;
  /**
   * Receives the bytes in order; chunks are owned by the callee (never reused by the transport).
   * A returned promise is awaited before more of the body is read (backpressure: a rate limit, a
   * slow disk); the worker transport cannot wait and ignores it.
   */
  onData: (chunk: Buffer) => void | Promise<void>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface Transport {
  /** Size and version of an object (HEAD, or a 1-byte ranged GET where HEAD is refused). */
  probe(url: string, headers?: Record<string, string>): Promise<ObjectVersion>;
  /** Delivers bytes [start, end) of `url` at `opts.version` through `opts.onData`. */
  fetchRange(url: string, start: number, end: number, opts: FetchRangeOptions): Promise<void>;
  close(): Promise<void>;
}
