// Two modules of undici (whose package has no "exports" map, so its files can be imported), typed
// with undici's own declarations. src/transport/http-transport.ts imports them instead of the
// package's index, which loads everything undici has (fetch, WebSocket, the cache stores, the mock
// agents: ~1 MB of JavaScript, ~35 ms of every start-up) for one Agent and one request function.
declare module 'undici/lib/dispatcher/agent.js' {
  import { Agent } from 'undici';
  export = Agent;
}
declare module 'undici/lib/api/api-request.js' {
  import type { Dispatcher } from 'undici';
  /** Dispatcher.request, as undici's index puts it on every dispatcher: called with the dispatcher as `this`. */
  function request(this: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
  export = request;
}
