/**
 * Crypt4GH primitive throughput: 64 KiB segments through Node's ChaCha20-Poly1305 (OpenSSL) and
 * @noble/ciphers' `chacha20poly1305`, and slicefs's decryptBlock / encryptBlock. The numbers in
 * src/crypt4gh/chacha.ts and segments.ts come from here.
 *
 *   npm run build && node dist/test/bench/crypt4gh-bench.js [--seconds 2]
 *
 * Each measurement runs for about `--seconds` after a warm-up and reports MiB/s of plaintext.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { decryptBlock, encryptBlock, SEGMENT_SIZE } from '../../src/crypt4gh/segments.js';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 2;
const key = randomBytes(32);
const nonce = randomBytes(12);
const plain = randomBytes(SEGMENT_SIZE);

function nodeEncrypt(p: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const body = c.update(p);
  c.final();
  return Buffer.concat([body, c.getAuthTag()]);
}

function nodeDecrypt(sealed: Buffer): Buffer {
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const out = d.update(sealed.subarray(0, sealed.length - 16));
  d.final();
  return out;
}

const sealed = nodeEncrypt(plain);
const block = encryptBlock(plain, key);

function measure(name: string, fn: () => unknown): void {
  const warmUntil = performance.now() + 200;
  while (performance.now() < warmUntil) fn();
  let n = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  while (performance.now() < until) {
    fn();
    n++;
  }
  const mibs = (n * SEGMENT_SIZE) / 1048576 / ((performance.now() - start) / 1000);
  console.log(`${name.padEnd(44)} ${mibs.toFixed(0).padStart(6)} MiB/s`);
}

console.log(`Node ${process.version}, ${SEGMENT_SIZE}-byte segments, a fresh cipher per segment`);
measure('Node crypto chacha20-poly1305 decrypt', () => nodeDecrypt(sealed));
measure('Node crypto chacha20-poly1305 encrypt', () => nodeEncrypt(plain));
measure('@noble/ciphers chacha20poly1305 decrypt', () => chacha20poly1305(key, nonce).decrypt(sealed));
measure('@noble/ciphers chacha20poly1305 encrypt', () => chacha20poly1305(key, nonce).encrypt(plain));
measure('slicefs decryptBlock', () => decryptBlock(block, [key], 0));
measure('slicefs encryptBlock', () => encryptBlock(plain, key));
