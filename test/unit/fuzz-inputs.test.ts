/**
 * Fuzzing of the parsers of what users and services hand slicefs: manifests (URL TSV, URL list,
 * ARGO, ICGC 25K), the config file, Crypt4GH key files and headers, the GHGA download token and
 * the JSON answers of GHGA's and Score's services. Each starts from real inputs and mutates them
 * (test/helpers/fuzz.ts); the answer must be a result or a one-line SlicefsError, never another
 * exception (a stack trace for the user), a hang, or an allocation a length field decides.
 *
 * The services' parsers are driven through their real clients with a stub `request`/`getJson` that
 * returns the fuzzed answer: the stub is the network, not the thing under test.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { SlicefsError } from '../../src/errors.js';
import { parseConfig, chooseProfile } from '../../src/cli/config-file.js';
import { decryptHeader, encryptHeader, headerLength } from '../../src/crypt4gh/header.js';
import { decodePrivateKeyFile, generateKeyPair, parsePrivateKey, parsePublicKey } from '../../src/crypt4gh/keys.js';
import { sealBox } from '../../src/crypt4gh/sealed-box.js';
import { parseManifest } from '../../src/manifest/load.js';
import { DrsClient } from '../../src/source/ghga/dcs.js';
import { parseDownloadToken } from '../../src/source/ghga/download-token.js';
import { wellKnownValues } from '../../src/source/ghga/services.js';
import { ScoreMetadata } from '../../src/source/score-metadata.js';
import { ScoreSource } from '../../src/source/score-source.js';
import type { Transport } from '../../src/transport/transport.js';
import type { ApiResponse } from '../../src/transport/http-transport.js';
import { index as vectorIndex, vector, vectorText } from '../helpers/c4gh-vectors.js';
import { fuzzParams, mutatedBytes, mutatedJson, mutatedText, resolvesOrRefuses, returnsOrRefuses } from '../helpers/fuzz.js';

const MD5 = '9e107d9d372bb6826bd81d3542a419d6';

const MANIFESTS = [
  `url\tpath\tsize\tmd5\tindex_url\nhttp://h/x/a.bam\tdonor1/a.bam\t123\t${MD5}\thttp://h/x/a.bam.bai\nhttps://h/d/b.cram?sig=1\tdonor2/b.cram\t5\t\thttps://h/d/b.cram.crai\n`,
  'http://h/a.bam\n\n# x\nhttp://h/b/c.bam\nhttps://h/e.bam.c4gh\n',
  'repository_code\tanalysis_id\tobject_id\tfile_type\tfile_name\tfile_size\tmd5sum\tindex_object_id\tdonor_id\tsample_id(s)\tproject_id\n' +
    `collab\tAN1\t5b0c0c4e-0b8a-5b2d-9e0a-1f7c3a6e2b11\tBAM\tDO1.bam\t1234\t${MD5}\t7c1d1d5f-1c9b-5c3e-8f1b-2a8d4b7f3c22\tDO1\tSA1|SA2\tTEST-CA\n` +
    `collab\tAN1\t7c1d1d5f-1c9b-5c3e-8f1b-2a8d4b7f3c22\tBAI\tDO1.bam.bai\t56\t${MD5}\t\tDO1\tSA1|SA2\tTEST-CA\n`,
  'repo_code\tfile_id\tobject_id\tfile_format\tfile_name\tfile_size\tmd5_sum\tindex_object_id\tdonor_id/donor_count\tproject_id/project_count\tstudy\n' +
    `collaboratory\tFI1\t5b0c0c4e-0b8a-5b2d-9e0a-1f7c3a6e2b11\tBAM\tDO1.bam\t1234\t${MD5}\t7c1d1d5f-1c9b-5c3e-8f1b-2a8d4b7f3c22\tDO1\tP1\tPCAWG\n`,
];

test('fuzz: manifests (URL TSV, URL list, ARGO, 25K) parse or give one MANIFEST line', () => {
  fc.assert(
    fc.property(mutatedText(MANIFESTS), (text) => {
      const out = returnsOrRefuses(() => parseManifest(text, 'm.tsv'));
      if (out instanceof SlicefsError) return;
      for (const e of out.entries) {
        assert.equal(typeof e.url, 'string');
        assert.ok(!e.path.split('/').includes('..'), `a path with '..': ${e.path}`);
        assert.ok(!e.path.startsWith('/'), `an absolute path: ${e.path}`);
        if (e.size !== undefined) assert.ok(Number.isSafeInteger(e.size) && e.size >= 0, `size ${e.size}`);
      }
    }),
    fuzzParams(),
  );
});

const CONFIG = JSON.stringify({
  profile: 'argo',
  storageUrl: 'https://top.example/storage',
  profiles: {
    argo: { storageUrl: 'https://score.example/storage-api', metadataUrl: 'https://song.example', tokenFile: '~/.argo-token', cacheProxy: 'http://tier:8080' },
    collab: { storageUrl: 'https://c.example/', token: 'abcdef0123456789' },
  },
});

test('fuzz: the config file parses or gives one USAGE line', () => {
  fc.assert(
    fc.property(fc.oneof(mutatedText([CONFIG]), mutatedJson(JSON.parse(CONFIG)).map((v) => JSON.stringify(v) ?? '')), fc.constantFrom(undefined, 'argo', 'collab', 'default', 'x\ny'), (text, profile) => {
      const out = returnsOrRefuses(() => parseConfig(text, '/home/u/.config/slicefs/config.json'));
      if (out instanceof SlicefsError) return;
      returnsOrRefuses(() => chooseProfile({ path: 'c.json', origin: 'flag', exists: true, ...out }, profile, {}));
    }),
    fuzzParams(),
  );
});

const KEY_FILES = vectorIndex.keys.map((k) => ({ text: vectorText(k.file), passphrase: k.passphrase ?? '' }));

test('fuzz: Crypt4GH private key files decode or give one KEY line', () => {
  fc.assert(
    fc.property(mutatedText(KEY_FILES.map((k) => k.text)), (text) => {
      returnsOrRefuses(() => decodePrivateKeyFile(text, 'me.sec'));
    }),
    fuzzParams(),
  );
});

test('fuzz: the armoured bytes of key files, mutated inside the base64 (lengths, KDF rounds, names)', async () => {
  // Mutating the text rarely survives base64; mutating the decoded bytes and armouring them again
  // reaches the length fields and the KDF rounds, where a hostile key could ask for any work.
  const bodies = KEY_FILES.map((k) => Buffer.from(k.text.split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64'));
  const seeded = fc.nat(bodies.length - 1).chain((i) => mutatedBytes([bodies[i]!]).map((bytes) => [i, bytes] as const));
  await fc.assert(
    fc.asyncProperty(seeded, async ([i, bytes]) => {
      const text = `-----BEGIN CRYPT4GH PRIVATE KEY-----\n${bytes.toString('base64')}\n-----END CRYPT4GH PRIVATE KEY-----\n`;
      await resolvesOrRefuses(() => parsePrivateKey(text, () => Promise.resolve(KEY_FILES[i]!.passphrase || 'x'), 'me.sec'));
    }),
    fuzzParams(150),
  );
});

test('a key file asking for more KDF rounds than slicefs opens is refused before any work', async () => {
  for (const [file, kdf] of [['keys/carol.bcrypt.sec', 'bcrypt'], ['keys/dave.pbkdf2.sec', 'pbkdf2_hmac_sha256']] as const) {
    const body = Buffer.from(vectorText(file).split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64');
    // c4gh-v1, then the kdf name (u16 length + name), then the kdf options (u16 length, u32 rounds, salt).
    const roundsAt = 7 + 2 + kdf.length + 2;
    assert.equal(body.readUInt32BE(roundsAt), decodePrivateKeyFile(vectorText(file), file).rounds, 'the offset of the rounds field');
    body.writeUInt32BE(0xffffffff, roundsAt);
    const text = `-----BEGIN CRYPT4GH PRIVATE KEY-----\n${body.toString('base64')}\n-----END CRYPT4GH PRIVATE KEY-----\n`;
    let asked = false;
    await assert.rejects(
      parsePrivateKey(text, () => ((asked = true), Promise.resolve('x')), file),
      (err: unknown) => err instanceof SlicefsError && err.code === 'KEY' && /4294967295 rounds/.test(err.message),
    );
    assert.equal(asked, false, 'refused before the passphrase is asked for');
  }
});

test('fuzz: public keys parse or give one KEY line', () => {
  const pubs = vectorIndex.keys.map((k) => vectorText(k.public_file));
  fc.assert(
    fc.property(mutatedText(pubs), (text) => {
      const out = returnsOrRefuses(() => parsePublicKey(text, 'them.pub'));
      if (!(out instanceof SlicefsError)) assert.equal(out.length, 32);
    }),
    fuzzParams(),
  );
});

test('fuzz: Crypt4GH headers: headerLength and decryptHeader answer or give one DECRYPT/KEY line', () => {
  const alice = generateKeyPair();
  const headers = [
    encryptHeader(Buffer.alloc(32, 7), [alice.public]),
    encryptHeader(Buffer.alloc(32, 9), [alice.public, generateKeyPair().public], { editList: [5, 10, 100] }),
    ...vectorIndex.files.filter((f) => f.header_len !== undefined).slice(0, 3).map((f) => vector(f.file).subarray(0, f.header_len)),
  ];
  fc.assert(
    fc.property(mutatedBytes(headers), (bytes) => {
      const len = returnsOrRefuses(() => headerLength(bytes, 'x.c4gh'));
      if (typeof len === 'number') assert.ok(len <= 1 << 20);
      returnsOrRefuses(() => decryptHeader(bytes, [alice], { label: 'x.c4gh' }));
    }),
    fuzzParams(),
  );
});

test('fuzz: GHGA download tokens parse or give one USAGE line', () => {
  const user = generateKeyPair();
  const sealed = sealBox(Buffer.from('Ab3dEf6hIj9kLm2nOp5qRs8t', 'latin1'), user.public).toString('base64');
  fc.assert(
    fc.property(mutatedText([`${randomUUID()}:${sealed}`, `${randomUUID().replace(/-/g, '')}:${sealed}\n`]), (text) => {
      returnsOrRefuses(() => parseDownloadToken(text));
    }),
    fuzzParams(),
  );
});

/** A stand-in for the network: every request is answered with `res`. */
function answering(res: ApiResponse) {
  return { request: () => Promise.resolve(res) };
}

