/**
 * Answers that are not the data asked for, told from the data a server sends with an odd type.
 * A 2xx answer to a data request (a probe, a Range GET) is refused (WRONG_CONTENT) when it is:
 *
 *   - encoded: a `Content-Encoding` other than identity (slicefs asks for identity). Its bytes are a
 *     compression of the data, not the data, and its Content-Range does not count the data's bytes;
 *   - an HTML page: `text/html` (or XHTML) whose body starts like markup (`<` after white space),
 *     unless the file's name ends in .html, .htm or .xhtml. A sign-in or error page, as portals answer
 *     when a session is missing. A data file that a server labels text/html is still served, because
 *     its bytes do not start with `<` (BAM, CRAM, gzip, FASTA, SAM, VCF…);
 *   - a JSON document: `application/json` (or `text/json`, or another `+json` type) unless the
 *     file's name has a json extension (.json, .geojson, .ndjson, .jsonl…), and
 *     `application/problem+json` always (RFC 9457: an error, never a file).
 *
 * The file's names are the paths of the URL asked for and of the URL that answered (after
 * redirects), and the `filename` of a Content-Disposition. What came back is named in the error by
 * the page's <title> or the JSON's message, cut to 100 characters and redacted (no query string, no
 * Bearer token): never the body, which may echo the request.
 */
import { SlicefsError } from '../errors.js';
import { redactLine } from '../util/redact.js';

/** What a data answer is, when its headers say it may not be data. */
export type Suspect =
  | { kind: 'encoding'; encoding: string }
  /** Text/html: refused if the body looks like markup (see `looksLikeMarkup`). */
  | { kind: 'html' }
  | { kind: 'json' };

const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);
const HTML_NAME = /\.(html?|xhtml)$/i;
const JSON_NAME = /\.[a-z0-9]*json[a-z0-9]*$/i;

/** The headers a data answer is judged by (one value each). */
export interface AnswerHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
}

/**
 * Whether a 2xx answer to a data request may not be data, by its headers and the file's names
 * (`urls`: the URL asked for, and the one that answered). HTML needs a look at the body too.
 */
export function suspectAnswer(h: AnswerHeaders, urls: readonly string[]): Suspect | undefined {
  const encodings = (h.contentEncoding ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '' && e !== 'identity');
  if (encodings.length > 0) return { kind: 'encoding', encoding: encodings.join(', ') };
  const type = (h.contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/problem+json') return { kind: 'json' };
  const names = fileNames(urls, h.contentDisposition);
  if (HTML_TYPES.has(type)) return names.some((n) => HTML_NAME.test(n)) ? undefined : { kind: 'html' };
  const isJson = type === 'application/json' || type === 'text/json' || /^application\/[\w.-]+\+json$/.test(type);
  if (isJson) return names.some((n) => JSON_NAME.test(n)) ? undefined : { kind: 'json' };
  return undefined;
}

/** The paths of `urls` and the filename of a Content-Disposition. */
function fileNames(urls: readonly string[], disposition: string | undefined): string[] {
  const names: string[] = [];
  for (const u of urls) {
    try {
      names.push(new URL(u).pathname);
    } catch {
      // Not a URL: it names nothing.
    }
  }
  const m = /filename\*?\s*=\s*(?:[\w-]+'[^']*')?"?([^";]+)"?/i.exec(disposition ?? '');
  if (m) names.push(m[1].trim());
  return names;
}

/**
 * Whether the first bytes of a body look like markup: true when the first byte that is not white
 * space (or a UTF-8 byte order mark) is `<`, false when it is anything else, undefined while only
 * white space has come (read more).
 */
export function looksLikeMarkup(head: Buffer): boolean | undefined {
  let i = head.length >= 3 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x09 || head[i] === 0x0a || head[i] === 0x0d || head[i] === 0x0c)) i++;
  if (i === head.length) return undefined;
  return head[i] === 0x3c;
}

/** Longest title or message shown. */
const SHOWN_CHARS = 100;

function cut(text: string): string {
  const one = redactLine(text.replace(/\s+/g, ' ').trim());
  return one.length > SHOWN_CHARS ? `${one.slice(0, SHOWN_CHARS - 1)}…` : one;
}

/**
 * The <title> of an HTML page, whitespace collapsed, redacted and cut to 100 characters; '' for a
 * page without one; undefined when `text` does not look like HTML (and `knownHtml`, from the
 * Content-Type, does not say it is). Only the title is ever shown: a page's body may echo the
 * request (its URL with a signature, its headers with the token).
 */
export function htmlPageTitle(text: string | undefined, knownHtml = false): string | undefined {
  if (text === undefined || !(knownHtml || /^\s*<(!doctype html|html|head|body|title)\b/i.test(text))) return undefined;
  const m = /<title[^>]*>([^<]*)<\/title>/i.exec(text);
  const title = (m?.[1] ?? '').replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e] ?? '');
  return cut(title);
}

/** Fields that carry the human-readable part of JSON error documents, in the order looked at. */
const MESSAGE_FIELDS = ['message', 'error_description', 'detail', 'title', 'error', 'msg', 'errorMessage', 'description'];

/**
 * The message of a JSON error document (`message`, `detail`, `error`…, also one level down, as in
 * `{"error": {"message": …}}`), redacted and cut to 100 characters; undefined when it has none.
 */
export function jsonMessage(text: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // Cut short (a capped read) or not JSON at all: a "message" field may still be readable.
    const m = /"(?:message|detail|error_description|error)"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(text);
    return m ? cut(m[1].replace(/\\(.)/g, '$1')) : undefined;
  }
  const find = (v: unknown, depth: number): string | undefined => {
    if (v === null || typeof v !== 'object' || depth > 1) return undefined;
    const o = v as Record<string, unknown>;
    for (const f of MESSAGE_FIELDS) if (typeof o[f] === 'string' && (o[f] as string).trim()) return o[f] as string;
    for (const f of MESSAGE_FIELDS) {
      const inner = find(o[f], depth + 1);
      if (inner !== undefined) return inner;
    }
    return undefined;
  };
  const msg = find(Array.isArray(doc) ? doc[0] : doc, 0);
  return msg === undefined ? undefined : cut(msg);
}

/** The error for an answer that is not data; `body`: what was read of it (for the title or message). */
export function wrongContentError(what: string, suspect: Suspect, status: number, body?: string): SlicefsError {
  let text: string;
  if (suspect.kind === 'encoding') {
    text = `the data came back encoded (Content-Encoding: ${cut(suspect.encoding)}), not as the bytes asked for`;
  } else if (suspect.kind === 'html') {
    const title = htmlPageTitle(body, true);
    text = `an HTML page${title ? ` ("${title}")` : ''} came back instead of the data (a sign-in or error page?)`;
  } else {
    const msg = body === undefined ? undefined : jsonMessage(body);
    text = `a JSON document${msg ? ` ("${msg}")` : ''} came back instead of the data (an error answer?)`;
  }
  return new SlicefsError('WRONG_CONTENT', `${what}: ${text}`, { status });
}
