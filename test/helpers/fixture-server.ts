// A real HTTP/1.1 file server on 127.0.0.1 with injectable faults, for testing the transport.
//
// Modelled on htslib's test server: serves byte ranges of in-memory files the way S3/nginx do
// (strong ETag, Last-Modified, single-range 206/416, If-Match/412), and can misbehave on demand
// (transient errors, throttling, truncated or stalled bodies, ignored or wrong ranges, content
// changing under the reader). Every request is logged so tests can assert how many round trips
// a read cost and which ranges were asked for.

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseRange, type ByteRange } from './http-bits.js';

export type Fault =
  /** Answer `status` to the first `times` requests, then behave normally. */
  | { kind: 'status-then-ok'; status: number; times: number }
  /** Answer 429 with `Retry-After: seconds` to the first `times` requests. */
  | { kind: 'retry-after'; times: number; seconds: number }
  /** For the first `times` GETs with a body: send headers and `afterBytes` of the body, then destroy the socket. */
  | { kind: 'drop-mid-body'; times: number; afterBytes: number }
  /** Accept the request and never answer (no headers). `times` undefined = every request. */
  | { kind: 'stall'; times?: number }
  /** For GETs with a body: send headers and `afterBytes` of the body, then hang. `times` undefined = every GET. */
  | { kind: 'stall-body'; times?: number; afterBytes: number }
  /** Always answer this status (404, 403, 401, 500...). */
  | { kind: 'status'; status: number }
  /** After `afterRequests` GET/HEAD requests to the file, its content (bytes xor 0xff), ETag and Last-Modified change. */
  | { kind: 'etag-change'; afterRequests: number }
  /** Answer ranged GETs with 200 and the whole body, as servers without range support do. */
  | { kind: 'ignore-range' }
  /** Answer ranged GETs with a 206 whose range starts one byte off; the body matches the (wrong) Content-Range. */
  | { kind: 'wrong-content-range' }
  /** HEAD gets 405; GET (with or without Range) still works. */
  | { kind: 'no-head' }
  /** Every GET is answered (normally) after `ms`: a slow link, so that fetches are still under way when a test acts. */
  | { kind: 'delay-get'; ms: number }
  /** Every GET body is sent at `bytesPerSecond` (per response): a slow link that a client reads as fast as it comes. */
  | { kind: 'throttle-body'; bytesPerSecond: number };

export interface RequestRecord {
  method: string;
  /** URL path, percent-decoded, without the query string. */
  path: string;
  /** Raw query string without the leading '?', '' when absent. */
  query: string;
  range?: string;
  ifMatch?: string;
  /** Status sent; 0 when the server never sent headers (a stall, or a socket closed first). */
  status: number;
  /** Body bytes handed to the socket (not counting bytes lost when the connection died). */
  bytesSent: number;
  /** The registered file path the request resolved to, if any. */
  file?: string;
}

export interface AddFileOptions {
  /**
   * ETag header value. Default: a strong ETag from an MD5 of the content (as S3 does for
   * single-part objects). A value without quotes is quoted; `null` sends no ETag at all.
   */
  etag?: string | null;
  /** Default: the time addFile was called, to the second. */
  lastModified?: Date;
  fault?: Fault;
  /** Extra headers on HEAD and 200 responses (about the whole object), e.g. Content-MD5. */
  wholeHeaders?: Record<string, string>;
}

interface FaultState {
  fault: Fault;
  /** How many requests this fault has acted on; compared with `times`. */
  hits: number;
}

interface Entry {
  data: Buffer;
  /** undefined = compute from the content on first use (hashing 512 MiB costs ~1 s, so only when asked). */
  etag: string | null | undefined;
  etagExplicit: boolean;
  lastModified: Date;
  fault?: FaultState;
  wholeHeaders?: Record<string, string>;
  /** GET/HEAD requests seen since the fault was set; drives 'etag-change'. */
  requestsSeen: number;
  changed: boolean;
}


/** Body slice per write: large enough for throughput, small enough that backpressure bounds memory. */
const WRITE_CHUNK = 256 * 1024;

