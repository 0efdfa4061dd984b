/**
 * The random-read load of ./mount-load-bench.ts, as a child process (its UV_THREADPOOL_SIZE set
 * above the reader count, so every reader has a thread to block in): `readers` loops, each for
 * `seconds`: open the file, read one length in [minLen, maxLen] at a random 4 KiB-aligned offset,
 * compare it with the seeded content (./prng.ts), close. Prints JSON: bytes read, seconds, wrong
 * bytes, errors.
 *
 *   node dist/test/bench/random-readers.js FILE SIZE SEED READERS SECONDS MIN_LEN MAX_LEN
 */
import { open } from 'node:fs/promises';
import { fillSeeded } from './prng.js';

const [file, sizeS, seedS, readersS, secondsS, minS, maxS] = process.argv.slice(2);
const size = Number(sizeS);
const seed = Number(seedS);
const minLen = Number(minS);
const maxLen = Number(maxS);
const deadline = Date.now() + Number(secondsS) * 1000;

/** xorshift32: the offsets and lengths, reproducible per reader. */
function rng(s: number): () => number {
  let x = s >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

let bytes = 0;
let wrong = 0;
let errors = 0;

async function reader(id: number): Promise<void> {
  const rand = rng(seed * 7919 + id + 1);
  const buf = Buffer.allocUnsafe(maxLen);
  const want = Buffer.allocUnsafe(maxLen);
  while (Date.now() < deadline) {
    const len = minLen + Math.floor(rand() * (maxLen - minLen + 1));
    const off = Math.floor((rand() * (size - len)) / 4096) * 4096;
    try {
      const fh = await open(file, 'r');
      try {
        let got = 0;
        while (got < len) {
          const { bytesRead } = await fh.read(buf, got, len - got, off + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        bytes += got;
        fillSeeded(want.subarray(0, len), seed, off);
        if (got !== len || !buf.subarray(0, len).equals(want.subarray(0, len))) wrong += len;
      } finally {
        await fh.close();
      }
    } catch (e) {
      errors++;
      if (errors === 1) process.stderr.write(`random-readers: ${(e as Error).message}\n`);
    }
  }
}

const started = Date.now();
await Promise.all(Array.from({ length: Number(readersS) }, (_, i) => reader(i)));
process.stdout.write(JSON.stringify({ bytes, seconds: (Date.now() - started) / 1000, wrong, errors }) + '\n');
