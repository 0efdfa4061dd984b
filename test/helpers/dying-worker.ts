/**
 * A stand-in for src/view/cram/cram-slice-worker.ts that dies on its first job, outside any
 * decoder: by an exception (workerData.label 'throw') or by exiting (label 'exit'). For
 * test/integration/view-cram-threads.test.ts: a pool must fail, not wait, when a worker dies.
 */
import { parentPort, workerData } from 'node:worker_threads';

const how = (workerData as { label: string }).label;
parentPort!.on('message', () => {
  if (how === 'exit') process.exit(3);
  throw new Error('thrown outside the decoder');
});
