// A real HTTP/1.1 file server on 127.0.0.1 with injectable faults, for testing the transport.
//
// Modelled on htslib's test server: serves byte ranges of in-memory files the way S3/nginx do
// (strong ETag, Last-Modified, single-range 206/416, If-Match/412), and can misbehave on demand
// (transient errors, throttling, truncated or stalled bodies, ignored or wrong ranges, content
// changing under the reader). Every request is logged so tests can assert how many round trips
// a read cost and which ranges were asked for.

import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { amzDate, parseRange, storeError, type ByteRange } from './http-bits.js';

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
  // Hostile servers (issue 15): answers that are not the data, broken framing, redirects.
  /** Every GET and HEAD gets 200 `text/html`: a portal's sign-in page titled `title`, which echoes the request's URL and headers. */
  | { kind: 'html-page'; title: string }
  /** Every GET and HEAD gets 200 with a JSON error document `{"error": {"message": …}}` (`type`: default application/json). */
  | { kind: 'json-error'; message: string; type?: string }
  /** Ranged GETs get a 206 whose body is the range gzip-compressed, with `Content-Encoding: gzip`, whatever the request accepts. */
  | { kind: 'gzip-range' }
  /** GETs get a Content-Length `delta` bytes off the body that follows (negative: shorter), then the connection closes. `times` undefined = every GET. */
  | { kind: 'content-length'; delta: number; times?: number }
  /** GETs get 200 without a length: the whole file, then filler that never ends. HEAD is answered normally. */
  | { kind: 'endless-body' }
  /** The status line and headers of the first `times` GETs (every GET when undefined) are sent one byte every `byteMs`. */
  | { kind: 'trickle-headers'; byteMs: number; times?: number }
  /**
   * `hops` redirects (`status`, default 302) before the file is served, through `?hop=k`. The
   * Location is absolute, path-absolute (`/p?hop=k`) or relative (`p?hop=k`), or each in turn
   * ('mixed', the default). With `to` (another server's origin), the last hop goes there (same path).
   */
  | { kind: 'redirect'; hops: number; status?: number; location?: 'absolute' | 'path' | 'relative' | 'mixed'; to?: string }
  /** A redirect loop: `p` → `p?loop=1` → `p` → … */
  | { kind: 'redirect-loop' }
  /**
   * A portal's download endpoint: GET or HEAD of the path gets 302 to a presigned-style URL of the
   * store, `/__store<path>?X-Amz-Date=…&X-Amz-Expires=…&X-Amz-Signature=<port>s<n>` (on `to`, another
   * server's origin, when given; that server's copy of the file needs this fault too). Each
   * signature serves `uses` requests, then gets 403 as an expired S3 URL does.
   */
  | { kind: 'presigned-redirect'; uses: number; to?: string; expiresSeconds?: number }
  /** The first `after` GET/HEAD requests are answered normally, every later one with `status` (a token that expires mid-read). */
  | { kind: 'status-after'; status: number; after: number }
  /** Every GET body is sent at `bytesPerSecond` (per response): a slow link that a client reads as fast as it comes. */
  | { kind: 'throttle-body'; bytesPerSecond: number }
  /**
   * An origin that also accepts a credential in a header (an API key): GET and HEAD get 403 unless
   * the request has `header: value`, or its query has the parameter `signed` (`name=value`, a
   * signature the store issued).
   */
  | { kind: 'header-credential'; header: string; value: string; signed: string }
  /** The object claims `size` bytes (HEAD's Content-Length, Content-Range totals); bytes past the real ones are zeros. */
  | { kind: 'claim-size'; size: number };

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
  /** The request's headers, as received (names in lower case). */
  headers: IncomingHttpHeaders;
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
  /** Content-Type of the file's answers. Default: application/octet-stream. */
  contentType?: string;
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
  contentType?: string;
  /** GET/HEAD requests seen since the fault was set; drives 'etag-change' and 'status-after'. */
  requestsSeen: number;
  changed: boolean;
  /** 'presigned-redirect': signatures issued so far, and requests served per signature. */
  issued: number;
  signatureUses: Map<string, number>;
}