export class FixtureServer {
  readonly origin: string;
  readonly requests: RequestRecord[] = [];
  private readonly files = new Map<string, Entry>();
  private readonly sockets = new Set<Socket>();
  private closed = false;

  private constructor(private readonly server: Server, port: number) {
    this.origin = `http://127.0.0.1:${port}`;
  }

  static async start(): Promise<FixtureServer> {
    const server = createServer();
    // Stalls are deliberate; Node's own request timeout would otherwise answer 408 for us.
    server.requestTimeout = 0;
    // Longer than undici's default so idle keep-alive sockets are not cut between test steps.
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const fixture = new FixtureServer(server, (server.address() as AddressInfo).port);
    server.on('connection', (socket) => {
      fixture.sockets.add(socket);
      socket.once('close', () => fixture.sockets.delete(socket));
    });
    server.on('request', (req, res) => fixture.handle(req, res));
    return fixture;
  }

  url(path: string): string {
    if (!path.startsWith('/')) throw new Error(`path must start with '/': ${path}`);
    return this.origin + path;
  }

  addFile(path: string, data: Buffer, opts: AddFileOptions = {}): void {
    if (!path.startsWith('/')) throw new Error(`path must start with '/': ${path}`);
    const lastModified = opts.lastModified ?? new Date();
    const entry: Entry = {
      data,
      etag: opts.etag === undefined ? undefined : opts.etag === null ? null : quoteEtag(opts.etag),
      etagExplicit: opts.etag !== undefined,
      // HTTP dates have one-second resolution; keep the stored value equal to what clients see.
      lastModified: new Date(Math.floor(lastModified.getTime() / 1000) * 1000),
      requestsSeen: 0,
      changed: false,
      wholeHeaders: opts.wholeHeaders,
    };
    this.files.set(path, entry);
    this.setFault(path, opts.fault);
  }

  /** Replaces the file's fault (undefined removes it) and resets its counters. */
  setFault(path: string, fault: Fault | undefined): void {
    const entry = this.files.get(path);
    if (!entry) throw new Error(`no file at ${path}`);
    entry.fault = fault ? { fault, hits: 0 } : undefined;
    entry.requestsSeen = 0;
  }

  /** The ETag currently served for `path` (null when none is sent), e.g. to build an If-Match. */
  etag(path: string): string | null {
    const entry = this.files.get(path);
    if (!entry) throw new Error(`no file at ${path}`);
    return currentEtag(entry);
  }

  /** The bytes currently served for `path` (they change after an 'etag-change' fault fires). */
  content(path: string): Buffer {
    const entry = this.files.get(path);
    if (!entry) throw new Error(`no file at ${path}`);
    return entry.data;
  }

  count(filter: { path?: string; method?: string } = {}): number {
    return this.requests.filter(
      (r) => (filter.path === undefined || r.path === filter.path) && (filter.method === undefined || r.method === filter.method),
    ).length;
  }

  resetLog(): void {
    this.requests.length = 0;
  }

