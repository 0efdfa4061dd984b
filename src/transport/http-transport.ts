/**
 * HTTP transport: undici keep-alive pools (a bounded number of sockets per origin), closed Range
 * requests checked byte for byte, and the one retry policy (./retry.ts).
 *
 * `fetchRange(url, start, end)` delivers exactly the bytes [start, end) of the pinned version, in
 * order, through `onData`, or throws a typed SlicefsError. Per attempt:
 *   - send `Range: bytes=pos-(end-1)` (closed ranges keep sockets reusable) and `If-Match` with a
 *     strong pinned ETag, so a changed object answers 412 instead of new bytes;
 *   - 206: `Content-Range` must be exactly `bytes pos-(end-1)/size`, ETag/size must match the pin;
 *   - 200 (the server ignored Range): the full body is read, the bytes before `pos` are skipped and
 *     the body is dropped once `end` is reached; its Content-Length, when sent, must be the pinned size;
 *   - a body that breaks off (reset, idle timeout, short body) is resumed from the first byte not
 *     yet delivered: delivered bytes are never delivered twice;
 *   - redirects are followed, and the target remembered per URL (./redirects.ts); the version is
 *     pinned on, and every check made on, the answer at the end of the chain;
 *   - an answer that is not data (an HTML page, a JSON error document, encoded bytes:
 *     ./wrong-content.ts) is WRONG_CONTENT, not bytes; every data request asks for identity.
 */
import type { Dispatcher } from 'undici';
// The two parts of undici used, not its index (../types/undici-parts.d.ts says why).
import Agent from 'undici/lib/dispatcher/agent.js';
import dispatcherRequest from 'undici/lib/api/api-request.js';
import type { TransportConfig } from '../config.js';
import { SlicefsError, codeForStatus, isRetryableStatus } from '../errors.js';
import type { Stats } from '../stats.js';
import { safeUrl, urlPath } from '../util/redact.js';
import { CacheProxyRouter, tierDeclined } from './cache-proxy.js';
import { refuseCleartextCredentials } from './cleartext.js';
import { REDIRECT_STATUSES, RedirectMemory, TARGET_REFUSED, headersAcrossOrigins, nextHop, originOf } from './redirects.js';
import { checkRetryableStatus, withRetry } from './retry.js';
import type { FetchRangeOptions, Transport } from './transport.js';
import { isStrongEtag, statedMd5, versionMismatch, type ObjectVersion } from './version.js';
import { htmlPageTitle, looksLikeMarkup, suspectAnswer, wrongContentError, type Suspect } from './wrong-content.js';

// The HTML recognition lives with the other checks of what came back; the Score path imports it from here too.
export { htmlPageTitle } from './wrong-content.js';

/** Statuses of a HEAD that mean "ask with a 1-byte GET instead" (S3 presigned GET URLs answer HEAD with 403). */
const HEAD_REFUSED = new Set([400, 403, 405, 501]);

export class HttpTransport implements Transport {
  private readonly agent: Agent;
  private readonly warnedIgnoredRange = new Set<string>();
  /** `--cache-proxy`: the shared cache tier that data requests (probe, fetchRange) go through. */
  private readonly tier?: CacheProxyRouter;
  /** Where each URL's redirects led (data requests only), so its later requests go there directly. */
  private readonly redirects = new RedirectMemory();

  constructor(
    readonly config: TransportConfig,
    readonly stats: Stats,
    private readonly warn: (msg: string) => void = () => {},
  ) {
    this.agent = new Agent({
      connections: config.connectionsPerOrigin,
      connect: { timeout: config.connectTimeoutMs },
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyIdleTimeoutMs,
      // Keep idle sockets a while: readers come back to the same origin in bursts.
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
    });
    if (config.cacheProxy) this.tier = new CacheProxyRouter(config.cacheProxy, warn);
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }

