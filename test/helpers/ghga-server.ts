/**
 * GHGA's download side on 127.0.0.1 for tests, built from ../../../shared/reference/ghga-protocol.md
 * §2 and §9, so clients are tested against the protocol's shapes rather than a server that takes
 * anything:
 *
 *   - well-known values: `GET /.well-known/values` (and `GET /values`) name the services below;
 *   - WPS under `/wps/` (the values give it with a trailing '/', as a client must strip):
 *     `GET /work-packages/{id}` and `POST /work-packages/{id}/files/{accession}/work-order-tokens`
 *     with the access token as Bearer; 403 `{"detail": …}` refusals with the WPS's exact texts; a WOT
 *     is a real ES256 JWT (node:crypto, key held here) with `exp = iat + wotLifetimeS`, answered 201
 *     as a JSON string of base64 of a sealed box to the user's key;
 *   - DCS under `/dcs`: `/health`; `GET /objects/{accession}` checks the WOT (signature, expiry,
 *     accession) → 401/403, answers 202 + Retry-After for `stagingDelayS` counted from the file's
 *     first request, then 200 with the DRS object (plaintext SHA-256, an S3-style presigned URL
 *     signed with an HMAC and `Cache-Control: max-age=urlLifetimeS`); `/objects/{accession}/envelopes`
 *     → a JSON string of base64 of a Crypt4GH header for the WOT's public key, made from the file's
 *     data key by slicefs's encryptHeader;
 *   - the object store under `/s3/`: HEAD and GET with Range and If-Match, only with a valid,
 *     unexpired signature (403 with S3's XML otherwise). It holds the encrypted blocks only, as
 *     GHGA's bucket does.
 *
 * Switches for the faults a client must survive: `expired`, `revoked`, `urlLifetimeS`,
 * `wotLifetimeS`, per-file staging delays, `failNext(n, status)`, `rotateWotKey()`, `now`.
 * Counters (`requests` per endpoint, `dataBytes`, `wotsIssued`, `polls`), `log` (method and full
 * URL of every request) and `issuedSecrets()` (access token, download tokens, every WOT, every URL
 * signature) let tests check what a client asked and that its output shows none of them.
 */
import { createHash, createHmac, generateKeyPairSync, randomBytes, randomInt, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encryptHeader } from '../../src/crypt4gh/header.js';
import { generateKeyPair, type C4ghKeyPair } from '../../src/crypt4gh/keys.js';
import { sealBox } from '../../src/crypt4gh/sealed-box.js';
import { encryptC4gh } from './c4gh-encrypt.js';
import { amzDate, parseAmzDate, parseRange, safeDecode, sendJson, storeError } from './http-bits.js';

export type GhgaEndpoint = 'values' | 'workPackage' | 'wot' | 'health' | 'object' | 'envelope' | 'data' | 'other';

export interface GhgaServerOptions {
  /** The user's Crypt4GH public key (raw 32 bytes): tokens and envelopes are sealed to it. */
  userPublicKey: Buffer;
}

export interface GhgaFileOptions {
  /** Seconds of 202 answers, counted from the file's first `GET /objects/{accession}`. */
  stagingDelayS?: number;
  /** In the work package (default true): otherwise the WPS refuses its WOT. */
  inPackage?: boolean;
  /** Registered at the DCS (default true): otherwise `GET /objects` answers 404. */
  atDcs?: boolean;
  /** The SHA-256 the DRS object states (default: the plaintext's), to test a mismatch. */
  statedSha256?: string;
}

interface GhgaFile {
  accession: string;
  extension: string;
  /** GHGA's internal file id (a UUID4), the object's key in the bucket. */
  fileId: string;
  plaintext: Buffer;
  /** The Crypt4GH blocks, without header. */
  body: Buffer;
  dataKey: Buffer;
  sha256: string;
  etag: string;
  lastModified: Date;
  stagingDelayS: number;
  firstRequestAt?: number;
  inPackage: boolean;
  atDcs: boolean;
}