function jsonAnswer(value: unknown, raw?: string): ApiResponse {
  return { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'max-age=60' }, body: raw ?? JSON.stringify(value) ?? '' };
}

/** A JSON seed's answers: its values mutated, or its text mutated. */
function jsonAnswers(seed: unknown): fc.Arbitrary<ApiResponse> {
  return fc.oneof(mutatedJson(seed).map((v) => jsonAnswer(v)), mutatedText([JSON.stringify(seed)]).map((t) => jsonAnswer(undefined, t)));
}

test('fuzz: the GHGA well-known values answer', async () => {
  const seed = {
    wps_api_url: 'https://wps.example/api',
    dcs_api_url: 'https://dcs.example/api/',
    ucs_api_url: 'https://ucs.example',
    crypt4gh_public_keys: { ghga: 'qx5g31H7rdsq7sgkew9ElkLIXvBje4RxDVcAHcJD8XY=' },
  };
  await fc.assert(
    fc.asyncProperty(jsonAnswers(seed), async (res) => {
      await resolvesOrRefuses(() => wellKnownValues(answering(res), 'https://ghga.example/.well-known'));
    }),
    fuzzParams(),
  );
});

test('fuzz: the GHGA DRS object and envelope answers', async () => {
  const seed = {
    size: 1234,
    created_time: '2026-01-01T00:00:00Z',
    checksums: [{ type: 'sha-256', checksum: 'a'.repeat(64) }],
    access_methods: [{ type: 's3', access_url: { url: 'https://s3.example/b/o?X-Amz-Expires=60&X-Amz-Date=20260101T000000Z&X-Amz-Signature=ff' } }],
  };
  const wots = { workOrderToken: () => Promise.resolve('wot.jwt.token') };
  await fc.assert(
    fc.asyncProperty(jsonAnswers(seed), async (res) => {
      const dcs = new DrsClient(answering(res), 'https://dcs.example', wots);
      const out = await resolvesOrRefuses(() => dcs.object('GHGAF12345678901234'));
      if (!(out instanceof SlicefsError) && out.state === 'ready') {
        assert.ok(Number.isSafeInteger(out.object.size) && out.object.size >= 0);
        assert.match(out.object.url, /^https?:\/\//i);
      }
      await resolvesOrRefuses(() => dcs.envelope('GHGAF12345678901234'));
    }),
    fuzzParams(),
  );
});

/** A transport that must not be used: the fuzzed answers are all the source may act on. */
const noTransport: Transport = {
  probe: () => Promise.reject(new SlicefsError('NETWORK', 'no transport in this test')),
  fetchRange: () => Promise.reject(new SlicefsError('NETWORK', 'no transport in this test')),
  close: () => Promise.resolve(),
};

test('fuzz: the Score storage service object specification', async () => {
  const seed = {
    objectId: '5b0c0c4e-0b8a-5b2d-9e0a-1f7c3a6e2b11',
    objectSize: 1234,
    objectMd5: MD5,
    parts: [{ url: 'https://s3.example/b/o?X-Amz-Expires=60&X-Amz-Date=20260101T000000Z&X-Amz-Signature=ff', offset: 0, partSize: 1234 }],
  };
  await fc.assert(
    fc.asyncProperty(mutatedJson(seed), async (value) => {
      const api = { getJson: () => Promise.resolve(value) };
      const src = new ScoreSource(api, noTransport, { storageUrl: 'https://score.example/storage-api', token: 't0k3n' }, seed.objectId, 1234);
      // open() resolves the URL and pins the version: the pin goes to the (refusing) transport.
      const out = await resolvesOrRefuses(() => src.version());
      assert.ok(out instanceof SlicefsError, 'the stub transport refuses every probe');
      if (src.md5 !== undefined) assert.match(src.md5, /^[0-9a-f]{32}$/);
    }),
    fuzzParams(),
  );
});

test('fuzz: the Score metadata service answers (entity, then the analysis pages)', async () => {
  const entity = { id: 'obj-a', fileName: 'DO1.bam', gnosId: 'AN1' };
  const page = { content: [entity, { id: 'obj-i', fileName: 'DO1.bam.bai', gnosId: 'AN1' }], last: true };
  await fc.assert(
    fc.asyncProperty(mutatedJson(entity), mutatedJson(page), async (e, p) => {
      let call = 0;
      const api = { getJson: () => Promise.resolve(call++ === 0 ? e : p) };
      const out = await resolvesOrRefuses(() => new ScoreMetadata(api, 'https://song.example', 't0k3n').indexOf('obj-a'));
      if (!(out instanceof SlicefsError) && out !== undefined) assert.equal(typeof out, 'string');
    }),
    fuzzParams(),
  );
});