  /**
   * Size and version of an object: HEAD, or a 1-byte ranged GET where HEAD is refused.
   */
  async probe(url: string, headers: Record<string, string> = {}): Promise<ObjectVersion> {
    const what = `HEAD ${safeUrl(url)}`;
    try {
      return await this.retrying(what, async (signal) => {
        const answer = await this.sendData(url, 'HEAD', headers, signal);
        const { res } = answer;
        const whatAt = what + redirectedTo(url, answer.url);
        discard(res, ERROR_BODY_KEEP);
        if (res.statusCode === 200) {
          const suspect = suspectAnswer(answerHeaders(res), [url, answer.url]);
          if (suspect?.kind === 'encoding') throw wrongContentError(whatAt, suspect, res.statusCode);
          // A page or a JSON document: the GET below reads what it says (or finds data after all).
          if (suspect) throw new HeadRefused();
          const size = Number(header(res, 'content-length'));
          if (!Number.isFinite(size)) throw new SlicefsError('BAD_RESPONSE', `${whatAt}: no Content-Length`);
          return versionOf(res, size, true);
        }
        if (HEAD_REFUSED.has(res.statusCode)) throw new HeadRefused();
        checkRetryableStatus(res.statusCode, res.headers['retry-after']);
        throw statusError(whatAt, res.statusCode);
      });
    } catch (err) {
      if (!(err instanceof HeadRefused)) throw err;
    }
    const getWhat = `GET ${safeUrl(url)} (size probe)`;
    return this.retrying(getWhat, async (signal) => {
      const answer = await this.sendData(url, 'GET', { ...headers, range: 'bytes=0-0' }, signal);
      const { res } = answer;
      const whatAt = getWhat + redirectedTo(url, answer.url);
      if (res.statusCode === 206 || res.statusCode === 200) {
        const body = res.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        const looked = await refuseWrongContent(whatAt, res, body, [url, answer.url]).catch((err: unknown) => {
          discard(res);
          throw err;
        });
        // A look at the body (labelled HTML, but data) started its iterator: end the body there.
        if (looked !== undefined) void body.return?.().catch(() => {});
      }
      if (res.statusCode === 206) {
        discard(res, ERROR_BODY_KEEP);
        const cr = parseContentRange(header(res, 'content-range'));
        if (!cr || cr.size === undefined) throw new SlicefsError('BAD_RESPONSE', `${whatAt}: bad Content-Range`);
        return versionOf(res, cr.size);
      }
      if (res.statusCode === 200) {
        // Range ignored: the length of the full body is the size; do not read it.
        discard(res);
        const size = Number(header(res, 'content-length'));
        if (!Number.isFinite(size)) throw new SlicefsError('BAD_RESPONSE', `${whatAt}: no Content-Length`);
        return versionOf(res, size, true);
      }
      discard(res, ERROR_BODY_KEEP);
      if (res.statusCode === 416) {
        // Only an empty object has no byte 0.
        const cr = parseContentRange(header(res, 'content-range'));
        if (cr?.size === 0) return versionOf(res, 0);
      }
      checkRetryableStatus(res.statusCode, res.headers['retry-after']);
      throw statusError(whatAt, res.statusCode);
    });
  }

