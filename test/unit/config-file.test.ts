/**
 * The config file of profiles and the precedence of Score settings: flag > environment > profile >
 * default, profiles chosen by --profile / SLICEFS_PROFILE / the file, and the one-line errors (bad
 * JSON with its line and column, unknown keys and profiles, a readable file holding a token), and
 * `cacheProxy` under --cache-proxy and SLICEFS_CACHE_PROXY.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { SlicefsError } from '../../src/errors.js';
import { applyConfigCacheProxy, type TransportArgs } from '../../src/cli/common.js';
import { defaultConfigPath, jsonErrorAt, parseConfig } from '../../src/cli/config-file.js';
import { endpointOf, resolvedSettings, type ScoreArgs } from '../../src/cli/score.js';

const TOKEN = 'c0ffee00-1111-4222-8333-944445555666';
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slicefs-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
/** Writes a config file (mode 600 unless given) and returns its path. */
async function config(body: unknown, mode = 0o600): Promise<string> {
  const path = join(dir, `config-${++n}.json`);
  await writeFile(path, typeof body === 'string' ? body : JSON.stringify(body, null, 2));
  await chmod(path, mode);
  return path;
}

/** Asserts a one-line USAGE error matching `re`. */
async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: SlicefsError) => {
    assert.ok(err instanceof SlicefsError, String(err));
    assert.equal(err.code, 'USAGE');
    assert.match(err.message, re);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

const PROFILES = {
  profile: 'argo',
  profiles: {
    argo: { storageUrl: 'https://argo.example/storage-api', token: TOKEN },
    collab: { storageUrl: 'https://collab.example/score', metadataUrl: 'https://collab.example/meta' },
  },
};

test('precedence of every setting: flag > environment > profile > default', async () => {
  const file = await config(PROFILES);
  const tokenFile = join(dir, 'flag-token');
  await writeFile(tokenFile, 'from-the-token-file\n', { mode: 0o600 });
  const settings = (args: ScoreArgs, env: NodeJS.ProcessEnv = {}) => resolvedSettings({ config: file, ...args }, env);

  // Profile only; the metadata URL defaults to the storage URL.
  let s = await settings({});
  assert.deepEqual([s.storageUrl.value, s.storageUrl.origin, s.storageUrl.from], ['https://argo.example/storage-api', 'profile', 'profile argo']);
  assert.deepEqual([s.metadataUrl.value, s.metadataUrl.origin], ['https://argo.example/storage-api', 'default']);
  assert.deepEqual([s.token.value, s.token.origin], [TOKEN, 'profile']);
  assert.deepEqual([s.profile.value, s.profile.origin], ['argo', 'profile']);

  // Environment over profile.
  const env = { STORAGE_URL: 'https://env.example/s', METADATA_URL: 'https://env.example/m', SLICEFS_TOKEN: 'env-slicefs-token' };
  s = await settings({}, env);
  assert.deepEqual([s.storageUrl.value, s.storageUrl.origin, s.storageUrl.from], ['https://env.example/s', 'env', 'STORAGE_URL']);
  assert.deepEqual([s.metadataUrl.value, s.metadataUrl.origin], ['https://env.example/m', 'env']);
  assert.deepEqual([s.token.value, s.token.from], ['env-slicefs-token', 'SLICEFS_TOKEN']);
  // ACCESSTOKEN (score-client's name) over SLICEFS_TOKEN; an empty variable counts as unset.
  s = await settings({}, { ...env, ACCESSTOKEN: 'env-access-token' });
  assert.deepEqual([s.token.value, s.token.from], ['env-access-token', 'ACCESSTOKEN']);
  s = await settings({}, { STORAGE_URL: '', ACCESSTOKEN: '' });
  assert.equal(s.storageUrl.origin, 'profile');
  assert.equal(s.token.origin, 'profile');

  // Flags over environment: --token over --token-file over the environment.
  const flags: ScoreArgs = { 'storage-url': 'https://flag.example/s', 'metadata-url': 'https://flag.example/m', 'token-file': tokenFile };
  s = await settings(flags, { ...env, ACCESSTOKEN: 'env-access-token' });
  assert.deepEqual([s.storageUrl.value, s.storageUrl.origin, s.storageUrl.from], ['https://flag.example/s', 'flag', '--storage-url']);
  assert.deepEqual([s.metadataUrl.value, s.metadataUrl.from], ['https://flag.example/m', '--metadata-url']);
  assert.deepEqual([s.token.value, s.token.from, s.token.file], ['from-the-token-file', '--token-file', tokenFile]);
  s = await settings({ ...flags, token: 'flag-token' }, env);
  assert.deepEqual([s.token.value, s.token.from], ['flag-token', '--token']);
  const warnings: string[] = [];
  assert.deepEqual(endpointOf(s, (l) => warnings.push(l)), { storageUrl: 'https://flag.example/s', metadataUrl: 'https://flag.example/m', token: 'flag-token' });
  assert.match(warnings.join(), /--token shows the token in the process list/);

  // Nothing anywhere: the defaults say so, and the endpoint names what to set.
  s = await resolvedSettings({}, { XDG_CONFIG_HOME: join(dir, 'empty-xdg') });
  assert.deepEqual([s.storageUrl.value, s.storageUrl.origin, s.token.value, s.token.origin], [undefined, 'default', undefined, 'default']);
  assert.equal(s.config.exists, false);
  assert.throws(() => endpointOf(s, () => {}), /need the storage service: --storage-url URL or STORAGE_URL/);
});

test('profiles: --profile > SLICEFS_PROFILE > the file\'s "profile" > the top-level settings', async () => {
  const file = await config({
    storageUrl: 'https://top.example/s',
    token: 'top-level-token-0000000000',
    profile: 'argo',
    profiles: PROFILES.profiles,
  });
  let s = await resolvedSettings({ config: file }, {});
  assert.deepEqual([s.profile.value, s.profile.from, s.storageUrl.value], ['argo', `"profile" in ${file}`, 'https://argo.example/storage-api']);
  s = await resolvedSettings({ config: file }, { SLICEFS_PROFILE: 'collab' });
  assert.deepEqual([s.profile.value, s.profile.origin, s.storageUrl.value, s.metadataUrl.value], ['collab', 'env', 'https://collab.example/score', 'https://collab.example/meta']);
  // A chosen profile does not inherit the top level's token: it is meant for another service.
  assert.equal(s.token.value, undefined);
  s = await resolvedSettings({ config: file, profile: 'argo' }, { SLICEFS_PROFILE: 'collab' });
  assert.deepEqual([s.profile.value, s.profile.origin], ['argo', 'flag']);
  // "default" names the top-level settings.
  s = await resolvedSettings({ config: file, profile: 'default' }, {});
  assert.deepEqual([s.storageUrl.value, s.storageUrl.from, s.token.value], ['https://top.example/s', 'config file', 'top-level-token-0000000000']);
  // Without any choice, the top level is used.
  const flat = await config({ storageUrl: 'https://flat.example/s' });
  s = await resolvedSettings({ config: flat }, {});
  assert.deepEqual([s.profile.value, s.profile.from, s.storageUrl.value], [undefined, 'none: the top-level settings', 'https://flat.example/s']);
});

test('an unknown profile is an error naming the profiles the file has', async () => {
  const file = await config(PROFILES);
  await rejectsWith(resolvedSettings({ config: file, profile: 'agro' }, {}), /^unknown profile "agro" \(from --profile\): .*config-\d+\.json has argo, collab$/);
  await rejectsWith(resolvedSettings({ config: file }, { SLICEFS_PROFILE: 'x' }), /unknown profile "x" \(from SLICEFS_PROFILE\)/);
  const named = await config({ profile: 'gone', profiles: {} });
  await rejectsWith(resolvedSettings({ config: named }, {}), /unknown profile "gone" \(from "profile" in .*\): .* has no profiles$/);
  await rejectsWith(resolvedSettings({ profile: 'argo' }, { XDG_CONFIG_HOME: join(dir, 'nothing') }), /unknown profile "argo" \(from --profile\): there is no config file/);
});

test('bad JSON: the line and column of the mistake, and none of the text around it', async () => {
  const text = `{\n  "profiles": {\n    "argo": { "token": "${TOKEN}", }\n  }\n}\n`;
  const file = await config(text);
  const col = text.split('\n')[2].indexOf('}') + 1;
  await rejectsWith(resolvedSettings({ config: file }, {}), new RegExp(`config-\\d+\\.json: not valid JSON at line 3, column ${col}: trailing comma$`));
  await assert.rejects(resolvedSettings({ config: file }, {}), (err: Error) => !err.message.includes(TOKEN));
  const cases: [string, RegExp][] = [
    ['', /line 1, column 1: the file is empty/],
    ['{"a": 1', /line 1, column 8: unexpected end of the file/],
    ['{\n "storageUrl": "x"\n "token": "y"}', /line 3, column 2: expected ',' or '}'/],
    ["{'storageUrl': 1}", /line 1, column 2: expected a key in double quotes/],
    ['{"storageUrl": "a\nb"}', /line 1, column 18: line break inside a string/],
    ['{"a": tru}', /line 1, column 7: expected a value/],
    ['{} x', /line 1, column 4: unexpected text after the end/],
  ];
  for (const [body, re] of cases) assert.throws(() => parseConfig(body, 'c.json'), re, JSON.stringify(body));
});

test('the JSON scanner agrees with JSON.parse on what is valid', () => {
  const valid = (s: string) => {
    try {
      JSON.parse(s);
      return true;
    } catch {
      return false;
    }
  };
  fc.assert(
    fc.property(fc.json(), (s) => jsonErrorAt(s) === undefined),
    { numRuns: 300 },
  );
  // Valid documents with a character deleted, replaced or inserted: mostly invalid, sometimes not.
  const mutated = fc.tuple(fc.json(), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', ' ', '0', '-', '\\', 'e', '\n', 'x')).map(([s, i, c]) => {
    const at = s.length === 0 ? 0 : i % s.length;
    return i % 2 === 0 ? s.slice(0, at) + c + s.slice(at + 1) : s.slice(0, at) + c + s.slice(at);
  });
  fc.assert(
    fc.property(mutated, (s) => (jsonErrorAt(s) === undefined) === valid(s)),
    { numRuns: 2000 },
  );
});

