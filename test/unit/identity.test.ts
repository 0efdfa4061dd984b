/**
 * The object identity (src/source/identity.ts): which URLs name one object for every cache. Each
 * signing scheme's parameters go and only when the URL is signed that way; every other parameter
 * stays, in a stable order; spellings RFC 3986 makes equal meet, others do not. And the cache tier's
 * nginx.conf drops exactly the same parameters under the same conditions.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { isParam, objectIdentity, SIGNED_URL_SCHEMES } from '../../src/source/identity.js';
import { REPO } from '../helpers/daemon.js';

const id = objectIdentity;

test('a signature of each scheme is dropped; the object-selecting parameters stay', () => {
  const signed: [string, string][] = [
    [
      'https://bucket.s3.amazonaws.com/data/x.bam?versionId=7&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&X-Amz-Credential=AK%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261123T101500Z&X-Amz-Expires=86400&X-Amz-Security-Token=tok&X-Amz-SignedHeaders=host&X-Amz-Signature=abc&x-id=GetObject',
      'https://bucket.s3.amazonaws.com/data/x.bam?versionId=7&x-id=GetObject',
    ],
    ['https://s3.example.org/b/x.bam?AWSAccessKeyId=AK&Expires=1795431600&Signature=s%3D&x-amz-security-token=t&partNumber=2', 'https://s3.example.org/b/x.bam?partNumber=2'],
    [
      'https://storage.googleapis.com/b/o?generation=5&X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%2F20261123%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20261123T120000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=s',
      'https://storage.googleapis.com/b/o?generation=5',
    ],
    ['https://storage.googleapis.com/b/o?GoogleAccessId=sa%40p.iam&Expires=1795431600&Signature=s', 'https://storage.googleapis.com/b/o'],
    ['https://d111.cloudfront.net/x.bam?Expires=1795431600&Signature=s~&Key-Pair-Id=K2', 'https://d111.cloudfront.net/x.bam'],
    ['https://d111.cloudfront.net/x.bam?Policy=eyJ&Signature=s&Key-Pair-Id=K2', 'https://d111.cloudfront.net/x.bam'],
    [
      'https://acct.blob.core.windows.net/c/x.bam?snapshot=2026-01-01&sv=2021-08-06&ss=b&srt=o&sp=r&st=2026-11-23T08%3A00%3A00Z&se=2026-11-24T08%3A30%3A00Z&sip=10.0.0.1&spr=https&sr=b&si=pol&sdd=1&ses=scope&skoid=o&sktid=t&skt=a&ske=b&sks=b&skv=2021&skdutid=d&sduoid=u&saoid=x&suoid=y&scid=z&rscd=attachment&sig=abc%3D',
      'https://acct.blob.core.windows.net/c/x.bam?rscd=attachment&snapshot=2026-01-01',
    ],
  ];
  for (const [url, want] of signed) {
    assert.equal(id(url), want, url);
    // Re-signing (another signature, date, expiry) keeps the identity.
    const resigned = url.replace(/(Signature|sig)=[^&]*/g, '$1=other').replace(/Date=\d+/g, 'Date=20300101');
    assert.equal(id(resigned), want, resigned);
  }
});

test('a scheme is dropped only when its signature parameters are all there', () => {
  // Without `sv` and `sig`, `st` and `se` are a portal's (a start and an end, say).
  assert.equal(id('https://p.example/dl?id=A&st=0&se=99'), 'https://p.example/dl?id=A&se=99&st=0');
  assert.equal(id('https://p.example/dl?id=A&st=0&se=99&sig=x'), 'https://p.example/dl?id=A&se=99&sig=x&st=0');
  assert.equal(id('https://p.example/dl?Signature=x&Expires=1&id=A'), 'https://p.example/dl?Expires=1&Signature=x&id=A');
  assert.equal(id('https://p.example/dl?X-Amz-Date=20261123T000000Z&id=A'), 'https://p.example/dl?X-Amz-Date=20261123T000000Z&id=A');
  assert.equal(id('https://p.example/dl?Policy=p&Signature=s&id=A'), 'https://p.example/dl?Policy=p&Signature=s&id=A');
  // A portal's own token is no recognised signature: it stays (and is never shown: util/redact.ts).
  assert.equal(id('https://p.example/dl?token=T&id=A'), 'https://p.example/dl?id=A&token=T');
});

