/**
 * The one place where a manifest's URL becomes an ObjectSource, by its scheme (`SCHEMES`): an
 * http(s) URL is read directly (HttpSource); a `score:<objectId>` URL is a Score object
 * (ScoreSource), whose bytes come through presigned URLs that the storage service hands out for the
 * user's token; a `ghga:<accession>` URL is a file of a GHGA work package. Crypt4GH is a layer over
 * any of them (the entry's encryption, not a scheme). Mount, view and download all build their
 * sources here, so each kind of entry behaves the same in every command. A new protocol is one
 * entry of `SCHEMES` (its options and credentials: ../cli/source-registry.ts).
 */
import type { DiskTier } from './cache/disk-tier.js';
import type { C4ghKeyPair } from './crypt4gh/keys.js';
import type { WorkerDecryptor } from './crypt4gh/worker-decryptor.js';
import { SlicefsError } from './errors.js';
import { scoreObjectIdOf } from './manifest/score-ref.js';
import type { EncryptionRef } from './manifest/types.js';
import { HttpSource, type ObjectSource } from './source/object-source.js';
import { safeUrl } from './util/redact.js';
import { Crypt4ghSource } from './source/crypt4gh-source.js';
import type { DrsClient, DrsObject } from './source/ghga/dcs.js';
import { GhgaObjectSource } from './source/ghga/ghga-source.js';
import { PrefixedSource } from './source/prefixed-source.js';
import { ScoreSource, type ScoreEndpoint } from './source/score-source.js';
import type { HttpTransport } from './transport/http-transport.js';
import type { Transport } from './transport/transport.js';

export interface SourceContext {
  /** Carries the object bytes (the mount's worker transport, or an HttpTransport). */
  transport: Transport;
  /** Carries the storage service's JSON answers (needed for Score objects). */
  api?: Pick<HttpTransport, 'getJson'>;
  /** The storage service and token, when the manifest lists Score objects. */
  score?: ScoreEndpoint;
  /** The reader's Crypt4GH keys (loaded on first use), when the manifest lists encrypted objects. */
  keys?: () => Promise<C4ghKeyPair[]>;
  /** A GHGA work package's download service, for `ghga:<accession>` URLs. */
  ghga?: GhgaContext;
  /**
   * The disk tier: remote objects (plain URLs, Score objects, GHGA bodies) are read through it.
   * Below Crypt4ghSource, so encrypted objects are kept on disk as ciphertext. Not for whole-file
   * downloads (they write the file itself).
   */
  disk?: DiskTier;
  /** Opens Crypt4GH data blocks off this thread (the mount's decrypt worker); else on it. */
  decryptor?: WorkerDecryptor;
}

/** `source` through the disk tier, when there is one. */
const onDisk = (ctx: SourceContext, source: ObjectSource): ObjectSource => (ctx.disk ? ctx.disk.wrap(source) : source);

export interface GhgaContext {
  drs: DrsClient;
  /** DRS objects already fetched while staging: their URLs are used first. */
  staged: Map<string, DrsObject>;
}

const GHGA_SCHEME = 'ghga:';

/** `ghga:<accession>`: a file of a GHGA work package (its body encrypted, its envelope apart). */
export function ghgaUrl(accession: string): string {
  return `${GHGA_SCHEME}${accession}`;
}


/** True when any of `urls` names a Score object (the command then needs a storage URL and token). */
export function anyScore(urls: Iterable<string | undefined>): boolean {
  for (const u of urls) if (u !== undefined && scoreObjectIdOf(u) !== undefined) return true;
  return false;
}

/** A kind of remote object, by its URL's scheme: whether a URL is one, and how its source opens. */
interface Scheme {
  matches(url: string): boolean;
  open(ctx: SourceContext, url: string, size: number | undefined): ObjectSource;
}

