/**
 * A Crypt4GH-encrypted object read as its plaintext, with random access: the layer that lets the
 * mount, `view` and `download --decrypt` see `x.bam` where the server holds `x.bam.c4gh`.
 *
 * Layout (../../../shared/reference/crypt4gh.md): the header (packets sealed for the reader's key;
 * at the start of the object, or apart from it: a header URL, GHGA's envelope), then the body, the
 * plaintext cut into 65,536-byte segments each stored as a 65,564-byte block (nonce ‖ ciphertext ‖
 * MAC; the last one shorter). Plaintext offset p lies in segment p ÷ 65536, whose block starts at
 * body offset (p ÷ 65536) × 65564, so a read of plaintext [a, b) fetches exactly the blocks of
 * segments ⌊a/65536⌋ … ⌈b/65536⌉ − 1 in one ranged read of the encrypted source, decrypts each
 * block as soon as it is complete, and passes on the part of it inside [a, b). An edit list (in
 * the header) maps the visible bytes to runs of the plaintext; each run is read that way. The
 * blocks are opened on the calling thread, or, in the mount, in the decrypt worker
 * (../crypt4gh/worker-decryptor.ts), which hands back the plaintext in whole cache-block pieces.
 *
 * Every block's MAC is checked before any of its bytes leave this layer: a block that fails is an
 * error naming its segment and plaintext range (EIO in the mount), never unauthenticated bytes.
 *
 * The version is the encrypted object's (pinned by the inner source) with the visible size; the
 * identity gets a `#crypt4gh` suffix, so plaintext blocks and ciphertext never share a cache key.
 * Sits below the block cache (the cache holds plaintext, in memory only): one decryption per
 * block fetched, shared by every reader of it (ARCHITECTURE.md, decision record).
 */
import type { C4ghKeyPair } from '../crypt4gh/keys.js';
import { EditList } from '../crypt4gh/edit-list.js';
import { decryptHeader, headerLength, MAX_HEADER_SIZE } from '../crypt4gh/header.js';
import { SegmentDecrypter } from '../crypt4gh/segment-stream.js';
import { BLOCK_SIZE, plaintextSize, SEGMENT_SIZE } from '../crypt4gh/segments.js';
import type { WorkerDecryptor } from '../crypt4gh/worker-decryptor.js';
import { SlicefsError } from '../errors.js';
import type { ObjectVersion } from '../transport/version.js';
import type { ObjectSource } from './object-source.js';

/** The first read of an object whose header is inline: one header packet is ~124 bytes, 64 KiB holds hundreds. */
const HEADER_PROBE_BYTES = 64 * 1024;

export interface Crypt4ghOptions {
  /** The reader's key pairs (loaded once, when the first encrypted object is opened). */
  keys: () => Promise<C4ghKeyPair[]>;
  /** The header bytes, when the object holds only the body (a header URL, GHGA's envelope). */
  header?: () => Promise<Buffer>;
  /** Accept only packets written by this key (the reference tool's `--sender_pk`). */
  senderPublicKey?: Buffer;
  /** Opens the data blocks in a worker thread (the mount's); without it, on the calling thread. */
  decryptor?: WorkerDecryptor;
}

interface Layout {
  /** Where the body starts in the inner object. */
  bodyOffset: number;
  bodySize: number;
  plainSize: number;
  visibleSize: number;
  dataKeys: Buffer[];
  editList?: EditList;
}

/** Collects the bytes [start, end) of a source. */
async function readAll(src: ObjectSource, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  await src.read(start, end, (c) => void parts.push(c));
  return Buffer.concat(parts);
}

export class Crypt4ghSource implements ObjectSource {
  readonly identity: string;
  readonly label: string;
  readonly knownSize = undefined;
  pinned?: ObjectVersion;
  private opening?: Promise<Layout>;
  private layout?: Layout;

  constructor(
    /** The encrypted object (a whole `.c4gh` file, or the body alone when `opts.header` is given). */
    readonly inner: ObjectSource,
    private readonly opts: Crypt4ghOptions,
  ) {
    this.identity = `${inner.identity}#crypt4gh`;
    this.label = inner.label;
  }

