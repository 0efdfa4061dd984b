/**
 * The work of `slicefs view` (see ./view.ts for its options, ./view-settings.ts for how they are
 * resolved): finds the input, its index candidates and the reference from the settings, runs the
 * view session and reports.
 */
import { existsSync, type WriteStream } from 'node:fs';
import { lstat, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { DiskTier } from '../cache/disk-tier.js';
import { FileCache } from '../cache/file-cache.js';
import { DEFAULT_READER } from '../config.js';
import { SlicefsError, isFsError } from '../errors.js';
import { loadManifest } from '../manifest/load.js';
import { LocalSource } from '../source/local-source.js';
import { scoreObjectIdOf, scoreUrl } from '../manifest/score-ref.js';
import { anyScore, isRemoteUrl, openSource, type GhgaContext } from '../open-source.js';
import type { EncryptionRef } from '../manifest/types.js';
import { Crypt4ghSource } from '../source/crypt4gh-source.js';
import type { ObjectSource } from '../source/object-source.js';
import { ScoreMetadata } from '../source/score-metadata.js';
import { Stats } from '../stats.js';
import { HttpTransport } from '../transport/http-transport.js';
import { errorAt, fsProblem } from '../util/fs-problem.js';
import { WriteRoot, type Modes } from '../util/safe-fs.js';
import { parseBed } from '../view/bed.js';
import { parseRegion, wholeFile, type Region } from '../view/region.js';
import { localFai } from '../view/reference.js';
import { defaultFormatThreads, formatPlan } from '../view/sam-format-pool.js';
import { fileNameOf, formatOfName, indexNames, runView, type DataFormat, type ReferenceInput } from '../view/view-session.js';
import { say, userPathError } from './common.js';
import { keysFrom } from './keys.js';
import type { ViewInputChoice, ViewSettings } from './view-settings.js';

const VERSION = '0.1.0';

/** The URL with its path replaced (the query string, e.g. a signature, is kept). */
function withPath(url: string, path: string): string {
  const u = new URL(url);
  u.pathname = path;
  return u.toString();
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

interface ViewInput {
  /** An http(s) URL, a `score:` URL, or a local file. */
  data: string;
  /** The index the user or the manifest named (same forms), if any. */
  index?: string;
  /** The file's name where the data is named by an id (a score manifest's file_name). */
  fileName?: string;
  /** A manifest entry's path: the name the file has in the mount. */
  mountPath?: string;
  /** Set when the data is Crypt4GH-encrypted. */
  encryption?: EncryptionRef;
}

/**
 * undici parses HTTP with llhttp, compiled to WebAssembly. V8 compiles it first with its baseline
 * compiler (Liftoff), then, once the parser is hot, again with its optimizing one (TurboFan) on a
 * background thread: ~0.1 s of CPU for llhttp's one large state-machine function, more than a small
 * view spends on its work, and a view's few responses (mostly body bytes, which llhttp skips) never
 * pay it back. So WebAssembly stays on Liftoff, unless the data is a CRAM by its name: @gmod/cram's
 * codecs are WebAssembly too and do profit from TurboFan on large regions. Set before the first
 * request compiles llhttp; it changes how fast, not what, WebAssembly computes.
 */
function baselineWasmOnly(dataPath: string): void {
  if (!/\.cram$/i.test(dataPath)) setFlagsFromString('--liftoff-only');
}

const isC4gh = (name: string) => /\.c4gh$/i.test(isUrl(name) ? new URL(name).pathname : name);

/** The data to read and the index named, from --input-file, --url, --object-id or --manifest/--path. */
async function resolveInput(choice: Exclude<ViewInputChoice, { kind: 'ghga' }>, indexUrl: string | undefined): Promise<ViewInput> {
  switch (choice.kind) {
    case 'file':
      return { data: choice.path, index: indexUrl, encryption: isC4gh(choice.path) ? {} : undefined };
    case 'score':
      return { data: scoreUrl(choice.objectId), index: choice.indexObjectId !== undefined ? scoreUrl(choice.indexObjectId) : indexUrl };
    case 'manifest': {
      const m = await loadManifest(choice.manifest);
      const entry = m.entries.find((e) => e.path === choice.path) ?? m.entries.find((e) => e.objectId === choice.path);
      if (!entry) throw new SlicefsError('USAGE', `${choice.manifest}: no entry with path '${choice.path}'`);
      return { data: entry.url, index: indexUrl ?? entry.indexUrl, fileName: entry.fileName, mountPath: entry.path, encryption: entry.encryption ? { headerUrl: entry.headerUrl } : undefined };
    }
    case 'url':
      return { data: choice.url, index: indexUrl, encryption: isC4gh(choice.url) ? {} : undefined };
  }
}

/** `-o FILE`, opened: its stream, and how to end it (all written) or drop it (a failed view). */
/** `-o FILE`, open. */
interface OutputFile {
  stream: WriteStream;
  /** Flushes and closes; rejects with the write error, if any. */
  finish(): Promise<void>;
  /** True once `finish` succeeded. */
  finished: boolean;
  /** Closes and removes the file when this run created it: a failed view leaves no partial output. */
  discard(): Promise<void>;
  /** The stream's error, once one happened. */
  error?: Error;
}

/**
 * Opens `-o FILE` (created, or truncated) never through a symlink (util/safe-fs.ts), before any
 * request. An error opening it is bad input (exit 2) that names the real cause: a missing or
 * read-only directory, a directory given as the file. A write error later (a full disk) is kept
 * and surfaces through the view's writes or `finish`, never as an unhandled 'error' event.
 */
async function openOutput(path: string, modes: Modes): Promise<OutputFile> {
  const existed = existsSync(path);
  let stream: WriteStream;
  try {
    // A directory given as the file is the user's mistake, told as the errno it is (EISDIR).
    if ((await lstat(path).catch(() => undefined))?.isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, open '${path}'`), { code: 'EISDIR', errno: -21, syscall: 'open', path });
    const root = await WriteRoot.prepare(dirname(path), modes, { create: false });
    stream = (await root.open(path, 'truncate')).createWriteStream();
  } catch (err) {
    throw userPathError(err, '-o', path);
  }
  const file: OutputFile = {
    stream,
    finished: false,
    finish: () =>
      new Promise<void>((res, rej) => stream.end((err?: Error | null) => (err ?? file.error ? rej(err ?? file.error) : res()))).then(() => {
        file.finished = true;
      }),
    discard: async () => {
      await new Promise<void>((res) => (stream.closed ? res() : stream.destroy().once('close', () => res())));
      if (!existed) await unlink(path).catch(() => {});
    },
  };
  stream.on('error', (err) => (file.error ??= err));
  return file;
}

export async function runViewCommand(settings: ViewSettings): Promise<void> {
  const t0 = performance.now();
  const stats = new Stats();
  const { output: outputSettings, sources } = settings;
  // -o is opened first, never through a symlink (util/safe-fs.ts): a refusal comes before any request.
  const outputPath = outputSettings.file;
  const output = outputPath ? await openOutput(outputPath, outputSettings.modes) : undefined;
  const transport = new HttpTransport(settings.transport, stats, say);
  // The disk tier and the index cache share the cache directory: a refusal of it is said once.
  const cacheWarnings = new Set<string>();
  const cacheWarning = (line: string) => {
    if (!cacheWarnings.has(line)) say(line);
    cacheWarnings.add(line);
  };
  const closeLater: (() => Promise<void>)[] = [];
  try {
    let input: ViewInput;
    let ghga: GhgaContext | undefined;
    let keys = keysFrom(sources.keyFiles);
    if (settings.input.kind === 'ghga') {
      // A file of a GHGA work package and its index, staged first, read decrypted.
      const { openGhga, stageWorkPackage, viewFiles } = await import('./ghga-run.js');
      const s = await openGhga(sources.ghga!, sources.keyFiles, settings.transport, say);
      closeLater.push(() => s.api.close());
      const files = viewFiles(s, sources.ghga!.accession, sources.ghga!.indexAccession);
      const accessions = [files.data, files.index].map((u) => u.slice('ghga:'.length));
      ghga = { drs: s.drs, staged: await stageWorkPackage(s, accessions, settings.stats ? say : () => {}) };
      keys = s.keys;
      input = { data: files.data, index: files.index, fileName: files.dataName };
    } else {
      input = await resolveInput(settings.input, settings.indexUrl);
    }
    baselineWasmOnly(input.fileName ?? (isUrl(input.data) ? new URL(input.data).pathname : input.data));
    const score = anyScore([input.data, input.index]) ? await sources.score.endpoint(say) : undefined;
    // Chunks of the remote objects read (below decryption: ciphertext), kept between runs; not
    // opened (no directory made) when everything read is local.
    const referenceUrl = settings.reference && 'url' in settings.reference ? settings.reference.url : undefined;
    const disk = settings.disk && [input.data, input.index, referenceUrl].some((n) => n !== undefined && isRemoteUrl(n)) ? await DiskTier.open(settings.disk, cacheWarning, stats) : undefined;
    if (disk) closeLater.push(() => disk.close());
    const ctx = { transport, api: transport, score, keys, ghga, disk };
    // A name ending in .c4gh (or the data's manifest entry) is read decrypted.
    const remote = (u: string, enc: EncryptionRef | undefined = isC4gh(u) ? {} : undefined) => openSource(ctx, u, undefined, enc);
    const sourceFor = (name: string, enc?: EncryptionRef): ObjectSource => {
      if (isRemoteUrl(name)) return remote(name, enc);
      const local = new LocalSource(name);
      if (!(enc ?? isC4gh(name))) return local;
      if (!keys) throw new SlicefsError('USAGE', `${name} is Crypt4GH-encrypted: give --private-key FILE (or C4GH_SECRET_KEY)`);
      return new Crypt4ghSource(local, { keys });
    };
    const data = sourceFor(input.data, input.encryption);
    let dataPath: string;
    let candidates: (format: DataFormat) => ObjectSource[];
    const objectId = scoreObjectIdOf(input.data);
    if (ghga) {
      const indexSource = sourceFor(input.index!);
      dataPath = input.fileName!;
      candidates = () => [indexSource];
    } else if (objectId !== undefined) {
      // A Score object: its index is the one named, else the analysis' `<fileName>.bai|.crai|…`.
      let index = input.index;
      let fileName = input.fileName ?? '';
      if (index === undefined) {
        const meta = new ScoreMetadata(transport, score!.metadataUrl ?? score!.storageUrl, score!.token);
        fileName = (await meta.entity(objectId)).fileName;
        const indexId = await meta.indexOf(objectId);
        if (!indexId) throw new SlicefsError('NOT_FOUND', `no index of object ${objectId} (${fileName}) in its analysis; give --index-object-id`);
        index = scoreUrl(indexId);
      }
      const indexSource = sourceFor(index);
      dataPath = fileName;
      candidates = () => [indexSource];
    } else {
      const { data: dataName, index: indexGiven } = input;
      const rawPath = isUrl(dataName) ? new URL(dataName).pathname : dataName;
      // The plaintext's name (`x.bam.c4gh` → `x.bam`) says the format and where indexes are.
      dataPath = input.encryption && /\.c4gh$/i.test(rawPath) ? rawPath.slice(0, -5) : rawPath;
      const path = dataPath;
      // Beside an encrypted file, its index may be encrypted too: `x.bam.bai.c4gh` first, then `x.bam.bai`.
      const variants = (names: string[]) => (input.encryption ? names.flatMap((n) => [`${n}.c4gh`, n]) : names);
      candidates = (format: DataFormat): ObjectSource[] =>
        indexGiven
          ? [sourceFor(indexGiven)]
          : isUrl(dataName)
            ? variants(indexNames(path, format)).map((p) => remote(withPath(dataName, p)))
            : variants(indexNames(path, format)).map((p) => sourceFor(p));
    }
    let reference: ReferenceInput | undefined;
    if (settings.reference && 'file' in settings.reference) {
      const fasta = settings.reference.file;
      reference = { fasta: new LocalSource(fasta), fai: { text: await localFai(fasta, say) } };
    } else if (referenceUrl !== undefined) {
      reference = { fasta: remote(referenceUrl), fai: remote(withPath(referenceUrl, `${new URL(referenceUrl).pathname}.fai`)) };
    }
    const bedFile = settings.bedFile;
    const bedText = bedFile ? await readFile(bedFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new SlicefsError('USAGE', `${bedFile}: cannot read (${fsProblem(e)})`);
    }) : undefined;
    const regionsFor = (contigs: { name: string; length: number }[]): Region[] => {
      const out: Region[] = settings.query.map((q) => parseRegion(q, contigs));
      if (bedText !== undefined) out.push(...parseBed(bedText, bedFile!, contigs));
      if (out.length === 0) {
        // No region: every record (all contigs, then the unplaced reads), as plain samtools view.
        out.push(...wholeFile(contigs));
      }
      return out;
    };
    const out = output?.stream ?? process.stdout;
    const result = await runView({
      data,
      // The name samtools would read it under: the manifest entry's (the mount's), else the plaintext's.
      fileName: fileNameOf(input.mountPath ?? dataPath),
      formatHint: formatOfName(dataPath),
      indexCandidates: candidates,
      reference,
      referenceHint: 'give its reference with --reference-file ref.fa (or --reference-url URL of an indexed FASTA)',
      warn: say,
      regions: regionsFor,
      contained: settings.contained,
      format: outputSettings.format,
      formatting: formatPlan(outputSettings.threads ?? defaultFormatThreads()),
      header: outputSettings.header,
      pg: outputSettings.pgCommandLine !== undefined ? { name: 'slicefs', version: VERSION, commandLine: outputSettings.pgCommandLine } : undefined,
      cache: settings.cache,
      reader: DEFAULT_READER,
      stats,
      out,
      indexCache: settings.indexCache ? new FileCache(join(settings.cacheRoot, 'index'), cacheWarning) : undefined,
    })
      .then(async (r) => {
        await output?.finish();
        return r;
      })
      .catch(async (err: unknown) => {
        if (!output) throw err;
        await output.discard();
        // A write that failed (a full disk) is told with the file's path, not as a bare `write` error.
        throw err === output.error && isFsError(err) ? new Error(`-o ${outputPath}: ${fsProblem(errorAt(err, outputPath!))}`, { cause: err }) : err;
      });
    if (settings.stats) {
      // BAM output: records= counts the records read one by one, not those in blocks copied unread.
      say(`view: records=${result.records}${result.unread > 0 ? ` unread_blocks=${result.unread}` : ''} requests=${stats.requests} bytes=${stats.bytesFetched} disk_hits=${stats.diskHits} disk_misses=${stats.diskMisses} time=${((performance.now() - t0) / 1000).toFixed(3)}s`);
    }
  } finally {
    // Not finished: a failed view (or one that failed before it began) leaves no partial output.
    if (output && !output.finished) await output.discard();
    await transport.close().catch(() => {});
    for (const close of closeLater) await close().catch(() => {});
  }
}
