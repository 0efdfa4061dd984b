/**
 * The Crypt4GH interoperability vectors made by the reference implementation
 * (../shared/reference/crypt4gh-vectors beside the repository, as CI clones it), their index, the
 * plaintext formula, and a whole-file reader built from slicefs's primitives for the tests.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EditList } from '../../src/crypt4gh/edit-list.js';
import { decryptHeader, headerLength } from '../../src/crypt4gh/header.js';
import { parsePrivateKey, type C4ghKeyPair } from '../../src/crypt4gh/keys.js';
import { blockCount, blockRange, decryptBlock, plaintextSize } from '../../src/crypt4gh/segments.js';

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('c4gh-vectors: cannot find the repository root');
    dir = parent;
  }
  return dir;
}

export const VECTORS = path.resolve(repoRoot(), '../shared/reference/crypt4gh-vectors');

export interface VectorKey {
  file: string;
  owner: string;
  public_file: string;
  public_key_hex: string;
  kdf: string;
  rounds: number | null;
  passphrase: string | null;
  comment: string | null;
}

export interface VectorFile {
  file: string;
  size: number;
  sha256: string;
  header_len?: number;
  header_packets?: number;
  body_len?: number;
  data_blocks?: number;
  opens_with?: string[];
  try_with?: string[];
  role?: string;
  edit_list?: number[];
  bad_block?: number;
  flip_offset?: number;
  expect?: {
    plaintext_size?: number;
    plaintext_sha256?: string;
    error?: string;
    plaintext_bytes_before_error?: number;
    prefix_sha256?: string;
  };
  expect_for_bob?: { plaintext_size: number; plaintext_sha256: string };
}

export interface VectorIndex {
  keys: VectorKey[];
  files: VectorFile[];
  plaintexts: { name: string; size: number; sha256: string }[];
  split: { body: string; headers: Record<string, string>; expect: { plaintext_size: number; plaintext_sha256: string } };
}

export const index: VectorIndex = JSON.parse(readFileSync(path.join(VECTORS, 'vectors.json'), 'utf8'));

export function vector(rel: string): Buffer {
  return readFileSync(path.join(VECTORS, rel));
}

export function vectorText(rel: string): string {
  return readFileSync(path.join(VECTORS, rel), 'utf8');
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The vectors' plaintext pN: byte i = (i × 31 + 7) mod 251. */
export function plaintext(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) % 251;
  return b;
}

let keyCopies: string | undefined;

/**
 * A vector key file (`keys/alice.nocrypt.sec`) as the CLI must be given one: a copy readable by
 * its owner only (slicefs refuses a key file open to others; the shared vectors are 0444). The
 * copies live in one temporary directory per process, removed at exit.
 */
export function privateKeyFile(rel: string): string {
  if (!keyCopies) {
    const dir = mkdtempSync(path.join(tmpdir(), 'slicefs-vector-keys-'));
    keyCopies = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const copy = path.join(keyCopies, path.basename(rel));
  if (!existsSync(copy)) {
    copyFileSync(path.join(VECTORS, rel), copy);
    chmodSync(copy, 0o600);
  }
  return copy;
}

const loaded = new Map<string, Promise<C4ghKeyPair>>();

/** A vector key file loaded with its passphrase (each file loaded once per process: scrypt is slow). */
export function loadKey(file: string): Promise<C4ghKeyPair> {
  let p = loaded.get(file);
  if (!p) {
    const meta = index.keys.find((k) => k.file === file);
    if (!meta) throw new Error(`no key ${file} in vectors.json`);
    p = parsePrivateKey(vectorText(file), async () => meta.passphrase ?? '', file);
    loaded.set(file, p);
  }
  return p;
}

/** Every key file of an owner (alice has a protected and an unprotected copy). */
export function keyFilesOf(owner: string): string[] {
  return index.keys.filter((k) => k.owner === owner).map((k) => k.file);
}

/** Decrypts a whole file (header ‖ body) block by block, applying the edit list, as a reader would. */
export function decryptWhole(file: Buffer, keys: C4ghKeyPair[], opts: { senderPublicKey?: Buffer } = {}): Buffer {
  const len = headerLength(file);
  if (len === undefined) throw new Error('truncated header');
  const header = decryptHeader(file.subarray(0, len), keys, opts);
  const body = file.subarray(len);
  const plainSize = plaintextSize(body.length);
  const parts: Buffer[] = [];
  for (let i = 0; i < blockCount(body.length); i++) {
    const [start, end] = blockRange(i, body.length);
    parts.push(decryptBlock(body.subarray(start, end), header.dataKeys, i));
  }
  const plain = Buffer.concat(parts);
  if (plain.length !== plainSize) throw new Error(`decrypted ${plain.length} bytes, expected ${plainSize}`);
  if (!header.editList) return plain;
  const edits = new EditList(header.editList);
  const visible = edits.visibleSize(plainSize);
  return Buffer.concat(edits.runs(0, visible, plainSize).map((r) => plain.subarray(r.plainStart, r.plainEnd)));
}
