/**
 * Worker-thread side of CramSlicePool (./slice-pool.ts): decodes one CRAM slice per job with the
 * main thread's code (./slice-parts.ts, ./slice-decoder.ts) and sends back its output, finished:
 * SAM text (formatted by ../sam-format.ts, as the main thread formats it) or BAM records packed as
 * BAM lays them out (each after its 4-byte length).
 *
 * A job carries the bytes @gmod/cram reads for the slice (the file definition, the container's
 * header and compression header, the slice's blocks: checked by the main thread first), at their
 * file offsets; a read outside them is a bug, not a file error, and fails the job. Reference bases
 * and lengths are asked of the main thread (it holds the reference reader, its cache and the
 * checks that warn once per run).
 *
 * Regions: the main thread's record filter keeps state (htslib stops at the first record past a
 * region, ./cram-view.ts), which a worker cannot share. The worker keeps what the stateless test
 * (the regions as given) keeps, a superset, and reports every record's position and its answer;
 * the main thread replays its own filter over them in order and takes the output only when the
 * answers agree (always, in a file sorted by position), else decodes the slice itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CramFile } from '@gmod/cram';
import type { FilehandleOptions, GenericFilehandle, Stats } from 'generic-filehandle2';
import { SlicefsError, messageOf, type ErrorCode } from '../../errors.js';
import { overlapsAny, packRecords, type WantedRange } from '../bam-record.js';
import { ByteSink, formatSamInto, refNameBytes } from '../sam-format.js';
import type { ContigInfo, DecodeContext } from './slice-decoder.js';
import { decodeSliceAt, openContainer } from './slice-parts.js';

export interface SliceWorkerInit {
  majorVersion: number;
  contigs: ContigInfo[];
  /** Each contig's length once the reference is opened (DecodeContext.openedLength). */
  openedLengths: number[];
  readGroups: string[];
  referenceHint: string;
  fileName: string;
  /** Whether a reference was given (without one, the decoder's own error names what to do). */
  hasReference: boolean;
  /** The CRAM's size: @gmod/cram clips reads to it. */
  fileSize: number;
  label: string;
}

export interface SliceJob {
  type: 'slice';
  id: number;
  /** File bytes at their offsets: [pos, pos + bytes.byteLength). */
  pieces: { pos: number; bytes: ArrayBuffer }[];
  containerStart: number;
  sliceStart: number;
  sliceBytes: number;
  wanted: WantedRange[];
  unmapped: boolean;
  contained: boolean;
  output: 'sam' | 'bam';
}

/** The main thread's answer to a worker's question (SliceAsk). */
export type SliceAnswer =
  | { type: 'answer'; ask: number; bases?: ArrayBuffer; length?: number }
  | { type: 'answer'; ask: number; error: { code?: string; message: string } };

/** A worker's question: reference bases [start, end) of contig `tid`, or the length it is decoded with. */
export type SliceQuestion = { what: 'bases'; tid: number; start: number; end: number } | { what: 'length'; tid: number; proven: boolean };
export type SliceAsk = SliceQuestion & { type: 'ask'; ask: number };

export type SliceResult =
  | {
      type: 'done';
      id: number;
      /** Every record's refId, 0-based start, end and the stateless answer (1/0), four int32s each, in slice order. */
      calls: ArrayBuffer;
      /** Records in `out`. */
      count: number;
      out: ArrayBuffer;
    }
  | { type: 'failed'; id: number; error: { code?: string; message: string } };

/** Bytes at known offsets of a file, read as a file: a read gives what lies from its start to the end of its piece. */
class PiecesFilehandle implements GenericFilehandle {
  constructor(
    private readonly pieces: { pos: number; bytes: Uint8Array }[],
    private readonly size: number,
  ) {}

  async read(length: number, position: number): Promise<Uint8Array<ArrayBuffer>> {
    for (const p of this.pieces) {
      if (position >= p.pos && position < p.pos + p.bytes.length) {
        const from = position - p.pos;
        return p.bytes.subarray(from, Math.min(p.bytes.length, from + length)) as Uint8Array<ArrayBuffer>;
      }
    }
    if (position >= this.size) return new Uint8Array(0);
    throw new Error(`slice worker: a read at byte ${position} outside the bytes it was given`);
  }