/** The store's path prefix of 'presigned-redirect' URLs. */
const STORE_PREFIX = '/__store';


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

  /**
   * Serves `data` at `path`. A path with a query (`/dl?id=A`) is a file selected by its query, as
   * a portal's download endpoint selects one: it answers a request for that path whose query has
   * all of those parameters (others, e.g. a signature, may come too); the plain path answers the
   * rest. The log's `file` is this key.
   */
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
      contentType: opts.contentType,
      issued: 0,
      signatureUses: new Map(),
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
    entry.issued = 0;
    entry.signatureUses.clear();
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

  /** The key of the file a request for `path` with `query` gets: one selected by its query first, else the path's. */
  private fileFor(path: string, query: URLSearchParams): string | undefined {
    for (const key of this.files.keys()) {
      const q = key.indexOf('?');
      if (q < 0 || key.slice(0, q) !== path) continue;
      const wanted = new URLSearchParams(key.slice(q + 1));
      if ([...wanted].every(([name, value]) => query.getAll(name).includes(value))) return key;
    }
    return this.files.has(path) ? path : undefined;
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
      headers: { ...req.headers },
    };
    if (req.headers.range !== undefined) record.range = req.headers.range;
    if (req.headers['if-match'] !== undefined) record.ifMatch = req.headers['if-match'];
    this.requests.push(record);

    const isHead = req.method === 'HEAD';
    if (req.method !== 'GET' && !isHead) {
      return sendStatus(res, record, 405, { Allow: 'GET, HEAD' });
    }
    // A presigned-style URL of the store ('presigned-redirect'): good for `uses` requests per signature.
    const stored = path.startsWith(`${STORE_PREFIX}/`) ? this.files.get(path.slice(STORE_PREFIX.length)) : undefined;
    if (stored?.fault?.fault.kind === 'presigned-redirect') {
      // A signature is counted from its first use here: the server that issued it may be another one.
      const signature = url.searchParams.get('X-Amz-Signature') ?? '';
      const used = stored.signatureUses.get(signature) ?? 0;
      if (signature === '' || used >= stored.fault.fault.uses) {
        record.status = 403;
        return storeError(res, isHead, 403, 'AccessDenied', 'Request has expired');
      }
      stored.signatureUses.set(signature, used + 1);
      record.file = path.slice(STORE_PREFIX.length);
      return this.serve(req, res, record, stored, undefined);
    }
    const key = this.fileFor(path, url.searchParams);
    const entry = key === undefined ? undefined : this.files.get(key);
    if (!entry) return sendStatus(res, record, 404);
    record.file = key;

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
    if (fault?.kind === 'status-after' && entry.requestsSeen++ >= fault.after) return sendStatus(res, record, fault.status);

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
        case 'header-credential': {
          const [name, value] = fault.signed.split('=');
          if (req.headers[fault.header.toLowerCase()] !== fault.value && url.searchParams.get(name) !== value) {
            record.status = 403;
            return storeError(res, isHead, 403, 'AccessDenied', 'Access Denied');
          }
          break;
        }
        case 'html-page':
          return sendPage(res, record, 'text/html; charset=utf-8', signInPage(fault.title, req));
        case 'json-error':
          return sendPage(res, record, fault.type ?? 'application/json', JSON.stringify({ error: { code: 401, message: fault.message }, request: req.url }));
        case 'redirect': {
          const hop = Number(url.searchParams.get('hop') ?? '0');
          if (hop >= fault.hops) break;
          const next = hop + 1;
          const form = fault.location === undefined || fault.location === 'mixed' ? (['absolute', 'path', 'relative'] as const)[hop % 3] : fault.location;
          const base = path.split('/').at(-1) ?? '';
          const location =
            fault.to !== undefined && next === fault.hops
              ? `${fault.to}${url.pathname}?hop=${next}`
              : form === 'absolute'
                ? `${this.origin}${url.pathname}?hop=${next}`
                : form === 'path'
                  ? `${url.pathname}?hop=${next}`
                  : `${base}?hop=${next}`;
          return sendStatus(res, record, fault.status ?? 302, { Location: location });
        }
        case 'redirect-loop':
          return sendStatus(res, record, 302, { Location: url.searchParams.has('loop') ? url.pathname : `${url.pathname}?loop=1` });
        case 'presigned-redirect': {
          const signature = `${new URL(this.origin).port}s${++entry.issued}`;
          const query = `X-Amz-Date=${amzDate(Date.now())}&X-Amz-Expires=${fault.expiresSeconds ?? 3600}&X-Amz-Signature=${signature}`;
          return sendStatus(res, record, 302, { Location: `${fault.to ?? this.origin}${STORE_PREFIX}${url.pathname}?${query}` });
        }
        default:
          break;
      }
    }
    this.serve(req, res, record, entry, state);
  }

  /** The file's bytes (or a range of them) as a server sends them, with the body faults of `state`. */
  private serve(req: IncomingMessage, res: ServerResponse, record: RequestRecord, entry: Entry, state: FaultState | undefined): void {
    const isHead = req.method === 'HEAD';
    const fault = state?.fault;

    const etag = currentEtag(entry);
    const size = fault?.kind === 'claim-size' ? fault.size : entry.data.length;
    const validators: Record<string, string> = {
      'Accept-Ranges': 'bytes',
      'Last-Modified': entry.lastModified.toUTCString(),
    };
    if (etag !== null) validators.ETag = etag;

    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && !etagMatches(ifMatch, etag)) {
      return sendStatus(res, record, 412, validators);
    }
    // If-Unmodified-Since counts only without If-Match (RFC 9110 §13.2.2).
    const unmodifiedSince = req.headers['if-unmodified-since'];
    if (ifMatch === undefined && unmodifiedSince !== undefined && entry.lastModified.getTime() > Date.parse(unmodifiedSince)) {
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
      'Content-Type': entry.contentType ?? 'application/octet-stream',
      'Content-Length': String(end - start + 1),
    };
    if (range !== undefined) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    else Object.assign(headers, entry.wholeHeaders);
    record.status = status;
    if (!isHead && state && fault) {
      const body = entry.data.subarray(start, end + 1);
      switch (fault.kind) {
        case 'gzip-range':
          if (range === undefined) break;
          record.bytesSent = gzipped(res, status, headers, body);
          return;
        case 'content-length':
          if (fault.times !== undefined && state.hits >= fault.times) break;
          state.hits++;
          return sendRaw(res, record, status, { ...headers, 'Content-Length': String(Math.max(0, body.length + fault.delta)) }, body, 0);
        case 'trickle-headers':
          if (fault.times !== undefined && state.hits >= fault.times) break;
          state.hits++;
          return sendRaw(res, record, status, headers, body, fault.byteMs);
        case 'endless-body':
          record.status = 200;
          delete headers['Content-Length'];
          delete headers['Content-Range'];
          res.writeHead(200, headers);
          void streamEndless(res, record, entry.data);
          return;
        default:
          break;
      }
    }
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
    let body = entry.data.subarray(start, end + 1);
    if (body.length < end + 1 - start) body = Buffer.concat([body, Buffer.alloc(end + 1 - start - body.length)]);
    void streamBody(res, record, body, cutAfter, afterCut, fault?.kind === 'throttle-body' ? fault.bytesPerSecond : undefined);
  }
}