test('unknown keys and wrong types are errors that say where', async () => {
  assert.throws(() => parseConfig('{"storageURL": "x"}', 'c.json'), /c\.json: unknown key "storageURL" \(did you mean "storageUrl"\?\); known: profile, profiles, storageUrl/);
  assert.throws(() => parseConfig('{"profiles": {"argo": {"token_file": "x"}}}', 'c.json'), /c\.json: profile "argo": unknown key "token_file" \(did you mean "tokenFile"\?\)/);
  assert.throws(() => parseConfig('{"profiles": {"argo": {"colour": "x"}}}', 'c.json'), /unknown key "colour"; known: storageUrl, metadataUrl, token, tokenFile, cacheProxy$/);
  assert.throws(() => parseConfig('{"profiles": {"argo": {"storageUrl": 3}}}', 'c.json'), /profile "argo": "storageUrl" must be a non-empty string/);
  assert.throws(() => parseConfig('{"profiles": {"argo": {"token": "a", "tokenFile": "b"}}}', 'c.json'), /give one of "token" or "tokenFile"/);
  assert.throws(() => parseConfig('[]', 'c.json'), /c\.json: must be a JSON object/);
  assert.throws(() => parseConfig('{"profile": 1}', 'c.json'), /"profile" must be a string/);
  // A byte order mark is not a mistake.
  assert.deepEqual(parseConfig('\uFEFF{"storageUrl": "https://x"}', 'c.json').topLevel, { storageUrl: 'https://x' });
});

