/**
 * The one retry policy of slicefs: exponential backoff with full jitter, Retry-After honoured, and a
 * wall-clock budget measured from the last progress (a body that keeps delivering bytes is never cut
 * by the budget; a server that answers nothing is given up on in `budgetMs`).
 *
 * Why not undici's RetryHandler: it has no overall deadline, and every read of the mount must answer
 * inside fuse-native's 15 s operation timeout with a typed error; it also cannot tell us which
 * failures were final so the errno table can name them. The loop is short; the policy is in one place.
 */
import type { RetryConfig } from '../config.js';
import { SlicefsError, isRetryableStatus, messageOf } from '../errors.js';

/** A failed attempt, classified. */
export interface AttemptFailure {
  retryable: boolean;
  /** Server-requested wait (Retry-After), in ms. */
  retryAfterMs?: number;
  error: Error;
}

export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Full-jitter backoff for attempt `n` (1-based): uniform in [0, min(max, base·2^(n-1))]. */
export function backoffMs(cfg: RetryConfig, attempt: number, random = Math.random): number {
  const ceiling = Math.min(cfg.maxDelayMs, cfg.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(random() * ceiling);
}

const RETRYABLE_NET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

/** Classifies an exception thrown by one attempt. SlicefsErrors are final unless marked otherwise. */
export function classifyError(err: unknown): AttemptFailure {
  if (err instanceof RetryableStatusError) {
    return { retryable: true, retryAfterMs: err.retryAfterMs, error: err };
  }
  if (err instanceof SlicefsError) return { retryable: false, error: err };
  const code = (err as { code?: string } | null)?.code;
  const error = err instanceof Error ? err : new Error(messageOf(err));
  return { retryable: code !== undefined && RETRYABLE_NET_CODES.has(code), error };
}

/** A status worth retrying (5xx, 429, 408), thrown by an attempt so the loop can wait and retry. */
export class RetryableStatusError extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`HTTP ${status}`);
  }
}

export function checkRetryableStatus(status: number, retryAfter: string | string[] | undefined): void {
  if (isRetryableStatus(status)) throw new RetryableStatusError(status, parseRetryAfter(retryAfter));
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export interface RetryContext {
  /** Aborts this attempt when the budget runs out (or the caller gives up). */
  signal: AbortSignal;
  /** Call when bytes arrive: restarts the budget clock. */
  progress(): void;
  attempt: number;
}

/**
 * Runs `attempt` until it succeeds, fails finally, or the budget is spent.
 * `describe` names the request in the final error (no query string: see util/redact).
 */
export async function withRetry<T>(
  cfg: RetryConfig,
  describe: string,
  attemptFn: (ctx: RetryContext) => Promise<T>,
  hooks: { onRetry?: (failure: AttemptFailure, delayMs: number) => void; signal?: AbortSignal } = {},
): Promise<T> {
  let lastProgress = Date.now();
  for (let attempt = 1; ; attempt++) {
    const budgetCtl = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (timer) clearTimeout(timer);
      const left = lastProgress + cfg.budgetMs - Date.now();
      timer = setTimeout(() => budgetCtl.abort(new BudgetExpired()), Math.max(1, left));
    };
    arm();
    const signal = hooks.signal ? AbortSignal.any([budgetCtl.signal, hooks.signal]) : budgetCtl.signal;
    try {
      return await attemptFn({
        signal,
        attempt,
        progress: () => {
          lastProgress = Date.now();
          arm();
        },
      });
    } catch (err) {
      if (hooks.signal?.aborted) throw hooks.signal.reason ?? err;
      if (budgetCtl.signal.aborted) {
        throw new SlicefsError('TIMEOUT', `${describe}: no answer within ${cfg.budgetMs / 1000}s (${attempt} attempts)`, {
          cause: err,
        });
      }
      const failure = classifyError(err);
      if (!failure.retryable) throw failure.error;
      const left = lastProgress + cfg.budgetMs - Date.now();
      // A server's Retry-After is obeyed as given; it fails the request only if it outlasts the budget.
      const delay = failure.retryAfterMs ?? backoffMs(cfg, attempt);
      if (attempt >= cfg.maxAttempts || delay >= left) {
        throw finalError(describe, failure.error, attempt);
      }
      hooks.onRetry?.(failure, delay);
      await sleep(delay, hooks.signal);
    } finally {
      clearTimeout(timer);
    }
  }
}

class BudgetExpired extends Error {
  constructor() {
    super('retry budget expired');
  }
}

function finalError(describe: string, err: Error, attempts: number): SlicefsError {
  if (err instanceof RetryableStatusError) {
    return new SlicefsError('HTTP_STATUS', `${describe}: HTTP ${err.status} after ${attempts} attempts`, {
      status: err.status,
    });
  }
  const code = (err as { code?: string }).code;
  const kind = code && /TIME(D)?OUT/.test(code) ? 'TIMEOUT' : 'NETWORK';
  return new SlicefsError(kind, `${describe}: ${messageOf(err)}${code ? ` (${code})` : ''} after ${attempts} attempts`, {
    cause: err,
  });
}