test('names: X-Amz-* and X-Goog-* in any case, the others only as their stores spell them', () => {
  assert.equal(id('https://h/o?x-amz-date=d&X-AMZ-SIGNATURE=s&x-amz-credential=c&id=1'), 'https://h/o?id=1');
  assert.equal(id('https://h/o?x-goog-signature=s&X-GOOG-DATE=d'), 'https://h/o');
  assert.equal(id('https://h/o?awsaccesskeyid=a&signature=s&expires=1'), 'https://h/o?awsaccesskeyid=a&expires=1&signature=s');
  assert.equal(id('https://h/o?SV=1&SIG=s&SE=2'), 'https://h/o?SE=2&SIG=s&SV=1');
  assert.ok(isParam('x-amz-security-token', 'X-Amz-Security-Token'));
  assert.ok(!isParam('SIG', 'sig'));
  // An escaped name is its unescaped self (RFC 3986: `%53` is `S`).
  assert.equal(id('https://h/o?X-Amz-%53ignature=s&X-Amz-Date=d'), 'https://h/o');
});

test('order: parameters sorted by name, one name keeping its order; empty ones dropped', () => {
  assert.equal(id('https://h/dl?b=2&a=1'), id('https://h/dl?a=1&b=2'));
  assert.equal(id('https://h/dl?b=1&a=x&b=2'), 'https://h/dl?a=x&b=1&b=2');
  assert.notEqual(id('https://h/dl?id=1&id=2'), id('https://h/dl?id=2&id=1'));
  assert.equal(id('https://h/dl?a=1&&b=2&'), 'https://h/dl?a=1&b=2');
  assert.equal(id('https://h/dl?'), 'https://h/dl');
  assert.equal(id('https://h/dl?X-Amz-Signature=s'), 'https://h/dl');
});

test('spellings: unreserved escapes and hex case meet; +, %2B, %20, a and a= stay apart', () => {
  assert.equal(id('https://h/%41b/x?id=%41'), 'https://h/Ab/x?id=A');
  assert.equal(id('https://h/a%2fb?k=%2f'), 'https://h/a%2Fb?k=%2F');
  assert.equal(id('https://h/x?k=a%7e'), 'https://h/x?k=a~');
  const spellings = ['q=a+b', 'q=a%2Bb', 'q=a%20b', 'q=a b'].map((q) => id(`https://h/x?${q}`));
  assert.equal(spellings[2], spellings[3], 'the URL parser escapes a space');
  assert.equal(new Set(spellings).size, 3);
  assert.notEqual(id('https://h/x?a'), id('https://h/x?a='));
  assert.equal(id('https://h/x?a='), 'https://h/x?a=');
  // Values may hold `=`.
  assert.equal(id('https://h/x?k=a=b'), 'https://h/x?k=a=b');
});

test('user:password, the fragment, the default port and the host case are not part of it', () => {
  assert.equal(id('HTTPS://user:pw@Host.Example:443/a/../b.bam?id=A#frag'), 'https://host.example/b.bam?id=A');
  assert.equal(id('http://h:8080/x'), 'http://h:8080/x');
  assert.notEqual(id('http://h/x'), id('https://h/x'));
  assert.throws(() => id('not a url'));
});

/** A query parameter: a name from a small pool (so names repeat) and a short value. */
const param = fc.record({ name: fc.constantFrom('id', 'file', 'b', 'A', 'versionId', 'st', 'se', 'token'), value: fc.stringMatching(/^[a-zA-Z0-9+._~-]{0,4}$/) });
const queryOf = (ps: { name: string; value: string }[]) => ps.map((p) => `${p.name}=${p.value}`).join('&');

test('property: a signature anywhere in the query does not change the identity', () => {
  const s3 = ['X-Amz-Algorithm=AWS4-HMAC-SHA256', 'X-Amz-Credential=AK%2F1', 'X-Amz-Date=20261123T000000Z', 'X-Amz-Expires=60', 'X-Amz-SignedHeaders=host', 'X-Amz-Signature=abc'];
  fc.assert(
    fc.property(fc.array(param, { maxLength: 6 }), fc.array(fc.nat(), { minLength: s3.length, maxLength: s3.length }), (ps, at) => {
      const plain = queryOf(ps);
      const parts = plain ? plain.split('&') : [];
      s3.forEach((p, i) => parts.splice(at[i] % (parts.length + 1), 0, p));
      assert.equal(id(`https://h/dl?${parts.join('&')}`), id(`https://h/dl?${plain}`));
    }),
  );
});