const BUCKET = 'ghga-download';
const WRITE_CHUNK = 256 * 1024;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export class GhgaServer {
  readonly origin: string;
  /** The well-known value service's base (`{wkvs}/values` is served). */
  readonly wkvsUrl: string;
  readonly wpsUrl: string;
  readonly dcsUrl: string;
  readonly workPackageId = randomUUID();
  /** 24 characters of [A-Za-z0-9], as the WPS makes them. */
  readonly accessToken = Array.from({ length: 24 }, () => ALNUM[randomInt(ALNUM.length)]).join('');
  /** GHGA's own Crypt4GH key pair: the writer of envelopes, listed in the well-known values. */
  readonly ghgaKey: C4ghKeyPair = generateKeyPair();
  readonly created = new Date();

  /** WPS: the work package's expiry has passed (403 `Work package has expired`). */
  expired = false;
  /** WPS: the data access grant was revoked (403 `Download access has been revoked`). */
  revoked = false;
  /** Lifetime of presigned URLs issued from now on (the DCS may issue 30 s ones). */
  urlLifetimeS = 60;
  /** Lifetime of WOTs issued from now on (GHGA: 30 s). */
  wotLifetimeS = 30;
  /** The envelope as the DCS code sends it (a JSON string) or as its OpenAPI says (`{"content": …}`). */
  envelopeForm: 'string' | 'object' = 'string';
  /** The servers' clock (epoch ms): tests move it instead of sleeping. */
  now: () => number = Date.now;
  /** DCS: 202 answers without Retry-After (a broken deployment; the connector fails on it too). */
  omitRetryAfter = false;
  /** Well-known values served instead of this server's own (e.g. a service named by a plain-http URL). */
  valuesOverride: Record<string, string> = {};
  /** WPS: the public key WOTs name, when not the user's (the work package was made for another key). */
  wotPublicKeyClaim?: Buffer;

  /** Requests per endpoint, whatever their outcome. */
  readonly requests: Record<GhgaEndpoint, number> = { values: 0, workPackage: 0, wot: 0, health: 0, object: 0, envelope: 0, data: 0, other: 0 };
  /** Encrypted body bytes handed to sockets by the object store. */
  dataBytes = 0;
  wotsIssued = 0;
  /** Object-store requests refused (bad or expired signature). */
  rejectedSignatures = 0;
  /** DCS requests refused with 401 (bad, expired or unknown-key WOT). */
  rejectedWots = 0;
  /** WPS and DCS requests (health excepted) that came without an X-Request-Id. */
  missingRequestIds = 0;
  /** Every `GET /objects/{accession}` with the status answered and when (server clock, ms). */
  readonly polls: { accession: string; at: number; status: number; retryAfterS?: number }[] = [];
  /** `METHOD full-URL` of every request, in arrival order. */
  readonly log: string[] = [];

  private readonly files = new Map<string, GhgaFile>();
  private readonly byFileId = new Map<string, GhgaFile>();
  private urlSecret = randomBytes(32);
  private wotKey: { privateKey: KeyObject; publicKey: KeyObject } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  private failures: { remaining: number; status: number; endpoint?: GhgaEndpoint } = { remaining: 0, status: 503 };
  private cuts: { remaining: number; afterBytes: number } = { remaining: 0, afterBytes: 0 };
  private readonly secrets: string[] = [];

  private constructor(
    private readonly server: Server,
    port: number,
    readonly userPublicKey: Buffer,
  ) {
    this.origin = `http://127.0.0.1:${port}`;
    this.wkvsUrl = `${this.origin}/.well-known`;
    this.wpsUrl = `${this.origin}/wps`;
    this.dcsUrl = `${this.origin}/dcs`;
    this.secrets.push(this.accessToken);
  }

  static async start(opts: GhgaServerOptions): Promise<GhgaServer> {
    const server = createServer();
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const s = new GhgaServer(server, (server.address() as AddressInfo).port, opts.userPublicKey);
    server.on('request', (req, res) => s.handle(req, res));
    return s;
  }

  /**
   * Encrypts `plaintext` with a new data key (blocks only, as GHGA stores it) and registers it as
   * `accession` with `extension`. Returns the stored body and the plaintext's SHA-256.
   */
  addFile(accession: string, extension: string, plaintext: Buffer, opts: GhgaFileOptions = {}): { body: Buffer; sha256: string } {
    const enc = encryptC4gh(plaintext, [this.ghgaKey.public], { splitHeader: true });
    const file: GhgaFile = {
      accession,
      extension,
      fileId: randomUUID(),
      plaintext,
      body: enc.body,
      dataKey: enc.dataKey,
      sha256: opts.statedSha256 ?? createHash('sha256').update(plaintext).digest('hex'),
      etag: `"${createHash('md5').update(enc.body).digest('hex')}"`,
      lastModified: new Date(Math.floor(this.now() / 1000) * 1000),
      stagingDelayS: opts.stagingDelayS ?? 0,
      inPackage: opts.inPackage ?? true,
      atDcs: opts.atDcs ?? true,
    };
    this.files.set(accession, file);
    this.byFileId.set(file.fileId, file);
    return { body: file.body, sha256: file.sha256 };
  }

  /** Staging delay of a file, counted from its next first request (the count restarts). */
  setStagingDelay(accession: string, seconds: number): void {
    const f = this.mustFile(accession);
    f.stagingDelayS = seconds;
    f.firstRequestAt = undefined;
  }

  /**
   * The download token the data portal shows: `<work package id>:<base64 sealed access token>`,
   * sealed to the user's key unless `publicKey` says otherwise; `workPackageId`/`accessToken`
   * override the parts (unknown package, wrong token).
   */
  downloadToken(opts: { publicKey?: Buffer; workPackageId?: string; accessToken?: string } = {}): string {
    const sealed = sealBox(Buffer.from(opts.accessToken ?? this.accessToken, 'latin1'), opts.publicKey ?? this.userPublicKey).toString('base64');
    const token = `${opts.workPackageId ?? this.workPackageId}:${sealed}`;
    this.secrets.push(token, sealed);
    if (opts.accessToken) this.secrets.push(opts.accessToken);
    return token;
  }

  /** The next `n` requests (to `endpoint`, or to any API endpoint) answer `status` first. */
  failNext(n: number, status: number, endpoint?: GhgaEndpoint): void {
    this.failures = { remaining: n, status, endpoint };
  }

  /**
   * The next `n` object-store GET bodies break off (the socket is destroyed) after `afterBytes`
   * bytes, so the client resumes with a new request on the same URL.
   */
  cutNextBody(afterBytes: number, n = 1): void {
    this.cuts = { remaining: n, afterBytes };
  }

  /** A new WOT signing key: every WOT issued so far is refused by the DCS (401) before its exp. */
  rotateWotKey(): void {
    this.wotKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  }

  /** A new URL signing key: every presigned URL issued so far is refused (403) before its expiry. */
  rotateUrlKey(): void {
    this.urlSecret = randomBytes(32);
  }

  /** Every secret handed out: access token, download tokens, WOTs (plain and sealed), URL signatures. */
  issuedSecrets(): string[] {
    return [...this.secrets];
  }

  /** The plaintext SHA-256 of a file (what the DRS object states). */
  sha256(accession: string): string {
    return this.mustFile(accession).sha256;
  }

  resetCounters(): void {
    for (const k of Object.keys(this.requests) as GhgaEndpoint[]) this.requests[k] = 0;
    this.dataBytes = this.wotsIssued = this.rejectedSignatures = this.rejectedWots = this.missingRequestIds = 0;
    this.polls.length = 0;
    this.log.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((res) => this.server.close(() => res()));
  }

  private mustFile(accession: string): GhgaFile {
    const f = this.files.get(accession);
    if (!f) throw new Error(`no file ${accession}`);
    return f;
  }

  // ---- routing ----

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const raw = req.url ?? '/';
    this.log.push(`${req.method ?? ''} ${this.origin}${raw}`);
    const url = new URL(raw, this.origin);
    const path = url.pathname;
    const method = req.method ?? '';
    const route = this.route(method, path);
    this.requests[route.endpoint]++;
    if (route.endpoint === 'data') return this.serveObject(req, res, url);
    if (route.endpoint !== 'health' && route.endpoint !== 'values' && route.endpoint !== 'other' && !req.headers['x-request-id']) this.missingRequestIds++;
    const f = this.failures;
    if (f.remaining > 0 && (f.endpoint === undefined || f.endpoint === route.endpoint)) {
      f.remaining--;
      return sendJson(res, f.status, { exception_id: 'injectedFailure', description: 'injected failure', data: {} });
    }
    switch (route.endpoint) {
      case 'values':
        return this.serveValues(res);
      case 'workPackage':
        return this.serveWorkPackage(req, res, route.params[0]!);
      case 'wot':
        return this.serveWot(req, res, route.params[0]!, route.params[1]!);
      case 'health':
        return sendJson(res, 200, { status: 'OK' });
      case 'object':
        return this.serveDrsObject(req, res, route.params[0]!);
      case 'envelope':
        return this.serveEnvelope(req, res, route.params[0]!);
      default:
        return sendJson(res, 404, { detail: 'Not Found' });
    }
  }

  private route(method: string, path: string): { endpoint: GhgaEndpoint; params: string[] } {
    const m = (re: RegExp) => re.exec(path)?.slice(1).map(safeDecode);
    let p: string[] | undefined;
    if (path.startsWith('/s3/')) return { endpoint: 'data', params: [] };
    if (method === 'GET' && (path === '/.well-known/values' || path === '/values')) return { endpoint: 'values', params: [] };
    if (method === 'GET' && (p = m(/^\/wps\/work-packages\/([^/]+)$/))) return { endpoint: 'workPackage', params: p };
    if (method === 'POST' && (p = m(/^\/wps\/work-packages\/([^/]+)\/files\/([^/]+)\/work-order-tokens$/))) return { endpoint: 'wot', params: p };
    if (method === 'GET' && path === '/dcs/health') return { endpoint: 'health', params: [] };
    if (method === 'GET' && (p = m(/^\/dcs\/objects\/([^/]+)$/))) return { endpoint: 'object', params: p };
    if (method === 'GET' && (p = m(/^\/dcs\/objects\/([^/]+)\/envelopes$/))) return { endpoint: 'envelope', params: p };
    return { endpoint: 'other', params: [] };
  }

  // ---- well-known values ----

  private serveValues(res: ServerResponse): void {
    sendJson(res, 200, {
      crypt4gh_public_keys: { 'ghga-main': this.ghgaKey.public.toString('base64') },
      // A trailing '/' here on purpose: the connector strips it, so must every client.
      wps_api_url: `${this.wpsUrl}/`,
      dcs_api_url: this.dcsUrl,
      ucs_api_url: `${this.origin}/ucs`,
      storage_aliases: { 'TUE01': 'tuebingen' },
      storage_labels: { 'TUE01': 'Tübingen' },
      ...this.valuesOverride,
    });
  }

  // ---- WPS ----

  /** The WPS's checks in its order (`core/repository.py`); a refusal's detail, or undefined. */
  private wpsRefusal(req: IncomingMessage, id: string): string | undefined {
    if (id !== this.workPackageId) return 'Work package not found';
    if (req.headers.authorization !== `Bearer ${this.accessToken}`) return 'Invalid work package access token';
    if (this.expired) return 'Work package has expired';
    if (this.revoked) return 'Download access has been revoked';
    return undefined;
  }

  private serveWorkPackage(req: IncomingMessage, res: ServerResponse, id: string): void {
    const refused = this.wpsRefusal(req, id);
    if (refused) return sendJson(res, 403, { detail: refused });
    const files: Record<string, string> = {};
    for (const f of this.files.values()) if (f.inPackage) files[f.accession] = f.extension;
    sendJson(res, 200, {
      type: 'download',
      files,
      research_data_upload_box_id: null,
      file_upload_box_id: null,
      created: this.created.toISOString(),
      expires: new Date(this.created.getTime() + 30 * 86_400_000).toISOString(),
    });
  }

  private serveWot(req: IncomingMessage, res: ServerResponse, id: string, accession: string): void {
    const refused = this.wpsRefusal(req, id);
    if (refused) return sendJson(res, 403, { detail: refused });
    const f = this.files.get(accession);
    if (!f || !f.inPackage) return sendJson(res, 403, { detail: 'File is not contained in work package' });
    const iat = Math.floor(this.now() / 1000);
    const jwt = this.signJwt({
      work_type: 'download',
      file_id: f.fileId,
      accession: f.accession,
      user_public_crypt4gh_key: (this.wotPublicKeyClaim ?? this.userPublicKey).toString('base64'),
      iat,
      exp: iat + this.wotLifetimeS,
    });
    const sealed = sealBox(Buffer.from(jwt), this.userPublicKey).toString('base64');
    this.wotsIssued++;
    this.secrets.push(jwt, sealed);
    sendJson(res, 201, sealed, { 'cache-control': `max-age=${this.wotLifetimeS}, private` });
  }

  private signJwt(claims: Record<string, unknown>): string {
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${enc({ alg: 'ES256', typ: 'JWT' })}.${enc(claims)}`;
    const sig = sign('sha256', Buffer.from(input), { key: this.wotKey.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${sig.toString('base64url')}`;
  }

  /** The claims of the request's WOT if its signature and expiry hold, else undefined. */
  private wotClaims(req: IncomingMessage): Record<string, unknown> | undefined {
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(auth);
    if (!m) return undefined;
    const ok = verify('sha256', Buffer.from(`${m[1]}.${m[2]}`), { key: this.wotKey.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(m[3]!, 'base64url'));
    if (!ok) return undefined;
    const claims = JSON.parse(Buffer.from(m[2]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= this.now() || claims.work_type !== 'download') return undefined;
    return claims;
  }

  // ---- DCS ----

  /** The DCS's auth dependency, then the WOT's file against the path; the file, or an answer was sent. */
  private dcsAuthorize(req: IncomingMessage, res: ServerResponse, accession: string): { file?: GhgaFile; claims: Record<string, unknown> } | undefined {
    const claims = this.wotClaims(req);
    if (!claims) {
      this.rejectedWots++;
      sendJson(res, 401, { detail: 'Invalid authentication credentials' });
      return undefined;
    }
    if (claims.accession !== accession) {
      sendJson(res, 403, { exception_id: 'wrongFileAuthorizationError', description: 'Endpoint file ID did not match file ID announced in work order token.', data: {} });
      return undefined;
    }
    const f = this.files.get(accession);
    return { file: f?.atDcs ? f : undefined, claims };
  }

  private serveDrsObject(req: IncomingMessage, res: ServerResponse, accession: string): void {
    const auth = this.dcsAuthorize(req, res, accession);
    if (!auth) {
      this.polls.push({ accession, at: this.now(), status: res.statusCode });
      return;
    }
    const f = auth.file;
    if (!f) {
      this.polls.push({ accession, at: this.now(), status: 404 });
      return sendJson(res, 404, { exception_id: 'noSuchObject', description: "The requested DrsObject wasn't found", data: { object_id: accession } });
    }
    const now = this.now();
    f.firstRequestAt ??= now;
    const left = f.firstRequestAt + f.stagingDelayS * 1000 - now;
    if (left > 0) {
      const retryAfterS = Math.min(300, Math.max(1, Math.ceil(left / 1000)));
      this.polls.push({ accession, at: now, status: 202, retryAfterS });
      const body = 'null';
      const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': '4', 'cache-control': 'no-store' };
      if (!this.omitRetryAfter) headers['retry-after'] = String(retryAfterS);
      res.writeHead(202, headers).end(body);
      return;
    }
    this.polls.push({ accession, at: now, status: 200 });
    const host = new URL(this.origin).host;
    sendJson(
      res,
      200,
      {
        id: f.accession,
        self_uri: `drs://${host}/${f.accession}`,
        size: f.body.length,
        created_time: f.lastModified.toISOString(),
        checksums: [{ checksum: f.sha256, type: 'sha-256' }],
        access_methods: [{ type: 's3', access_url: { url: this.presign(f) } }],
      },
      { 'cache-control': `max-age=${this.urlLifetimeS}, private` },
    );
  }

  private serveEnvelope(req: IncomingMessage, res: ServerResponse, accession: string): void {
    const auth = this.dcsAuthorize(req, res, accession);
    if (!auth) return;
    if (!auth.file) return sendJson(res, 404, { exception_id: 'envelopeNotFoundError', description: 'The envelope for the requested file was not found', data: {} });
    // GHGA's key service re-encrypts the file's header for the public key the WOT names.
    const userKey = Buffer.from(String(auth.claims.user_public_crypt4gh_key), 'base64');
    const header = encryptHeader(auth.file.dataKey, [userKey], { writer: this.ghgaKey });
    const b64 = header.toString('base64');
    sendJson(res, 200, this.envelopeForm === 'object' ? { content: b64 } : b64, { 'cache-control': 'no-store' });
  }

  // ---- presigned URLs and the object store ----

  private presign(f: GhgaFile): string {
    const path = `/s3/${BUCKET}/${f.fileId}`;
    const date = amzDate(this.now());
    const expires = String(this.urlLifetimeS);
    const q = new URLSearchParams({
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': `FIXTUREACCESSKEY/${date.slice(0, 8)}/us-east-1/s3/aws4_request`,
      'X-Amz-Date': date,
      'X-Amz-Expires': expires,
      'X-Amz-SignedHeaders': 'host',
    });
    const sig = this.urlSignature(path, date, expires);
    q.set('X-Amz-Signature', sig);
    this.secrets.push(sig);
    return `${this.origin}${path}?${q.toString()}`;
  }

  private urlSignature(path: string, date: string, expires: string): string {
    return createHmac('sha256', this.urlSecret).update(`AWS4-HMAC-SHA256\n${date}\n${path}\n${expires}`).digest('hex');
  }

  private serveObject(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const isHead = req.method === 'HEAD';
    const q = url.searchParams;
    const date = q.get('X-Amz-Date') ?? '';
    const expires = q.get('X-Amz-Expires') ?? '';
    if (!/^\d{8}T\d{6}Z$/.test(date) || !/^\d+$/.test(expires) || q.get('X-Amz-Signature') !== this.urlSignature(url.pathname, date, expires)) {
      this.rejectedSignatures++;
      return storeError(res, isHead, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    }
    if (this.now() > parseAmzDate(date) + Number(expires) * 1000) {
      this.rejectedSignatures++;
      return storeError(res, isHead, 403, 'AccessDenied', 'Request has expired');
    }
    if (req.method !== 'GET' && !isHead) return storeError(res, false, 405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
    const f = this.byFileId.get(url.pathname.slice(`/s3/${BUCKET}/`.length));
    if (!f) return storeError(res, isHead, 404, 'NoSuchKey', 'The specified key does not exist.');
    const size = f.body.length;
    const about = { etag: f.etag, 'last-modified': f.lastModified.toUTCString(), 'accept-ranges': 'bytes' };
    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && ifMatch.trim() !== '*' && !ifMatch.split(',').some((t) => t.trim() === f.etag)) {
      return storeError(res, isHead, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', about);
    }
    const range = req.headers.range === undefined ? undefined : parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') return storeError(res, isHead, 416, 'InvalidRange', 'The requested range is not satisfiable', { ...about, 'content-range': `bytes */${size}` });
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const headers: Record<string, string> = { ...about, 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1) };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (isHead) {
      res.end();
      return;
    }
    let cutAt: number | undefined;
    if (this.cuts.remaining > 0 && this.cuts.afterBytes < end - start + 1) {
      this.cuts.remaining--;
      cutAt = this.cuts.afterBytes;
    }
    void this.stream(res, f.body.subarray(start, end + 1), cutAt);
  }

  /** Writes in slices, waiting for 'drain'; with `cutAt`, destroys the socket after that many bytes. */
  private async stream(res: ServerResponse, body: Buffer, cutAt?: number): Promise<void> {
    let closed = false;
    res.once('close', () => (closed = true));
    const stop = cutAt ?? body.length;
    for (let at = 0; at < stop && !closed; at += WRITE_CHUNK) {
      const slice = body.subarray(at, Math.min(at + WRITE_CHUNK, stop));
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
    if (closed) return;
    if (cutAt !== undefined) {
      // Let the bytes written so far reach the client, then break the connection mid-body.
      await new Promise<void>((resolve) => setTimeout(resolve, 20));
      res.socket?.destroy();
      return;
    }
    res.end();
  }
}

// ---- helpers ----






