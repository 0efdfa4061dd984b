/**
 * docker/cache-tier/compose.yaml, verified as far as a machine without Docker compose or the nginx
 * image allows. The cache-tier service's `environment` is interpolated the way compose does it, with
 * the values a deployment's `.env` would give; nginx.conf is rendered the way the official nginx
 * image's entrypoint does it (/docker-entrypoint.d/20-envsubst-on-templates.sh: the templates mounted
 * under NGINX_ENVSUBST_TEMPLATE_DIR, `envsubst` limited to the variables matching
 * NGINX_ENVSUBST_FILTER, written to NGINX_ENVSUBST_OUTPUT_DIR); and the result is checked by Debian's
 * nginx (`nginx -t`), then served: the healthcheck's URL and a slice through the tier.
 *
 * Needs envsubst (gettext-base) and nginx (nginx-light), both installed by scripts/setup.sh: without
 * them these tests fail, saying so.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { freePort, NGINX_BIN, spawnNginxOn, TIER_TEMPLATE } from '../helpers/cache-tier.js';
import { REPO } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { seededBytes } from '../helpers/random.js';

const COMPOSE_DIR = join(REPO, 'docker/cache-tier');
const COMPOSE_FILE = join(COMPOSE_DIR, 'compose.yaml');
const SERVICE = 'cache-tier';
const ENVSUBST = '/usr/bin/envsubst';
const MiB = 1024 * 1024;

// js-yaml: in node_modules as a dependency of eslint (@eslint/eslintrc); it ships no types.
const yaml = (await import('js-yaml' as string)) as { load(text: string): unknown };

type Env = Record<string, string | undefined>;

interface Service {
  image?: string;
  command?: unknown;
  entrypoint?: unknown;
  environment?: Record<string, unknown> | string[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  tmpfs?: string | string[];
  ports?: (string | number | { target?: number | string })[];
  healthcheck?: { test?: string | string[] };
}

/**
 * Compose's interpolation of one value (compose-spec, "Interpolation"): `$$`, `$VAR`, `${VAR}`,
 * `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`;
 * defaults are interpolated in turn. Any other `$` is an error, as in compose.
 */
function interpolate(s: string, env: Env): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    if (s[i] !== '$') {
      out += s[i++];
      continue;
    }
    if (s[i + 1] === '$') {
      out += '$';
      i += 2;
    } else if (s[i + 1] === '{') {
      let depth = 1;
      let j = i + 2;
      for (; j < s.length && depth > 0; j++) {
        if (s[j] === '{') depth++;
        else if (s[j] === '}') depth--;
      }
      const m = depth === 0 ? /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(s.slice(i + 2, j - 1)) : null;
      if (!m) throw new Error(`invalid interpolation format: ${JSON.stringify(s)}`);
      const [, name, op, arg = ''] = m;
      const value = env[name];
      const set = value !== undefined;
      const nonEmpty = set && value !== '';
      if (op === undefined) out += value ?? '';
      else if (op === ':-' || op === '-') out += (op === ':-' ? nonEmpty : set) ? value : interpolate(arg, env);
      else if (op === ':+' || op === '+') out += (op === ':+' ? nonEmpty : set) ? interpolate(arg, env) : '';
      else if ((op === ':?' ? nonEmpty : set) && value !== undefined) out += value;
      else throw new Error(`required variable ${name} is missing a value: ${interpolate(arg, env)}`);
      i = j;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1));
      if (!m) throw new Error(`invalid interpolation format: ${JSON.stringify(s)}`);
      out += env[m[0]] ?? '';
      i += 1 + m[0].length;
    }
  }
  return out;
}

/** Compose interpolates every value of the file (not the keys). */
function interpolateAll(v: unknown, env: Env): unknown {
  if (typeof v === 'string') return interpolate(v, env);
  if (Array.isArray(v)) return v.map((x) => interpolateAll(x, env));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateAll(x, env)]));
  return v;
}

/** The cache-tier service of compose.yaml as `docker compose config` would give it, with `dotenv`. */
async function loadService(dotenv: Env): Promise<Service> {
  const doc = yaml.load(await readFile(COMPOSE_FILE, 'utf8')) as { services?: Record<string, unknown> };
  const svc = doc.services?.[SERVICE];
  assert.ok(svc && typeof svc === 'object', `${COMPOSE_FILE}: no service ${SERVICE}`);
  return interpolateAll(svc, dotenv) as Service;
}

