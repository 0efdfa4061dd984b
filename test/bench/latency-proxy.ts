// A TCP proxy that emulates a WAN link in front of a local server (benchmarks only).
//
// Model, per direction (client->upstream and upstream->client), shared by all connections so the
// cap is the aggregate link rate:
//   - a FIFO bottleneck of `rateBitsPerSec`: a segment that arrives at time t starts serialising at
//     max(t, link free) and takes len*8/rate;
//   - then `oneWayDelayMs` of propagation: it is written to the other side at finish + delay.
//   - a new connection pays the TCP handshake (one RTT): its first client bytes are released no
//     earlier than accept + 3 * oneWayDelay (SYN, SYN-ACK, then the data itself), so a fresh
//     connection's time to first byte is 2 RTT, a kept-alive one's 1 RTT, as on a real link.
// Backpressure is bounded: when a direction of a connection holds more than `maxQueueBytes` (queued
// in the proxy + buffered in the destination socket), its source socket is paused, and resumed
// below 3/4 of that. The default limit is 2x the bandwidth-delay product + 1 MiB, enough for one
// connection to fill the link (~99% of the cap in practice).
// Not modelled: loss, TCP windows/slow start over the long link (the endpoints' TCP runs over
// loopback), jitter. Timer granularity adds up to ~1 ms late delivery.
//
// Standalone: node dist/test/bench/latency-proxy.js --upstream 8080 [--upstream-host 127.0.0.1]
//             [--delay 10] [--rate 1e9] [--port 0] [--no-handshake]
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { isMain } from './proc.js';

export interface LatencyProxyOptions {
  upstreamPort: number;
  upstreamHost?: string;
  /** One-way delay per direction, ms (RTT = 2x). Default 10. */
  oneWayDelayMs?: number;
  /** Aggregate rate per direction, bits/s; 0 or Infinity = uncapped. Default 1e9. */
  rateBitsPerSec?: number;
  /** Port to listen on (127.0.0.1). Default 0 = any free port. */
  listenPort?: number;
  /** Charge one RTT for the TCP handshake of each new connection. Default true. */
  emulateHandshake?: boolean;
  /** Per connection and direction queue limit before the source is paused. */
  maxQueueBytes?: number;
}

export interface LatencyProxyStats {
  connections: number;
  /** Bytes read from the client / from the upstream. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes that crossed the emulated link (written to the other side; data still queued when a
   * connection closes is dropped and not counted). */
  deliveredUp: number;
  deliveredDown: number;
}

export interface LatencyProxy {
  port: number;
  stats(): LatencyProxyStats;
  close(): Promise<void>;
}

/** Largest piece scheduled as one unit: keeps the pacing smooth at low rates. */
const SEGMENT = 16 * 1024;
/** Resume a paused source when its queue falls below this fraction of the limit. */
const RESUME_AT = 0.75;

/** One direction of the emulated link, shared by all connections. */
class Link {
  private freeAt = 0;
  private readonly bytesPerMs: number;

  constructor(rateBitsPerSec: number, readonly delayMs: number) {
    this.bytesPerMs = rateBitsPerSec > 0 && Number.isFinite(rateBitsPerSec) ? rateBitsPerSec / 8 / 1000 : Infinity;
  }

  /** Reserves the link for `bytes` arriving at `now`; returns the delivery time. */
  schedule(now: number, bytes: number): number {
    const start = Math.max(now, this.freeAt);
    const finish = start + bytes / this.bytesPerMs;
    this.freeAt = finish;
    return finish + this.delayMs;
  }
}

/** One direction of one proxied connection: src -> (link) -> dst. */
class Pipe {
  private readonly queue: { at: number; buf: Buffer }[] = [];
  private head = 0;
  private queuedBytes = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private srcEnded = false;
  private paused = false;
  private closed = false;
  bytes = 0;
  delivered = 0;

