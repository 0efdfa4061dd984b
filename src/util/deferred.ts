/**
 * A promise with its resolve and reject in hand, for results that several waiters share and that
 * may have no waiter at all (a prefetch nobody awaits). Its rejection is marked handled: a failure
 * with nobody waiting must not become an unhandled rejection, which would kill the daemon. Node 20
 * has no `Promise.withResolvers`.
 */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}