  readFile(): Promise<Uint8Array<ArrayBuffer>>;
  readFile(options: FilehandleOptions['encoding'] | FilehandleOptions): Promise<string>;
  async readFile(): Promise<Uint8Array<ArrayBuffer> | string> {
    throw new Error('slice worker: the whole file was asked for');
  }

  async stat(): Promise<Stats> {
    return { size: this.size };
  }

  async close(): Promise<void> {}
}

const init = workerData as SliceWorkerInit;
const port = parentPort!;
const asks = new Map<number, { resolve: (a: SliceAnswer) => void }>();
let nextAsk = 0;

function ask(q: SliceQuestion): Promise<SliceAnswer> {
  const id = nextAsk++;
  return new Promise((resolve) => {
    asks.set(id, { resolve });
    port.postMessage({ type: 'ask', ask: id, ...q } satisfies SliceAsk);
  });
}

function answerOrThrow(a: SliceAnswer): SliceAnswer & { error?: undefined } {
  if ('error' in a && a.error) throw new SlicefsError((a.error.code as ErrorCode | undefined) ?? 'BAD_RESPONSE', a.error.message);
  return a as SliceAnswer & { error?: undefined };
}

const ctx: DecodeContext = {
  contigs: init.contigs,
  readGroups: init.readGroups,
  reference: init.hasReference
    ? async (tid, start, end) => {
        const a = answerOrThrow(await ask({ what: 'bases', tid, start, end }));
        return Buffer.from(a.bases!);
      }
    : undefined,
  referenceLength: init.hasReference
    ? async (tid, proven) => answerOrThrow(await ask({ what: 'length', tid, proven })).length!
    : undefined,
  openedLength: (tid) => init.openedLengths[tid],
  referenceHint: init.referenceHint,
  fileName: init.fileName,
};
const refs = refNameBytes(init.contigs.map((c) => c.name));
const sink = new ByteSink();

async function run(job: SliceJob): Promise<SliceResult> {
  const pieces = job.pieces.map((p) => ({ pos: p.pos, bytes: new Uint8Array(p.bytes) }));
  const file = new CramFile({ filehandle: new PiecesFilehandle(pieces, init.fileSize), checkSequenceMD5: false });
  let calls = new Int32Array(4 * 16384);
  let n = 0;
  const wanted = (tid: number, pos: number, end: number): boolean => {
    const want = tid === -1 ? job.unmapped : overlapsAny(job.wanted, job.contained, tid, pos, end);
    if (end !== Infinity) {
      if (n + 4 > calls.length) {
        const grown = new Int32Array(calls.length * 2);
        grown.set(calls);
        calls = grown;
      }
      calls[n] = tid;
      calls[n + 1] = pos;
      calls[n + 2] = end;
      calls[n + 3] = want ? 1 : 0;
      n += 4;
    }
    return want;
  };
  const recs = await decodeSliceAt(openContainer(file, job.containerStart), job, init.majorVersion, ctx, wanted, init.label);
  // SAM text, or the records packed: a buffer of exactly their size, transferred back.
  let out: ArrayBuffer;
  if (job.output === 'sam') {
    for (const r of recs) formatSamInto(r, refs, sink);
    out = sink.takeArrayBuffer();
  } else {
    out = packRecords(recs);
  }
  const callBytes = calls.slice(0, n).buffer;
  return { type: 'done', id: job.id, calls: callBytes, count: recs.length, out };
}

port.on('message', (m: SliceJob | SliceAnswer) => {
  if (m.type === 'answer') {
    const waiting = asks.get(m.ask);
    asks.delete(m.ask);
    waiting?.resolve(m);
    return;
  }
  run(m).then(
    (res) => port.postMessage(res, res.type === 'done' ? [res.calls, res.out] : []),
    (err: unknown) => {
      sink.len = 0;
      const code = err instanceof SlicefsError ? err.code : undefined;
      port.postMessage({ type: 'failed', id: m.id, error: { code, message: messageOf(err) } } satisfies SliceResult);
    },
  );
});
