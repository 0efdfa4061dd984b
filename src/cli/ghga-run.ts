/**
 * `--ghga`: a GHGA work package (../../../shared/reference/ghga-protocol.md), for `download`,
 * `mount` and `view` (options in ./ghga-options.ts).
 *
 * The session: the user's Crypt4GH key pair, the well-known values (service URLs), the download
 * token (file, stdin or prompt), the work package's files; work-order tokens are fetched per call
 * and renewed by the WPS client (../source/ghga/services.ts).
 *
 * `download --ghga` does what `ghga-connector download` does, compatibly: `<accession><ext>.c4gh`
 * (the envelope put in front of the data blocks: a complete Crypt4GH file for the user's key), or
 * `<accession><ext>` decrypted with `--decrypt`. Better: every file is asked for at once (staging
 * runs in parallel at the DCS), each is polled by its own Retry-After, and a staged file downloads
 * while the others still stage; each file goes through the same resumable, journalled download as
 * any other (a kill -9 costs about a second of transfer), with bounded memory; and the plaintext's SHA-256
 * is checked against the DRS `checksums` (computed as the file is written, in the MD5's pass, decrypting it
 * there when it is kept encrypted), which the connector never does.
 */
import { readFile, stat } from 'node:fs/promises';
import type { C4ghKeyPair } from '../crypt4gh/keys.js';
import { planOutputs } from '../download/layout.js';
import { runDownload, type DownloadSummary } from '../download/download-session.js';
import { SlicefsError } from '../errors.js';
import { checkTree } from '../manifest/load.js';
import type { Manifest, ManifestEntry } from '../manifest/types.js';
import { ghgaUrl, openEncryptedFile, openSource, type GhgaContext } from '../open-source.js';
import { DrsClient, type DrsObject } from '../source/ghga/dcs.js';
import { DEFAULT_GHGA_URL, WorkPackageClient, wellKnownValues, type WorkPackage } from '../source/ghga/services.js';
import { stageAll, type StagingEvent } from '../source/ghga/staging.js';
import { Stats } from '../stats.js';
import { HttpTransport } from '../transport/http-transport.js';
import { removeMadeDirs } from '../util/fs-problem.js';
import type { TransportConfig } from '../config.js';
import { prepareOutputDir, say } from './common.js';
import { downloadPlumbing } from './download-plumbing.js';
import { report } from './download-run.js';
import type { DownloadSettings } from './download-settings.js';
import type { GhgaSettings } from './ghga-options.js';
import { keysFrom, promptHidden } from './keys.js';
import { refuseOpenToOthers } from './private-file.js';

export interface GhgaSession {
  api: HttpTransport;
  pair: C4ghKeyPair;
  keys: () => Promise<C4ghKeyPair[]>;
  workPackage: WorkPackage;
  drs: DrsClient;
  maxWaitS: number;
}

/** The download token: a file no one else may read, else stdin when piped, else a hidden prompt. */
async function downloadToken(file: string | undefined): Promise<string> {
  if (file !== undefined) {
    const st = await stat(file).catch(() => undefined);
    if (!st) throw new SlicefsError('USAGE', `--download-token-file ${file}: no such file`);
    refuseOpenToOthers(st, `--download-token-file ${file}`);
    return (await readFile(file, 'utf8')).trim();
  }
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/).find((l) => l.trim() !== '');
    if (line === undefined) throw new SlicefsError('USAGE', 'no download token on standard input (or give --download-token-file FILE)');
    return line.trim();
  }
  const typed = await promptHidden('Please paste the complete download token that you copied from the GHGA data portal: ');
  if (!typed) throw new SlicefsError('USAGE', 'no download token given');
  return typed.trim();
}

/**
 * The work package: the key pair, the well-known values, the download token and the package's
 * files, over a transport of its own (`transport`, the command's config).
 */
