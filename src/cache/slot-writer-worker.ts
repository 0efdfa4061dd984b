/**
 * The disk tier's writer thread (./slot-writer.ts, WorkerSlotWriter): runs a SlotWriter over its
 * own WriteRoot (the same owned root DiskTier.open checked) and answers each write with its result.
 * Hashing and the file-system calls of every chunk happen here, not on the FUSE thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PRIVATE_MODES, WriteRoot } from '../util/safe-fs.js';
import { SlotWriter, type FromSlotWriter, type SlotWriterInit, type ToSlotWriter } from './slot-writer.js';

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('slot-writer-worker must run in a worker thread');
  const init = workerData as SlotWriterInit;
  const writer = WriteRoot.prepare(init.rootDir, PRIVATE_MODES, { owned: true }).then((root) => new SlotWriter(root));
  // Never unhandled: a root refused now fails each write with its reason.
  writer.catch(() => {});
  port.on('message', (m: ToSlotWriter) => {
    writer
      .then((w) => w.write(m.req))
      .catch((e: unknown) => ({ park: [], added: -1, error: { code: (e as NodeJS.ErrnoException).code, message: (e as Error).message ?? String(e) } }))
      .then((result) => port.postMessage({ type: 'done', id: m.id, result } satisfies FromSlotWriter));
  });
}

void main();