/** The service's `environment` (map or list form) as the container gets it. */
function containerEnv(svc: Service, dotenv: Env): Record<string, string> {
  const out: Record<string, string> = {};
  const fromHost = (k: string): void => {
    if (dotenv[k] !== undefined) out[k] = dotenv[k];
  };
  const env = svc.environment ?? {};
  if (Array.isArray(env)) {
    for (const e of env) {
      const eq = e.indexOf('=');
      if (eq < 0) fromHost(e);
      else out[e.slice(0, eq)] = e.slice(eq + 1);
    }
  } else {
    for (const [k, v] of Object.entries(env)) {
      if (v === null || v === undefined) fromHost(k);
      else out[k] = String(v);
    }
  }
  return out;
}

/** The settings of the image's 20-envsubst-on-templates.sh, with its defaults (`${X:-default}`). */
function entrypointSettings(env: Record<string, string>): { templateDir: string; suffix: string; outputDir: string; filter: string } {
  return {
    templateDir: env.NGINX_ENVSUBST_TEMPLATE_DIR || '/etc/nginx/templates',
    suffix: env.NGINX_ENVSUBST_TEMPLATE_SUFFIX || '.template',
    outputDir: env.NGINX_ENVSUBST_OUTPUT_DIR || '/etc/nginx/conf.d',
    filter: env.NGINX_ENVSUBST_FILTER || '',
  };
}

/**
 * What that script does to a template: `envsubst "${A} ${B} … "` over the names in the environment
 * matching the filter (an awk regex there: `^TIER_` means the same in JavaScript), so nginx's own
 * `$variables` and anything unset stay as they are. The image's own variables (NGINX_VERSION, PATH, …)
 * never match ^TIER_; only the compose environment is given here.
 */
function renderLikeEntrypoint(template: string, env: Record<string, string>): string {
  if (!existsSync(ENVSUBST)) throw new Error(`${ENVSUBST} not found: install gettext-base (scripts/setup.sh does)`);
  const filter = new RegExp(entrypointSettings(env).filter);
  const format = Object.keys(env)
    .filter((name) => filter.test(name))
    .map((name) => `\${${name}} `)
    .join('');
  return execFileSync(ENVSUBST, [format], { input: template, env, encoding: 'utf8' });
}

/** TIER_LISTEN (`8080`, `10.0.0.5:8080`, `[::]:8080`, followed by any listen parameters). */
function parseListen(listen: string): { host?: string; port: number } {
  const m = /^(?:(.*):)?(\d+)$/.exec(listen.trim().split(/\s+/)[0]);
  assert.ok(m, `TIER_LISTEN ${JSON.stringify(listen)}: no port`);
  return { host: m[1], port: Number(m[2]) };
}

