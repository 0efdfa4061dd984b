/**
 * The one place where a manifest's URL becomes an ObjectSource: an http(s) URL is read directly
 * (HttpSource); a `score:<objectId>` URL is a Score object (ScoreSource), whose bytes come through
 * presigned URLs that the storage service hands out for the user's token. Mount, view and download
 * all build their sources here, so each kind of entry behaves the same in every command.
 */
import { SlicefsError } from './errors.js';
import { scoreObjectIdOf } from './manifest/score-ref.js';
import { HttpSource, type ObjectSource } from './source/object-source.js';
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
}

/** True when any of `urls` names a Score object (the command then needs a storage URL and token). */
export function anyScore(urls: Iterable<string | undefined>): boolean {
  for (const u of urls) if (u !== undefined && scoreObjectIdOf(u) !== undefined) return true;
  return false;
}

export function openSource(ctx: SourceContext, url: string, size?: number): ObjectSource {
  const objectId = scoreObjectIdOf(url);
  if (objectId === undefined) return new HttpSource(ctx.transport, url, size);
  if (!ctx.score || !ctx.api) throw new SlicefsError('USAGE', `Score object ${objectId} needs the storage service and a token`);
  return new ScoreSource(ctx.api, ctx.transport, ctx.score, objectId, size);
}