  /** Delivers bytes [start, end) of `url` at `opts.version` through `opts.onData`. */
  async fetchRange(url: string, start: number, end: number, opts: FetchRangeOptions): Promise<void> {
    const { version } = opts;
    if (start < 0 || end > version.size || start > end) {
      throw new SlicefsError('BAD_RESPONSE', `range ${start}-${end} outside object of ${version.size} bytes`);
    }
    if (start === end) return;
    let pos = start;
    const what = `GET ${safeUrl(url)} bytes=${start}-${end - 1}`;
    await this.retrying(
      what,
      async (signal, progress) => {
        // Every byte came and then the connection broke (before the body's end was read): done.
        if (pos === end) return;
        const headers: Record<string, string> = { ...opts.headers, range: `bytes=${pos}-${end - 1}` };
        if (isStrongEtag(version.etag)) headers['if-match'] = version.etag;
        const answer = await this.sendData(url, 'GET', headers, signal);
        const { res } = answer;
        const whatAt = what + redirectedTo(url, answer.url);
        if (res.statusCode !== 206 && res.statusCode !== 200) {
          discard(res, ERROR_BODY_KEEP);
          checkRetryableStatus(res.statusCode, res.headers['retry-after']);
          throw statusError(whatAt, res.statusCode);
        }
        // One iterator for the whole body: the look at its first bytes must not end the stream.
        const body = res.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        let head: Buffer[];
        try {
          head = (await refuseWrongContent(whatAt, res, body, [url, answer.url])) ?? [];
        } catch (err) {
          discard(res);
          throw err;
        }
        let skip = 0;
        let expected: number;
        if (res.statusCode === 206) {
          const cr = parseContentRange(header(res, 'content-range'));
          if (!cr || cr.start !== pos || cr.end !== end - 1) {
            discard(res);
            throw new SlicefsError(
              'BAD_RESPONSE',
              `${whatAt}: server answered Content-Range '${header(res, 'content-range') ?? ''}' for bytes=${pos}-${end - 1}`,
            );
          }
          const length = header(res, 'content-length');
          if (length !== undefined && Number(length) !== end - pos) {
            discard(res);
            throw new SlicefsError('BAD_RESPONSE', `${whatAt}: server answered Content-Length ${length} for the ${end - pos} bytes of its Content-Range`);
          }
          checkVersion(whatAt, version, versionOf(res, cr.size ?? version.size));
          expected = end - pos;
        } else {
          // 200 to a ranged request: the whole object follows. Correct, only slow.
          const size = Number(header(res, 'content-length') ?? NaN);
          checkVersion(whatAt, version, versionOf(res, Number.isFinite(size) ? size : version.size));
          this.stats.rangeIgnored++;
          const origin = new URL(answer.url).origin;
          if (!this.warnedIgnoredRange.has(origin)) {
            this.warnedIgnoredRange.add(origin);
            this.warn(`warning: ${new URL(answer.url).host} ignores Range requests; reads from it fetch whole files`);
          }
          skip = pos;
          expected = end - pos;
        }
        let got = 0;
        try {
          for (;;) {
            let chunk: Buffer;
            if (head.length > 0) chunk = head.shift()!;
            else {
              const next = await body.next();
              if (next.done) break;
              chunk = next.value;
            }
            this.stats.bytesFetched += chunk.length;
            if (skip > 0) {
              if (chunk.length <= skip) {
                skip -= chunk.length;
                continue;
              }
              chunk = chunk.subarray(skip);
              skip = 0;
            }
            if (got + chunk.length > expected) chunk = chunk.subarray(0, expected - got);
            got += chunk.length;
            pos += chunk.length;
            // Progress is counted before waiting on the consumer: a wait it asked for is not a stall.
            progress();
            const wait = opts.onData(chunk);
            if (wait) await wait;
            // A 200 carries the rest of the object: stop reading it. A 206 ends by itself, and
            // leaving the loop early would destroy the body and with it the keep-alive socket.
            if (got === expected && res.statusCode === 200) break;
          }
        } finally {
          // Leaving a 200 early (or an error) must not leave the socket half-read.
          if (got < expected || res.statusCode === 200) discard(res);
        }
        if (got < expected) {
          // Short body without a transport error: treat as a broken connection, resume from pos.
          throw Object.assign(new Error(`body ended after ${got} of ${expected} bytes`), { code: 'UND_ERR_SOCKET' });
        }
      },
      opts.signal,
    );
  }

  private async retrying<T>(
    what: string,
    fn: (signal: AbortSignal, progress: () => void) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    try {
      return await withRetry(this.config.retry, what, (ctx) => fn(ctx.signal, ctx.progress), {
        signal,
        onRetry: (failure, delay) => {
          this.stats.retries++;
          this.config.log?.(`retry in ${delay}ms: ${what}: ${failure.error.message}`);
        },
      });
    } catch (err) {
      // A fetch its caller cancelled (a readahead dropped at close) is not a failure of the server.
      if (!(err instanceof HeadRefused) && !signal?.aborted) this.stats.errors++;
      throw err;
    }
  }

