/**
 * The hostile servers of test/helpers/hostile-modes.ts through a real FUSE mount: reading each file
 * whole gives its exact bytes, or fails with the errno of the mode (EIO for an answer that is not
 * data, a lying length or range, a redirect loop; EACCES for a token refused mid-read), each
 * operation answered inside fuse-native's 15 s, and the daemon goes on serving. With and without
 * the fetch worker, where the redirect targets are remembered.
 */
import assert from 'node:assert/strict';
import { mkdir, open } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, readAt, requireFuse, startDaemon, tempDir, writeManifest } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { hostileModes } from '../helpers/hostile-modes.js';
import { seededBytes } from '../helpers/random.js';

const MiB = 1024 * 1024;
/** fuse-native answers an operation still pending after this itself (ETIMEDOUT): slicefs must answer first. */
const OPERATION_LIMIT_MS = 15_000;
const DATA = seededBytes(1515, 3 * MiB + 4321);

let server: FixtureServer;
let other: FixtureServer;
let work: string;

before(async () => {
  requireFuse();
  server = await FixtureServer.start();
  other = await FixtureServer.start();
  work = await tempDir('slicefs-mount-hostile-');
});
after(async () => {
  await server?.close();
  await other?.close();
  await cleanup(work);
});

/** The errno name of a failed file operation (libuv has no name for some: take it from the number). */
function errnoOf(err: NodeJS.ErrnoException): string | undefined {
  return Object.entries(constants.errno).find(([, v]) => err.errno !== undefined && v === -err.errno)?.[0] ?? err.code;
}

/**
 * Opens and reads `path` whole in 1 MiB reads, each operation timed: the bytes, or the errno of
 * the first operation that failed. Also fails when an operation took longer than fuse-native allows.
 */
async function readWhole(path: string): Promise<{ bytes?: Buffer; errno?: string; slowest: number }> {
  let slowest = 0;
  const timed = async <T>(op: Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await op;
    } finally {
      slowest = Math.max(slowest, Date.now() - t0);
    }
  };
  try {
    const fh = await timed(open(path, 'r'));
    try {
      const parts: Buffer[] = [];
      for (let pos = 0; ; ) {
        const buf = Buffer.alloc(MiB);
        const { bytesRead } = await timed(fh.read(buf, 0, MiB, pos));
        if (bytesRead === 0) break;
        parts.push(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      return { bytes: Buffer.concat(parts), slowest };
    } finally {
      await fh.close();
    }
  } catch (err) {
    return { errno: errnoOf(err as NodeJS.ErrnoException), slowest };
  }
}

for (const worker of ['--fetch-worker', '--no-fetch-worker']) {
  test(`every hostile mode through the mount: the exact bytes or the mode's errno, in time (${worker})`, async () => {
    const dir = join(work, worker.slice(2));
    await mkdir(dir);
    const modes = hostileModes(other.origin);
    for (const m of modes) {
      server.addFile(`/${worker}/${m.name}.bin`, DATA, { fault: m.fault });
      other.addFile(`/${worker}/${m.name}.bin`, DATA, { fault: m.onOther });
    }
    server.addFile(`/${worker}/plain.bin`, DATA);
    const manifest = await writeManifest(dir, [
      ...modes.map((m) => ({ url: server.url(`/${worker}/${m.name}.bin`), path: `${m.name}.bin`, size: DATA.length })),
      { url: server.url(`/${worker}/plain.bin`), path: 'plain.bin', size: DATA.length },
    ]);
    const d = await startDaemon(manifest, join(dir, 'mnt'), [worker]);
    const failures: string[] = [];
    try {
      for (const m of modes) {
        const got = await readWhole(join(d.mountPoint, `${m.name}.bin`));
        if (got.slowest >= OPERATION_LIMIT_MS) failures.push(`${m.name}: an operation took ${got.slowest} ms`);
        if ('bytes' in m.expect) {
          if (got.errno !== undefined) failures.push(`${m.name}: ${got.errno} instead of the bytes`);
          else if (!got.bytes?.equals(DATA)) failures.push(`${m.name}: wrong bytes (${got.bytes?.length} of ${DATA.length})`);
        } else if (got.errno !== m.expect.errno) {
          failures.push(`${m.name}: ${got.errno ?? `${got.bytes?.length} bytes (${got.bytes?.equals(DATA) ? 'right' : 'wrong'})`} instead of ${m.expect.errno}`);
        }
      }
      // The daemon still serves after all that.
      assert.ok((await readAt(join(d.mountPoint, 'plain.bin'), 2 * MiB, 1000)).equals(DATA.subarray(2 * MiB, 2 * MiB + 1000)));
    } finally {
      await d.stop();
    }
    assert.deepEqual(failures, []);
    // Nothing the daemon printed shows a presigned signature.
    assert.doesNotMatch(d.stderr(), /X-Amz-Signature|SECRET/);
  });
}
