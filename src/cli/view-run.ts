/**
 * The work of `slicefs view` (see ./view.ts for its options): resolves the input, its index
 * candidates and the reference from the arguments, runs the view session and reports.
 */
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FileCache } from '../cache/file-cache.js';
import type { ArgumentsCamelCase } from 'yargs';
import { DEFAULT_READER } from '../config.js';
import { SlicefsError } from '../errors.js';
import { loadManifest } from '../manifest/load.js';
import { LocalSource } from '../source/local-source.js';
import { HttpSource, type ObjectSource } from '../source/object-source.js';
import { ScoreMetadata } from '../source/score-metadata.js';
import { ScoreSource } from '../source/score-source.js';
import { Stats } from '../stats.js';
import { HttpTransport } from '../transport/http-transport.js';
import { safeUrl } from '../util/redact.js';
import { parseBed } from '../view/bed.js';
import { parseRegion, type Region } from '../view/region.js';
import { localFai } from '../view/reference.js';
import { formatOfName, indexNames, runView, type DataFormat, type ReferenceInput } from '../view/view-session.js';
import { cacheConfig, say, timestamped, transportConfig } from './common.js';
import { scoreEndpoint } from './score.js';
import type { ViewArgs } from './view.js';

const VERSION = '0.1.0';

/** The cache directory: --cache-dir, else $XDG_CACHE_HOME/slicefs, else ~/.cache/slicefs. */
function cacheDir(given: string | undefined): string {
  if (given) return given;
  const xdg = process.env.XDG_CACHE_HOME;
  return xdg ? join(xdg, 'slicefs') : join(homedir(), '.cache', 'slicefs');
}