/** A placeholder envsubst would have filled (`${TIER_X}` or `$TIER_X`), left in rendered text. */
const PLACEHOLDER = /\$\{?TIER_[A-Za-z0-9_]+/g;

/** The deployment's `.env` (as compose reads it: single quotes keep the regex's `$` literal). */
let dotenv: Env;
let origin: FixtureServer;
const data = seededBytes(7, 3 * MiB);
let svc: Service;
let env: Record<string, string>;
let work: string;
let nginx: ChildProcess | undefined;
let base = '';

before(async () => {
  origin = await FixtureServer.start();
  origin.addFile('/objects/sample.bin', data);
  // Only TIER_ORIGINS, which compose.yaml requires: a 127.0.0.1 origin. Everything else is the
  // compose file's own value or default.
  dotenv = { TIER_ORIGINS: `^${origin.origin.replace(/\./g, '\\.')}$` };
  svc = await loadService(dotenv);
  env = containerEnv(svc, dotenv);
  work = await mkdtemp(join(tmpdir(), 'slicefs-tier-compose-'));
});

after(async () => {
  if (nginx && nginx.exitCode === null && nginx.signalCode === null) {
    const child = nginx;
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  await origin?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * The container's environment with the values that only make sense inside the container replaced,
 * and nothing else: the paths (TIER_RUN_DIR, TIER_CACHE_DIR, TIER_AUTH_CACHE_DIR: /var/cache/…,
 * /run/… need root and belong to the volume and tmpfs), the worker user (`nginx` does not exist on
 * Debian), the logs (files to read instead of the container's stdout/stderr) and TIER_LISTEN (a free
 * port on 127.0.0.1 instead of 8080 on every interface). Cache sizes, TIER_AUTH_VALID, TIER_ORIGINS,
 * the resolver, the CA file and the envsubst filter stay as compose.yaml sets them.
 */
function hostEnv(port: number): Record<string, string> {
  const overrides: Record<string, string> = {
    TIER_LISTEN: `127.0.0.1:${port}`,
    TIER_USER: userInfo().username,
    TIER_RUN_DIR: join(work, 'run'),
    TIER_CACHE_DIR: join(work, 'slices'),
    TIER_AUTH_CACHE_DIR: join(work, 'auth'),
    TIER_ACCESS_LOG: join(work, 'access.log'),
    TIER_ERROR_LOG: join(work, 'error.log'),
  };
  for (const k of Object.keys(overrides)) assert.ok(k in env, `compose.yaml's environment has no ${k} (the test overrides it, so the container needs it)`);
  return { ...env, ...overrides };
}

test('compose.yaml: the nginx image entrypoint renders the mounted nginx.conf template to /etc/nginx/nginx.conf', () => {
  assert.match(svc.image ?? '', /^nginx:/, 'the official nginx image (its entrypoint renders the templates)');
  // The entrypoint runs its /docker-entrypoint.d scripts only for the image's own `nginx` command.
  assert.equal(svc.entrypoint, undefined, 'an entrypoint override skips the template rendering');
  assert.equal(svc.command, undefined, 'a command override other than nginx skips the template rendering');
  const { templateDir, suffix, outputDir } = entrypointSettings(env);
  const mounts = (svc.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { type: v.type, source: v.source, target: v.target };
    const [source, target] = v.split(':');
    return { type: /^[./~]/.test(source) ? 'bind' : 'volume', source, target };
  });
  const templates = mounts.filter((m) => m.target?.startsWith(`${templateDir}/`) && m.target.endsWith(suffix));
  assert.equal(templates.length, 1, `one template mounted under ${templateDir}/ ending with ${suffix}: ${JSON.stringify(mounts)}`);
  const [tpl] = templates;
  assert.equal(tpl.type, 'bind');
  assert.equal(resolve(COMPOSE_DIR, tpl.source ?? ''), TIER_TEMPLATE, 'the template is docker/cache-tier/nginx.conf');
  const relative = (tpl.target ?? '').slice(templateDir.length + 1);
  assert.equal(posix.join(outputDir, relative.slice(0, -suffix.length)), '/etc/nginx/nginx.conf', 'rendered over the main config');
});

test('compose.yaml: TIER_ORIGINS is required', async () => {
  await assert.rejects(loadService({}), /required variable TIER_ORIGINS is missing a value: set TIER_ORIGINS/);
});

test('compose.yaml sets exactly the placeholders of nginx.conf, and the rendered config has none left', async () => {
  const template = await readFile(TIER_TEMPLATE, 'utf8');
  const wanted = new Set([...template.matchAll(/\$\{(TIER_[A-Za-z0-9_]+)\}/g)].map((m) => m[1]));
  const filter = new RegExp(entrypointSettings(env).filter);
  const given = new Set(Object.keys(env).filter((k) => filter.test(k)));
  assert.deepEqual([...wanted].filter((k) => !given.has(k)), [], 'placeholders compose.yaml does not set (or that NGINX_ENVSUBST_FILTER leaves out)');
  assert.deepEqual([...given].filter((k) => !wanted.has(k)), [], 'TIER_* variables of compose.yaml that nginx.conf does not use');
  // As the container renders it (container paths), and as this test runs it.
  for (const rendered of [renderLikeEntrypoint(template, env), renderLikeEntrypoint(template, hostEnv(8080))]) {
    assert.deepEqual(rendered.match(PLACEHOLDER) ?? [], []);
    // nginx's own variables are left alone.
    assert.match(rendered, /proxy_cache_key \$tier_scheme:\/\/\$tier_host\$tier_path\?\$tier_object_args\|\$slice_range\|\$tier_version;/);
    assert.ok(rendered.includes('" $1$2;'), 'the key maps keep their captures');
    assert.ok(rendered.includes(`"~${dotenv.TIER_ORIGINS}" 1;`), 'TIER_ORIGINS, `$` included, lands in the map as given');
    assert.ok(rendered.includes(`max_size=${env.TIER_CACHE_MAX_SIZE} `));
    assert.ok(rendered.includes(`proxy_cache_valid 200 204 206 ${env.TIER_AUTH_VALID};`));
  }
});

test('compose.yaml: the slice cache is on the volume, the access-check cache on tmpfs', () => {
  const volumes = (svc.volumes ?? []).map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1], type: undefined } : v));
  const cache = volumes.find((v) => v.target === env.TIER_CACHE_DIR);
  assert.ok(cache && cache.type !== 'bind' && !/^[./~]/.test(cache.source ?? ''), `TIER_CACHE_DIR ${env.TIER_CACHE_DIR} is a named volume: ${JSON.stringify(volumes)}`);
  const tmpfs = [svc.tmpfs ?? []].flat().map((t) => t.split(':')[0]);
  assert.ok(tmpfs.includes(env.TIER_AUTH_CACHE_DIR), `TIER_AUTH_CACHE_DIR ${env.TIER_AUTH_CACHE_DIR} is a tmpfs: ${JSON.stringify(tmpfs)}`);
});

