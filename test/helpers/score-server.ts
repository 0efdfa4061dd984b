/**
 * A Score storage and metadata service on 127.0.0.1 for tests, with its own object store, so that
 * a client is tested against the protocol as deployed (../../../shared/reference/score-protocol.md)
 * rather than against a server that takes any URL:
 *
 *   - `GET /download/{objectId}?offset=&length=[&external=true]` (Bearer token) answers an object
 *     specification whose parts carry presigned URLs of `/objects/{objectKey}` on this server;
 *     `GET /download/ping` a presigned URL of a small sentinel object; `GET /profile` `s3` or `az`.
 *   - `GET /entities/{objectId}` and `GET /entities?gnosId=&size=&page=` (Bearer token): metadata.
 *   - `/objects/{objectKey}` serves the bytes (GET with or without Range, HEAD, If-Match) only with
 *     a valid presigned query, checked as S3 (SigV4 query form) or Azure (SAS) check theirs: the
 *     signature is an HMAC with a secret only this server holds, over the path and the expiry, so a
 *     changed character, an expired URL or a URL signed before `rotateKey()` answers 403 with the
 *     store's XML error body. The signature ignores the method: one URL serves GET and HEAD.
 *
 * Faults a client must survive are switches: `htmlErrors` (error pages in HTML, as some gateways
 * send), `headRefused` (HEAD refused with 403, as S3 does on a URL presigned for GET),
 * `failNext(n, status)` (a 503 from the service), `denied` (no access to a project),
 * `urlLifetimeS` (short-lived URLs), `now` (the server's clock), `rotateKey()` (URLs refused before
 * their stated expiry). Counters and `log` (method and full URL of every request, signatures
 * included) let tests assert which requests a client made and that it never shows a signature.
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { amzDate, parseAmzDate, parseRange, safeDecode, storeError } from './http-bits.js';

/** Which object store the presigned URLs imitate. */
export type UrlStyle = 's3' | 'azure';

/** What the metadata service knows of an object besides its id. */
export interface EntityInfo {
  fileName: string;
  /** The analysis (bundle) id. */
  gnosId: string;
  projectCode?: string;
  access?: 'controlled' | 'open';
}

export interface Entity extends EntityInfo {
  id: string;
}

interface SpecPart {
  partNumber: number;
  partSize: number;
  offset: number;
  url: string;
  md5: string | null;
  sourceMd5: null;
}

interface StoredObject {
  objectId: string;
  objectKey: string;
  uploadId: string;
  bytes: Buffer;
  md5: string;
  lastModified: Date;
}