/** The URL with its path replaced (the query string, e.g. a signature, is kept). */
function withPath(url: string, path: string): string {
  const u = new URL(url);
  u.pathname = path;
  return u.toString();
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** The data to read and the index the user named, from --input-file, --url or --manifest/--path. */
async function resolveInput(args: ArgumentsCamelCase<ViewArgs>, remote: (url: string) => ObjectSource): Promise<{ data: ObjectSource; name: string; index?: string }> {
  if (args['input-file']) return { data: new LocalSource(args['input-file']), name: args['input-file'], index: args['index-url'] };
  let url = args.url;
  let index = args['index-url'];
  if (args.manifest) {
    if (!args.path) throw new SlicefsError('USAGE', '--manifest needs --path NAME (an entry of the manifest)');
    const m = await loadManifest(args.manifest);
    const entry = m.entries.find((e) => e.path === args.path);
    if (!entry) throw new SlicefsError('USAGE', `${args.manifest}: no entry with path '${args.path}'`);
    url = entry.url;
    index ??= entry.indexUrl;
  }
  if (!url || !isUrl(url)) throw new SlicefsError('USAGE', `--url: not an http(s) URL: '${safeUrl(url ?? '')}'`);
  return { data: remote(url), name: url, index };
}

export async function runViewCommand(args: ArgumentsCamelCase<ViewArgs>): Promise<void> {
  const t0 = performance.now();
  const given = [args.url, args['input-file'], args.manifest, args['object-id']].filter((x) => x !== undefined).length;
  if (given !== 1) throw new SlicefsError('USAGE', 'give exactly one of --url, --input-file, --manifest (with --path) or --object-id');
  if (args['header-only'] && !args.header) throw new SlicefsError('USAGE', '--header-only and --no-header contradict each other');
  const stats = new Stats();
  const transport = new HttpTransport(transportConfig(args, timestamped), stats, say);
  try {
    const remote = (u: string) => new HttpSource(transport, u);
    let data: ObjectSource;
    let dataPath: string;
    let candidates: (format: DataFormat) => ObjectSource[];
    if (args['object-id']) {
      // A Score object: its index is --index-object-id, else the analysis' `<fileName>.bai|.crai|…`.
      if (args['object-id'].length !== 1) throw new SlicefsError('USAGE', 'view reads one --object-id');
      const id = args['object-id'][0];
      const endpoint = await scoreEndpoint(args, say);
      data = new ScoreSource(transport, transport, endpoint, id);
      let indexId = args['index-object-id'];
      let fileName = '';
      if (!indexId) {
        const meta = new ScoreMetadata(transport, args['metadata-url'] ?? process.env.METADATA_URL ?? endpoint.storageUrl, endpoint.token);
        fileName = (await meta.entity(id)).fileName;
        indexId = await meta.indexOf(id);
        if (!indexId) throw new SlicefsError('NOT_FOUND', `no index of object ${id} (${fileName}) in its analysis; give --index-object-id`);
      }
      const index = new ScoreSource(transport, transport, endpoint, indexId);
      dataPath = fileName;
      candidates = () => [index];
    } else {
      const input = await resolveInput(args, remote);
      const { name: dataName, index: indexGiven } = input;
      data = input.data;
      const sourceFor = (name: string): ObjectSource => (isUrl(name) ? remote(name) : new LocalSource(name));
      dataPath = isUrl(dataName) ? new URL(dataName).pathname : dataName;
      const path = dataPath;
      candidates = (format: DataFormat): ObjectSource[] =>
        indexGiven
          ? [sourceFor(indexGiven)]
          : isUrl(dataName)
            ? indexNames(path, format).map((p) => remote(withPath(dataName, p)))
            : indexNames(dataName, format).map((p) => new LocalSource(p));
    }
    if (args['reference-file'] && args['reference-url']) throw new SlicefsError('USAGE', 'give one of --reference-file or --reference-url');
    let reference: ReferenceInput | undefined;
    if (args['reference-file']) {
      const fasta = args['reference-file'];
      reference = { fasta: new LocalSource(fasta), fai: { text: await localFai(fasta, say) } };
    } else if (args['reference-url']) {
      const url = args['reference-url'];
      if (!isUrl(url)) throw new SlicefsError('USAGE', `--reference-url: not an http(s) URL: '${safeUrl(url)}'`);
      reference = { fasta: remote(url), fai: remote(withPath(url, `${new URL(url).pathname}.fai`)) };
    }
    const bedText = args['bed-query'] ? await readFile(args['bed-query'], 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new SlicefsError('USAGE', `${args['bed-query']}: cannot read (${e.code ?? e.message})`);
    }) : undefined;
    const regionsFor = (contigs: { name: string; length: number }[]): Region[] => {
      const out: Region[] = (args.query ?? []).map((q) => parseRegion(q, contigs));
      if (bedText !== undefined) out.push(...parseBed(bedText, args['bed-query']!, contigs));
      if (out.length === 0) {
        // No region: every record (all contigs, then the unplaced reads), as plain samtools view.
        out.push(...contigs.map((c): Region => ({ kind: 'contig', contig: c.name, start: 0, end: c.length })), { kind: 'unmapped' });
      }
      return out;
    };
    const out = args.output ? createWriteStream(args.output) : process.stdout;
    const commandLine = ['slicefs', ...process.argv.slice(2).map((a) => (isUrl(a) ? safeUrl(a) : a))].join(' ');
    const result = await runView({
      data,
      formatHint: formatOfName(dataPath),
      indexCandidates: candidates,
      reference,
      referenceHint: 'give its reference with --reference-file ref.fa (or --reference-url URL of an indexed FASTA)',
      regions: regionsFor,
      contained: args.contained,
      format: args['output-format'] as 'sam' | 'bam',
      header: args['header-only'] ? 'only' : args.header ? 'with' : 'without',
      pg: args.pg ? { name: 'slicefs', version: VERSION, commandLine } : undefined,
      cache: cacheConfig(args),
      reader: DEFAULT_READER,
      stats,
      out,
      indexCache: args['index-cache'] ? new FileCache(join(cacheDir(args['cache-dir']), 'index'), say) : undefined,
    });
    if (args.output) await new Promise<void>((res) => out.end(() => res()));
    if (args.stats) {
      say(`view: records=${result.records} requests=${stats.requests} bytes=${stats.bytesFetched} time=${((performance.now() - t0) / 1000).toFixed(3)}s`);
    }
  } finally {
    await transport.close().catch(() => {});
  }
}
