/**
 * WorkerDecryptor: Crypt4GH data blocks opened in a worker thread (./decrypt-worker.ts), for the
 * mount. Why: fuse-native runs every FUSE callback on the main thread, and a sequential encrypted
 * read spent it on the cipher and on collecting a fresh decipher output and ciphertext piece per
 * block (docs/benchmarks.md: the main thread's garbage collector took more time than the cipher).
 * Here the main thread only passes buffers along: ciphertext to the worker, plaintext pieces back,
 * both transferred, not copied.
 *
 * A stream is one run of plaintext (SegmentRange); its ciphertext is pushed in order, and its
 * plaintext comes back in order through `onPlain`, in pieces cut at multiples of `pieceBytes` of
 * the output offset (one piece = one cache block, so freed blocks can be recycled as whole
 * buffers). `finished` settles after the last piece: resolved, or rejected with the worker's error
 * (a block that fails its MAC: DECRYPT, naming the file, segment and plaintext range). If the
 * worker dies, open streams fail and the next stream starts a new one.
 */
import { Worker } from 'node:worker_threads';
import { SlicefsError, type ErrorCode } from '../errors.js';
import type { DecryptJob, DecryptWorkerInit, FromDecryptWorker, ToDecryptWorker } from './decrypt-worker.js';
import type { SegmentRange } from './segment-stream.js';

export interface PlainStream {
  /** The next ciphertext bytes; the chunk's memory is taken (transferred) when it is a whole ArrayBuffer. */
  push(chunk: Buffer): void;
  /** No more ciphertext; returns `finished`. */
  end(): Promise<void>;
  /** Drops the stream (its read failed or was aborted); `finished` rejects with `reason`. */
  cancel(reason: unknown): void;
  readonly finished: Promise<void>;
}

interface Open {
  onPlain: (plain: Buffer) => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class WorkerDecryptor {
  private worker?: Worker;
  private readonly streams = new Map<number, Open>();
  private nextId = 1;
  private closed = false;

  /** `pieceBytes`: the block cache's block size. */
  constructor(readonly pieceBytes: number) {}

  open(dataKeys: Buffer[], range: SegmentRange & { outStart: number }, label: string, onPlain: (plain: Buffer) => void): PlainStream {
    const id = this.nextId++;
    let settled = false;
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const finished = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Awaited by the reader; a failure seen first by the reader's own abort must not count as unhandled.
    finished.catch(() => {});
    const done = () => {
      settled = true;
      this.streams.delete(id);
      if (this.streams.size === 0) this.worker?.unref();
    };
    const open: Open = { onPlain, resolve: () => (done(), resolve()), reject: (e) => (done(), reject(e)) };
    if (this.closed) {
      open.reject(new SlicefsError('DECRYPT', 'the decrypt worker is closed'));
    } else {
      this.streams.set(id, open);
      const w = this.ensureWorker();
      // Referenced while a stream is open (a command awaiting bytes must not exit), not when idle.
      w.ref();
      const job: DecryptJob = { dataKeys: dataKeys.map((k) => new Uint8Array(k)), firstSegment: range.firstSegment, plainFrom: range.plainFrom, plainTo: range.plainTo, outStart: range.outStart, label };
      this.post({ type: 'start', id, job });
    }
    return {
      finished,
      push: (chunk) => {
        if (settled || chunk.length === 0) return;
        const ab = chunk.buffer;
        if (ab instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === ab.byteLength) {
          this.post({ type: 'data', id, buf: ab, length: chunk.length }, [ab]);
        } else {
          // A view into a larger buffer (a pooled slice, a part of a piece): copied, so nobody else's bytes move.
          const copy = new Uint8Array(chunk.length);
          copy.set(chunk);
          this.post({ type: 'data', id, buf: copy.buffer, length: copy.length }, [copy.buffer]);
        }
      },
      end: () => {
        if (!settled) this.post({ type: 'end', id });
        return finished;
      },
      cancel: (reason) => {
        if (settled) return;
        this.post({ type: 'cancel', id });
        open.reject(reason);
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    this.failAll('the decrypt worker is closed');
    if (w) await w.terminate();
  }

  private post(m: ToDecryptWorker, transfer?: ArrayBuffer[]): void {
    this.worker?.postMessage(m, transfer);
  }

  private failAll(why: string): void {
    const err = new SlicefsError('DECRYPT', why);
    for (const s of [...this.streams.values()]) s.reject(err);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const init: DecryptWorkerInit = { pieceBytes: this.pieceBytes };
    const w = new Worker(new URL('./decrypt-worker.js', import.meta.url), { workerData: init });
    w.on('message', (m: FromDecryptWorker) => this.onMessage(m));
    const die = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.failAll(`the decrypt worker stopped (${why})`);
    };
    w.on('error', (e) => die(e.message));
    w.on('exit', (code) => die(`exit ${code}`));
    this.worker = w;
    return w;
  }

  private onMessage(m: FromDecryptWorker): void {
    if (m.type === 'ready') return;
    const s = this.streams.get(m.id);
    if (!s) return;
    if (m.type === 'plain') s.onPlain(Buffer.from(m.buf, 0, m.length));
    else if (m.type === 'done') s.resolve();
    else s.reject(m.error.code ? new SlicefsError(m.error.code as ErrorCode, m.error.message) : new Error(m.error.message));
  }
}
