/**
 * A manifest made ready for a command: the storage service and token when it lists Score objects,
 * the analyses the `bundle` layout needs but the manifest does not name (the ICGC 25K form: asked of
 * the metadata service, a few requests at a time), and the chosen layout applied.
 */
import { SlicefsError } from '../errors.js';
import { applyLayout, defaultLayout, needsBundles, type TreeLayout } from '../manifest/tree-layout.js';
import type { Manifest } from '../manifest/types.js';
import { anyScore } from '../open-source.js';
import { ScoreMetadata } from '../source/score-metadata.js';
import type { ScoreEndpoint } from '../source/score-source.js';
import type { HttpTransport } from '../transport/http-transport.js';
import type { ScoreAccess } from './score.js';

/** Metadata requests in flight while filling in analyses. */
const METADATA_CONCURRENCY = 8;

export interface PreparedManifest {
  manifest: Manifest;
  layout: TreeLayout;
  /** Set when the manifest lists Score objects. */
  endpoint?: ScoreEndpoint;
}

export async function prepareManifest(
  manifest: Manifest,
  layout: TreeLayout | undefined,
  score: ScoreAccess,
  api: Pick<HttpTransport, 'getJson'>,
  warn: (line: string) => void,
): Promise<PreparedManifest> {
  const chosen = layout ?? defaultLayout(manifest);
  const endpoint = anyScore(manifest.entries.flatMap((e) => [e.url, e.indexUrl])) ? await score.endpoint(warn) : undefined;
  if (needsBundles(manifest, chosen) && endpoint) await fillBundles(manifest, endpoint, api);
  return { manifest: applyLayout(manifest, chosen), layout: chosen, endpoint };
}

async function fillBundles(manifest: Manifest, endpoint: ScoreEndpoint, api: Pick<HttpTransport, 'getJson'>): Promise<void> {
  const meta = new ScoreMetadata(api, endpoint.metadataUrl ?? endpoint.storageUrl, endpoint.token);
  const todo = manifest.entries.filter((e) => !e.bundle && e.objectId);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const e = todo[next++];
      const entity = await meta.entity(e.objectId!);
      if (!entity.gnosId) throw new SlicefsError('BAD_RESPONSE', `${manifest.file}:${e.line}: the metadata service names no analysis for object ${e.objectId}; use --layout object-id`);
      e.bundle = entity.gnosId;
    }
  };
  await Promise.all(Array.from({ length: Math.min(METADATA_CONCURRENCY, todo.length) }, worker));
}