test('cacheProxy: the rules of --cache-proxy, checked when the file is read, the value never shown', () => {
  const ok = parseConfig('{"cacheProxy": "http://tier.site:8080/", "profiles": {"argo": {"cacheProxy": "https://gw.site/tier/"}}}', 'c.json');
  assert.equal(ok.topLevel.cacheProxy, 'http://tier.site:8080');
  assert.equal(ok.profiles.argo.cacheProxy, 'https://gw.site/tier');
  for (const bad of ['tier.site:8080', 'ftp://tier.site', 'http://tier.site/?sig=s3cr3t', 'http://user:s3cr3t@tier.site', 'http://tier.site/#s3cr3t']) {
    assert.throws(
      () => parseConfig(JSON.stringify({ profiles: { argo: { cacheProxy: bad } } }), 'c.json'),
      (err: SlicefsError) => /^c\.json: profile "argo": "cacheProxy" must be an http\(s\) URL without query or credentials/.test(err.message) && !err.message.includes('s3cr3t'),
      bad,
    );
  }
  assert.throws(() => parseConfig('{"cacheProxy": ""}', 'c.json'), /c\.json: "cacheProxy" must be a non-empty string/);
  assert.throws(() => parseConfig('{"cache-proxy": "http://t"}', 'c.json'), /unknown key "cache-proxy" \(did you mean "cacheProxy"\?\)/);
  assert.throws(() => parseConfig('{"profiles": {"a": {"cache_proxy": "http://t"}}}', 'c.json'), /profile "a": unknown key "cache_proxy" \(did you mean "cacheProxy"\?\)/);
});

