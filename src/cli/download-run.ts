/**
 * The work of `slicefs download` (see ./download.ts for its options, ./download-settings.ts for
 * how they are resolved): the manifest and the output plan, the transport, progress and rate limit
 * from the settings; Ctrl-C; the summary.
 */
import { SlicefsError } from '../errors.js';
import { loadManifest } from '../manifest/load.js';
import { urlBasename } from '../manifest/tree-path.js';
import type { ManifestEntry } from '../manifest/types.js';
import { scoreUrl } from '../manifest/score-ref.js';
import { openEncryptedFile, openSource } from '../open-source.js';
import type { ScoreEndpoint } from '../source/score-source.js';
import { Stats } from '../stats.js';
import { HttpTransport } from '../transport/http-transport.js';
import { formatBytes } from '../util/size.js';
import { counted } from '../util/words.js';
import { runDownload, type DownloadSummary } from '../download/download-session.js';
import { planOutputs, type OutputLayout, type PlannedFile } from '../download/layout.js';
import { removeMadeDirs } from '../util/fs-problem.js';
import { EXIT_FAILURE, prepareOutputDir, say } from './common.js';
import { downloadPlumbing } from './download-plumbing.js';
import type { DownloadSettings } from './download-settings.js';
import { prepareManifest } from './score-manifest.js';

/** Exit status after Ctrl-C (128 + SIGINT), as shells report it. */
const EXIT_INTERRUPTED = 130;

export async function runDownloadCommand(settings: DownloadSettings): Promise<void> {
  const { input, sources } = settings;
  const stats = new Stats();
  let entries: ManifestEntry[];
  let manifestFile: string;
  let endpoint: ScoreEndpoint | undefined;
  // `bundle` is the tree layout of that name, written as paths; the others are output layouts.
  let layout = settings.layout;
  if (input.kind === 'manifest') {
    const api = new HttpTransport(settings.apiTransport, stats, say);
    const prepared = await prepareManifest(await loadManifest(input.manifest), layout === 'bundle' ? 'bundle' : 'path', sources.score, api, say).finally(() => api.close());
    if (layout === 'bundle') layout = 'path';
    endpoint = prepared.endpoint;
    manifestFile = input.manifest;
    entries = prepared.manifest.entries;
    if (input.paths.length) {
      const wanted = new Set(input.paths);
      entries = entries.filter((e) => wanted.delete(e.path));
      if (wanted.size > 0) throw new SlicefsError('USAGE', `${input.manifest}: no entry with path ${[...wanted].map((p) => `'${p}'`).join(', ')}`);
    }
  } else if (input.kind === 'score') {
    manifestFile = '--object-id';
    entries = input.objectIds.map((id, i) => ({ path: id, url: scoreUrl(id), id, objectId: id, line: i + 1 }));
    endpoint = await sources.score.endpoint(say);
  } else if (input.kind === 'url') {
    manifestFile = '--url';
    entries = [{ path: urlBasename(input.url), url: input.url, line: 1 }];
  } else {
    throw new Error('download --ghga runs in ./ghga-run.ts');
  }
  const files = planOutputs(entries, settings.outputDir, layout as OutputLayout, settings.index, manifestFile, settings.decrypt);
  const keys = settings.decrypt ? (await import('./keys.js')).keysFrom(sources.keyFiles) : undefined;
  if (settings.decrypt && !keys && files.some((f) => f.entry.encryption)) throw new SlicefsError('USAGE', '--decrypt needs your Crypt4GH key: --private-key FILE (or C4GH_SECRET_KEY)');

  const createdDir = await prepareOutputDir(settings.outputDir, '--output-dir');
  const { line, transport, session, close } = downloadPlumbing(settings, { files: files.length, bytes: files.reduce((n, f) => n + (f.size ?? 0), 0) }, stats);
  const dataCtx = { transport, api: transport, score: endpoint, keys };
  // The disk tier serves index files only. A downloaded file is its own copy on disk: caching it
  // too would write every byte twice and evict what mounts and views read again.
  const disk = settings.disk && !settings.verify && files.some((f) => f.isIndex) ? await (await import('../cache/disk-tier.js')).DiskTier.open(settings.disk, line, stats) : undefined;
  const indexCtx = { ...dataCtx, disk };
  // Encrypted files: saved as they are (a separate header put in front), or decrypted.
  const sourceOf = (f: PlannedFile) => {
    const ctx = f.isIndex ? indexCtx : dataCtx;
    const encrypted = f.isIndex ? /\.c4gh$/i.test(new URL(f.url).pathname) : f.entry.encryption !== undefined;
    if (!encrypted) return openSource(ctx, f.url, f.size);
    const enc = f.isIndex ? {} : { headerUrl: f.entry.headerUrl };
    return settings.decrypt ? openSource(ctx, f.url, undefined, enc) : openEncryptedFile(ctx, f.url, f.size !== undefined && enc.headerUrl === undefined ? f.size : undefined, enc);
  };
  let summary: DownloadSummary;
  try {
    summary = await runDownload({
      dir: settings.outputDir,
      jobs: files.map((f) => ({
        file: f,
        source: sourceOf(f),
      })),
      ...session,
      manifestFile,
    });
  } catch (err) {
    // Refused before anything was written (not enough space, another download): no directory left behind.
    await removeMadeDirs(settings.outputDir, createdDir).catch(() => {});
    throw err;
  } finally {
    await close();
    await disk?.close().catch(() => {});
  }
  report(summary, settings, stats);
}

