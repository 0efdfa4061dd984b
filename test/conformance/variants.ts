/**
 * The encodings each corpus file is viewed in: the file as shipped (BAM or CRAM, when samtools can
 * index it), its coordinate-sorted BAM indexed with a BAI and with a CSI, and CRAMs samtools writes
 * from that BAM with the output options users meet (htslib's `--output-fmt-option`s): each CRAM
 * version, no reference / embedded reference / consensus reference, small and multi-reference
 * slices, the optional general-purpose codecs, CRAM 3.1's own codecs and archive profile, stored
 * MD/NM, generated read names. Options that depend on the file (a reference to embed or to encode
 * against) may be refused by samtools; such a variant is skipped for that file, and counted so.
 */

export interface Variant {
  name: string;
  /** `original`: the corpus file as it is; `bam`: the sorted BAM; `cram`: a CRAM written from it. */
  from: 'original' | 'bam' | 'cram';
  /** BAM index to build (`from: 'bam'`). */
  bamIndex?: 'bai' | 'csi';
  /** `--output-fmt-option`s of the CRAM. */
  cramOptions?: readonly string[];
  /**
   * Whether the CRAM is written with `-T` (the file's reference, when it has one): not for
   * `no_ref` (nothing to compare against) nor `embed_ref=2` (htslib builds the consensus itself).
   */
  encodeWithReference?: boolean;
}

/** Reads per slice of the "small slices" variants: several slices and containers in tiny files. */
const SMALL_SLICE = 5;

export const VARIANTS: readonly Variant[] = [
  { name: 'original', from: 'original' },
  { name: 'bam-bai', from: 'bam', bamIndex: 'bai' },
  { name: 'bam-csi', from: 'bam', bamIndex: 'csi' },
  { name: 'cram2.1', from: 'cram', cramOptions: ['version=2.1'], encodeWithReference: true },
  { name: 'cram3.0', from: 'cram', cramOptions: ['version=3.0'], encodeWithReference: true },
  { name: 'cram3.1', from: 'cram', cramOptions: ['version=3.1'], encodeWithReference: true },
  { name: 'cram3.0-no_ref', from: 'cram', cramOptions: ['version=3.0', 'no_ref=1'], encodeWithReference: false },
  { name: 'cram3.0-embed_ref1', from: 'cram', cramOptions: ['version=3.0', 'embed_ref=1'], encodeWithReference: true },
  { name: 'cram3.0-embed_ref2', from: 'cram', cramOptions: ['version=3.0', 'embed_ref=2'], encodeWithReference: false },
  {
    name: 'cram3.0-small_slices',
    from: 'cram',
    cramOptions: ['version=3.0', `seqs_per_slice=${SMALL_SLICE}`, 'slices_per_container=2'],
    encodeWithReference: true,
  },
  {
    name: 'cram3.0-multi_ref',
    from: 'cram',
    cramOptions: ['version=3.0', 'multi_seq_per_slice=1', `seqs_per_slice=${SMALL_SLICE * 4}`],
    encodeWithReference: true,
  },
  { name: 'cram3.0-lzma_bzip2', from: 'cram', cramOptions: ['version=3.0', 'use_lzma=1', 'use_bzip2=1'], encodeWithReference: true },
  { name: 'cram3.1-archive', from: 'cram', cramOptions: ['version=3.1', 'archive'], encodeWithReference: true },
  { name: 'cram3.1-fqz_tok_arith', from: 'cram', cramOptions: ['version=3.1', 'use_fqz=1', 'use_tok=1', 'use_arith=1'], encodeWithReference: true },
  { name: 'cram3.0-store_md_nm', from: 'cram', cramOptions: ['version=3.0', 'store_md=1', 'store_nm=1'], encodeWithReference: true },
  { name: 'cram3.0-lossy_names', from: 'cram', cramOptions: ['version=3.0', 'lossy_names=1'], encodeWithReference: true },
];

/** Whether a file of this kind has the variant: a SAM has no `original` to view. */
export function variantApplies(v: Variant, kind: 'sam' | 'bam' | 'cram'): boolean {
  return !(v.from === 'original' && kind === 'sam');
}

export function variantNamed(name: string): Variant {
  const v = VARIANTS.find((x) => x.name === name);
  if (!v) throw new Error(`no conformance variant '${name}' (have: ${VARIANTS.map((x) => x.name).join(', ')})`);
  return v;
}
