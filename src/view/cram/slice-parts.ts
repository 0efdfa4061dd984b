/**
 * A CRAM slice made ready for ./slice-decoder.ts from @gmod/cram's objects: its container's
 * compression scheme and preservation map, the slice's header, core block and blocks by content id.
 * Shared by the main thread (./cram-view.ts) and the slice workers (./cram-slice-worker.ts), so both
 * read a slice the same way and fail with the same message.
 */
import type { CramFile } from '@gmod/cram';
import { SlicefsError } from '../../errors.js';
import { printable } from '../../util/printable.js';
import { decodeSlice, type CompressionScheme, type DecodeContext, type Preservation, type RecordFilter, type SliceHeaderContent, type SliceParts } from './slice-decoder.js';

export type Container = ReturnType<CramFile['getContainerAtPosition']>;

/** A container and its compression scheme and preservation map (undefined: the container has none). */
export interface OpenContainer {
  c: Container;
  scheme: Promise<[CompressionScheme, Preservation] | undefined>;
}

export function openContainer(file: CramFile, pos: number): OpenContainer {
  const container = file.getContainerAtPosition(pos);
  const scheme = Promise.all([container.getCompressionScheme(), container.getCompressionHeaderBlock()]).then(([scheme, block]) => {
    if (!scheme || !block) return undefined;
    const p = block.parsedContent.preservation as { RN?: boolean; AP?: boolean; RR?: boolean };
    const preservation = { readNamesIncluded: p.RN !== false, apDelta: p.AP !== false, referenceRequired: p.RR !== false };
    return [scheme as CompressionScheme, preservation] as [CompressionScheme, Preservation];
  });
  scheme.catch(() => {});
  return { c: container, scheme };
}

/** The slice at `sliceStart` (from the container's data start, `sliceBytes` long) decoded into BAM records. */
export async function decodeSliceAt(
  open: OpenContainer,
  s: { containerStart: number; sliceStart: number; sliceBytes: number },
  majorVersion: number,
  ctx: DecodeContext,
  wanted: RecordFilter,
  label: string,
): Promise<Buffer[]> {
  let parts: SliceParts;
  try {
    const got = await open.scheme;
    if (!got) return [];
    const [scheme, preservation] = got;
    const slice = open.c.getSlice(s.sliceStart, s.sliceBytes);
    const header = await slice.getHeader();
    const blocksByContentId = await slice._getBlocksContentIdIndex();
    const core = await slice.getCoreDataBlock();
    parts = { majorVersion, scheme, preservation, header: header.parsedContent as SliceHeaderContent, slice, core, blocksByContentId };
  } catch (err) {
    if (err instanceof SlicefsError) throw err;
    throw new SlicefsError('BAD_RESPONSE', printable(`${label}: unreadable CRAM slice at byte ${s.containerStart}: ${(err as Error).message}`));
  }
  try {
    return await decodeSlice(parts, ctx, wanted);
  } catch (err) {
    if (err instanceof SlicefsError) throw err;
    throw new SlicefsError('BAD_RESPONSE', printable(`${label}: cannot decode the CRAM slice at byte ${s.containerStart}: ${(err as Error).message}`));
  }
}
