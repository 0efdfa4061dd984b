/**
 * MD5s of files being downloaded, computed on a worker thread (./md5-worker.ts) from the bytes on
 * disk as each file's contiguous prefix grows. One worker serves every file of a download: requests
 * are queued in order, so a file's hash advances in order. The worker is started on first use and
 * stopped by `close()`. A file may ask for its plaintext's SHA-256 too (PlainSha256Spec), computed
 * in the same pass.
 */
import { Worker } from 'node:worker_threads';
import { SlicefsError } from '../errors.js';
import type { FromMd5Worker, PlainDigest, PlainSha256Spec, ToMd5Worker } from './md5-worker.js';

export class Md5Hasher {
  private worker?: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (m: { hashedTo: number; md5?: string; plain?: PlainDigest }) => void; reject: (e: Error) => void }[]>();
  private failure?: Error;

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./md5-worker.js', import.meta.url));
    w.unref();
    w.on('message', (m: FromMd5Worker) => {
      const q = this.waiting.get(m.id);
      const p = q?.shift();
      if (q && q.length === 0) this.waiting.delete(m.id);
      if (!p) return;
      if ('error' in m) p.reject(new SlicefsError('BAD_RESPONSE', m.error));
      else p.resolve(m);
    });
    const die = (why: string) => {
      this.failure = new SlicefsError('BAD_RESPONSE', `MD5 worker stopped (${why})`);
      for (const q of this.waiting.values()) for (const p of q) p.reject(this.failure);
      this.waiting.clear();
      this.worker = undefined;
    };
    w.on('error', (e) => die(e.message));
    w.on('exit', (code) => die(`exit ${code}`));
    this.worker = w;
    return w;
  }

  /**
   * A handle for one file: its hash advances with `advance(to)`; `digest(size)` ends it, with the
   * plaintext's SHA-256 (or why it could not be had) when `plainSha256` asks for it.
   */
  file(path: string, plainSha256?: PlainSha256Spec): { advance(to: number): Promise<number>; digest(size: number): Promise<{ md5: string; plain?: PlainDigest }>; forget(): void } {
    const id = this.nextId++;
    const ask = (to: number, digest: boolean) =>
      new Promise<{ hashedTo: number; md5?: string; plain?: PlainDigest }>((resolve, reject) => {
        if (this.failure) return reject(this.failure);
        const q = this.waiting.get(id) ?? [];
        q.push({ resolve, reject });
        this.waiting.set(id, q);
        this.start().postMessage({ id, path, to, digest, plainSha256 } satisfies ToMd5Worker);
      });
    return {
      advance: async (to) => (await ask(to, false)).hashedTo,
      digest: async (size) => {
        const r = await ask(size, true);
        if (r.hashedTo !== size || !r.md5) throw new SlicefsError('BAD_RESPONSE', `${path}: hashed ${r.hashedTo} of ${size} bytes`);
        return { md5: r.md5, plain: r.plain };
      },
      forget: () => this.worker?.postMessage({ id, forget: true } satisfies ToMd5Worker),
    };
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      w.removeAllListeners('exit');
      await w.terminate();
    }
  }
}
