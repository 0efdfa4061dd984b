/**
 * Worker-thread side of SamFormatPool (./sam-format-pool.ts): formats batches of BAM records as
 * SAM text with the same `formatSamInto` the main thread uses, so the text is the same whichever
 * thread made it. A job is one ArrayBuffer holding records as BAM lays them out (each after its
 * 4-byte little-endian length), transferred in; the text is transferred back. A record that does
 * not hold together is reported with its error's code and message, as the main thread would throw it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SlicefsError, messageOf } from '../errors.js';
import { unpackRecords } from './bam-record.js';
import { ByteSink, formatSamInto, refNameBytes } from './sam-format.js';

export interface FormatWorkerInit {
  refNames: string[];
}

export interface FormatJob {
  id: number;
  records: ArrayBuffer;
}

export type FormatResult = { id: number; text: ArrayBuffer } | { id: number; error: { code?: string; message: string } };

const init = workerData as FormatWorkerInit;
const refs = refNameBytes(init.refNames);
const sink = new ByteSink();

parentPort!.on('message', (job: FormatJob) => {
  try {
    for (const rec of unpackRecords(job.records)) formatSamInto(rec, refs, sink);
    const text = sink.takeArrayBuffer();
    parentPort!.postMessage({ id: job.id, text } satisfies FormatResult, [text]);
  } catch (err) {
    sink.len = 0;
    const code = err instanceof SlicefsError ? err.code : undefined;
    parentPort!.postMessage({ id: job.id, error: { code, message: messageOf(err) } } satisfies FormatResult);
  }
});
