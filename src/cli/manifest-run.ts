/**
 * The work of `slicefs manifest` (options in ./manifest.ts).
 */
import type { ArgumentsCamelCase } from 'yargs';
import { loadManifest } from '../manifest/load.js';
import { scoreObjectIdOf } from '../manifest/score-ref.js';
import { treeFiles } from '../manifest/tree-files.js';
import type { TreeLayout } from '../manifest/tree-layout.js';
import { openSource } from '../open-source.js';
import { Stats } from '../stats.js';
import { HttpTransport } from '../transport/http-transport.js';
import { safeUrl } from '../util/redact.js';
import { EXIT_FAILURE, say, timestamped, transportConfig } from './common.js';
import type { ManifestArgs } from './manifest.js';
import { scoreAccessOf } from './score.js';
import { prepareManifest } from './score-manifest.js';

interface Row {
  path: string;
  size: number | null;
  md5: string | null;
  index: string | null;
  source: string;
  indexSource: string | null;
  objectId?: string;
  line: number;
  columns?: Record<string, string | string[]>;
  error?: string;
}

/** What a row says of where bytes come from: `score:<id>` or the URL without its query string. */
function sourceName(url: string): string {
  return scoreObjectIdOf(url) !== undefined ? url : safeUrl(url);
}

export async function runManifestCommand(args: ArgumentsCamelCase<ManifestArgs>): Promise<void> {
  const stats = new Stats();
  const transport = new HttpTransport(transportConfig(args, timestamped), stats, say);
  try {
    const loaded = await loadManifest(args.manifest);
    const { manifest, endpoint } = await prepareManifest(loaded, args.layout as TreeLayout | undefined, scoreAccessOf(args), transport, say);
    // The mount's own tree (and its refusals: an index on another file's path, ...), also offline.
    const indexPath = new Map(treeFiles(manifest).filter((f) => f.role === 'index').map((f) => [f.entry, f.path]));
    const rows: Row[] = manifest.entries.map((e) => ({
      path: e.path,
      size: e.size ?? null,
      md5: e.md5 ?? null,
      index: indexPath.get(e) ?? null,
      source: sourceName(e.url),
      indexSource: e.indexUrl ? sourceName(e.indexUrl) : null,
      ...(e.objectId ? { objectId: e.objectId } : {}),
      line: e.line,
      ...(e.columns ? { columns: e.columns } : {}),
    }));
    if (!args.offline) {
      // What the manifest lacks is asked of the servers, a few at a time; a failure is that row's.
      const ctx = { transport, api: transport, score: endpoint };
      const todo = rows.map((r, i) => ({ r, e: manifest.entries[i] })).filter(({ r }) => r.size === null || r.md5 === null);
      let next = 0;
      const work = async () => {
        while (next < todo.length) {
          const { r, e } = todo[next++];
          try {
            const v = await openSource(ctx, e.url, e.size).version();
            r.size ??= v.size;
            r.md5 ??= v.md5 ?? null;
          } catch (err) {
            r.error = (err as Error).message.split('\n')[0];
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(args.connections, todo.length) }, work));
    }
    if (args.json) {
      process.stdout.write(JSON.stringify({ manifest: args.manifest, format: manifest.format, files: rows }, null, 2) + '\n');
    } else {
      const cell = (v: string | number | null | undefined) => (v === null || v === undefined ? '-' : String(v));
      const lines = ['path\tsize\tmd5\tindex\tsource\tindex_source'];
      for (const r of rows) lines.push([r.path, r.size, r.md5, r.index, r.source, r.indexSource].map(cell).join('\t'));
      process.stdout.write(lines.join('\n') + '\n');
    }
    const failed = rows.filter((r) => r.error);
    for (const r of failed) say(`${args.manifest}:${r.line}: ${r.path}: ${r.error}`);
    if (failed.length > 0) process.exitCode = EXIT_FAILURE;
  } finally {
    await transport.close().catch(() => {});
  }
}