  private open(): Promise<Layout> {
    this.opening ??= (async () => {
      const v = await this.inner.version();
      let header: Buffer;
      let bodyOffset: number;
      if (this.opts.header) {
        header = await this.opts.header();
        bodyOffset = 0;
      } else {
        // The header's length is known once its packet lengths are: read more until it is.
        let prefix = await readAll(this.inner, 0, Math.min(HEADER_PROBE_BYTES, v.size));
        let length = headerLength(prefix, this.label);
        while (length === undefined && prefix.length < Math.min(v.size, MAX_HEADER_SIZE)) {
          prefix = Buffer.concat([prefix, await readAll(this.inner, prefix.length, Math.min(prefix.length * 4, v.size, MAX_HEADER_SIZE))]);
          length = headerLength(prefix, this.label);
        }
        if (length === undefined || length > v.size) throw new SlicefsError('DECRYPT', `${this.label}: the Crypt4GH header is truncated (${v.size} bytes in all)`);
        if (prefix.length < length) prefix = Buffer.concat([prefix, await readAll(this.inner, prefix.length, length)]);
        header = prefix.subarray(0, length);
        bodyOffset = length;
      }
      const h = decryptHeader(header, await this.opts.keys(), { label: this.label, senderPublicKey: this.opts.senderPublicKey });
      const bodySize = v.size - bodyOffset;
      let plainSize: number;
      try {
        plainSize = plaintextSize(bodySize);
      } catch (err) {
        throw new SlicefsError('DECRYPT', `${this.label}: ${(err as Error).message}`);
      }
      const editList = h.editList ? new EditList(h.editList) : undefined;
      const layout: Layout = { bodyOffset, bodySize, plainSize, visibleSize: editList ? editList.visibleSize(plainSize) : plainSize, dataKeys: h.dataKeys, editList };
      this.layout = layout;
      return layout;
    })().catch((err: unknown) => {
      // A failed open (a network error, a missing key) is not remembered: the next open tries again.
      this.opening = undefined;
      throw err;
    });
    return this.opening;
  }

  async version(): Promise<ObjectVersion> {
    if (this.pinned) return this.pinned;
    const layout = await this.open();
    const v = await this.inner.version();
    this.pinned = { size: layout.visibleSize, etag: v.etag, lastModified: v.lastModified };
    return this.pinned;
  }

  async read(start: number, end: number, onData: (chunk: Buffer) => void | Promise<void>, signal?: AbortSignal): Promise<void> {
    const layout = this.layout ?? (await this.open());
    const stop = Math.min(end, layout.visibleSize);
    if (stop <= start) return;
    const runs = layout.editList ? layout.editList.runs(start, stop, layout.plainSize) : [{ plainStart: start, plainEnd: stop, visibleStart: start }];
    for (const run of runs) await this.readPlain(layout, run.plainStart, run.plainEnd, run.visibleStart, onData, signal);
  }

  /**
   * Plaintext [from, to) of the body (`outStart`: its visible offset): the blocks holding it, each
   * decrypted once it is whole, on this thread (SegmentDecrypter) or in the decrypt worker
   * (`opts.decryptor`, the mount's).
   *
   * The inner source's callback works synchronously (the worker transport does not wait for a
   * returned promise, so chunks must be taken in order as they come); the plaintext is passed on
   * through a promise chain, which is also handed back so a transport that waits gets backpressure.
   * A block that fails its MAC stops the read (the inner one is aborted) with that error.
   */
  private async readPlain(layout: Layout, from: number, to: number, outStart: number, onData: (chunk: Buffer) => void | Promise<void>, signal?: AbortSignal): Promise<void> {
    const firstSegment = Math.floor(from / SEGMENT_SIZE);
    const lastSegment = Math.ceil(to / SEGMENT_SIZE); // exclusive
    const bodyStart = firstSegment * BLOCK_SIZE;
    const bodyEnd = Math.min(lastSegment * BLOCK_SIZE, layout.bodySize);
    let delivered: Promise<void> = Promise.resolve();
    let failure: unknown;
    const abort = new AbortController();
    const onAbort = () => abort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const deliver = (part: Buffer) => {
      delivered = delivered.then(() => onData(part));
      // Awaited at the end (and by a transport that waits); a reader's failure must not count as
      // unhandled meanwhile.
      delivered.catch(() => {});
    };
    const range = { firstSegment, plainFrom: from, plainTo: to };
    const fail = (err: unknown) => {
      if (failure !== undefined) return;
      failure = err;
      abort.abort(err);
    };
    const sink = this.opts.decryptor
      ? this.opts.decryptor.open(layout.dataKeys, { ...range, outStart }, this.label, deliver)
      : undefined;
    sink?.finished.catch(fail);
    const local = sink ? undefined : new SegmentDecrypter(layout.dataKeys, range, deliver, this.label);
    try {
      await this.inner.read(
        layout.bodyOffset + bodyStart,
        layout.bodyOffset + bodyEnd,
        (chunk) => {
          if (failure !== undefined) return;
          try {
            if (sink) sink.push(chunk);
            else local!.push(chunk);
          } catch (err) {
            fail(err);
            return;
          }
          return delivered;
        },
        abort.signal,
      );
      // The body's last block is shorter than BLOCK_SIZE.
      if (failure === undefined) {
        if (sink) await sink.end();
        else local!.end();
      }
    } catch (err) {
      sink?.cancel(err);
      throw failure ?? err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (failure !== undefined) throw failure;
    await delivered;
  }
}
