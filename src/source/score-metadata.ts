/**
 * The Score metadata service (`METADATA_URL`): the file name and analysis of an object, and the
 * object id of its index, which is another file of the same analysis named `<fileName>.bai`,
 * `.crai`, `.csi` or `.tbi` (compared without case). Facts: ../../../shared/reference/score-protocol.md.
 */
import { SlicefsError } from '../errors.js';
import type { HttpTransport } from '../transport/http-transport.js';
import { scoreError } from './score-errors.js';

interface Entity {
  id: string;
  fileName: string;
  gnosId?: string;
}

/** Index suffixes in the order htslib looks for them. */
const INDEX_SUFFIXES = ['.bai', '.csi', '.crai', '.tbi'];
/** Entities per page: the service's own maximum page size. */
const PAGE = 2000;
/** Pages read at most (an analysis of more than 40,000 files is not an analysis). */
const MAX_PAGES = 20;

export class ScoreMetadata {
  constructor(
    private readonly api: Pick<HttpTransport, 'getJson'>,
    private readonly metadataUrl: string,
    private readonly token: string,
  ) {}

  /** One answer of the service; failures are the one-line errors of ./score-errors.ts. */
  private get(path: string, objectId?: string): Promise<unknown> {
    return this.api.getJson(`${this.metadataUrl.replace(/\/$/, '')}${path}`, { authorization: `Bearer ${this.token}` }).catch((err: unknown) => {
      throw scoreError(err, { service: 'metadata service', url: this.metadataUrl, objectId });
    });
  }

  async entity(objectId: string): Promise<Entity> {
    const e = (await this.get(`/entities/${encodeURIComponent(objectId)}`, objectId)) as Partial<Entity> | null;
    if (!e || typeof e.fileName !== 'string') throw new SlicefsError('BAD_RESPONSE', `the metadata service has no file name for object ${objectId}`);
    return { id: objectId, fileName: e.fileName, gnosId: typeof e.gnosId === 'string' && e.gnosId !== '' ? e.gnosId : undefined };
  }

  /** The object id of the index of `objectId`, or undefined when its analysis has none. */
  async indexOf(objectId: string): Promise<string | undefined> {
    const e = await this.entity(objectId);
    if (!e.gnosId) return undefined;
    const wanted = new Map(INDEX_SUFFIXES.map((s, i) => [`${e.fileName}${s}`.toLowerCase(), i]));
    let best: { id: string; rank: number } | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const p = (await this.get(`/entities?gnosId=${encodeURIComponent(e.gnosId)}&size=${PAGE}&page=${page}`)) as { content?: Partial<Entity>[]; last?: boolean } | null;
      // A page in another shape, or an entry that is not an object, names no index.
      const content = Array.isArray(p?.content) ? p.content : [];
      for (const f of content) {
        if (f === null || typeof f !== 'object') continue;
        const rank = typeof f.fileName === 'string' ? wanted.get(f.fileName.toLowerCase()) : undefined;
        if (rank !== undefined && typeof f.id === 'string' && (!best || rank < best.rank)) best = { id: f.id, rank };
      }
      if (p?.last !== false || content.length < PAGE) break;
    }
    return best?.id;
  }
}
