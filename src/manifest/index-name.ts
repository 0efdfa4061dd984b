/**
 * Where an entry's index goes beside its data file: the names samtools/htslib look for
 * (`x.bam.bai`, `x.bam.csi`, `x.cram.crai`, `x.vcf.gz.tbi`), whatever the index URL is called.
 * Shared by the mount's tree and the download's output layout.
 */
import { scoreObjectIdOf } from './score-ref.js';

const INDEX_SUFFIXES = ['.bai', '.csi', '.crai', '.tbi', '.fai', '.gzi'];

/** The index htslib looks for first, by the data file's kind (for indexes known only by an id). */
const INDEX_OF_DATA: [string, string][] = [
  ['.bam', '.bai'],
  ['.cram', '.crai'],
  ['.vcf.gz', '.tbi'],
  ['.bcf', '.csi'],
  ['.bed.gz', '.tbi'],
  ['.gff.gz', '.tbi'],
  ['.fa.gz', '.fai'],
  ['.fasta.gz', '.fai'],
];

/** What names an index known only by an id: its own file name, and its data file's portal name. */
export interface IndexNameHints {
  indexFileName?: string;
  /** The data file's name in the portal (`x.cram`), when `dataName` is an object id. */
  dataFileName?: string;
}

/**
 * Name of the index of `dataName` given the index URL: `x.bam` + `…/x.bai` → `x.bam.bai`. A Score
 * index (`score:` URL) is named from its portal file name when the manifest gives it, else from
 * the kind of the data file (`x.cram` → `x.cram.crai`).
 */
export function indexNameFor(dataName: string, indexUrl: string, hints: IndexNameHints = {}): string {
  // An index known by an id (a Score object, a GHGA accession) is named from its file name.
  const score = scoreObjectIdOf(indexUrl) !== undefined || indexUrl.startsWith('ghga:');
  // An encrypted index (`x.bam.bai.c4gh`) is shown decrypted, under the plain index's name.
  const path = (score ? (hints.indexFileName ?? '') : new URL(indexUrl).pathname).toLowerCase().replace(/\.c4gh$/, '');
  const suffix = INDEX_SUFFIXES.find((s) => path.endsWith(s));
  if (suffix) return dataName + suffix;
  if (score) {
    const lower = (hints.dataFileName ?? dataName).toLowerCase();
    const byData = INDEX_OF_DATA.find(([data]) => lower.endsWith(data));
    return dataName + (byData ? byData[1] : '.idx');
  }
  // Unknown kind of index: keep its own extension.
  const last = path.split('/').at(-1) ?? '';
  const dot = last.lastIndexOf('.');
  return dataName + (dot >= 0 ? last.slice(dot) : '.idx');
}