export async function openGhga(settings: GhgaSettings, keyFiles: string[], transport: TransportConfig, log: (line: string) => void): Promise<GhgaSession> {
  const keys = keysFrom(keyFiles);
  if (!keys) throw new SlicefsError('USAGE', '--ghga needs your Crypt4GH key pair: --private-key FILE (the one whose public key you gave the GHGA data portal)');
  const { maxWaitS } = settings;
  const api = new HttpTransport(transport, new Stats(), log);
  try {
    const [pair] = await keys();
    const token = await downloadToken(settings.downloadTokenFile);
    const values = await wellKnownValues(api, settings.wellKnownUrl ?? DEFAULT_GHGA_URL);
    const client = new WorkPackageClient(api, values.wpsUrl, token, pair);
    const workPackage = await client.workPackage();
    return { api, pair, keys, workPackage, drs: new DrsClient(api, values.dcsUrl, client), maxWaitS };
  } catch (err) {
    await api.close().catch(() => {});
    throw err;
  }
}

/** A line per staging event, as the connector prints them. */
function stagingLine(e: StagingEvent): string {
  if (e.type === 'staging') return `${e.accession}: ${e.first ? 'being staged' : 'still being staged'}, asking again in ${e.retryAfterS} s`;
  if (e.type === 'ready') return `${e.accession}: ready for download${e.waitedS > 0 ? ` after ${Math.round(e.waitedS)} s of staging` : ''}`;
  return `${e.accession}: not available at the download service`;
}

/** Stages every file of the work package (all asked for at once) and waits for all of them. */
export async function stageWorkPackage(s: GhgaSession, accessions: string[], log: (line: string) => void): Promise<Map<string, DrsObject>> {
  const run = stageAll(accessions, s.drs, { maxWaitS: s.maxWaitS, onEvent: (e) => log(stagingLine(e)) });
  const staged = new Map<string, DrsObject>();
  for (const f of await run.done) staged.set(f.accession, f.object);
  return staged;
}

/** `download --ghga`; its options were all checked by the resolver (./download-settings.ts), before the token is asked for: a bad option costs nothing. */
export async function runGhgaDownload(settings: DownloadSettings): Promise<void> {
  const { sources } = settings;
  const createdDir = await prepareOutputDir(settings.outputDir, '--output-dir');
  const s = await openGhga(sources.ghga!, sources.keyFiles, settings.apiTransport, say).catch(async (err: unknown) => {
    await removeMadeDirs(settings.outputDir, createdDir).catch(() => {});
    throw err;
  });
  const files = [...s.workPackage.files];
  const { stats, line, transport, signal, session, close } = downloadPlumbing(settings, { files: files.length, bytes: 0 });
  // The connector's layout: `<accession><ext>.c4gh`, or the plaintext's `<accession><ext>`.
  const entries = files.map(([acc, ext], i) => ({ path: `${acc}${ext}${settings.decrypt ? '' : '.c4gh'}`, url: ghgaUrl(acc), id: acc, line: i + 1 }));
  const planned = planOutputs(entries, settings.outputDir, 'path', false, 'the work package');
  const ghga: GhgaContext = { drs: s.drs, staged: new Map() };
  const ctx = { transport, api: transport, keys: s.keys, ghga };
  const keys = await s.keys();
  const summary: DownloadSummary = { files: [], bytesFetched: 0, seconds: 0, interrupted: false, diskFull: false };
  const t0 = performance.now();
  try {
    line(`work package ${s.workPackage.id}: ${files.length} file${files.length === 1 ? '' : 's'}${s.workPackage.expires ? `, valid until ${s.workPackage.expires.toISOString()}` : ''}`);
    // Every file is asked for now; each downloads as soon as it is staged, while the others stage.
    const run = stageAll(files.map(([acc]) => acc), s.drs, { maxWaitS: s.maxWaitS, onEvent: (e) => line(stagingLine(e)), signal });
    try {
      for await (const staged of run) {
        ghga.staged.set(staged.accession, staged.object);
        const file = planned.find((p) => p.entry.id === staged.accession)!;
        const expected = staged.object.plaintextSha256;
        const result = await runDownload({
          dir: settings.outputDir,
          jobs: [
            {
              file,
              source: settings.decrypt ? openSource(ctx, file.url) : openEncryptedFile(ctx, file.url, undefined, {}),
              // Hashed as it is written (decrypted on the hashing worker when kept encrypted).
              plainSha256: expected ? { crypt4gh: settings.decrypt ? undefined : { keys } } : undefined,
              verify: expected
                ? async (_part, { plainSha256: got }) => {
                    if (got !== expected) throw new SlicefsError('BAD_RESPONSE', `the decrypted file's SHA-256 ${got} is not the ${expected} the download service states`);
                  }
                : undefined,
            },
          ],
          ...session,
          manifestFile: 'the work package',
        });
        summary.files.push(...result.files);
        summary.bytesFetched += result.bytesFetched;
        summary.bytesHashed = (summary.bytesHashed ?? 0) + (result.bytesHashed ?? 0);
        summary.interrupted ||= result.interrupted;
        summary.diskFull ||= result.diskFull;
        if (result.interrupted || result.diskFull) break;
      }
    } catch (err) {
      if (!signal.aborted) throw err;
      summary.interrupted = true;
    } finally {
      run.cancel();
    }
  } finally {
    summary.seconds = (performance.now() - t0) / 1000;
    await close();
    await s.api.close().catch(() => {});
  }
  // Files never reached (a staging failure ends the run first) are not reported as done.
  report(summary, settings, stats);
}

