/**
 * Ceilings on what `view` reads whole into memory when the size comes from outside: a server's
 * Content-Length (an index, a .fai), a file's size on disk (a local .fai, a cached entry), a gzip
 * stream's inflated length (a CRAI). Past them the read is refused, before anything is allocated
 * or fetched, with one line naming the file and the ceiling, instead of an allocation that the
 * number alone decides (or V8's own failure when it passes 4 GiB or the longest string).
 */
import { SlicefsError } from '../errors.js';
import { formatBytes } from '../util/size.js';

/**
 * A BAI, CSI or CRAI (compressed, or a CRAI's inflated text): 512 MiB. The BAI of a 30× human WGS
 * BAM is ~8–10 MB and a CSI alike; a CRAI has one ~40-byte line per slice (a few MB for the same
 * BAM); an index of a 30 Gb genome or of deep long reads stays under ~100 MB. 5× over the largest
 * real one, and still a buffer every machine that runs genomics tools can hold.
 */
export const MAX_INDEX_BYTES = 512 * 1024 * 1024;

/**
 * A .fai: 256 MiB. A line is ~30–60 bytes, so ~5 million sequences, past the largest assemblies
 * (~100 MB of .fai for millions of contigs). Parsed, a sequence costs ~125 bytes of heap besides
 * the text (measured, 1 million 54-byte lines), ~0.9 GB with the text at the ceiling, within
 * Node's default heap; 512 MiB would be past V8's longest string (the .fai is parsed as text).
 */
export const MAX_FAI_BYTES = 256 * 1024 * 1024;

/** The error for `label` (what, e.g. 'an index', `bytes` long) past `max`. */
export function tooLarge(label: string, what: string, bytes: number, max: number, why: string): SlicefsError {
  return new SlicefsError('BAD_RESPONSE', `${label}: ${what} of ${formatBytes(bytes)} is more than slicefs reads whole (${formatBytes(max)}); ${why}`);
}
