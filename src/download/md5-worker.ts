/**
 * Worker-thread side of Md5Hasher: keeps one MD5 per file and, asked to bring a file's hash up to a
 * byte offset, reads the bytes from the file and hashes them. Hashing is most of a download's CPU
 * at loopback speeds (an MD5 is ~670 MB/s on one core, docs/benchmarks.md); here it runs on another
 * core than the one parsing HTTP and writing the parts.
 *
 * A file may also ask for the SHA-256 of its plaintext (GHGA states that checksum), from the same
 * bytes in the same pass: of the bytes as they are, or, for a Crypt4GH file, of what decrypting it
 * gives (Crypt4ghFileStream). That used to be a second pass over the finished file, decrypting it
 * again (docs/benchmarks.md). A file whose decryption fails keeps its MD5 going; the failure (a
 * DECRYPT error naming the file and the segment) is what its digest reports instead of a SHA-256.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { Crypt4ghFileStream } from '../crypt4gh/file-stream.js';
import { SlicefsError, messageOf } from '../errors.js';

/** The plaintext SHA-256 a file asks for: of its bytes, or of its Crypt4GH content (`size`: the file's). */
export interface PlainSha256Spec {
  crypt4gh?: { keys: { secret: Uint8Array; public: Uint8Array }[]; size: number; label: string };
}

export type ToMd5Worker = { id: number; path: string; to: number; digest: boolean; plainSha256?: PlainSha256Spec } | { id: number; forget: true };
export type PlainDigest = { sha256: string } | { error: { code?: string; message: string } };
export type FromMd5Worker = { id: number; hashedTo: number; md5?: string; plain?: PlainDigest } | { id: number; error: string };

/** Bytes read per step. */
const STEP = 4 * 1024 * 1024;

interface PlainState {
  sha: Hash;
  decrypt?: Crypt4ghFileStream;
  failed?: { code?: string; message: string };
}
const files = new Map<number, { hash: Hash; at: number; plain?: PlainState }>();
const buf = Buffer.allocUnsafe(STEP);

function plainState(spec: PlainSha256Spec): PlainState {
  const sha = createHash('sha256');
  const c = spec.crypt4gh;
  if (!c) return { sha };
  const keys = c.keys.map((k) => ({ secret: Buffer.from(k.secret), public: Buffer.from(k.public) }));
  return { sha, decrypt: new Crypt4ghFileStream(keys, c.size, (p) => void sha.update(p), c.label) };
}

/** Feeds the plaintext hash; its first failure is kept for the digest, the MD5 goes on. */
function feedPlain(p: PlainState, bytes: Buffer | undefined): void {
  if (p.failed) return;
  try {
    if (!p.decrypt) {
      if (bytes) p.sha.update(bytes);
    } else if (bytes) p.decrypt.push(bytes);
    else p.decrypt.end();
  } catch (err) {
    p.failed = err instanceof SlicefsError ? { code: err.code, message: err.message } : { message: messageOf(err) };
  }
}

parentPort!.on('message', (m: ToMd5Worker) => {
  if ('forget' in m) {
    files.delete(m.id);
    return;
  }
  try {
    let f = files.get(m.id);
    if (!f) {
      f = { hash: createHash('md5'), at: 0, plain: m.plainSha256 ? plainState(m.plainSha256) : undefined };
      files.set(m.id, f);
    }
    if (m.to > f.at) {
      const fd = openSync(m.path, 'r');
      try {
        while (f.at < m.to) {
          const n = readSync(fd, buf, 0, Math.min(STEP, m.to - f.at), f.at);
          if (n === 0) throw new Error(`${m.path} ends at byte ${f.at}, before ${m.to}`);
          const bytes = buf.subarray(0, n);
          f.hash.update(bytes);
          if (f.plain) feedPlain(f.plain, bytes);
          f.at += n;
        }
      } finally {
        closeSync(fd);
      }
    }
    const reply: FromMd5Worker = { id: m.id, hashedTo: f.at };
    if (m.digest) {
      reply.md5 = f.hash.digest('hex');
      if (f.plain) {
        feedPlain(f.plain, undefined);
        reply.plain = f.plain.failed ? { error: f.plain.failed } : { sha256: f.plain.sha.digest('hex') };
      }
      files.delete(m.id);
    }
    parentPort!.postMessage(reply);
  } catch (err) {
    files.delete(m.id);
    parentPort!.postMessage({ id: m.id, error: (err as Error).message } satisfies FromMd5Worker);
  }
});