/** Every remote scheme; the first that matches a URL opens it. */
const SCHEMES: Scheme[] = [
  {
    // A GHGA file is always Crypt4GH: the body from the object store, the header from /envelopes.
    matches: (url) => url.startsWith(GHGA_SCHEME),
    open: (ctx, url) => {
      const body = ghgaBody(ctx, url);
      if (!ctx.keys) throw new SlicefsError('USAGE', 'GHGA files are Crypt4GH-encrypted: give --private-key FILE');
      return new Crypt4ghSource(onDisk(ctx, body), { keys: ctx.keys, header: () => body.envelope(), decryptor: ctx.decryptor });
    },
  },
  {
    matches: (url) => scoreObjectIdOf(url) !== undefined,
    open: (ctx, url, size) => {
      const objectId = scoreObjectIdOf(url)!;
      if (!ctx.score || !ctx.api) throw new SlicefsError('USAGE', `Score object ${objectId} needs the storage service and a token`);
      return onDisk(ctx, new ScoreSource(ctx.api, ctx.transport, ctx.score, objectId, size));
    },
  },
  { matches: (url) => /^https?:\/\//i.test(url), open: (ctx, url, size) => onDisk(ctx, new HttpSource(ctx.transport, url, size)) },
];

/** True when `name` is a remote object's URL (of a registered scheme), not a local file's path. */
export function isRemoteUrl(name: string): boolean {
  return SCHEMES.some((s) => s.matches(name));
}

/**
 * The source of `url`; with `encryption`, the plaintext of the Crypt4GH object there (`size` is
 * then the encrypted object's).
 */
export function openSource(ctx: SourceContext, url: string, size?: number, encryption?: EncryptionRef): ObjectSource {
  const scheme = SCHEMES.find((s) => s.matches(url));
  if (encryption && !url.startsWith(GHGA_SCHEME)) {
    if (!ctx.keys) throw new SlicefsError('USAGE', `${safeUrl(url)} is Crypt4GH-encrypted: give --private-key FILE (or C4GH_SECRET_KEY)`);
    const inner = openSource(ctx, url, size);
    const headerUrl = encryption.headerUrl;
    const header = headerUrl ? () => readWhole(openSource(ctx, headerUrl)) : undefined;
    return new Crypt4ghSource(inner, { keys: ctx.keys, header, decryptor: ctx.decryptor });
  }
  // Anything else was read as an http(s) URL before the table existed: HttpSource says what is wrong with it.
  return (scheme ?? SCHEMES[SCHEMES.length - 1]!).open(ctx, url, size);
}

/**
 * The encrypted object as one Crypt4GH file, to save as it is: the object itself, or, when its
 * header is served apart (`headerUrl`), that header followed by the object's data blocks.
 */
export function openEncryptedFile(ctx: SourceContext, url: string, size: number | undefined, encryption: EncryptionRef): ObjectSource {
  if (url.startsWith(GHGA_SCHEME)) {
    const ghga = ghgaBody(ctx, url);
    return new PrefixedSource(() => ghga.envelope(), ghga);
  }
  const body = openSource(ctx, url, size);
  const headerUrl = encryption.headerUrl;
  return headerUrl ? new PrefixedSource(() => readWhole(openSource(ctx, headerUrl)), body) : body;
}

async function readWhole(src: ObjectSource): Promise<Buffer> {
  const v = await src.version();
  const parts: Buffer[] = [];
  await src.read(0, v.size, (c) => void parts.push(c));
  return Buffer.concat(parts);
}

/** The encrypted body of a `ghga:` file. */
export function ghgaBody(ctx: SourceContext, url: string): GhgaObjectSource {
  const accession = url.slice(GHGA_SCHEME.length);
  if (!ctx.ghga) throw new SlicefsError('USAGE', `GHGA file ${accession} needs --ghga`);
  return new GhgaObjectSource(ctx.ghga.drs, ctx.transport, accession, { initial: ctx.ghga.staged.get(accession) });
}
