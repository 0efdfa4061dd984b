/**
 * Worker-thread side of WorkerDecryptor (./worker-decryptor.ts): opens Crypt4GH data blocks off the FUSE
 * thread and hands the plaintext back in pieces the block cache keeps as they are.
 *
 * A job is one run of plaintext [plainFrom, plainTo): the ciphertext of its blocks arrives as
 * transferred ArrayBuffers, in order; SegmentDecrypter opens each block (its MAC checked before any
 * of its bytes are used); the plaintext is copied into pieces of at most `pieceBytes`, cut where
 * the output offset (`outStart` for plainFrom: the visible offset, which an edit list moves) is a
 * multiple of `pieceBytes`, so that one piece is one cache block, and transferred back. The
 * ciphertext buffers, once opened, become the next output pieces (a whole 1 MiB piece of
 * ciphertext is exactly the size of a whole piece of plaintext), and the cache hands freed pieces
 * to the fetch worker to fill with ciphertext again: in a sequential read no buffer is allocated
 * on any thread, which is what kept the main thread's garbage collector busy before
 * (docs/benchmarks.md).
 *
 * A block that fails ends its job with the DECRYPT error decryptBlock words (file, segment,
 * plaintext range); nothing of that block or after it is sent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SlicefsError, messageOf } from '../errors.js';
import { SegmentDecrypter } from './segment-stream.js';

export interface DecryptWorkerInit {
  pieceBytes: number;
}

export interface DecryptJob {
  dataKeys: Uint8Array[];
  firstSegment: number;
  plainFrom: number;
  plainTo: number;
  /** Output offset of plainFrom (pieces are cut at multiples of pieceBytes of it). */
  outStart: number;
  label: string;
}

export type ToDecryptWorker =
  | { type: 'start'; id: number; job: DecryptJob }
  | { type: 'data'; id: number; buf: ArrayBuffer; length: number }
  | { type: 'end'; id: number }
  | { type: 'cancel'; id: number };

export type FromDecryptWorker =
  | { type: 'plain'; id: number; buf: ArrayBuffer; length: number }
  | { type: 'done'; id: number }
  | { type: 'error'; id: number; error: { code?: string; message: string } }
  | { type: 'ready' };

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('decrypt-worker must run in a worker thread');
  const { pieceBytes } = workerData as DecryptWorkerInit;
  const post = (m: FromDecryptWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
  /** Spent ciphertext buffers of a whole piece's size, to be filled with plaintext. */
  const spare: ArrayBuffer[] = [];
  // About one readahead window (8 MiB) and a little more: enough to stay allocation-free, little pinned.
  const MAX_SPARE = 16;

  interface Job {
    decrypter: SegmentDecrypter;
    piece?: Buffer;
    filled: number;
    /** Output offset of the next plaintext byte. */
    out: number;
    outEnd: number;
  }
  const jobs = new Map<number, Job>();

  const flush = (id: number, job: Job) => {
    if (!job.piece || job.filled === 0) return;
    const ab = job.piece.buffer as ArrayBuffer;
    post({ type: 'plain', id, buf: ab, length: job.filled }, [ab]);
    job.piece = undefined;
    job.filled = 0;
  };
  const write = (id: number, job: Job, plain: Buffer) => {
    let off = 0;
    while (off < plain.length) {
      if (!job.piece) {
        const pieceEnd = Math.min(job.outEnd, (Math.floor(job.out / pieceBytes) + 1) * pieceBytes);
        const len = pieceEnd - job.out;
        job.piece = Buffer.from((len === pieceBytes && spare.pop()) || new ArrayBuffer(len));
      }
      const n = plain.copy(job.piece, job.filled, off, off + Math.min(plain.length - off, job.piece.length - job.filled));
      off += n;
      job.filled += n;
      job.out += n;
      if (job.filled === job.piece.length) flush(id, job);
    }
  };
  const fail = (id: number, err: unknown) => {
    jobs.delete(id);
    post({ type: 'error', id, error: err instanceof SlicefsError ? { code: err.code, message: err.message } : { message: messageOf(err) } });
  };

  post({ type: 'ready' });
  port.on('message', (m: ToDecryptWorker) => {
    if (m.type === 'start') {
      const { job: j } = m;
      const job: Job = { filled: 0, out: j.outStart, outEnd: j.outStart + (j.plainTo - j.plainFrom), decrypter: undefined! };
      const keys = j.dataKeys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength));
      job.decrypter = new SegmentDecrypter(keys, j, (plain) => write(m.id, job, plain), j.label);
      jobs.set(m.id, job);
      return;
    }
    const job = jobs.get(m.id);
    if (m.type === 'cancel') {
      jobs.delete(m.id);
      return;
    }
    if (m.type === 'data') {
      // A cancelled or failed job's late bytes still give their buffer back.
      try {
        job?.decrypter.push(Buffer.from(m.buf, 0, m.length));
      } catch (err) {
        fail(m.id, err);
      }
      if (m.buf.byteLength === pieceBytes && spare.length < MAX_SPARE) spare.push(m.buf);
      return;
    }
    if (!job) return;
    try {
      job.decrypter.end();
      flush(m.id, job);
      jobs.delete(m.id);
      post({ type: 'done', id: m.id });
    } catch (err) {
      fail(m.id, err);
    }
  });
}

main();
