/**
 * `view`'s settings resolver (src/cli/view-settings.ts): the command line parsed by `view`'s own
 * yargs builder, a real config file in a temporary directory and a given environment, resolved once
 * into ViewSettings. Per family, each branch of the precedence flag > environment > profile >
 * default is taken in turn; an unknown profile is one line; a token given on the command line is
 * flagged (a warning); the config file is read only when a setting needs it.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import yargs from 'yargs';
import { profileLoader } from '../../src/cli/settings.js';
import { rejectsWithUsage } from '../helpers/usage-error.js';
import { viewCommand, type ViewArgs } from '../../src/cli/view.js';
import { resolveViewSettings, type ViewSettings } from '../../src/cli/view-settings.js';

const TOKEN = 'c0ffee00-1111-4222-8333-944445555666';
const URL_ARGS = ['--url', 'https://data.example/x.bam'];
let dir: string;
let configPath: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slicefs-view-settings-'));
  await writeFile(join(dir, 'argo-token'), 'token-from-the-profile-file\n', { mode: 0o600 });
  configPath = join(dir, 'config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      profile: 'argo',
      cacheProxy: 'http://top.tier:8080',
      profiles: {
        argo: { storageUrl: 'https://argo.example/storage', tokenFile: 'argo-token', cacheProxy: 'http://argo.tier:8080' },
        collab: { storageUrl: 'https://collab.example/score', metadataUrl: 'https://collab.example/meta', token: TOKEN },
      },
    }),
  );
  await chmod(configPath, 0o600);
  await writeFile(join(dir, 'empty.json'), '{}');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `slicefs view ARGV` as the command parses it, resolved against `env` (the config file is `configPath` unless `--config` or SLICEFS_CONFIG says otherwise). */
async function resolved(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<ViewSettings> {
  const builder = viewCommand.builder as (y: ReturnType<typeof yargs>) => ReturnType<typeof yargs>;
  const args = builder(yargs(argv).exitProcess(false).strict()).parseSync() as unknown as ViewArgs;
  const withConfig = { SLICEFS_CONFIG: configPath, ...env };
  return resolveViewSettings(args, withConfig, profileLoader(args, withConfig), ['view', ...argv]);
}

test('cache tier: --cache-proxy > SLICEFS_CACHE_PROXY > the profile > none; --no-cache-proxy keeps the others off', async () => {
  const env = { SLICEFS_CACHE_PROXY: 'http://env.tier:8080' };
  let s = await resolved([...URL_ARGS, '--cache-proxy', 'http://flag.tier:8080'], env);
  assert.deepEqual([s.transport.cacheProxy, s.cacheProxy.origin], ['http://flag.tier:8080', 'flag']);
  s = await resolved(URL_ARGS, env);
  assert.deepEqual([s.transport.cacheProxy, s.cacheProxy.origin], ['http://env.tier:8080', 'env']);
  // An empty variable counts as unset.
  s = await resolved(URL_ARGS, { SLICEFS_CACHE_PROXY: '' });
  assert.deepEqual([s.transport.cacheProxy, s.cacheProxy.origin, s.cacheProxy.from], ['http://argo.tier:8080', 'profile', 'profile argo']);
  s = await resolved([...URL_ARGS, '--profile', 'collab']);
  assert.deepEqual([s.transport.cacheProxy, s.cacheProxy.origin], [undefined, 'default']);
  s = await resolved([...URL_ARGS, '--no-cache-proxy'], env);
  assert.equal(s.transport.cacheProxy, undefined);
  await rejectsWithUsage(resolved([...URL_ARGS, '--cache-proxy', 'ftp://x']), /^--cache-proxy: not an http\(s\) URL/);
  // The environment is the one given to the resolver: the option's parse does not read process.env
  // (a default taken there would pass for a flag, above the profile, whatever environment is given).
  process.env.SLICEFS_CACHE_PROXY = 'http://process.tier:8080';
  try {
    s = await resolved(URL_ARGS);
  } finally {
    delete process.env.SLICEFS_CACHE_PROXY;
  }
  assert.deepEqual([s.transport.cacheProxy, s.cacheProxy.origin], ['http://argo.tier:8080', 'profile']);
});

test('Score: storage URL and token by flag > environment > profile > default, resolved when a Score object is named', async () => {
  const endpoint = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const warnings: string[] = [];
    const e = await (await resolved(['--object-id', 'obj-1', ...argv], env)).sources.score.endpoint((l) => warnings.push(l));
    return { ...e, warnings };
  };
  const env = { STORAGE_URL: 'https://env.example/storage', ACCESSTOKEN: 'token-from-env' };
  const tokenFile = join(dir, 'flag-token');
  await writeFile(tokenFile, 'token-from-the-flag-file\n', { mode: 0o600 });

  let e = await endpoint(['--storage-url', 'https://flag.example/storage', '--token-file', tokenFile], env);
  assert.deepEqual([e.storageUrl, e.metadataUrl, e.token, e.warnings], ['https://flag.example/storage', 'https://flag.example/storage', 'token-from-the-flag-file', []]);
  e = await endpoint([], env);
  assert.deepEqual([e.storageUrl, e.token], ['https://env.example/storage', 'token-from-env']);
  // SLICEFS_TOKEN is below ACCESSTOKEN, above the profile.
  e = await endpoint([], { ACCESSTOKEN: 'token-from-env', SLICEFS_TOKEN: 'token-from-slicefs-token' });
  assert.equal(e.token, 'token-from-env');
  e = await endpoint([], { SLICEFS_TOKEN: 'token-from-slicefs-token' });
  assert.deepEqual([e.storageUrl, e.token], ['https://argo.example/storage', 'token-from-slicefs-token']);
  // The profile's tokenFile is relative to the config file.
  e = await endpoint([]);
  assert.deepEqual([e.storageUrl, e.token], ['https://argo.example/storage', 'token-from-the-profile-file']);
  e = await endpoint([], { SLICEFS_PROFILE: 'collab' });
  assert.deepEqual([e.storageUrl, e.metadataUrl, e.token], ['https://collab.example/score', 'https://collab.example/meta', TOKEN]);
  // Nothing anywhere: the default is an error that says what to set.
  await rejectsWithUsage(endpoint([], { SLICEFS_CONFIG: join(dir, 'empty.json') }), /^Score objects need the storage service/);
  await rejectsWithUsage(endpoint(['--storage-url', 'https://s.example'], { SLICEFS_CONFIG: join(dir, 'empty.json') }), /^no access token/);
});