/** A portal's sign-in page, echoing the request (its URL with the query, its headers) as such pages do. */
function signInPage(title: string, req: IncomingMessage): string {
  const echo = JSON.stringify({ url: req.url, headers: req.headers }).replace(/</g, '&lt;');
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n  <title>\n    ${title}\n  </title>\n</head>\n<body>\n<form method="post" action="/login"><input name="user"><input name="password" type="password"></form>\n<!-- ${echo} -->\n</body>\n</html>\n`;
}

/** A 200 with `text` of `type`, for GET and HEAD alike (Range ignored, as such pages do). */
function sendPage(res: ServerResponse, record: RequestRecord, type: string, text: string): void {
  const body = Buffer.from(text);
  record.status = 200;
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': String(body.length), 'Cache-Control': 'no-store' });
  if (res.req.method === 'HEAD') {
    res.end();
    return;
  }
  record.bytesSent = body.length;
  res.end(body);
}

/** The range gzip-compressed, its Content-Length the compressed size (the rest of the headers as for the plain range). */
function gzipped(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): number {
  const gz = gzipSync(body);
  res.writeHead(status, { ...headers, 'Content-Encoding': 'gzip', 'Content-Length': String(gz.length), Vary: 'Accept-Encoding' });
  res.end(gz);
  return gz.length;
}

const REASONS: Record<number, string> = { 200: 'OK', 206: 'Partial Content' };

/**
 * A response written straight to the socket, past Node's checks: headers as given (a Content-Length
 * that may not match the body), the head one byte every `byteMs` when that is not 0, then the body,
 * then the connection is closed (the request's ServerResponse is never used: it would wait forever).
 */
function sendRaw(res: ServerResponse, record: RequestRecord, status: number, headers: Record<string, string>, body: Buffer, byteMs: number): void {
  const socket = res.socket;
  if (!socket) return;
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? 'OK'}`, ...Object.entries({ ...headers, Connection: 'close' }).map(([k, v]) => `${k}: ${v}`)];
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  record.status = status;
  const finish = () => {
    if (socket.destroyed) return;
    record.bytesSent = body.length;
    socket.write(body);
    socket.end();
  };
  if (byteMs === 0) {
    socket.write(head);
    return finish();
  }
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed) return clearInterval(timer);
    socket.write(head.subarray(i, i + 1));
    if (++i === head.length) {
      clearInterval(timer);
      finish();
    }
  }, byteMs);
}

/** The whole file, then zero bytes until the client goes away (or the server closes). */
async function streamEndless(res: ServerResponse, record: RequestRecord, data: Buffer): Promise<void> {
  let closed = false;
  res.once('close', () => (closed = true));
  const filler = Buffer.alloc(WRITE_CHUNK);
  for (let offset = 0; !closed; offset += WRITE_CHUNK) {
    const slice = offset < data.length ? data.subarray(offset, Math.min(offset + WRITE_CHUNK, data.length)) : filler;
    record.bytesSent += slice.length;
    if (!res.write(slice) && !closed) await waitForDrainOrClose(res);
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