  /**
   * GET of a small JSON document (an API's answer, e.g. Score's object specification), with the
   * same retry policy as data reads. The body is capped at `maxBytes`; a non-JSON answer (some
   * deployments answer errors with an HTML page) is BAD_RESPONSE, an HTML page named by its title.
   */
  async getJson(url: string, headers: Record<string, string> = {}, maxBytes = 16 * 1024 * 1024): Promise<unknown> {
    const what = `GET ${safeUrl(url)}`;
    const text = await this.getBody(url, { accept: 'application/json', ...headers }, maxBytes);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      const title = htmlPageTitle(text);
      if (title !== undefined) throw new HttpStatusError('BAD_RESPONSE', `${what}: an HTML page${title ? ` ("${title}")` : ''}, not JSON`, 200, title);
      throw new SlicefsError('BAD_RESPONSE', `${what}: the answer is not JSON`);
    }
  }

  /** GET of a small text document (e.g. Score's `/download/ping`, a bare URL), as getJson. */
  async getText(url: string, headers: Record<string, string> = {}, maxBytes = 1024 * 1024): Promise<string> {
    return this.getBody(url, { accept: 'text/plain, application/json', ...headers }, maxBytes);
  }

  /** The body of a 200 answer as text, at most `maxBytes`; any other status is a statusError. */
  private getBody(url: string, headers: Record<string, string>, maxBytes: number): Promise<string> {
    const what = `GET ${safeUrl(url)}`;
    let lastPageTitle: string | undefined;
    return this.retrying(what, async (signal) => {
      const { res } = await this.follow(url, url, 'GET', headers, signal, false);
      if (res.statusCode !== 200) {
        // An HTML error page is read (it is small, and reading it keeps the socket) for its title only.
        const isPage = /html/i.test(header(res, 'content-type') ?? '');
        lastPageTitle = isPage ? (htmlPageTitle(await readCapped(res, ERROR_BODY_KEEP), true) ?? '') : undefined;
        if (!isPage) discard(res, ERROR_BODY_KEEP);
        checkRetryableStatus(res.statusCode, res.headers['retry-after']);
        throw statusError(what, res.statusCode, lastPageTitle);
      }
      const text = await readCapped(res, maxBytes);
      if (text === undefined) throw new SlicefsError('BAD_RESPONSE', `${what}: answer larger than ${maxBytes} bytes`);
      return text;
    }).catch((err: unknown) => {
      // A 5xx page that outlasted the retries: its final error names the status; add the page's title.
      if (lastPageTitle !== undefined && err instanceof SlicefsError && err.status && !(err instanceof HttpStatusError)) {
        throw new HttpStatusError(err.code, `${err.message}${pageNote(lastPageTitle)}`, err.status, lastPageTitle);
      }
      throw err;
    });
  }

  /**
   * One API request whose answer the caller interprets, whatever its status: for services that
   * answer 201 and 202 or explain a refusal in a JSON body the caller must read (GHGA's, see
   * src/source/ghga/). Statuses worth a retry (408, 429, 5xx) and broken connections are retried
   * with the same policy as every request; any other status comes back with its headers and its
   * body (at most `maxBytes`, as text) instead of being thrown.
   */
  async request(
    url: string,
    opts: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; maxBytes?: number } = {},
  ): Promise<ApiResponse> {
    const method = opts.method ?? 'GET';
    const maxBytes = opts.maxBytes ?? 1024 * 1024;
    const what = `${method} ${safeUrl(url)}`;
    return this.retrying(what, async (signal) => {
      const res = await this.send(url, method, opts.headers ?? {}, signal, opts.body);
      if (isRetryableStatus(res.statusCode)) {
        discard(res, ERROR_BODY_KEEP);
        checkRetryableStatus(res.statusCode, res.headers['retry-after']);
      }
      const body = await readCapped(res, maxBytes);
      if (body === undefined) throw new SlicefsError('BAD_RESPONSE', `${what}: answer larger than ${maxBytes} bytes`);
      const headers: Record<string, string | undefined> = {};
      for (const name of Object.keys(res.headers)) headers[name] = header(res, name);
      return { status: res.statusCode, headers, body };
    });
  }

  /**
   * A request for object bytes, redirects followed (./redirects.ts): to where `url` led last time
   * when that is remembered and still good, and from `url` itself when it is not, or when the
   * remembered target refuses (401, 403, 404, 410). Asks for the bytes unencoded.
   */
  private async sendData(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>, signal: AbortSignal): Promise<Answer> {
    const asked = { ...headers, 'accept-encoding': 'identity' };
    const remembered = this.redirects.get(url);
    if (remembered !== undefined) {
      const answer = await this.follow(url, remembered, method, asked, signal, true);
      if (!TARGET_REFUSED.has(answer.res.statusCode)) return this.noteTarget(url, answer);
      discard(answer.res, ERROR_BODY_KEEP);
      this.redirects.forget(url);
      this.config.log?.(`redirect target ${safeUrl(answer.url)} answered ${answer.res.statusCode}: asking ${safeUrl(url)} again`);
    }
    return this.noteTarget(url, await this.follow(url, url, method, asked, signal, true));
  }

  /** Remembers where a chain that ended in a 2xx led (and forgets nothing otherwise). */
  private noteTarget(url: string, answer: Answer): Answer {
    const ok = answer.res.statusCode >= 200 && answer.res.statusCode < 300;
    if (ok && answer.url !== url && this.redirects.get(url) !== answer.url) {
      this.redirects.remember(url, answer.url);
      this.config.log?.(`redirect: ${safeUrl(url)} → ${safeUrl(answer.url)} (remembered)`);
    }
    return answer;
  }

  /**
   * One request and the redirects of its answer, from `start` (`url` or a remembered target of
   * it), until an answer that is not a redirect: credentials only to `url`'s origin, until the
   * chain leaves it. `viaTier`: each hop is a data request, sent through the cache tier if any.
   */
  private async follow(
    url: string,
    start: string,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    signal: AbortSignal,
    viaTier: boolean,
  ): Promise<Answer> {
    const home = originOf(url);
    const chain = [start];
    let current = start;
    let left = originOf(start) !== home;
    for (;;) {
      const sent = left ? headersAcrossOrigins(headers) : headers;
      const res = viaTier ? await this.sendOne(current, method, sent, signal) : await this.send(current, method, sent, signal);
      if (!REDIRECT_STATUSES.has(res.statusCode)) return { res, url: current };
      const location = header(res, 'location');
      discard(res, ERROR_BODY_KEEP);
      const next = nextHop(`${method} ${safeUrl(url)}`, res.statusCode, current, location, chain);
      this.config.log?.(`redirect ${res.statusCode}: ${safeUrl(current)} → ${safeUrl(next)}`);
      if (originOf(next) !== home) left = true;
      chain.push(next);
      current = next;
    }
  }

  /**
   * One request for object bytes: through the cache tier when there is one (see ./cache-proxy.ts), and
   * to the origin directly when the tier fails it (no answer, 5xx, 421). The answer is checked by
   * the caller as any origin's: the tier passes Content-Range, ETag and If-Match through, and a
   * redirect of the origin's as it is (its Location is resolved against the origin's URL).
   */
  private async sendOne(
    url: string,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    const viaTier = this.tier?.route(url, headers);
    if (this.tier && viaTier !== undefined) {
      try {
        const res = await this.send(viaTier, method, headers, signal);
        // An empty object has no first slice: the tier answers a HEAD with 416. Ask the origin.
        const empty = method === 'HEAD' && res.statusCode === 416;
        if (!tierDeclined(res.statusCode) && !empty) return res;
        discard(res, ERROR_BODY_KEEP);
        if (!empty) this.tier.failed(res.statusCode === 421 ? 'HTTP 421: not one of its origins' : `HTTP ${res.statusCode}`, false);
      } catch (err) {
        // The reader gave up or the budget ran out: not the tier's failure.
        if (signal.aborted) throw err;
        this.tier.failed((err as { code?: string }).code ?? 'no answer', true);
      }
    }
    return this.send(url, method, headers, signal);
  }

  private async send(
    url: string,
    method: 'GET' | 'HEAD' | 'POST',
    headers: Record<string, string>,
    signal: AbortSignal,
    body?: string,
  ): Promise<Dispatcher.ResponseData> {
    // The one place every request passes: a credential never goes over plain http (./cleartext.ts).
    refuseCleartextCredentials(url, headers);
    this.stats.requests++;
    const t0 = performance.now();
    // What undici's `request(url, { dispatcher })` does: the URL split into origin and path.
    const u = new URL(url);
    const res = await dispatcherRequest.call(this.agent, { origin: u.origin, path: u.pathname + u.search, method, headers, signal, body });
    this.config.log?.(
      `${method} ${urlPath(url)} ${headers.range ?? '-'} ${res.statusCode} ${Math.round(performance.now() - t0)}ms`,
    );
    return res;
  }
}