test('property: identities are equal exactly when the parameter lists are, per name, in order', () => {
  const perName = (ps: { name: string; value: string }[]) => {
    const m = new Map<string, string[]>();
    for (const p of ps) m.set(p.name, [...(m.get(p.name) ?? []), p.value]);
    return JSON.stringify([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  };
  fc.assert(
    fc.property(fc.array(param, { maxLength: 5 }), fc.array(param, { maxLength: 5 }), (a, b) => {
      const same = id(`https://h/dl?${queryOf(a)}`) === id(`https://h/dl?${queryOf(b)}`);
      assert.equal(same, perName(a) === perName(b));
    }),
  );
});

/**
 * The tier's nginx.conf: per signing scheme (found by its gate map), the names its removal rows
 * drop and whether they match in any case; every removal step must carry the same rows.
 */
interface TierScheme {
  signedBy: { name: string; anyCase: boolean }[];
  params: { name: string; anyCase: boolean }[];
}
function tierSchemes(): Map<string, TierScheme> {
  const conf = readFileSync(join(REPO, 'docker/cache-tier/nginx.conf'), 'utf8');
  const gates = new Map<string, { letter: string; signedBy: { name: string; anyCase: boolean }[] }>();
  for (const m of conf.matchAll(/map "&\$tier_args" \$(tier_signed_\w+) \{\s*"(~\*?)([^"]*)" (\S+);/g)) {
    gates.set(m[1], { letter: m[4], signedBy: [...m[3].matchAll(/&([\w-]+)=/g)].map((x) => ({ name: x[1], anyCase: m[2] === '~*' })) });
  }
  const steps = [...conf.matchAll(/map "([^"]*)" \$tier_unsigned(\d+) \{([^}]*)\}/g)];
  assert.ok(steps.length >= 2, 'removal steps in nginx.conf');
  const order = [...steps[0][1].split('|')[0].matchAll(/\$(tier_signed_\w+)/g)].map((m) => m[1]);
  const rowsOf = (body: string) => [...body.matchAll(/"(~\*?)\^\(([^\\]*)\\\|\.\*\?\)\(\?:&\(\?:(.*?)\)=\[\^&\]\*\)\+\(\.\*\)\$" \$1\$2;/g)];
  const first = rowsOf(steps[0][3]).map((r) => r[0]);
  for (const s of steps) assert.deepEqual(rowsOf(s[3]).map((r) => r[0]), first, `step ${s[2]} differs from step 1`);
  const out = new Map<string, TierScheme>();
  for (const r of rowsOf(steps[0][3])) {
    const pos = [...r[2]].findIndex((c) => c !== '.');
    const gate = gates.get(order[pos]);
    assert.ok(gate && r[2][pos] === gate.letter, `row ${r[0]}: its letter names no gate`);
    const params = r[3].split('|').map((n) => {
      const inner = /^\(\?i:(.*)\)$/.exec(n);
      return { name: inner ? inner[1] : n, anyCase: r[1] === '~*' || inner !== null };
    });
    out.set(gate.signedBy.map((g) => g.name).join('+'), { signedBy: gate.signedBy, params });
  }
  return out;
}

test('the cache tier (nginx.conf) drops the same parameters, under the same conditions', () => {
  const tier = tierSchemes();
  assert.equal(tier.size, SIGNED_URL_SCHEMES.length);
  for (const s of SIGNED_URL_SCHEMES) {
    const t = tier.get(s.signedBy.join('+'));
    assert.ok(t, `${s.name}: no gate with ${s.signedBy.join(' and ')} in nginx.conf`);
    assert.deepEqual(t.params.map((p) => p.name.toLowerCase()).sort(), s.params.map((p) => p.toLowerCase()).sort(), s.name);
    for (const p of [...t.params, ...t.signedBy]) assert.equal(p.anyCase, /^x-(amz|goog)-/i.test(p.name), `${s.name}: ${p.name}: case rule`);
  }
});
