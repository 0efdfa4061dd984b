/**
 * Worker-thread side of WorkerTransport: runs an HttpTransport (undici, retry policy, response
 * checks) and streams each range back as SharedArrayBuffers of at most `pieceBytes`, cut at
 * multiples of `pieceBytes` in the object, so one piece is one cache block and the main thread
 * neither copies nor reassembles. Shared, not transferred: the disk tier's writer thread
 * (cache/slot-writer.ts) reads the same memory without a copy either. Parsing HTTP, copying socket chunks and the garbage they leave
 * happen here, on the other core, instead of between FUSE callbacks.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { TransportConfig } from '../config.js';
import { SlicefsError, messageOf } from '../errors.js';
import { Stats, transportCounters, type TransportCounters } from '../stats.js';
import { HttpTransport } from './http-transport.js';
import type { ObjectVersion } from './version.js';

export interface WorkerInit {
  config: Omit<TransportConfig, 'log'>;
  verbose: boolean;
  pieceBytes: number;
}

export type ToWorker =
  | { type: 'probe'; id: number; url: string; headers: Record<string, string> }
  | { type: 'fetch'; id: number; url: string; start: number; end: number; version: ObjectVersion; headers: Record<string, string> }
  | { type: 'abort'; id: number }
  /**
   * Buffers of freed cache blocks, handed back to be filled again instead of allocating (the main
   * thread keeps no view it reads from any more).
   */
  | { type: 'recycle'; bufs: SharedArrayBuffer[] };



export interface WireError {
  code?: string;
  message: string;
  status?: number;
}

export type FromWorker =
  | { type: 'data'; id: number; buf: SharedArrayBuffer; length: number }
  | { type: 'done'; id: number; version?: ObjectVersion; counters: TransportCounters }
  | { type: 'error'; id: number; error: WireError; counters: TransportCounters }
  | { type: 'ready' }
  | { type: 'log'; line: string }
  | { type: 'warn'; message: string };

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('fetch-worker must run in a worker thread');
  const init = workerData as WorkerInit;
  const post = (m: FromWorker) => port.postMessage(m);
  const stats = new Stats();
  const transport = new HttpTransport(
    { ...init.config, log: init.verbose ? (line) => post({ type: 'log', line }) : undefined },
    stats,
    (message) => post({ type: 'warn', message }),
  );
  const counters = () => transportCounters(stats);
  const aborts = new Map<number, AbortController>();
  /** Reusable piece buffers (bounded: a burst of frees must not pin memory here). */
  const spare: SharedArrayBuffer[] = [];
  // About one readahead window: enough to keep a stream allocation-free, little memory pinned.
  const MAX_SPARE = 16;
  const fail = (id: number, err: unknown) =>
    post({
      type: 'error',
      id,
      error: err instanceof SlicefsError ? { code: err.code, message: err.message, status: err.status } : { message: messageOf(err) },
      counters: counters(),
    });

  post({ type: 'ready' });
  port.on('message', (m: ToWorker) => {
    if (m.type === 'recycle') {
      for (const b of m.bufs) if (spare.length < MAX_SPARE && b.byteLength === init.pieceBytes) spare.push(b);
      return;
    }
    if (m.type === 'abort') {
      aborts.get(m.id)?.abort(new SlicefsError('TIMEOUT', 'aborted by the reader'));
      return;
    }
    if (m.type === 'probe') {
      transport.probe(m.url, m.headers).then(
        (version) => post({ type: 'done', id: m.id, version, counters: counters() }),
        (err) => fail(m.id, err),
      );
      return;
    }
    const ctl = new AbortController();
    aborts.set(m.id, ctl);
    const piece = init.pieceBytes;
    let pos = m.start;
    let buf: Buffer | undefined;
    let filled = 0;
    const flush = () => {
      if (!buf || filled === 0) return;
      post({ type: 'data', id: m.id, buf: buf.buffer as SharedArrayBuffer, length: filled });
      buf = undefined;
      filled = 0;
    };
    transport
      .fetchRange(m.url, m.start, m.end, {
        version: m.version,
        headers: m.headers,
        signal: ctl.signal,
        onData: (chunk) => {
          let off = 0;
          while (off < chunk.length) {
            if (!buf) {
              // The piece ends at the next multiple of `piece` in the object (or at the range end).
              const pieceEnd = Math.min(m.end, (Math.floor(pos / piece) + 1) * piece);
              // A buffer of its own (not from Node's pool), shared with the main thread; a whole
              // piece reuses a recycled one.
              const len = pieceEnd - pos;
              buf = Buffer.from((len === piece && spare.pop()) || new SharedArrayBuffer(len));
            }
            const n = chunk.copy(buf, filled, off, off + Math.min(chunk.length - off, buf.length - filled));
            off += n;
            filled += n;
            pos += n;
            if (filled === buf.length) flush();
          }
        },
      })
      .then(
        () => {
          flush();
          post({ type: 'done', id: m.id, counters: counters() });
        },
        (err) => {
          flush();
          fail(m.id, err);
        },
      )
      .finally(() => aborts.delete(m.id));
  });
}

main();
