/**
 * `download`'s settings resolver (src/cli/download-settings.ts): the command line parsed by
 * `download`'s own yargs builder, a real config file in a temporary directory and a given
 * environment. The cache tier and the Score settings by flag > environment > profile > default, the
 * two transports' budgets, and the checks made before anything is contacted.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import yargs from 'yargs';
import { DEFAULT_TRANSPORT } from '../../src/config.js';
import { downloadCommand, type DownloadArgs } from '../../src/cli/download.js';
import { resolveDownloadSettings, type DownloadSettings } from '../../src/cli/download-settings.js';
import { profileLoader } from '../../src/cli/settings.js';
import { rejectsWithUsage } from '../helpers/usage-error.js';

let dir: string;
let configPath: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slicefs-download-settings-'));
  configPath = join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify({ profile: 'argo', profiles: { argo: { storageUrl: 'https://argo.example/storage', cacheProxy: 'http://argo.tier:8080' }, bare: {} } }), { mode: 0o600 });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function resolved(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<DownloadSettings> {
  const builder = downloadCommand.builder as (y: ReturnType<typeof yargs>) => ReturnType<typeof yargs>;
  const args = builder(yargs(['--output-dir', join(dir, 'out'), ...argv]).exitProcess(false).strict()).parseSync() as unknown as DownloadArgs;
  const withConfig = { SLICEFS_CONFIG: configPath, ...env };
  return resolveDownloadSettings(args, withConfig, profileLoader(args, withConfig));
}

const URL_ARGS = ['--url', 'https://data.example/x.bam'];

test('cache tier: --cache-proxy > SLICEFS_CACHE_PROXY > the profile > none, for both transports', async () => {
  const env = { SLICEFS_CACHE_PROXY: 'http://env.tier:8080' };
  let s = await resolved([...URL_ARGS, '--cache-proxy', 'http://flag.tier:8080'], env);
  assert.deepEqual([s.dataTransport.cacheProxy, s.apiTransport.cacheProxy], ['http://flag.tier:8080', 'http://flag.tier:8080']);
  s = await resolved(URL_ARGS, env);
  assert.equal(s.dataTransport.cacheProxy, 'http://env.tier:8080');
  s = await resolved(URL_ARGS);
  assert.equal(s.dataTransport.cacheProxy, 'http://argo.tier:8080');
  s = await resolved([...URL_ARGS, '--profile', 'bare'], {});
  assert.equal(s.dataTransport.cacheProxy, undefined);
  s = await resolved([...URL_ARGS, '--no-cache-proxy'], env);
  assert.equal(s.dataTransport.cacheProxy, undefined);
});

test('Score: the storage URL by flag > environment > profile > an error saying what to set', async () => {
  const endpoint = async (argv: string[], env: NodeJS.ProcessEnv) => (await resolved(['--object-id', 'o1', '--no-verify-connection', ...argv], env)).sources.score.endpoint(() => {});
  assert.equal((await endpoint(['--storage-url', 'https://flag.example/s'], { STORAGE_URL: 'https://env.example/s', ACCESSTOKEN: 't' })).storageUrl, 'https://flag.example/s');
  assert.equal((await endpoint([], { STORAGE_URL: 'https://env.example/s', ACCESSTOKEN: 't' })).storageUrl, 'https://env.example/s');
  assert.equal((await endpoint([], { ACCESSTOKEN: 't' })).storageUrl, 'https://argo.example/storage');
  await rejectsWithUsage(endpoint(['--profile', 'bare'], {}), /^Score objects need the storage service/);
});

test('transports: the retry budget is --timeout (the config is given --timeout + 3 s); --ghga\'s API is given --timeout itself', async () => {
  let s = await resolved([...URL_ARGS, '--timeout', '20', '--connections', '5']);
  assert.deepEqual([s.dataTransport.retry.budgetMs, s.apiTransport.retry.budgetMs, s.dataTransport.connectionsPerOrigin], [20_000, 20_000, 5]);
  assert.equal(s.dataTransport.retry.maxAttempts, DEFAULT_TRANSPORT.retry.maxAttempts);
  s = await resolved(['--ghga', '--timeout', '20']);
  assert.deepEqual([s.input.kind, s.dataTransport.retry.budgetMs, s.apiTransport.retry.budgetMs], ['ghga', 20_000, 17_000]);
});

test('the options, checked before anything is contacted; --ghga checks no disk tier option', async () => {
  const s = await resolved(['--manifest', 'm.tsv', '--path', 'a', '--path', 'b', '--parallel', '4', '--part-size', '1M', '--limit-rate', '10M', '--file-mode', '0640']);
  assert.deepEqual(s.input, { kind: 'manifest', manifest: 'm.tsv', paths: ['a', 'b'] });
  assert.deepEqual([s.parallel, s.partSize, s.rate, s.modes.file, s.layout], [4, 1024 * 1024, 10 * 1024 * 1024, 0o640, 'path']);
  await rejectsWithUsage(resolved([]), /^give one of --manifest FILE, --url URL or --object-id ID$/);
  await rejectsWithUsage(resolved(['--ghga', ...URL_ARGS]), /^--ghga downloads a work package: no --manifest, --url or --object-id with it$/);
  await rejectsWithUsage(resolved(['--url', 'ftp://x/y']), /^--url must be an http\(s\) URL$/);
  await rejectsWithUsage(resolved(['--object-id', 'o1', '--output-layout', 'bundle']), /^--output-layout bundle needs a score manifest$/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--parallel', '0']), /^--parallel must be an integer from 1 to 256$/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--part-size', '1K']), /^--part-size must be at least 64K$/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--timeout', '-1']), /^--timeout must be a number of seconds/);
  await rejectsWithUsage(resolved([...URL_ARGS, '--disk-cache-size', '1K']), /^--disk-cache-size must be 0 \(off\) or at least/);
  assert.equal((await resolved(['--ghga', '--disk-cache-size', '1K'])).disk, undefined);
  await rejectsWithUsage(resolved(['--ghga', '--max-wait', '-5']), /^--max-wait must be a positive number/);
});