test('a token given on the command line is flagged: it works, with a warning that the process list shows it', async () => {
  const s = await resolved(['--object-id', 'obj-1', '--token', 'token-on-the-command-line'], { ACCESSTOKEN: 'token-from-env' });
  const warnings: string[] = [];
  const e = await s.sources.score.endpoint((l) => warnings.push(l));
  assert.equal(e.token, 'token-on-the-command-line');
  assert.deepEqual(warnings, ['warning: --token shows the token in the process list; use --token-file or ACCESSTOKEN']);
  // The same token from the environment is not flagged.
  const quiet: string[] = [];
  await (await resolved(['--object-id', 'obj-1'], { ACCESSTOKEN: 'token-from-env' })).sources.score.endpoint((l) => quiet.push(l));
  assert.deepEqual(quiet, []);
});

test('an unknown profile is one line naming the profiles the file has; the file is not read when no setting needs it', async () => {
  await rejectsWithUsage(resolved([...URL_ARGS, '--profile', 'nope']), /^unknown profile "nope" \(from --profile\): .*config\.json has argo, collab$/);
  await rejectsWithUsage(resolved(URL_ARGS, { SLICEFS_PROFILE: 'nope' }), /^unknown profile "nope" \(from SLICEFS_PROFILE\)/);
  // Every setting of a plain URL's view given by flag or environment: the profile is never chosen.
  const s = await resolved([...URL_ARGS, '--profile', 'nope', '--cache-proxy', 'http://flag.tier:8080']);
  assert.equal(s.transport.cacheProxy, 'http://flag.tier:8080');
  // ... until a Score object needs it.
  await rejectsWithUsage(s.sources.score.endpoint(() => {}), /^unknown profile "nope"/);
});