/**
 * The mount's manifest of a work package: `<accession><ext>` for each file, decrypted. An index
 * that is the only one matching a data file (`.bam` → `.bam.bai`, `.bai`, `.csi`; `.cram` →
 * `.crai`) appears beside it under the name samtools looks for (`GHGAF1.bam.bai`), not under its
 * own accession.
 */
export function workPackageManifest(s: GhgaSession): Manifest {
  const files = [...s.workPackage.files];
  const indexOf = new Map<string, string>();
  for (const [acc, ext] of files) {
    if (!/\.(bam|cram)$/i.test(ext)) continue;
    const found = indexCandidates(files, acc, ext);
    if (found.length === 1 && ![...indexOf.values()].includes(found[0][0])) indexOf.set(acc, found[0][0]);
  }
  const paired = new Set(indexOf.values());
  const entries: ManifestEntry[] = [];
  files.forEach(([acc, ext], i) => {
    if (paired.has(acc)) return;
    const index = indexOf.get(acc);
    entries.push({ path: `${acc}${ext}`, url: ghgaUrl(acc), id: acc, line: i + 1, ...(index ? { indexUrl: ghgaUrl(index), indexFileName: `${index}${s.workPackage.files.get(index)}` } : {}) });
  });
  checkTree(entries, 'the work package');
  return { file: 'the work package', format: 'ghga', entries };
}

/** The files of the package whose extension is an index's of `ext` (the data file's). */
function indexCandidates(files: [string, string][], accession: string, ext: string): [string, string][] {
  const wanted = ['.bai', '.csi', '.crai'].flatMap((x) => [`${ext}${x}`, ext.replace(/\.(bam|cram)$/i, x)].map((w) => w.toLowerCase()));
  return files.filter(([acc, e]) => acc !== accession && wanted.includes(e.toLowerCase()));
}

/** The data file and its index in the work package, for `view --ghga --accession`. */
export function viewFiles(s: GhgaSession, accession: string | undefined, indexAccession: string | undefined): { data: string; dataName: string; index: string } {
  if (!accession) throw new SlicefsError('USAGE', 'view --ghga needs --accession GHGAF… (a file of the work package)');
  const files = s.workPackage.files;
  const ext = files.get(accession);
  if (ext === undefined) throw new SlicefsError('NOT_FOUND', `${accession} is not a file of work package ${s.workPackage.id}`);
  let index = indexAccession;
  if (index === undefined) {
    // The index is another file of the package whose extension is the data's plus an index's.
    const found = indexCandidates([...files], accession, ext);
    if (found.length !== 1) {
      throw new SlicefsError('USAGE', `${found.length === 0 ? 'no index' : 'several indexes'} for ${accession}${ext} in the work package: give --index-accession`);
    }
    index = found[0][0];
  } else if (!files.has(index)) {
    throw new SlicefsError('NOT_FOUND', `${index} is not a file of work package ${s.workPackage.id}`);
  }
  return { data: ghgaUrl(accession), dataName: `${accession}${ext}`, index: ghgaUrl(index) };
}
