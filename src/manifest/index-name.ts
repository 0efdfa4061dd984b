/**
 * Where an entry's index goes beside its data file: the names samtools/htslib look for
 * (`x.bam.bai`, `x.bam.csi`, `x.cram.crai`, `x.vcf.gz.tbi`), whatever the index URL is called.
 * Shared by the mount's tree and the download's output layout.
 */

const INDEX_SUFFIXES = ['.bai', '.csi', '.crai', '.tbi', '.fai', '.gzi'];

/** Name of the index of `dataName` given the index URL: `x.bam` + `…/x.bai` → `x.bam.bai`. */
export function indexNameFor(dataName: string, indexUrl: string): string {
  const path = new URL(indexUrl).pathname.toLowerCase();
  const suffix = INDEX_SUFFIXES.find((s) => path.endsWith(s));
  if (suffix) return dataName + suffix;
  // Unknown kind of index: keep its own extension.
  const last = path.split('/').at(-1) ?? '';
  const dot = last.lastIndexOf('.');
  return dataName + (dot >= 0 ? last.slice(dot) : '.idx');
}
