/**
 * The shared cache tier (docker/cache-tier/nginx.conf) as the tests run it: Debian's nginx on
 * 127.0.0.1, its ${TIER_*} placeholders filled in (as the nginx image's envsubst would), a temp
 * prefix holding the config, the slice cache, the access-check cache, the logs and the pid file.
 * nginx must be installed (scripts/setup.sh installs nginx-light): without it, starting fails with
 * a message saying so; tests are never skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { REPO } from './daemon.js';

export const NGINX_BIN = '/usr/sbin/nginx';
export const TIER_TEMPLATE = join(REPO, 'docker/cache-tier/nginx.conf');
/** setpriv, to give a spawned nginx PR_SET_PDEATHSIG (undefined when missing). */
export const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

export interface TierOptions {
  /** Regex of allowed origins (`scheme://host:port`); default: any port of 127.0.0.1, http or https. */
  origins?: string;
  /** TIER_AUTH_VALID: how long an access check is reused (nginx time, e.g. `2s`). */
  authValid?: string;
  /** TIER_CA_FILE: the CAs HTTPS origins are checked against (default: the system's bundle). */
  caFile?: string;
}

export interface AccessLine {
  method: string;
  /** The origin URL as logged: scheme, host and path (never a query). */
  url: string;
  range: string;
  status: number;
  bytes: number;
  cache: string;
  raw: string;
}

export class CacheTier {
  private child?: ChildProcess;
  port = 0;

  private constructor(
    /** The temp prefix: nginx.conf, logs, caches. */
    readonly dir: string,
    private readonly opts: TierOptions,
  ) {}

  /** The base URL slicefs is given as --cache-proxy. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get cacheDir(): string {
    return join(this.dir, 'slices');
  }

  get authCacheDir(): string {
    return join(this.dir, 'auth');
  }

  get accessLogPath(): string {
    return join(this.dir, 'access.log');
  }

  get errorLogPath(): string {
    return join(this.dir, 'error.log');
  }

  static async start(opts: TierOptions = {}): Promise<CacheTier> {
    if (!existsSync(NGINX_BIN)) {
      throw new Error(`${NGINX_BIN} not found: the cache tier tests need nginx with the slice and auth_request modules (apt-get install nginx-light, or run scripts/setup.sh)`);
    }
    const dir = await mkdtemp(join(tmpdir(), 'slicefs-tier-'));
    const tier = new CacheTier(dir, opts);
    await tier.startNginx();
    return tier;
  }

  /** The template with every ${TIER_*} filled in; fails on a placeholder left unfilled. */
  async config(port: number): Promise<string> {
    const vars: Record<string, string> = {
      TIER_LISTEN: `127.0.0.1:${port}`,
      TIER_USER: userInfo().username,
      TIER_RUN_DIR: join(this.dir, 'run'),
      TIER_CACHE_DIR: this.cacheDir,
      TIER_CACHE_MAX_SIZE: '1g',
      TIER_AUTH_CACHE_DIR: this.authCacheDir,
      TIER_AUTH_VALID: this.opts.authValid ?? '2s',
      TIER_ORIGINS: this.opts.origins ?? '^https?://127\\.0\\.0\\.1:[0-9]+$',
      // Never asked: the tests' origins are IP addresses.
      TIER_RESOLVER: '127.0.0.1',
      TIER_CA_FILE: this.opts.caFile ?? '/etc/ssl/certs/ca-certificates.crt',
      TIER_ACCESS_LOG: this.accessLogPath,
      TIER_ERROR_LOG: this.errorLogPath,
    };
    const text = await readFile(TIER_TEMPLATE, 'utf8');
    const missing = new Set<string>();
    const out = text.replace(/\$\{(TIER_[A-Z_]+)\}/g, (m, k: string) => vars[k] ?? (missing.add(k), m));
    if (missing.size > 0) throw new Error(`${TIER_TEMPLATE}: no value for ${[...missing].join(', ')}`);
    return out;
  }

  private async startNginx(): Promise<void> {
    await mkdir(join(this.dir, 'run'), { recursive: true });
    let last = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = this.port || (await freePort());
      await writeFile(join(this.dir, 'nginx.conf'), await this.config(port));
      const args = ['-p', this.dir, '-c', join(this.dir, 'nginx.conf'), '-e', this.errorLogPath, '-g', 'daemon off;'];
      const started = await spawnNginxOn(port, args);
      if (started.listening) {
        this.child = started.child;
        this.port = port;
        return;
      }
      const stderr = started.stderr;
      const log = await readFile(this.errorLogPath, 'utf8').catch(() => '');
      last = `${stderr}\n${log.slice(-2000)}`;
      if (!/in use/i.test(last)) break;
      if (this.port) await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`nginx (the cache tier) did not start: ${last.trim()}`);
  }

  /** Stops nginx (SIGTERM: fast shutdown, open connections are cut). The caches stay. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  /** Starts nginx again on the same port, with the same caches. */
  async restart(): Promise<void> {
    await this.stop();
    await this.startNginx();
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The access log's lines, parsed (nginx writes a line when a request ends). */
  async accessLog(): Promise<AccessLine[]> {
    const text = await readFile(this.accessLogPath, 'utf8').catch(() => '');
    const out: AccessLine[] = [];
    for (const raw of text.split('\n')) {
      const m = /^\S+ \S+ (\S+) (\S+) "([^"]*)" (\d+) (\d+) (\S+) /.exec(raw);
      if (m) out.push({ method: m[1], url: m[2], range: m[3], status: Number(m[4]), bytes: Number(m[5]), cache: m[6], raw });
    }
    return out;
  }

  async rawLogs(): Promise<string> {
    return (await readFile(this.accessLogPath, 'utf8').catch(() => '')) + (await readFile(this.errorLogPath, 'utf8').catch(() => ''));
  }

  /** The `KEY:` line of every cache file under `dir` (nginx writes the key into each file's header). */
  async cacheKeys(dir = this.cacheDir): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) {
          const head = (await readFile(p)).subarray(0, 4096).toString('latin1');
          const m = /\nKEY: ([^\n]*)\n/.exec(head);
          if (m) keys.push(m[1]);
        }
      }
    };
    await walk(dir);
    return keys;
  }
}

/** A free TCP port on 127.0.0.1 (free when asked: a server started later may still lose it). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((res, rej) => srv.once('error', rej).listen(0, '127.0.0.1', () => res()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

/** True once something accepts connections on the port; false if `dead()` or the time is up. */
export async function waitForPort(port: number, ms: number, dead: () => boolean): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until && !dead()) {
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/**
 * Starts Debian's nginx with `args` and waits (10 s) until it listens on 127.0.0.1:`port`. Not
 * listening (it exited, or the port was taken): killed, with what it printed on stderr.
 */
export async function spawnNginxOn(port: number, args: string[]): Promise<{ child: ChildProcess; listening: boolean; stderr: string }> {
  // PR_SET_PDEATHSIG: a killed test run takes its nginx with it.
  const child = SETPRIV
    ? spawn(SETPRIV, ['--pdeathsig', 'TERM', '--', NGINX_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(NGINX_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  const listening = await waitForPort(port, 10_000, () => exited);
  if (!listening) child.kill('SIGKILL');
  return { child, listening, stderr };
}