/** An answer to a data request, and the URL that gave it (after redirects). */
interface Answer {
  res: Dispatcher.ResponseData;
  url: string;
}

/** For messages about an answer: where it came from, when a redirect led there. */
function redirectedTo(url: string, answeredBy: string): string {
  return answeredBy === url ? '' : ` (redirected to ${safeUrl(answeredBy)})`;
}

function answerHeaders(res: Dispatcher.ResponseData): { contentType?: string; contentEncoding?: string; contentDisposition?: string } {
  return { contentType: header(res, 'content-type'), contentEncoding: header(res, 'content-encoding'), contentDisposition: header(res, 'content-disposition') };
}

/**
 * Throws WRONG_CONTENT when a 2xx answer to a data request is not data (./wrong-content.ts),
 * after reading at most ERROR_BODY_KEEP of it to say what it is. Otherwise returns the chunks it
 * read from `body` to decide (they are data, to be delivered first), or undefined when it did not
 * look at the body (it only does for an answer labelled HTML).
 */
async function refuseWrongContent(what: string, res: Dispatcher.ResponseData, body: AsyncIterator<Buffer>, urls: string[]): Promise<Buffer[] | undefined> {
  const suspect: Suspect | undefined = suspectAnswer(answerHeaders(res), urls);
  if (suspect === undefined) return undefined;
  if (suspect.kind === 'encoding') throw wrongContentError(what, suspect, res.statusCode);
  const read: Buffer[] = [];
  let size = 0;
  let ended = false;
  const more = async () => {
    const next = await body.next();
    if (next.done) ended = true;
    else {
      read.push(next.value);
      size += next.value.length;
    }
  };
  if (suspect.kind === 'html') {
    // Labelled HTML: a page only if it starts like one (a data file a server mislabels does not).
    let look: boolean | undefined;
    while ((look = looksLikeMarkup(Buffer.concat(read))) === undefined && !ended && size < ERROR_BODY_KEEP) await more();
    if (look !== true) return read;
  }
  while (!ended && size < ERROR_BODY_KEEP) await more();
  throw wrongContentError(what, suspect, res.statusCode, Buffer.concat(read).subarray(0, ERROR_BODY_KEEP).toString('utf8'));
}

