/**
 * WorkerTransport: the Transport interface, served by an HttpTransport in a worker thread
 * (./fetch-worker.ts). Why: fuse-native runs every FUSE callback on the main thread, and a
 * sequential read through a single thread spent most of its time parsing HTTP, copying socket
 * chunks and collecting their garbage (docs/benchmarks.md): with the fetching moved to a second
 * thread, the FUSE thread only copies finished blocks into kernel buffers.
 *
 * Same behaviour as HttpTransport (it is HttpTransport, over there): errors come back as
 * SlicefsErrors with the same codes; `--verbose` lines and warnings are forwarded; the transport
 * counters in Stats are updated with every answer. If the worker dies, pending requests fail with
 * NETWORK and the next request starts a new worker: the daemon stays up.
 */
import { Worker } from 'node:worker_threads';
import type { TransportConfig } from '../config.js';
import { SlicefsError, type ErrorCode } from '../errors.js';
import { Stats, TRANSPORT_COUNTERS, transportCounters, type TransportCounters } from '../stats.js';
import type { FromWorker, ToWorker, WorkerInit, WireError } from './fetch-worker.js';
import type { FetchRangeOptions, Transport } from './transport.js';
import type { ObjectVersion } from './version.js';

interface Call {
  onData?: (chunk: Buffer) => void;
  resolve: (v: ObjectVersion | undefined) => void;
  reject: (e: unknown) => void;
}

export class WorkerTransport implements Transport {
  private worker?: Worker;
  private readonly calls = new Map<number, Call>();
  private nextId = 1;
  private closed = false;
  /** The current worker's counters as last reported (Stats gets the differences). */
  private reported: TransportCounters = ZERO;

  constructor(
    private readonly config: TransportConfig,
    private readonly stats: Stats,
    private readonly warn: (msg: string) => void = () => {},
    /** Size of the pieces bytes arrive in; the cache block size, so a piece is a block. */
    private readonly pieceBytes = 1024 * 1024,
  ) {}

  probe(url: string, headers: Record<string, string> = {}): Promise<ObjectVersion> {
    return this.call({ type: 'probe', id: 0, url, headers }) as Promise<ObjectVersion>;
  }

  async fetchRange(url: string, start: number, end: number, opts: FetchRangeOptions): Promise<void> {
    if (start === end) return;
    const { signal } = opts;
    signal?.throwIfAborted();
    let id = 0;
    const onAbort = () => this.worker?.postMessage({ type: 'abort', id } satisfies ToWorker);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.call(
        { type: 'fetch', id: 0, url, start, end, version: opts.version, headers: opts.headers ?? {} },
        opts.onData,
        (assigned) => (id = assigned),
      );
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Starts the worker and waits until it has loaded undici: a mount pays the ~100 ms of a new
   * isolate before it answers the kernel, not on the first read.
   */
  async start(): Promise<void> {
    const w = this.ensureWorker();
    w.ref();
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === 'ready') done();
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new SlicefsError('NETWORK', `fetch worker exited (${code}) while starting`));
      };
      const cleanup = () => {
        w.off('message', onMessage);
        w.off('exit', onExit);
        if (this.calls.size === 0) w.unref();
      };
      const done = () => {
        cleanup();
        resolve();
      };
      w.on('message', onMessage);
      w.on('exit', onExit);
    });
  }

  /**
   * Takes back the memory of cache blocks nobody reads any more: whole pieces this transport
   * delivered go back to the worker to be filled again. The caller must hold no view of them it
   * will read again (the memory is shared: it changes under such a view).
   */
  recycle(parts: readonly Buffer[]): void {
    const bufs: SharedArrayBuffer[] = [];
    for (const p of parts) {
      const ab = p.buffer;
      if (ab instanceof SharedArrayBuffer && p.byteOffset === 0 && p.byteLength === ab.byteLength && ab.byteLength === this.pieceBytes) {
        bufs.push(ab);
      }
    }
    if (bufs.length > 0 && this.worker) this.worker.postMessage({ type: 'recycle', bufs } satisfies ToWorker);
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    const err = new SlicefsError('NETWORK', 'transport closed');
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
    if (w) await w.terminate();
  }

  private call(msg: ToWorker & { id: number }, onData?: (chunk: Buffer) => void, onId?: (id: number) => void): Promise<ObjectVersion | undefined> {
    if (this.closed) return Promise.reject(new SlicefsError('NETWORK', 'transport closed'));
    const id = this.nextId++;
    onId?.(id);
    return new Promise((resolve, reject) => {
      this.calls.set(id, { onData, resolve, reject });
      const w = this.ensureWorker();
      // Referenced while a call is open (a command awaiting bytes must not exit), not when idle.
      w.ref();
      w.postMessage({ ...msg, id });
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const { log: _log, ...config } = this.config;
    const init: WorkerInit = { config, verbose: this.config.log !== undefined, pieceBytes: this.pieceBytes };
    const w = new Worker(new URL('./fetch-worker.js', import.meta.url), { workerData: init });
    w.on('message', (m: FromWorker) => this.onMessage(m));
    const die = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      // A new worker counts from zero.
      this.reported = ZERO;
      const err = new SlicefsError('NETWORK', `fetch worker stopped (${why})`);
      for (const c of this.calls.values()) c.reject(err);
      this.calls.clear();
    };
    w.on('error', (e) => die(e.message));
    w.on('exit', (code) => die(`exit ${code}`));
    this.worker = w;
    return w;
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'ready':
        return;
      case 'log':
        this.config.log?.(m.line);
        return;
      case 'warn':
        this.warn(m.message);
        return;
      case 'data':
        this.calls.get(m.id)?.onData?.(Buffer.from(m.buf, 0, m.length));
        return;
      case 'done':
      case 'error': {
        this.apply(m.counters);
        const c = this.calls.get(m.id);
        this.calls.delete(m.id);
        if (this.calls.size === 0) this.worker?.unref();
        if (!c) return;
        if (m.type === 'done') c.resolve(m.version);
        else c.reject(toError(m.error));
      }
    }
  }

  /** Adds what the worker counted since its last report (Stats has other writers too). */
  private apply(c: TransportCounters): void {
    for (const k of TRANSPORT_COUNTERS) this.stats[k] += c[k] - this.reported[k];
    this.reported = c;
  }
}

const ZERO: TransportCounters = transportCounters(new Stats());

function toError(e: WireError): Error {
  return e.code ? new SlicefsError(e.code as ErrorCode, e.message, { status: e.status }) : new Error(e.message);
}
