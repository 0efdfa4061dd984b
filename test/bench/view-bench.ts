/**
 * `slicefs view` against `samtools view http://…` on the same BAM and CRAM (the bench data of
 * test/helpers/sample-data: sample.bam ~272 MB, sample.cram ~132 MB with its reference ref.fa ~81 MB),
 * side by side in one run: regions of 1 kb, 100 kb and 10 Mb, on loopback (nginx on 127.0.0.1) and
 * through the 20 ms / 1 Gbit/s latency proxy. Both tools write SAM records to a pipe that counts
 * lines; each run is a new process. Cold: no cached index (slicefs's --cache-dir emptied, and
 * whatever samtools left in its working directory removed: the `.bai` / `.crai` it downloads);
 * warm: both keep their index from the previous run. Reports median time and CPU seconds (user +
 * system, GNU time) of N runs, HTTP requests and bytes from nginx's log, and the ratios.
 *
 * CRAM: both tools read the reference over the same link: `slicefs view --reference-url
 * …/ref.fa` and `samtools view -T http://…/ref.fa` (htslib reads `ref.fa.fai` over HTTP, then seeks
 * in ref.fa with open-ended range requests). samtools runs with REF_PATH=/nonexistent/%s and
 * REF_CACHE= (empty): htslib then neither asks www.ebi.ac.uk for a reference by MD5 nor writes a
 * copy into ~/.cache/hts-ref, so a cold run is cold and the network stays on 127.0.0.1. The
 * requests and bytes of the reference (ref.fa and ref.fa.fai) are also shown on their own.
 *
 * slicefs runs from a copy of bin/ and dist/ taken at the start (under .bench/), so a rebuild
 * during the run does not change what is measured.
 *
 * Output: SAM (the default, `--output sam`), BAM (`--output bam`: `slicefs view -b` against
 * `samtools view -b`) and uncompressed BAM (`--output ubam`: `-u` against `samtools view -u`), or
 * several (`--output sam,bam,ubam`). A BAM cell counts the bytes written, and its outputs are
 * checked to hold the same records (`samtools view` of each, compared by SHA-256). `--sizes 10M`
 * (of 1k,100k,10M,chrom) keeps only those regions.
 *
 *   node dist/test/bench/view-bench.js [--runs 3] [--format bam|cram|both] [--output sam,bam,ubam] [--sizes 1k,100k,10M,chrom] [--cmd-timeout 600]
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSampleData } from '../helpers/sample-data.js';
import { startLatencyProxy } from './latency-proxy.js';
import { startNginx } from './nginx.js';
import { childEnv, copyCli, onCleanup, runBenchMain, runCleanups, sleep } from './proc.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** htslib must not look a CRAM reference up by MD5 anywhere (www.ebi.ac.uk) nor cache one. */
const SAMTOOLS_ENV = childEnv({ REF_PATH: '/nonexistent/%s', REF_CACHE: '' });

interface Timed {
  s: number;
  lines: number;
  code: number | null;
  err: string;
  rssMiB: number;
  /** CPU seconds (user + system) of the tool and its children, from GNU time. */
  cpuS: number;
  timedOut: boolean;
  /** Bytes written to stdout. */
  bytes: number;
  /** Stdout itself, when asked to keep it. */
  out?: Buffer;
}

/**
 * Runs a command with stdout counted (lines), in `cwd` (samtools drops remote indexes into it),
 * under GNU time for its peak RSS. Killed (its whole process group) after `timeoutMs`.
 */
