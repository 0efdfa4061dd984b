/**
 * Worker-thread side of Md5Hasher: keeps one MD5 per file and, asked to bring a file's hash up to a
 * byte offset, reads the bytes from the file and hashes them. Hashing is most of a download's CPU
 * at loopback speeds (an MD5 is ~670 MB/s on one core, docs/benchmarks.md); here it runs on another
 * core than the one parsing HTTP and writing the parts.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export type ToMd5Worker = { id: number; path: string; to: number; digest: boolean } | { id: number; forget: true };
export type FromMd5Worker = { id: number; hashedTo: number; md5?: string } | { id: number; error: string };

/** Bytes read per step. */
const STEP = 4 * 1024 * 1024;

const files = new Map<number, { hash: Hash; at: number }>();
const buf = Buffer.allocUnsafe(STEP);

parentPort!.on('message', (m: ToMd5Worker) => {
  if ('forget' in m) {
    files.delete(m.id);
    return;
  }
  try {
    let f = files.get(m.id);
    if (!f) {
      f = { hash: createHash('md5'), at: 0 };
      files.set(m.id, f);
    }
    if (m.to > f.at) {
      const fd = openSync(m.path, 'r');
      try {
        while (f.at < m.to) {
          const n = readSync(fd, buf, 0, Math.min(STEP, m.to - f.at), f.at);
          if (n === 0) throw new Error(`${m.path} ends at byte ${f.at}, before ${m.to}`);
          f.hash.update(buf.subarray(0, n));
          f.at += n;
        }
      } finally {
        closeSync(fd);
      }
    }
    const reply: { id: number; hashedTo: number; md5?: string } = { id: m.id, hashedTo: f.at };
    if (m.digest) {
      reply.md5 = f.hash.digest('hex');
      files.delete(m.id);
    }
    parentPort!.postMessage(reply);
  } catch (err) {
    files.delete(m.id);
    parentPort!.postMessage({ id: m.id, error: (err as Error).message } satisfies FromMd5Worker);
  }
});