test('Crypt4GH keys: --private-key > C4GH_SECRET_KEY > none; GHGA: flag > the connector\'s variable > default', async () => {
  const env = { C4GH_SECRET_KEY: '/env/key.sec', GHGA_CONNECTOR_WKVS_API_URL: 'https://env.ghga/.well-known', GHGA_CONNECTOR_MAX_WAIT_TIME: '60' };
  let s = await resolved(['--ghga', '--accession', 'GHGAF1', '--private-key', 'a.sec', '--private-key', 'b.sec', '--ghga-url', 'https://flag.ghga/.well-known', '--max-wait', '5'], env);
  assert.deepEqual(s.input, { kind: 'ghga' });
  assert.deepEqual(s.sources.keyFiles, ['a.sec', 'b.sec']);
  assert.deepEqual([s.sources.ghga?.wellKnownUrl, s.sources.ghga?.maxWaitS, s.sources.ghga?.accession], ['https://flag.ghga/.well-known', 5, 'GHGAF1']);
  s = await resolved(['--ghga', '--accession', 'GHGAF1'], env);
  assert.deepEqual(s.sources.keyFiles, ['/env/key.sec']);
  assert.deepEqual([s.sources.ghga?.wellKnownUrl, s.sources.ghga?.maxWaitS], ['https://env.ghga/.well-known', 60]);
  s = await resolved(['--ghga', '--accession', 'GHGAF1']);
  assert.deepEqual(s.sources.keyFiles, []);
  assert.deepEqual([s.sources.ghga?.wellKnownUrl, s.sources.ghga?.maxWaitS], [undefined, 3600]);
  await rejectsWithUsage(resolved(['--ghga', '--max-wait', '0']), /^--max-wait must be a positive number/);
  // Without --ghga there are no GHGA settings (and no check of them).
  assert.equal((await resolved([...URL_ARGS, '--max-wait', '0'])).sources.ghga, undefined);
});

test('caches: --cache-dir > XDG_CACHE_HOME (absolute only) > ~/.cache; --disk-cache-size 0 turns the tier off', async () => {
  let s = await resolved([...URL_ARGS, '--cache-dir', join(dir, 'flag-cache')], { XDG_CACHE_HOME: '/xdg' });
  assert.deepEqual([s.cacheRoot, s.disk?.dir], [join(dir, 'flag-cache'), join(dir, 'flag-cache', 'blocks')]);
  s = await resolved(URL_ARGS, { XDG_CACHE_HOME: '/xdg' });
  assert.deepEqual([s.cacheRoot, s.disk?.dir], ['/xdg/slicefs', '/xdg/slicefs/blocks']);
  s = await resolved(URL_ARGS, { XDG_CACHE_HOME: 'relative' });
  assert.equal(s.cacheRoot, join(homedir(), '.cache', 'slicefs'));
  s = await resolved([...URL_ARGS, '--disk-cache-size', '0', '--cache-dir', 'rel']);
  assert.deepEqual([s.disk, s.cacheRoot], [undefined, 'rel']);
  assert.equal((await resolved([...URL_ARGS, '--cache-dir', 'rel'])).disk?.dir, resolve('rel', 'blocks'));
});

test('the view options: one input, output format, header, threads, transport, all checked before anything is opened', async () => {
  const s = await resolved([...URL_ARGS, '-u', '-q', 'chr1', '-q', 'chr2:1-5', '--no-header', '--threads', '2', '--connections', '4', '--timeout', '10', '--no-PG']);
  assert.deepEqual(s.input, { kind: 'url', url: 'https://data.example/x.bam' });
  assert.deepEqual([s.output.format, s.output.header, s.output.threads, s.output.pgCommandLine, s.query], ['ubam', 'without', 2, undefined, ['chr1', 'chr2:1-5']]);
  assert.deepEqual([s.transport.connectionsPerOrigin, s.transport.retry.budgetMs], [4, 7000]);
  assert.equal((await resolved(URL_ARGS)).output.pgCommandLine, 'slicefs view --url https://data.example/x.bam');
  assert.deepEqual((await resolved(['--object-id', 'o1', '--index-object-id', 'o2'])).input, { kind: 'score', objectId: 'o1', indexObjectId: 'o2' });
  await rejectsWithUsage(resolved([...URL_ARGS, '--input-file', 'x.bam']), /^give exactly one of --url/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--output-format', 'sam', '-b']), /^--output-format sam contradicts -b$/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--header-only', '--no-header']), /contradict each other/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--threads', '65']), /^--threads must be a whole number from 0 to 64$/);
  await rejectsWithUsage(resolved(['--url', 'ftp://x/y.bam']), /^--url: not an http\(s\) URL/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--reference-url', 'ref.fa']), /^--reference-url: not an http\(s\) URL/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--reference-url', 'https://r/ref.fa', '-T', 'ref.fa']), /^give one of --reference-file or --reference-url$/);
  await rejectsWithUsage(resolved(['--manifest', 'm.tsv']), /^--manifest needs --path/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--file-mode', '0400']), /^--file-mode 0400: slicefs must be able to read and write/);
});
