/**
 * The GHGA download token (ghga-protocol.md §1): the connector's checks (two parts on ':', 20–39
 * and 80–119 characters, a UUID), the sealed access token opened with the user's key, and the
 * errors: one line, USAGE or KEY, never quoting the token. Also the pieces of services.ts that need
 * no server: the well-known values URL and the JWT payload decoder.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { SlicefsError } from '../../src/errors.js';
import { generateKeyPair } from '../../src/crypt4gh/keys.js';
import { sealBox } from '../../src/crypt4gh/sealed-box.js';
import { openAccessToken, parseDownloadToken, publicKeyFingerprint } from '../../src/source/ghga/download-token.js';
import { jwtClaims, valuesUrl } from '../../src/source/ghga/services.js';

const user = generateKeyPair();
const ACCESS = 'Ab3dEf6hIj9kLm2nOp5qRs8t';
const sealedFor = (pub: Buffer, plain = ACCESS) => sealBox(Buffer.from(plain, 'latin1'), pub).toString('base64');
const ID = randomUUID();

function rejectsUsage(text: string, why: RegExp): void {
  assert.throws(
    () => parseDownloadToken(text),
    (err: unknown) => {
      assert.ok(err instanceof SlicefsError);
      assert.equal(err.code, 'USAGE');
      assert.match(err.message, /^malformed download token: /);
      assert.match(err.message, why);
      assert.doesNotMatch(err.message, /\n/);
      // Neither part of what was pasted is echoed.
      for (const part of text.trim().split(':')) if (part.length >= 8) assert.ok(!err.message.includes(part), `echoed ${part}`);
      return true;
    },
  );
}

test('a well-formed token: the id in canonical form, the sealed part as given; surrounding whitespace ignored', () => {
  const sealed = sealedFor(user.public);
  assert.equal(sealed.length, 96, 'a 24-character token sealed: 72 bytes, 96 base64 characters');
  assert.deepEqual(parseDownloadToken(`${ID}:${sealed}`), { workPackageId: ID, encryptedAccessToken: sealed });
  assert.deepEqual(parseDownloadToken(`  ${ID}:${sealed}\n`), { workPackageId: ID, encryptedAccessToken: sealed });
  // Python's UUID() also takes upper case, no hyphens and braces.
  assert.equal(parseDownloadToken(`${ID.toUpperCase()}:${sealed}`).workPackageId, ID);
  assert.equal(parseDownloadToken(`${ID.replace(/-/g, '')}:${sealed}`).workPackageId, ID);
  assert.equal(parseDownloadToken(`{${ID}}:${sealed}`).workPackageId, ID);
});

test('malformed tokens: the connector\'s length and part checks, a UUID, base64', () => {
  const sealed = sealedFor(user.public);
  rejectsUsage(sealed, /no ":"/);
  rejectsUsage(`${ID}:${sealed}:extra`, /2 ":" where there should be one/);
  rejectsUsage(`${'a'.repeat(19)}:${sealed}`, /19 characters, not 20–39/);
  rejectsUsage(`${'a'.repeat(40)}:${sealed}`, /40 characters, not 20–39/);
  rejectsUsage(`${ID}:${sealed.slice(0, 79)}`, /79 characters, not 80–119/);
  rejectsUsage(`${ID}:${sealed}${'A'.repeat(24)}`, /120 characters, not 80–119/);
  rejectsUsage(`${'g'.repeat(36)}:${sealed}`, /not a UUID/);
  rejectsUsage(`${ID.slice(0, 30)}:${sealed}`, /not a UUID/);
  rejectsUsage(`${ID}:${sealed.slice(0, 90)}!!!!!!`, /not base64/);
  rejectsUsage('', /no ":"/);
});

test('the access token opens with the key it was sealed for', () => {
  const token = `${ID}:${sealedFor(user.public)}`;
  assert.equal(openAccessToken(token, user), ACCESS);
  assert.equal(openAccessToken(parseDownloadToken(token), user), ACCESS);
});

test('a token sealed for another key: KEY, names our public key, quotes nothing of the token', () => {
  const other = generateKeyPair();
  const sealed = sealedFor(other.public);
  const token = `${ID}:${sealed}`;
  assert.throws(
    () => openAccessToken(token, user),
    (err: unknown) => {
      assert.ok(err instanceof SlicefsError);
      assert.equal(err.code, 'KEY');
      assert.equal(
        err.message,
        `the download token was not made for this key (public key ${publicKeyFingerprint(user.public)}): use the key pair whose public key you gave the GHGA data portal`,
      );
      assert.ok(!err.message.includes(sealed) && !err.message.includes(ACCESS));
      return true;
    },
  );
});

test('a box that opens but holds no access token is refused', () => {
  const token = `${ID}:${sealedFor(user.public, 'not a GHGA access token, longer')}`;
  assert.throws(() => openAccessToken(token, user), /malformed download token: it does not hold a GHGA access token/);
});

test('well-known values URL: {url}/values, a bare origin means /.well-known', () => {
  assert.equal(valuesUrl('https://data.ghga.de/.well-known'), 'https://data.ghga.de/.well-known/values');
  assert.equal(valuesUrl('https://data.ghga.de/.well-known/'), 'https://data.ghga.de/.well-known/values');
  assert.equal(valuesUrl('https://data.ghga.de'), 'https://data.ghga.de/.well-known/values');
  assert.equal(valuesUrl('https://data.ghga.de/'), 'https://data.ghga.de/.well-known/values');
  assert.equal(valuesUrl('http://127.0.0.1:8080/values'), 'http://127.0.0.1:8080/values');
  assert.throws(() => valuesUrl('not a url'), (err: SlicefsError) => err.code === 'USAGE');
});

test('JWT payload decoded without verification; anything else is undefined', () => {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const jwt = `${enc({ alg: 'ES256' })}.${enc({ exp: 130, iat: 100, user_public_crypt4gh_key: 'abc' })}.c2ln`;
  assert.deepEqual(jwtClaims(jwt), { exp: 130, iat: 100, user_public_crypt4gh_key: 'abc' });
  assert.equal(jwtClaims('a.b'), undefined);
  assert.equal(jwtClaims(`${enc({})}.${Buffer.from('not json').toString('base64url')}.x`), undefined);
  assert.equal(jwtClaims(`${enc({})}.${enc([1, 2])}.x`), undefined);
  assert.equal(jwtClaims('a.b c.d'), undefined);
});