/** Score's default part size for uploads and downloads. */
const DEFAULT_PART_SIZE = 20 * 1024 * 1024;
/** Score answers `/download/ping` with a URL of this object (a few bytes kept in every bucket). */
const SENTINEL_KEY = 'data/heliograph';
const SENTINEL_BYTES = Buffer.from('heliograph\n');
/** The SAS version Azure's SDKs sign with today; only echoed and signed, never interpreted. */
const AZURE_SAS_VERSION = '2021-08-06';
/** Body slice per write: bounded memory for large objects, and an accurate `dataBytes` on aborts. */
const WRITE_CHUNK = 256 * 1024;

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  412: 'Precondition Failed',
  416: 'Range Not Satisfiable',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export class ScoreServer {
  readonly origin: string;
  /** Lifetime of the presigned URLs handed out from now on, in seconds (Score's default: a day). */
  urlLifetimeS = 86_400;
  /** Form of the presigned URLs handed out from now on; URLs already issued keep working. */
  urlStyle: UrlStyle = 's3';
  /** Size of the parts of a non-external specification (tests use small ones to get several). */
  partSize = DEFAULT_PART_SIZE;
  /** Whether parts state their MD5 (the protocol allows it to be absent or null). */
  partMd5s = true;
  /** The server's clock, for issuing and for checking expiry: tests move it instead of sleeping. */
  now: () => number = Date.now;
  /** Errors of the storage and metadata API as a large HTML page instead of JSON. */
  htmlErrors = false;
  /**
   * Refuse HEAD on the object endpoint with 403, as S3 does for a URL presigned for GET (the
   * method is part of what is signed); GET keeps working.
   */
  headRefused = false;
  /** Object ids the token has no access to (another project, or not yet published): 403. */
  readonly denied = new Set<string>();
  /** The metadata service's entities, in the order added. */
  readonly entities: Entity[] = [];

  /** `GET /download/{objectId}` requests received, whatever their outcome. */
  specRequests = 0;
  /** `GET /download/ping` requests received, whatever their outcome. */
  pingRequests = 0;
  /** Requests to the object endpoint, accepted or refused. */
  dataRequests = 0;
  /** Body bytes of objects handed to sockets by the object endpoint (error bodies not counted). */
  dataBytes = 0;
  /** Object-endpoint requests refused with 403 (bad, missing or expired signature). */
  rejectedSignatures = 0;
  /** `METHOD full-URL` of every request, in arrival order. */
  readonly log: string[] = [];
  /** Every presigned URL handed out (specifications and ping), in order. */
  readonly issuedUrls: string[] = [];

  private readonly byId = new Map<string, StoredObject>();
  private readonly byKey = new Map<string, StoredObject>();
  private secret = randomBytes(32);
  private failures: { remaining: number; status: number } = { remaining: 0, status: 503 };

  private constructor(
    private readonly server: Server,
    port: number,
    /** The one access token the services accept. */
    readonly token: string,
  ) {
    this.origin = `http://127.0.0.1:${port}`;
    const sentinel = { objectId: 'heliograph', objectKey: SENTINEL_KEY, uploadId: '', bytes: SENTINEL_BYTES, md5: md5Hex(SENTINEL_BYTES), lastModified: wholeSecond(new Date()) };
    this.byKey.set(SENTINEL_KEY, sentinel);
  }

  static async start(token: string): Promise<ScoreServer> {
    const server = createServer();
    // Longer than undici's default so idle keep-alive sockets are not cut between test steps.
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const s = new ScoreServer(server, (server.address() as AddressInfo).port, token);
    server.on('request', (req, res) => s.handle(req, res));
    return s;
  }

  /**
   * Stores `bytes` as object `objectId` (key `data/{objectId}`, as Score names them) and, with
   * `entity`, tells the metadata service about it. Adding an id again replaces the object: a new
   * version with a new ETag.
   */
  addObject(objectId: string, bytes: Buffer, entity?: EntityInfo): void {
    const objectKey = `data/${objectId}`;
    const obj: StoredObject = { objectId, objectKey, uploadId: randomUUID(), bytes, md5: md5Hex(bytes), lastModified: wholeSecond(new Date(this.now())) };
    this.byId.set(objectId, obj);
    this.byKey.set(objectKey, obj);
    if (entity) {
      const i = this.entities.findIndex((e) => e.id === objectId);
      if (i >= 0) this.entities.splice(i, 1);
      this.entities.push({ id: objectId, ...entity });
    }
  }

  /** A presigned URL of the object, as the storage service would hand out now (for tests of the store). */
  presign(objectId: string): string {
    const obj = this.byId.get(objectId);
    if (!obj) throw new Error(`no object ${objectId}`);
    return this.issue(obj.objectKey);
  }

  /** The next `n` requests to the storage or metadata API answer `status` (before any other check). */
  failNext(n: number, status: number): void {
    this.failures = { remaining: n, status };
  }

  /** A new signing key: every URL issued so far is refused (403) though it has not expired. */
  rotateKey(): void {
    this.secret = randomBytes(32);
  }

  /** The signatures of every URL handed out, to check that none shows up in output. */
  issuedSignatures(): string[] {
    return this.issuedUrls.map((u) => {
      const q = new URL(u).searchParams;
      return q.get('X-Amz-Signature') ?? q.get('sig') ?? '';
    });
  }

  /** Zeroes the counters and empties `log` and `issuedUrls` (URLs issued before stay valid). */
  resetCounters(): void {
    this.specRequests = this.pingRequests = this.dataRequests = this.dataBytes = this.rejectedSignatures = 0;
    this.log.length = 0;
    this.issuedUrls.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((res) => this.server.close(() => res()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const raw = req.url ?? '/';
    this.log.push(`${req.method ?? ''} ${this.origin}${raw}`);
    const url = new URL(raw, this.origin);
    if (url.pathname.startsWith('/objects/')) return this.serveObject(req, res, url);
    this.serveApi(req, res, url);
  }

  // ---- storage and metadata API ----

  private serveApi(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const path = url.pathname;
    const download = /^\/download\/([^/]+)$/.exec(path);
    if (download?.[1] === 'ping') this.pingRequests++;
    else if (download) this.specRequests++;

    if (this.failures.remaining > 0) {
      this.failures.remaining--;
      return this.apiError(res, path, this.failures.status, 'injected failure');
    }
    if (req.method !== 'GET') return this.apiError(res, path, 405, `Request method '${req.method}' not supported`);
    if (path === '/profile') return sendText(res, 200, this.urlStyle === 'azure' ? 'az' : 's3');
    const known = download || path === '/entities' || path.startsWith('/entities/');
    if (!known) return this.apiError(res, path, 404, 'No handler found');
    // A missing or wrong token is refused before anything about the object is looked at.
    if (req.headers.authorization !== `Bearer ${this.token}`) return this.apiError(res, path, 401, 'Full authentication is required to access this resource');

    if (download?.[1] === 'ping') return sendText(res, 200, this.issue(SENTINEL_KEY));
    if (download) return this.serveSpec(res, path, safeDecode(download[1]), url.searchParams);
    return this.serveEntities(res, path, url.searchParams);
  }

  private serveSpec(res: ServerResponse, path: string, objectId: string, q: URLSearchParams): void {
    if (this.denied.has(objectId)) return this.apiError(res, path, 403, 'Access is denied');
    const obj = this.byId.get(objectId);
    if (!obj) return this.apiError(res, path, 404, `Object ${objectId} not found`);
    const offset = Number(q.get('offset'));
    const length = Number(q.get('length'));
    const size = obj.bytes.length;
    // Score requires both parameters; length -1 means "to the end".
    if (q.get('offset') === null || q.get('length') === null || !Number.isInteger(offset) || !Number.isInteger(length)) {
      return this.apiError(res, path, 400, 'offset and length are required integers');
    }
    const end = length === -1 ? size : offset + length;
    if (offset < 0 || length < -1 || offset > size || end > size) {
      return this.apiError(res, path, 400, `range offset=${offset} length=${length} outside object of ${size} bytes`);
    }
    const url = this.issue(obj.objectKey);
    let parts: SpecPart[];
    if (q.get('external') === 'true') {
      // One URL for the whole object: readers use Range on it (mount, view).
      parts = [{ partNumber: 1, partSize: size, offset: 0, url, md5: null, sourceMd5: null }];
    } else {
      parts = [];
      for (let at = offset, n = 1; at < end; at += this.partSize, n++) {
        const partSize = Math.min(this.partSize, end - at);
        const md5 = this.partMd5s ? md5Hex(obj.bytes.subarray(at, at + partSize)) : null;
        // Every part names the same object URL; the client asks for its bytes with Range.
        parts.push({ partNumber: n, partSize, offset: at, url, md5, sourceMd5: null });
      }
    }
    const spec = { objectId: obj.objectId, objectKey: obj.objectKey, uploadId: obj.uploadId, objectSize: size, objectMd5: obj.md5, relocated: false, parts };
    sendJson(res, 200, spec);
  }

  private serveEntities(res: ServerResponse, path: string, q: URLSearchParams): void {
    const withDefaults = (e: Entity) => ({ projectCode: 'TEST-XX', access: 'controlled', ...e });
    const one = /^\/entities\/([^/]+)$/.exec(path);
    if (one) {
      const e = this.entities.find((x) => x.id === safeDecode(one[1]));
      return e ? sendJson(res, 200, withDefaults(e)) : this.apiError(res, path, 404, 'Entity not found');
    }
    if (path !== '/entities') return this.apiError(res, path, 404, 'No handler found');
    const gnosId = q.get('gnosId');
    const all = this.entities.filter((x) => gnosId === null || x.gnosId === gnosId);
    const size = Number(q.get('size') ?? 20);
    const page = Number(q.get('page') ?? 0);
    const content = all.slice(page * size, (page + 1) * size).map(withDefaults);
    const totalPages = Math.ceil(all.length / size);
    sendJson(res, 200, {
      content,
      first: page === 0,
      last: (page + 1) * size >= all.length,
      number: page,
      size,
      numberOfElements: content.length,
      totalElements: all.length,
      totalPages,
    });
  }

  /** A Spring Boot error (JSON), or with `htmlErrors` the HTML page a gateway in front sends. */
  private apiError(res: ServerResponse, path: string, status: number, message: string): void {
    if (this.htmlErrors) {
      const body = htmlErrorPage(status);
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) }).end(body);
      return;
    }
    sendJson(res, status, { timestamp: new Date(this.now()).toISOString(), status, error: REASONS[status] ?? 'Error', message, path });
  }

  // ---- presigned URLs ----

  private issue(objectKey: string): string {
    const path = objectPath(objectKey);
    const nowMs = this.now();
    let query: string;
    if (this.urlStyle === 'azure') {
      const se = isoSeconds(nowMs + this.urlLifetimeS * 1000);
      const q = new URLSearchParams({ sv: AZURE_SAS_VERSION, se, sr: 'b', sp: 'r' });
      q.set('sig', this.azureSignature(path, se, 'r', AZURE_SAS_VERSION));
      query = q.toString();
    } else {
      const date = amzDate(nowMs);
      const expires = String(this.urlLifetimeS);
      const q = new URLSearchParams({
        'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
        'X-Amz-Credential': `FIXTUREACCESSKEY/${date.slice(0, 8)}/us-east-1/s3/aws4_request`,
        'X-Amz-Date': date,
        'X-Amz-Expires': expires,
        'X-Amz-SignedHeaders': 'host',
      });
      q.set('X-Amz-Signature', this.s3Signature(path, date, expires));
      query = q.toString();
    }
    const url = `${this.origin}${path}?${query}`;
    this.issuedUrls.push(url);
    return url;
  }

  private s3Signature(path: string, date: string, expires: string): string {
    return createHmac('sha256', this.secret).update(`AWS4-HMAC-SHA256\n${date}\n${path}\n${expires}`).digest('hex');
  }

  private azureSignature(path: string, se: string, sp: string, sv: string): string {
    return createHmac('sha256', this.secret).update(`${sp}\n${se}\n${path}\n${sv}\nb`).digest('base64');
  }

  /** Why the query does not authorise a read of `path` (status and store error), or undefined. */
  private refusal(path: string, q: URLSearchParams): { status: number; code: string; message: string } | undefined {
    const nowMs = this.now();
    if (q.has('X-Amz-Signature')) {
      const date = q.get('X-Amz-Date') ?? '';
      const expires = q.get('X-Amz-Expires') ?? '';
      if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || !/^\d{8}T\d{6}Z$/.test(date) || !/^\d+$/.test(expires) || q.get('X-Amz-SignedHeaders') !== 'host') {
        return { status: 400, code: 'AuthorizationQueryParametersError', message: 'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.' };
      }
      if (q.get('X-Amz-Signature') !== this.s3Signature(path, date, expires)) {
        return { status: 403, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.' };
      }
      if (nowMs > parseAmzDate(date) + Number(expires) * 1000) return { status: 403, code: 'AccessDenied', message: 'Request has expired' };
      return undefined;
    }
    if (q.has('sig')) {
      const se = q.get('se') ?? '';
      const sp = q.get('sp') ?? '';
      const sv = q.get('sv') ?? '';
      const authFailed = 'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.';
      if (q.get('sr') !== 'b' || Number.isNaN(Date.parse(se)) || q.get('sig') !== this.azureSignature(path, se, sp, sv)) {
        return { status: 403, code: 'AuthenticationFailed', message: `${authFailed} Signature did not match.` };
      }
      if (!sp.includes('r')) return { status: 403, code: 'AuthorizationPermissionMismatch', message: 'This request is not authorized to perform this operation using this permission.' };
      if (nowMs > Date.parse(se)) return { status: 403, code: 'AuthenticationFailed', message: `${authFailed} Signed expiry time [${new Date(se).toUTCString()}] must be after current time [${new Date(nowMs).toUTCString()}].` };
      return undefined;
    }
    return { status: 403, code: 'AccessDenied', message: 'Access Denied' };
  }

  // ---- object store ----

  private serveObject(req: IncomingMessage, res: ServerResponse, url: URL): void {
    this.dataRequests++;
    const azure = url.searchParams.has('sig') && !url.searchParams.has('X-Amz-Signature');
    const isHead = req.method === 'HEAD';
    const refused = this.refusal(url.pathname, url.searchParams);
    if (refused) {
      if (refused.status === 403) this.rejectedSignatures++;
      return storeError(res, isHead, refused.status, refused.code, refused.message);
    }
    if (req.method !== 'GET' && !isHead) return storeError(res, false, 405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.', { allow: 'GET, HEAD' });
    if (isHead && this.headRefused) {
      this.rejectedSignatures++;
      return storeError(res, true, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
    }
    const obj = this.byKey.get(safeDecode(url.pathname.slice('/objects/'.length)));
    if (!obj) return storeError(res, isHead, 404, azure ? 'BlobNotFound' : 'NoSuchKey', 'The specified key does not exist.');

    const size = obj.bytes.length;
    const etag = `"${obj.md5}"`;
    const about: Record<string, string> = { etag, 'last-modified': obj.lastModified.toUTCString(), 'accept-ranges': 'bytes' };
    if (azure) Object.assign(about, { 'x-ms-blob-type': 'BlockBlob', 'x-ms-version': AZURE_SAS_VERSION });

    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && ifMatch.trim() !== '*' && !ifMatch.split(',').some((t) => t.trim() === etag)) {
      return storeError(res, isHead, 412, azure ? 'ConditionNotMet' : 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', about);
    }
    const range = req.headers.range === undefined ? undefined : parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      return storeError(res, isHead, 416, 'InvalidRange', 'The requested range is not satisfiable', { ...about, 'content-range': `bytes */${size}` });
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const headers: Record<string, string> = { ...about, 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1) };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    else if (azure) headers['content-md5'] = Buffer.from(obj.md5, 'hex').toString('base64');
    res.writeHead(range ? 206 : 200, headers);
    if (isHead) {
      res.end();
      return;
    }
    void this.stream(res, obj.bytes.subarray(start, end + 1));
  }

  /** Writes in slices, waiting for 'drain', and counts what reached the socket in `dataBytes`. */
  private async stream(res: ServerResponse, body: Buffer): Promise<void> {
    let closed = false;
    res.once('close', () => (closed = true));
    for (let at = 0; at < body.length && !closed; at += WRITE_CHUNK) {
      const slice = body.subarray(at, Math.min(at + WRITE_CHUNK, body.length));
      this.dataBytes += slice.length;
      if (!res.write(slice) && !closed) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    if (!closed) res.end();
  }
}

// ---- helpers ----

function md5Hex(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

function wholeSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** `/objects/{key}` with each key segment percent-encoded: the exact path that is signed. */
function objectPath(objectKey: string): string {
  return `/objects/${objectKey.split('/').map(encodeURIComponent).join('/')}`;
}




/** Azure's `se` form: ISO 8601 to the second. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}


function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain;charset=UTF-8', 'content-length': String(Buffer.byteLength(text)) }).end(text);
}



/**
 * The kind of page a load balancer or SSO gateway sends for an error: about 5 KB of markup, a
 * title naming the status, and nothing a JSON parser accepts. Clients must report the status, not
 * the page.
 */
function htmlErrorPage(status: number): string {
  const title = `${status} ${REASONS[status] ?? 'Error'}`;
  const links = Array.from({ length: 30 }, (_, i) => `<li class="nav-item"><a class="nav-link" href="/help/topic-${i + 1}">Help topic ${i + 1}: accounts, tokens and access</a></li>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#222;background:#f7f7f7}header{background:#0b4f6c;color:#fff;padding:1em 2em}
main{max-width:48em;margin:2em auto;background:#fff;padding:2em;border-radius:4px;box-shadow:0 1px 3px rgba(0,0,0,.2)}.nav-link{color:#0b4f6c}</style>
</head><body><header><h1>${title}</h1></header>
<main><p>The server could not complete your request. If you believe this is an error, contact the help desk and quote the reference below.</p>
<p>Reference: ${randomBytes(12).toString('hex')}</p>
<ul class="nav">
${links}
</ul></main>
<footer><p>&copy; Data Coordination Centre. All rights reserved.</p></footer></body></html>
`;
}
