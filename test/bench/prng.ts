// Seeded, position-addressable pseudo-random bytes for the benchmarks.
//
// Counter-based (not a stream PRNG): 32-bit word number i of the output is a hash of (seed, i), so any
// byte range can be generated independently and chunked generation gives the same bytes whatever
// the chunk size. The memfs ceiling mount and the on-disk data file use the same generator, so both
// serve identical content. Not cryptographic; ~GB/s in plain JS. Words are stored little-endian.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

const TWO32 = 0x1_0000_0000;

/** lowbias32 (Chris Wellons' integer hash): good avalanche with two multiplies. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function blockKey(seed: number, hi: number): number {
  return mix32((mix32((seed >>> 0) ^ 0x9e3779b9) + Math.imul(hi + 1, 0x85ebca6b)) >>> 0);
}

/**
 * Fills `buf` with the bytes found at [offset, offset + buf.length) of the stream for `seed`.
 * `offset` must be a multiple of 4.
 */
export function fillSeeded(buf: Buffer, seed: number, offset: number): void {
  if (offset % 4 !== 0) throw new Error(`fillSeeded: offset ${offset} is not a multiple of 4`);
  const words = Math.floor(buf.length / 4);
  let idx = offset / 4;
  let hi = Math.floor(idx / TWO32);
  let lo = idx % TWO32;
  let key = blockKey(seed, hi);
  const aligned = buf.byteOffset % 4 === 0;
  const u32 = aligned ? new Uint32Array(buf.buffer, buf.byteOffset, words) : null;
  for (let w = 0; w < words; w++) {
    const v = mix32((lo ^ key) >>> 0);
    if (u32) u32[w] = v;
    else buf.writeUInt32LE(v, w * 4);
    lo++;
    if (lo === TWO32) {
      lo = 0;
      hi++;
      key = blockKey(seed, hi);
    }
  }
  idx += words;
  const tail = buf.length - words * 4;
  if (tail > 0) {
    const t = Buffer.alloc(4);
    t.writeUInt32LE(mix32(((idx % TWO32) ^ blockKey(seed, Math.floor(idx / TWO32))) >>> 0), 0);
    t.copy(buf, words * 4, 0, tail);
  }
}

/** A whole in-memory buffer of `size` seeded bytes. */
export function seededBuffer(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafeSlow(size);
  const chunk = 8 << 20;
  for (let off = 0; off < size; off += chunk) {
    fillSeeded(buf.subarray(off, Math.min(size, off + chunk)), seed, off);
  }
  return buf;
}

export function dataFileName(size: number, seed: number): string {
  return `random-${size}-s${seed}.bin`;
}

/**
 * Returns the path of `<dir>/random-<size>-s<seed>.bin`, generating it first when it is missing or
 * has the wrong size (written to a temporary name, then renamed, so an interrupted run leaves no
 * half file behind under the final name).
 */
export async function ensureDataFile(dir: string, size: number, seed: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, dataFileName(size, seed));
  const st = await stat(path).catch(() => null);
  if (st && st.isFile() && st.size === size) return path;
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const out = createWriteStream(tmp);
    const chunk = 8 << 20;
    for (let off = 0; off < size; off += chunk) {
      const buf = Buffer.allocUnsafeSlow(Math.min(chunk, size - off));
      fillSeeded(buf, seed, off);
      if (!out.write(buf)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return path;
}
