/**
 * A local file as an ObjectSource (`view --input-file`): the same reader and cache code serve local
 * and remote data. Its version is its size and modification time at first contact.
 */
import { open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { SlicefsError } from '../errors.js';
import type { ObjectVersion } from '../transport/version.js';
import type { ObjectSource } from './object-source.js';
import { fsProblem } from '../util/fs-problem.js';

const PIECE = 1 << 20;

export class LocalSource implements ObjectSource {
  readonly identity: string;
  readonly label: string;
  pinned?: ObjectVersion;

  constructor(readonly path: string) {
    this.identity = `file://${resolve(path)}`;
    this.label = path;
  }

  async version(): Promise<ObjectVersion> {
    if (!this.pinned) {
      const st = await stat(this.path).catch((e: NodeJS.ErrnoException) => {
        throw new SlicefsError(e.code === 'ENOENT' ? 'NOT_FOUND' : e.code === 'EACCES' ? 'ACCESS_DENIED' : 'NETWORK', `${this.path}: ${fsProblem(e)}`);
      });
      if (!st.isFile()) throw new SlicefsError('NOT_FOUND', `${this.path}: not a regular file`);
      this.pinned = { size: st.size, lastModified: st.mtime.toUTCString() };
    }
    return this.pinned;
  }

  async read(start: number, end: number, onData: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    await this.version();
    const fh = await open(this.path, 'r');
    try {
      for (let p = start; p < end; ) {
        const buf = Buffer.allocUnsafe(Math.min(PIECE, end - p));
        const { bytesRead } = await fh.read(buf, 0, buf.length, p);
        if (bytesRead === 0) throw new SlicefsError('STALE', `${this.path}: file shrank while reading`);
        await onData(buf.subarray(0, bytesRead));
        p += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
}