test('cacheProxy: --cache-proxy > SLICEFS_CACHE_PROXY > the profile > none; --no-cache-proxy keeps it off', async () => {
  const file = await config({ cacheProxy: 'http://top.tier:8080', profile: 'argo', profiles: { argo: { cacheProxy: 'http://argo.tier:8080' }, collab: {} } });
  // As yargs gives them: a flag or the environment (the option's default) is a string; --no-cache-proxy is false.
  const applied = async (a: Partial<TransportArgs> & { profile?: string }) => {
    const args = { connections: 1, verbose: false, timeout: 15, config: file, ...a };
    await applyConfigCacheProxy(args, {});
    return args['cache-proxy'];
  };
  assert.equal(await applied({}), 'http://argo.tier:8080');
  assert.equal(await applied({ 'cache-proxy': 'http://flag.tier:8080' }), 'http://flag.tier:8080');
  assert.equal(await applied({ 'cache-proxy': false }), false);
  assert.equal(await applied({ 'cache-proxy': '' }), '');
  assert.equal(await applied({ profile: 'default' }), 'http://top.tier:8080');
  // A chosen profile does not inherit the top level's tier, as with every other setting.
  assert.equal(await applied({ profile: 'collab' }), undefined);
});

test('a config file holding a token must not be readable by others; one without may be', async () => {
  const loose = await config(PROFILES, 0o644);
  await rejectsWith(resolvedSettings({ config: loose }, {}), /config-\d+\.json: holds a token and is readable by others \(mode 644\); chmod 600 it$/);
  const groupReadable = await config({ profiles: { a: { token: TOKEN } } }, 0o640);
  await rejectsWith(resolvedSettings({ config: groupReadable, profile: 'a' }, {}), /readable by others \(mode 640\)/);
  // The refusal holds even when the token in use comes from elsewhere: the file itself leaks it.
  await rejectsWith(resolvedSettings({ config: loose, token: 'x' }, {}), /holds a token/);
  const open = await config({ profiles: { a: { storageUrl: 'https://a.example' } } }, 0o644);
  assert.equal((await resolvedSettings({ config: open, profile: 'a' }, {})).storageUrl.value, 'https://a.example');
});