export function report(s: DownloadSummary, settings: Pick<DownloadSettings, 'json' | 'quiet' | 'verify' | 'outputDir'>, stats: Stats): void {
  const count = (st: string) => s.files.filter((f) => f.status === st).length;
  const bad = s.files.filter((f) => f.status === 'failed' || f.status === 'missing');
  const speed = s.seconds > 0 ? s.bytesFetched / s.seconds : 0;
  if (settings.json) {
    process.stdout.write(
      JSON.stringify({ files: s.files, bytesFetched: s.bytesFetched, ...(settings.verify ? { bytesHashed: s.bytesHashed ?? 0 } : {}), seconds: Number(s.seconds.toFixed(3)), bytesPerSecond: Math.round(speed), retries: stats.retries, interrupted: s.interrupted, diskFull: s.diskFull }, null, 2) + '\n',
    );
  }
  // One `slicefs: error:` line per file that failed, naming it and the cause.
  for (const f of bad) say(`error: ${f.path}: ${f.error ?? (f.status === 'missing' ? 'not downloaded' : f.status)}`);
  if (!settings.quiet) {
    const parts = settings.verify
      ? [`${count('verified')} verified`, `${count('failed')} failed`, `${count('missing')} missing`]
      : [`${count('done')} downloaded`, `${count('skipped')} already present`, `${count('failed')} failed`, `${count('interrupted')} incomplete`];
    // Below 10 s a tenth of a second is too coarse: a verify of a few MiB would read `in 0.0 s`.
    const time = `${s.seconds.toFixed(s.seconds < 10 ? 2 : 1)} s`;
    const work = settings.verify ? `${formatBytes(s.bytesHashed ?? 0)} hashed in ${time}` : `${formatBytes(s.bytesFetched)} in ${time} (${formatBytes(speed)}/s), ${counted(stats.retries, 'retry', 'retries')}`;
    say(`${parts.join(', ')}; ${work}`);
  }
  if (s.diskFull) {
    say(`error: the disk of ${settings.outputDir} is full; what was fetched is kept: free some space and run the same command again to resume`);
    process.exitCode = EXIT_FAILURE;
  } else if (s.interrupted) {
    say('interrupted: what was fetched is kept; run the same command again to resume');
    process.exitCode = EXIT_INTERRUPTED;
  } else if (bad.length > 0) {
    process.exitCode = EXIT_FAILURE;
  }
}