/** An answer of `request()`: status, headers (one value each) and body text. */
export interface ApiResponse {
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}

class HeadRefused extends Error {}

/** An error body up to this size is read to the end so its keep-alive socket can be reused. */
const ERROR_BODY_KEEP = 64 * 1024;

/** Drops the rest of a body without reading it, and without an error event nobody listens to. */
function discard(res: Dispatcher.ResponseData, keepAliveLimit = 0): void {
  // A small rest (an error page) is read to keep the socket; a large one closes it.
  res.body.dump({ limit: keepAliveLimit }).catch(() => {});
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The version a response names. `whole`: the response is about the whole object (a HEAD or a 200),
 * so an MD5 it states is the object's (on a 206, Content-MD5 would be the part's).
 */
function versionOf(res: Dispatcher.ResponseData, size: number, whole = false): ObjectVersion {
  const v: ObjectVersion = { size, etag: header(res, 'etag'), lastModified: header(res, 'last-modified') };
  const md5 = whole ? statedMd5(header(res, 'content-md5'), header(res, 'x-goog-hash')) : undefined;
  if (md5) v.md5 = md5;
  return v;
}

function checkVersion(what: string, pinned: ObjectVersion, seen: ObjectVersion): void {
  const why = versionMismatch(pinned, seen);
  if (why) throw new SlicefsError('STALE', `${what}: the object changed on the server (${why})`);
}

/**
 * A final HTTP status as an error. `pageTitle`: the answer was an HTML page (some deployments
 * answer errors so) with this title ('' without one): the message names it, never the page's body.
 */
function statusError(what: string, status: number, pageTitle?: string): SlicefsError {
  const code = codeForStatus(status);
  const hint =
    code === 'ACCESS_DENIED'
      ? ' (access denied: check the token or whether the URL expired)'
      : code === 'NOT_FOUND'
        ? ' (not found)'
        : code === 'STALE'
          ? ' (the object changed on the server)'
          : '';
  if (pageTitle === undefined) return new SlicefsError(code, `${what}: HTTP ${status}${hint}`, { status });
  return new HttpStatusError(code, `${what}: HTTP ${status}${hint}${pageNote(pageTitle)}`, status, pageTitle);
}

/** An error whose answer was an HTML page: `pageTitle` is its <title> text ('' when it has none). */
export class HttpStatusError extends SlicefsError {
  constructor(
    code: SlicefsError['code'],
    message: string,
    status: number,
    readonly pageTitle: string,
  ) {
    super(code, message, { status });
  }
}

function pageNote(title: string): string {
  return title ? `, an HTML page: "${title}"` : ', an HTML page';
}

/** Reads a whole body as UTF-8 text; undefined (and the rest dropped) when it exceeds `maxBytes`. */
async function readCapped(res: Dispatcher.ResponseData, maxBytes: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      discard(res);
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses `bytes a-b/size` (size may be `*`) and `bytes * /size`. */
export function parseContentRange(v: string | undefined): { start?: number; end?: number; size?: number } | undefined {
  if (!v) return undefined;
  let m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim());
  if (m) {
    return { start: Number(m[1]), end: Number(m[2]), size: m[3] === '*' ? undefined : Number(m[3]) };
  }
  m = /^bytes \*\/(\d+)$/.exec(v.trim());
  if (m) return { size: Number(m[1]) };
  return undefined;
}