test('tokenFile: relative to the config file, ~ is the home directory, and it must be private', async () => {
  const sub = join(dir, 'tokens');
  await mkdir(sub, { recursive: true });
  await writeFile(join(sub, 'argo'), `${TOKEN}\n`, { mode: 0o600 });
  await writeFile(join(sub, 'loose'), `${TOKEN}\n`, { mode: 0o644 });
  const file = await config({ profiles: { rel: { tokenFile: 'tokens/argo' }, home: { tokenFile: '~/tokens/argo' }, loose: { tokenFile: 'tokens/loose' }, gone: { tokenFile: 'nope' } } }, 0o644);
  let s = await resolvedSettings({ config: file, profile: 'rel' }, {});
  assert.deepEqual([s.token.value, s.token.origin, s.token.from, s.token.file], [TOKEN, 'profile', 'profile rel, tokenFile', join(sub, 'argo')]);
  const home = process.env.HOME;
  process.env.HOME = dir;
  try {
    s = await resolvedSettings({ config: file, profile: 'home' }, {});
    assert.equal(s.token.file, join(sub, 'argo'));
  } finally {
    process.env.HOME = home;
  }
  await rejectsWith(resolvedSettings({ config: file, profile: 'loose' }, {}), /^tokenFile .*tokens\/loose \(profile loose in .*\): readable by others \(mode 644\); chmod 600 it$/);
  await rejectsWith(resolvedSettings({ config: file, profile: 'gone' }, {}), /^tokenFile .*nope \(profile gone in .*\): no such file$/);
});

test('which file: --config > SLICEFS_CONFIG > $XDG_CONFIG_HOME/slicefs/config.json; only the default may be missing', async () => {
  assert.equal(defaultConfigPath({ XDG_CONFIG_HOME: '/x/conf' }), '/x/conf/slicefs/config.json');
  // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
  assert.match(defaultConfigPath({ XDG_CONFIG_HOME: 'rel' }), /\/\.config\/slicefs\/config\.json$/);
  const xdg = join(dir, 'xdg');
  await mkdir(join(xdg, 'slicefs'), { recursive: true });
  await writeFile(join(xdg, 'slicefs', 'config.json'), JSON.stringify({ storageUrl: 'https://xdg.example' }));
  const byEnv = await config({ storageUrl: 'https://env-config.example' });
  const byFlag = await config({ storageUrl: 'https://flag-config.example' });
  let s = await resolvedSettings({}, { XDG_CONFIG_HOME: xdg });
  assert.deepEqual([s.storageUrl.value, s.config.origin, s.config.exists], ['https://xdg.example', 'default', true]);
  s = await resolvedSettings({}, { XDG_CONFIG_HOME: xdg, SLICEFS_CONFIG: byEnv });
  assert.deepEqual([s.storageUrl.value, s.config.origin, s.config.from], ['https://env-config.example', 'env', 'SLICEFS_CONFIG']);
  s = await resolvedSettings({ config: byFlag }, { XDG_CONFIG_HOME: xdg, SLICEFS_CONFIG: byEnv });
  assert.deepEqual([s.storageUrl.value, s.config.origin, s.config.value], ['https://flag-config.example', 'flag', byFlag]);
  await rejectsWith(resolvedSettings({ config: join(dir, 'missing.json') }, {}), /^--config .*missing\.json: no such file$/);
  await rejectsWith(resolvedSettings({}, { SLICEFS_CONFIG: join(dir, 'missing.json') }), /^SLICEFS_CONFIG=.*missing\.json: no such file$/);
  await rejectsWith(resolvedSettings({ config: dir }, {}), /: not a file$/);
});