  /** Stops listening and destroys every open socket, including ones mid-response or stalled. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await done;
  }

  private handle(req: IncomingMessage, res: ServerResponse, delayed = false): void {
    const url = new URL(req.url ?? '/', this.origin);
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      path = url.pathname;
    }
    const record: RequestRecord = {
      method: req.method ?? '',
      path,
      query: url.search.replace(/^\?/, ''),
      status: 0,
      bytesSent: 0,
    };
    if (req.headers.range !== undefined) record.range = req.headers.range;
    if (req.headers['if-match'] !== undefined) record.ifMatch = req.headers['if-match'];
    this.requests.push(record);

    const isHead = req.method === 'HEAD';
    if (req.method !== 'GET' && !isHead) {
      return sendStatus(res, record, 405, { Allow: 'GET, HEAD' });
    }
    const entry = this.files.get(path);
    if (!entry) return sendStatus(res, record, 404);
    record.file = path;

    const state = entry.fault;
    const fault = state?.fault;
    if (fault?.kind === 'delay-get' && !isHead && !delayed) {
      // Logged once, when it is answered (or given up by the client: status 0).
      this.requests.pop();
      setTimeout(() => {
        if (res.destroyed) this.requests.push(record);
        else this.handle(req, res, true);
      }, fault.ms);
      return;
    }
    if (fault?.kind === 'etag-change') {
      if (!entry.changed && entry.requestsSeen >= fault.afterRequests) changeContent(entry);
      entry.requestsSeen++;
    }

    // Faults that replace the whole response.
    if (state && fault) {
      switch (fault.kind) {
        case 'status':
          return sendStatus(res, record, fault.status);
        case 'status-then-ok':
          if (state.hits < fault.times) {
            state.hits++;
            return sendStatus(res, record, fault.status);
          }
          break;
        case 'retry-after':
          if (state.hits < fault.times) {
            state.hits++;
            return sendStatus(res, record, 429, { 'Retry-After': String(fault.seconds) });
          }
          break;
        case 'stall':
          if (fault.times === undefined || state.hits < fault.times) {
            state.hits++;
            return; // Never answer; close() or the client tears the socket down.
          }
          break;
        case 'no-head':
          if (isHead) return sendStatus(res, record, 405, { Allow: 'GET' });
          break;
        default:
          break;
      }
    }

    const etag = currentEtag(entry);
    const size = entry.data.length;
    const validators: Record<string, string> = {
      'Accept-Ranges': 'bytes',
      'Last-Modified': entry.lastModified.toUTCString(),
    };
    if (etag !== null) validators.ETag = etag;

    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && !etagMatches(ifMatch, etag)) {
      return sendStatus(res, record, 412, validators);
    }

    let range: ByteRange | 'unsatisfiable' | undefined =
      req.headers.range === undefined ? undefined : parseRange(req.headers.range, size);
    // If-Range: a range is only honoured if the client's validator is still current.
    const ifRange = req.headers['if-range']?.toString();
    if (range !== undefined && ifRange !== undefined) {
      const stillCurrent = ifRange.startsWith('"') ? etag !== null && ifRange === etag : ifRange === validators['Last-Modified'];
      if (!stillCurrent) range = undefined;
    }
    if (range === 'unsatisfiable') {
      return sendStatus(res, record, 416, { ...validators, 'Content-Range': `bytes */${size}` });
    }
    if (range !== undefined && fault?.kind === 'ignore-range') range = undefined;
    if (range !== undefined && fault?.kind === 'wrong-content-range') range = shiftByOne(range, size);

    const status = range === undefined ? 200 : 206;
    const start = range?.start ?? 0;
    const end = range === undefined ? size - 1 : range.end;
    const headers: Record<string, string> = {
      ...validators,
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(end - start + 1),
    };
    if (range !== undefined) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    else Object.assign(headers, entry.wholeHeaders);
    record.status = status;
    res.writeHead(status, headers);
    if (isHead) {
      res.end();
      return;
    }

    // Body faults act only on responses that have a body to cut short.
    let cutAfter: number | undefined;
    let afterCut: 'destroy' | 'hang' = 'destroy';
    if (state && fault?.kind === 'drop-mid-body' && state.hits < fault.times) {
      state.hits++;
      cutAfter = fault.afterBytes;
    } else if (state && fault?.kind === 'stall-body' && (fault.times === undefined || state.hits < fault.times)) {
      state.hits++;
      cutAfter = fault.afterBytes;
      afterCut = 'hang';
    }
    // Capture the buffer now: an 'etag-change' during a long read must not mix old and new bytes.
    const body = entry.data.subarray(start, end + 1);
    void streamBody(res, record, body, cutAfter, afterCut, fault?.kind === 'throttle-body' ? fault.bytesPerSecond : undefined);
  }
}

function quoteEtag(etag: string): string {
  return etag.startsWith('"') || etag.startsWith('W/"') ? etag : `"${etag}"`;
}

function currentEtag(entry: Entry): string | null {
  if (entry.etag === undefined) entry.etag = `"${createHash('md5').update(entry.data).digest('hex')}"`;
  return entry.etag;
}

function changeContent(entry: Entry): void {
  const flipped = Buffer.allocUnsafe(entry.data.length);
  for (let i = 0; i < flipped.length; i++) flipped[i] = entry.data[i] ^ 0xff;
  entry.data = flipped;
  // An explicit ETag is changed by suffixing, so it stays distinct even when hashing would not be used.
  if (entry.etagExplicit && entry.etag !== null && entry.etag !== undefined) {
    entry.etag = entry.etag.replace(/"$/, '-changed"');
  } else if (!entry.etagExplicit) {
    entry.etag = undefined;
  }
  entry.lastModified = new Date(entry.lastModified.getTime() + 60_000);
  entry.changed = true;
}

/** If-Match uses the strong comparison: weak ETags never match, '*' matches any current representation. */
function etagMatches(header: string, etag: string | null): boolean {
  if (header.trim() === '*') return true;
  if (etag === null || etag.startsWith('W/')) return false;
  return header.split(',').some((candidate) => candidate.trim() === etag);
}


/** The range one byte later (or earlier when already at the end of the file): a plausible server bug. */
function shiftByOne(range: ByteRange, size: number): ByteRange {
  if (range.end + 1 < size) return { start: range.start + 1, end: range.end + 1 };
  if (range.start > 0) return { start: range.start - 1, end: range.end - 1 };
  // The whole file was asked for: the only wrong start left is a shorter range.
  return { start: Math.min(range.start + 1, range.end), end: range.end };
}

function sendStatus(res: ServerResponse, record: RequestRecord, status: number, headers: Record<string, string> = {}): void {
  const body = Buffer.from(`${status}\n`);
  record.status = status;
  res.writeHead(status, { ...headers, 'Content-Type': 'text/plain', 'Content-Length': String(body.length) });
  if (res.req.method === 'HEAD') {
    res.end();
    return;
  }
  record.bytesSent = body.length;
  res.end(body);
}

/** A throttled body is written this many times a second: smooth enough for a client reading it. */
const THROTTLE_WRITES_PER_SECOND = 20;

/**
 * Writes `body` in slices of the shared buffer (no copy), waiting for 'drain' so a 512 MiB
 * file never sits in the socket's write queue. With `cutAfter`, stops after that many bytes
 * have reached the kernel and then destroys the socket or leaves it hanging. With
 * `bytesPerSecond`, each slice waits for its time (a slice is 1/20 s of it).
 */
async function streamBody(
  res: ServerResponse,
  record: RequestRecord,
  body: Buffer,
  cutAfter: number | undefined,
  afterCut: 'destroy' | 'hang',
  bytesPerSecond?: number,
): Promise<void> {
  const limit = cutAfter === undefined ? body.length : Math.min(cutAfter, body.length);
  const slice = bytesPerSecond === undefined ? WRITE_CHUNK : Math.max(1, Math.min(WRITE_CHUNK, Math.floor(bytesPerSecond / THROTTLE_WRITES_PER_SECOND)));
  const t0 = performance.now();
  // Headers otherwise wait for the first body write, and a cut at 0 bytes must still send them.
  if (cutAfter !== undefined) res.flushHeaders();
  let aborted = false;
  res.once('close', () => {
    aborted = !res.writableFinished;
  });
  for (let offset = 0; offset < limit && !aborted; offset += slice) {
    if (bytesPerSecond !== undefined) {
      const due = t0 + (offset / bytesPerSecond) * 1000;
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
      if (aborted || res.destroyed) break;
    }
    const piece = body.subarray(offset, Math.min(offset + slice, limit));
    // Counted when handed over and taken back if the write fails, so the log is right both
    // when the client reads everything and when the connection dies underneath us.
    record.bytesSent += piece.length;
    const ok = res.write(piece, (err) => {
      if (err) record.bytesSent -= piece.length;
    });
    if (!ok && !aborted) await waitForDrainOrClose(res);
  }
  if (aborted) return;
  if (cutAfter === undefined) {
    res.end();
    return;
  }
  const socket = res.socket;
  // end() first so the partial body reaches the kernel (destroy() alone would discard queued
  // bytes), then destroy so the socket cannot linger half-open.
  if (afterCut === 'destroy' && socket) socket.end(() => socket.destroy());
}

function waitForDrainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