/** The URL the healthcheck fetches, from compose.yaml. */
function healthcheckUrl(): URL {
  const t = svc.healthcheck?.test;
  const cmd = Array.isArray(t) ? t : ['CMD-SHELL', t ?? ''];
  assert.ok(cmd[0] === 'CMD' || cmd[0] === 'CMD-SHELL', `healthcheck test ${JSON.stringify(t)}`);
  const m = /https?:\/\/[^\s"']+/.exec(cmd.slice(1).join(' '));
  assert.ok(m, `healthcheck ${JSON.stringify(t)}: no URL`);
  return new URL(m[0]);
}

test('compose.yaml: the healthcheck and the published port target TIER_LISTEN', () => {
  const listen = parseListen(env.TIER_LISTEN ?? '');
  const url = healthcheckUrl();
  assert.equal(Number(url.port || (url.protocol === 'https:' ? 443 : 80)), listen.port, `healthcheck ${url.href} vs TIER_LISTEN ${env.TIER_LISTEN}`);
  assert.ok(['127.0.0.1', 'localhost'].includes(url.hostname), `healthcheck ${url.href}: from inside the container`);
  assert.ok(listen.host === undefined || ['*', '0.0.0.0', '127.0.0.1', 'localhost'].includes(listen.host), `TIER_LISTEN ${env.TIER_LISTEN} does not take the healthcheck's 127.0.0.1`);
  assert.ok(listen.host === undefined || ['*', '0.0.0.0'].includes(listen.host), `TIER_LISTEN ${env.TIER_LISTEN}: the published port needs every interface`);
  const targets = (svc.ports ?? []).map((p) => {
    if (typeof p === 'object') return Number(p.target);
    const parts = String(p).split('/')[0].split(':');
    return Number(parts[parts.length - 1]);
  });
  assert.ok(targets.includes(listen.port), `ports ${JSON.stringify(svc.ports)} publish TIER_LISTEN's port ${listen.port}`);
});

async function writeHostConfig(port: number): Promise<string> {
  await mkdir(join(work, 'run'), { recursive: true });
  const conf = join(work, 'nginx.conf');
  await writeFile(conf, renderLikeEntrypoint(await readFile(TIER_TEMPLATE, 'utf8'), hostEnv(port)));
  return conf;
}

function nginxArgs(conf: string): string[] {
  return ['-p', work, '-c', conf, '-e', join(work, 'error.log'), '-g', 'daemon off;'];
}

test('nginx -t accepts the rendered config', async () => {
  if (!existsSync(NGINX_BIN)) throw new Error(`${NGINX_BIN} not found: install nginx-light (scripts/setup.sh does)`);
  const conf = await writeHostConfig(await freePort());
  try {
    execFileSync(NGINX_BIN, ['-t', ...nginxArgs(conf)], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer };
    const log = await readFile(join(work, 'error.log'), 'utf8').catch(() => '');
    assert.fail(`nginx -t: ${err.stderr?.toString() ?? String(e)}\n${log}`);
  }
});

test("nginx serves it: the healthcheck's URL answers ok, slices come from the allowed origin only", async () => {
  let last = '';
  for (let attempt = 0; attempt < 3 && !base; attempt++) {
    const port = await freePort();
    const args = nginxArgs(await writeHostConfig(port));
    const started = await spawnNginxOn(port, args);
    if (started.listening) {
      nginx = started.child;
      base = `http://127.0.0.1:${port}`;
    } else {
      last = `${started.stderr}\n${await readFile(join(work, 'error.log'), 'utf8').catch(() => '')}`;
      if (!/in use/i.test(last)) break;
    }
  }
  assert.ok(base, `nginx did not start: ${last.trim()}`);

  const health = healthcheckUrl();
  const ok = await request(`${base}${health.pathname}${health.search}`);
  assert.equal(ok.statusCode, 200);
  assert.equal(await ok.body.text(), 'ok\n');

  // Two slices (a range across the 1 MiB boundary), then the same from the cache.
  const url = `${base}/fetch/http/${origin.origin.slice('http://'.length)}/objects/sample.bin?X-Signature=abc`;
  for (const want of ['MISS', 'HIT']) {
    const res = await request(url, { headers: { range: `bytes=${MiB - 1000}-${MiB + 999}` } });
    const body = Buffer.from(await res.body.arrayBuffer());
    assert.equal(res.statusCode, 206);
    assert.equal(res.headers['x-cache-status'], want);
    assert.ok(body.equals(data.subarray(MiB - 1000, MiB + 1000)));
  }
  // Any other origin: 421, nothing fetched.
  const other = await request(`${base}/fetch/http/127.0.0.1:1/objects/sample.bin`);
  await other.body.dump();
  assert.equal(other.statusCode, 421);
});