  constructor(
    readonly dir: 'up' | 'down',
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly link: Link,
    private readonly limit: number,
    /** Earliest delivery time of anything on this pipe (handshake emulation). */
    private readonly notBefore: number,
  ) {
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    // FIN (or the source going away, e.g. a reset): forward it after the data still in flight.
    const ended = () => {
      this.srcEnded = true;
      this.maybeFinish();
    };
    src.on('end', ended);
    src.on('close', ended);
    dst.on('drain', () => this.maybeResume());
    // Nothing more can be written: drop what is still in flight.
    dst.on('close', () => this.close());
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    const now = performance.now();
    for (let off = 0; off < chunk.length; off += SEGMENT) {
      const buf = chunk.subarray(off, Math.min(chunk.length, off + SEGMENT));
      let at = this.link.schedule(now, buf.length);
      if (at < this.notBefore) at = this.notBefore;
      if (at < this.lastAt) at = this.lastAt;
      this.lastAt = at;
      this.queue.push({ at, buf });
      this.queuedBytes += buf.length;
    }
    this.bytes += chunk.length;
    if (!this.paused && this.queuedBytes + this.dst.writableLength > this.limit) {
      this.paused = true;
      this.src.pause();
    }
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.closed || this.head >= this.queue.length) return;
    const wait = Math.max(0, this.queue[this.head].at - performance.now());
    this.timer = setTimeout(() => this.flush(), Math.ceil(wait));
  }

  private flush(): void {
    this.timer = null;
    if (this.closed) return;
    const now = performance.now();
    while (this.head < this.queue.length && this.queue[this.head].at <= now) {
      const { buf } = this.queue[this.head++];
      this.queuedBytes -= buf.length;
      this.delivered += buf.length;
      this.dst.write(buf);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.maybeResume();
    this.maybeFinish();
    this.arm();
  }

  private maybeResume(): void {
    if (this.paused && !this.closed && this.queuedBytes + this.dst.writableLength <= this.limit * RESUME_AT) {
      this.paused = false;
      this.src.resume();
    }
  }

  private maybeFinish(): void {
    if (this.srcEnded && this.head >= this.queue.length && !this.dst.writableEnded && !this.dst.destroyed) {
      this.dst.end();
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
  }
}

export async function startLatencyProxy(opts: LatencyProxyOptions): Promise<LatencyProxy> {
  const delay = opts.oneWayDelayMs ?? 10;
  const rate = opts.rateBitsPerSec ?? 1e9;
  const host = opts.upstreamHost ?? '127.0.0.1';
  const handshake = opts.emulateHandshake ?? true;
  const bdp = Number.isFinite(rate) && rate > 0 ? (rate / 8) * (delay / 1000) : 64 << 20;
  const limit = opts.maxQueueBytes ?? Math.max(1 << 20, Math.ceil(2 * bdp) + (1 << 20));
  const up = new Link(rate, delay);
  const down = new Link(rate, delay);
  const sockets = new Set<net.Socket>();
  const live = new Set<Pipe>();
  const stats: LatencyProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0, deliveredUp: 0, deliveredDown: 0 };

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    stats.connections++;
    const accepted = performance.now();
    const upstream = net.connect({ host, port: opts.upstreamPort, allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    const c2u = new Pipe('up', client, upstream, up, limit, handshake ? accepted + 3 * delay : 0);
    const u2c = new Pipe('down', upstream, client, down, limit, 0);
    live.add(c2u);
    live.add(u2c);
    // Errors are followed by 'close'; the pipes react to 'end'/'close'. The pair is forgotten once
    // both sockets are fully closed.
    client.on('error', () => {});
    upstream.on('error', () => {});
    let open = 2;
    const closed = () => {
      if (--open > 0) return;
      c2u.close();
      u2c.close();
      live.delete(c2u);
      live.delete(u2c);
      stats.bytesUp += c2u.bytes;
      stats.bytesDown += u2c.bytes;
      stats.deliveredUp += c2u.delivered;
      stats.deliveredDown += u2c.delivered;
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', closed);
    upstream.on('close', closed);
    client.resume();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listenPort ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  let closing: Promise<void> | null = null;
  return {
    port,
    stats: () => {
      const out = { ...stats };
      for (const p of live) {
        if (p.dir === 'up') {
          out.bytesUp += p.bytes;
          out.deliveredUp += p.delivered;
        } else {
          out.bytesDown += p.bytes;
          out.deliveredDown += p.delivered;
        }
      }
      return out;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const p of live) p.close();
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Standalone.

function parseCli(argv: string[]): LatencyProxyOptions {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      upstream: { type: 'string' },
      'upstream-host': { type: 'string' },
      delay: { type: 'string' },
      rate: { type: 'string' },
      port: { type: 'string' },
      'no-handshake': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) {
    process.stdout.write('usage: latency-proxy --upstream [HOST:]PORT [--delay MS] [--rate BITS_PER_S] [--port P] [--no-handshake]\n');
    process.exit(0);
  }
  const m = /^(?:(.+):)?(\d+)$/.exec(v.upstream ?? '');
  if (!m) throw new Error('--upstream [HOST:]PORT is required');
  const o: LatencyProxyOptions = { upstreamPort: Number(m[2]) };
  if (m[1]) o.upstreamHost = m[1];
  if (v['upstream-host']) o.upstreamHost = v['upstream-host'];
  if (v.delay !== undefined) o.oneWayDelayMs = Number(v.delay);
  if (v.rate !== undefined) o.rateBitsPerSec = Number(v.rate);
  if (v.port !== undefined) o.listenPort = Number(v.port);
  if (v['no-handshake']) o.emulateHandshake = false;
  return o;
}

if (isMain(import.meta.url)) {
  const o = parseCli(process.argv.slice(2));
  const proxy = await startLatencyProxy(o);
  process.stdout.write(
    `latency-proxy listening on 127.0.0.1:${proxy.port} -> ${o.upstreamHost ?? '127.0.0.1'}:${o.upstreamPort} ` +
      `(one-way ${o.oneWayDelayMs ?? 10} ms, ${(o.rateBitsPerSec ?? 1e9) / 1e6} Mbit/s)\n`,
  );
  const stop = () => {
    void proxy.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