function timed(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number, keep = false): Promise<Timed> {
  return new Promise((res) => {
    const t0 = performance.now();
    const p = spawn('/usr/bin/time', ['-f', 'SLICEFS_BENCH_MAXRSS_KB=%M CPU_S=%U+%S', cmd, ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout or an abort kills the tool too, not only `time`
    });
    const killGroup = () => {
      try {
        if (p.pid) process.kill(-p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const unregister = onCleanup(`${basename(cmd)} (view-bench)`, killGroup);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    let lines = 0;
    let bytes = 0;
    const kept: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      if (keep) kept.push(d);
      else for (const b of d) if (b === 10) lines++;
    });
    p.stderr.on('data', (d: Buffer) => {
      if (err.length < 1 << 20) err += d.toString();
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      unregister();
      const m = /SLICEFS_BENCH_MAXRSS_KB=(\d+) CPU_S=([\d.]+)\+([\d.]+)/.exec(err);
      const rss = Number(m?.[1] ?? NaN) / 1024;
      const cpuS = Number(m?.[2] ?? NaN) + Number(m?.[3] ?? NaN);
      err = err.replace(/^SLICEFS_BENCH_MAXRSS_KB=\d+ CPU_S=\S+\n?/m, '');
      res({ s: (performance.now() - t0) / 1000, lines, code, err, rssMiB: rss, cpuS, timedOut, bytes, out: keep ? Buffer.concat(kept) : undefined });
    });
  });
}

/**
 * A copy of the CLI (bin/ and dist/ without dist/test) taken once at the start, so every cell runs
 * the same build even if dist/ is rebuilt meanwhile. It lives under .bench/ (git-ignored) inside
 * the repository so that node_modules and package.json ("type": "module") still resolve upwards.
 */
async function snapshotCli(): Promise<{ bin: string; remove: () => Promise<void> }> {
  const { dir, bin, remove } = await copyCli(REPO, 'view-bench');
  const check = await timed(process.execPath, [bin, '--version'], dir, childEnv(), 60_000);
  if (check.code !== 0) throw new Error(`the CLI copy in ${dir} does not run (is dist/ built?):\n${check.err.slice(-2000)}`);
  return {
    bin,
    remove,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Same format as nginx.ts: $msec $connection $connection_requests "$request" $status $body_bytes_sent …
const LOG_LINE = /^\S+ \d+ \d+ "\S+ (\S+) [^"]*" \d{3} (\d+) /;

/** Requests and body bytes for paths that `match` in the access log. */
async function trafficFor(logPath: string, match: (path: string) => boolean): Promise<{ requests: number; bytes: number }> {
  await sleep(50); // as nginx.ts: the log line is written just after the last byte
  const text = await readFile(logPath, 'utf8').catch(() => '');
  const out = { requests: 0, bytes: 0 };
  for (const line of text.split('\n')) {
    const m = LOG_LINE.exec(line);
    if (!m || !match(m[1].replace(/\?.*$/, ''))) continue;
    out.requests++;
    out.bytes += Number(m[2]);
  }
  return out;
}

type Format = 'bam' | 'cram';
type Output = 'sam' | 'bam' | 'ubam';

/** The records of a BAM given as bytes (`samtools view`), as a digest and a count. */
async function recordsOfBam(bam: Buffer): Promise<{ sha256: string; records: number }> {
  return new Promise((res, rej) => {
    const p = spawn('samtools', ['view', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const hash = createHash('sha256');
    let records = 0;
    let err = '';
    p.stdout.on('data', (d: Buffer) => {
      hash.update(d);
      for (const b of d) if (b === 10) records++;
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.stdin.on('error', () => {});
    p.stdin.end(bam);
    p.on('error', rej);
    p.on('close', (code) => (code === 0 ? res({ sha256: hash.digest('hex'), records }) : rej(new Error(`samtools view - exited with ${code}: ${err.slice(-500)}`))));
  });
}

interface ToolResult {
  s: number[];
  req: number;
  bytes: number;
  refReq: number;
  refBytes: number;
  lines: number;
  rss: number;
  /** CPU seconds of each run. */
  cpu: number[];
  /** Output bytes of the last run. */
  outBytes: number;
  /** The last run's output, for BAM output (checked below). */
  out?: Buffer;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      format: { type: 'string', default: 'both' },
      output: { type: 'string', default: 'sam' },
      sizes: { type: 'string', default: '1k,100k,10M,chrom' },
      'cmd-timeout': { type: 'string', default: '600' },
    },
  });
  const runs = Math.max(1, Number(values.runs));
  if (!Number.isFinite(runs)) throw new Error(`--runs: not a number: ${values.runs}`);
  if (!['bam', 'cram', 'both'].includes(values.format)) throw new Error(`--format must be bam, cram or both (got ${values.format})`);
  const formats: Format[] = values.format === 'both' ? ['bam', 'cram'] : [values.format as Format];
  const outputs = values.output.split(',') as Output[];
  if (outputs.length === 0 || outputs.some((x) => !['sam', 'bam', 'ubam'].includes(x))) throw new Error(`--output: a list of sam, bam, ubam (got ${values.output})`);
  const sizes = values.sizes.split(',');
  if (sizes.some((x) => !['1k', '100k', '10M', 'chrom'].includes(x))) throw new Error(`--sizes: a list of 1k, 100k, 10M, chrom (got ${values.sizes})`);
  const cmdTimeoutMs = Number(values['cmd-timeout']) * 1000;
  if (!(cmdTimeoutMs > 0)) throw new Error(`--cmd-timeout: not a positive number of seconds: ${values['cmd-timeout']}`);

  const cli = await snapshotCli();
  const dataDir = join(REPO, '.bench/data');
  const sample = await ensureSampleData(join(dataDir, 'sample-bench'), { scale: 'bench' });
  const nginx = await startNginx(dataDir);
  const logPath = nginx.accessLogPath;
  const proxy = await startLatencyProxy({ upstreamPort: nginx.port, oneWayDelayMs: 10, rateBitsPerSec: 1e9 });
  const cwd = await mkdtemp(join(tmpdir(), 'slicefs-viewbench-'));
  const longest = [...sample.contigs].sort((a, b) => b.length - a.length)[0];
  const mid = Math.floor(longest.length / 2);
  const regions = ([['1k', 1_000], ['100k', 100_000], ['10M', 10_000_000]] as const)
    .filter(([name]) => sizes.includes(name))
    .map(([, len]) => `${longest.name}:${mid - len / 2}-${mid + len / 2 - 1}`);
  // A whole chromosome, once, on loopback and cold: memory must stay bounded.
  const whole = longest.name;
  const isRef = (p: string) => p.endsWith('/ref.fa') || p.endsWith('/ref.fa.fai');
  const rows: string[] = [];
  const failures: string[] = [];
  /** Records per region from the BAM rows, to check the CRAM ones against (same reads). */
  const bamRecords = new Map<string, number>();
  const t0 = performance.now();
  try {
    for (const format of formats) {
      for (const [link, origin] of [
        ['loopback', nginx.origin],
        ['wan 20ms/1G', `http://127.0.0.1:${proxy.port}`],
      ] as const) {
        const url = `${origin}/sample-bench/sample.${format}`;
        const refUrl = `${origin}/sample-bench/ref.fa`;
        const cells = outputs.flatMap((output) =>
          regions.flatMap((r) => [
            { region: r, warm: false, output },
            { region: r, warm: true, output },
          ]),
        );
        if (link === 'loopback' && sizes.includes('chrom')) for (const output of outputs) cells.push({ region: whole, warm: false, output });
        for (const { region, warm, output } of cells) {
          const label = `${format.toUpperCase()} → ${output.toUpperCase()} ${link} ${region} ${warm ? 'warm' : 'cold'}`;
          process.stderr.write(`view-bench: ${label} …\n`);
          const result: Record<string, ToolResult> = {};
          let failed = '';
          // BAM output: `-b` / `-u` on both sides, slicefs with its header (samtools always writes one).
          const outFlags = output === 'sam' ? [] : [output === 'bam' ? '-b' : '-u'];
          const samtoolsArgs = format === 'cram' ? ['view', ...outFlags, '-T', refUrl, url, region] : ['view', ...outFlags, url, region];
          const slicefsArgs = [cli.bin, 'view', '--cache-dir', join(cwd, 'cache'), '--disk-cache-size', '0', '--url', url];
          if (format === 'cram') slicefsArgs.push('--reference-url', refUrl);
          slicefsArgs.push('-q', region, ...(output === 'sam' ? ['--no-header'] : outFlags));
          for (const [tool, cmd, args, env] of [
            ['samtools', 'samtools', samtoolsArgs, SAMTOOLS_ENV],
            ['slicefs', process.execPath, slicefsArgs, childEnv()],
          ] as const) {
            const r: ToolResult = { s: [], req: 0, bytes: 0, refReq: 0, refBytes: 0, lines: 0, rss: 0, outBytes: 0, cpu: [] };
            if (warm) await timed(cmd, args, cwd, env, cmdTimeoutMs); // leaves each tool's index behind
            for (let i = 0; i < runs && !failed; i++) {
              if (!warm) {
                // samtools keeps a remote index (.bai / .crai) in its working directory, slicefs
                // its indexes (also the reference's .fai) in --cache-dir, which is in there too.
                for (const f of await readdir(cwd)) await rm(join(cwd, f), { recursive: true, force: true });
              }
              await nginx.resetLog();
              const t = await timed(cmd, args, cwd, env, cmdTimeoutMs, output !== 'sam' && i === runs - 1);
              if (t.code !== 0 || t.timedOut) {
                failed = `${tool} ${t.timedOut ? `timed out after ${cmdTimeoutMs / 1000} s` : `exited with ${t.code}`} (run ${i + 1}): ${cmd} ${args.join(' ')}\n${t.err.slice(-3000)}`;
                break;
              }
              const log = await nginx.accessLog();
              const ref = await trafficFor(logPath, isRef);
              r.s.push(t.s);
              r.req = log.requests;
              r.bytes = log.bytes;
              r.refReq = ref.requests;
              r.refBytes = ref.bytes;
              r.lines = t.lines;
              r.outBytes = t.bytes;
              r.out = t.out;
              r.rss = Math.max(r.rss, t.rssMiB);
              r.cpu.push(t.cpuS);
            }
            result[tool] = r;
            if (failed) break;
          }
          const a = result.samtools;
          const b = result.slicefs;
          if (!failed && output !== 'sam') {
            // The records of both BAMs, compared; then counted as lines are for SAM.
            const [ra, rb] = [await recordsOfBam(a.out!), await recordsOfBam(b.out!)];
            if (ra.sha256 !== rb.sha256) failed = `${label}: samtools's and slicefs's BAMs hold different records (${ra.records} and ${rb.records})`;
            a.lines = ra.records;
            b.lines = rb.records;
            a.out = b.out = undefined;
          }
          if (!failed && a.lines !== b.lines) failed = `${label}: samtools ${a.lines} records, slicefs ${b.lines}`;
          if (!failed && format === 'bam' && output === 'sam') bamRecords.set(region, a.lines);
          if (!failed && format === 'cram' && bamRecords.has(region) && bamRecords.get(region) !== a.lines) {
            failed = `${label}: ${a.lines} records from the CRAM, ${bamRecords.get(region)} from the BAM`;
          }
          const head = `| ${format.toUpperCase()} | ${output.toUpperCase()} | ${link} | ${region}`;
          if (failed) {
            failures.push(`${label}: ${failed}`);
            process.stderr.write(`view-bench: FAILED ${failed}\n`);
            rows.push(`${head} | ${warm ? 'warm' : 'cold'} | failed (see stderr) | | | | | | | | | |`);
            continue;
          }
          const refCols =
            format === 'cram'
              ? `${a.refReq} / ${b.refReq} | ${(a.refBytes / 1e6).toFixed(2)} / ${(b.refBytes / 1e6).toFixed(2)}`
              : '– | –';
          rows.push(
            `${head} (${b.lines} records) | ${warm ? 'warm' : 'cold'} | ${median(a.s).toFixed(3)} | ${median(b.s).toFixed(3)} | **${(median(b.s) / median(a.s)).toFixed(2)}×** | ${median(a.cpu).toFixed(2)} / ${median(b.cpu).toFixed(2)} | ${a.req} / ${b.req} | ${(a.bytes / 1e6).toFixed(2)} / ${(b.bytes / 1e6).toFixed(2)} | ${refCols} | ${output === 'sam' ? '–' : `${(a.outBytes / 1e6).toFixed(1)} / ${(b.outBytes / 1e6).toFixed(1)}`} | ${a.rss.toFixed(0)} / ${b.rss.toFixed(0)} |`,
          );
        }
      }
    }
  } finally {
    await proxy.close();
    await nginx.stop();
    await rm(cwd, { recursive: true, force: true });
    await cli.remove();
    await runCleanups();
  }
  const files = formats.map((f) => (f === 'bam' ? sample.bam : sample.cram)).join(' and ');
  const notes = [`- ${((performance.now() - t0) / 60_000).toFixed(1)} min in all.`];
  if (formats.includes('cram')) {
    notes.push(
      '- CRAM: both tools read the reference over the same link as the CRAM: `slicefs view --reference-url …/ref.fa`, ' +
        '`samtools view -T http://…/ref.fa` (htslib reads ref.fa.fai, then seeks in ref.fa with open-ended ranges); samtools with ' +
        '`REF_PATH=/nonexistent/%s REF_CACHE=` (no www.ebi.ac.uk, no ~/.cache/hts-ref). The requests and MB columns include the reference; ' +
        'the "reference" columns are its share (ref.fa + ref.fa.fai).',
    );
  }
  notes.push(
    '- Origin MB is what nginx sent: htslib asks for open-ended ranges (`bytes=N-`) and closes the connection when it has enough, ' +
      'so its figure includes whatever was in flight.',
  );
  process.stdout.write(
    `slicefs view vs samtools view on ${files} (${runs} runs, median; cold processes)\n\n` +
      '| format | output | link | region | index | samtools s | slicefs s | time ratio | CPU s (samtools / slicefs) | requests (samtools / slicefs) | origin MB (samtools / slicefs) | reference requests (samtools / slicefs) | reference MB (samtools / slicefs) | output MB (samtools / slicefs) | peak RSS MiB (samtools / slicefs) |\n' +
      '|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n' +
      rows.join('\n') +
      '\n\n' +
      notes.join('\n') +
      '\n',
  );
  if (failures.length > 0) throw new Error(`${failures.length} cell(s) failed:\n${failures.join('\n\n')}`);
}

runBenchMain('view-bench', main);
