/**
 * The per-commit slice of the `view` conformance suite (test/conformance/; the whole of it is
 * `npm run conformance`): files of the public corpora (hts-specs, Debian's htslib-test) chosen for
 * what each exercises, each in a few of the suite's encodings, compared with samtools 1.16 byte
 * for byte over the header, `*`, every contig, its edges and seeded random regions. Nothing may be
 * skipped here (each combination below is one samtools accepts), and nothing may differ but the
 * differences of known classes other branches fix (test/conformance/known.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { knownClass } from '../conformance/known.js';
import { loadCorpus } from '../conformance/corpus.js';
import { runSuite } from '../conformance/suite.js';
import { report } from '../conformance/summary.js';
import { variantNamed } from '../conformance/variants.js';

/** Corpus file → the variants it is viewed in, each pair for a reason. */
const SLICE: Record<string, readonly string[]> = {
  // CRAM 3.0 decoder tests, as written (their own containers, codecs and indexes).
  'hts-specs/cram/3.0/passed/0302_unmapped.cram': ['original', 'cram3.0-small_slices'],
  'hts-specs/cram/3.0/passed/0503_mapped.cram': ['original', 'cram2.1'],
  'hts-specs/cram/3.0/passed/0600_mapped.cram': ['original'], // embedded reference
  'hts-specs/cram/3.0/passed/0703_tag.cram': ['original', 'cram3.1-fqz_tok_arith'],
  'hts-specs/cram/3.0/passed/0801_ctr.cram': ['original', 'cram3.0-multi_ref'], // multi-reference containers
  'hts-specs/cram/3.0/passed/1003_qual.cram': ['original', 'cram3.0-no_ref'],
  'hts-specs/cram/3.0/passed/1200_overflow.cram': ['original', 'cram3.0-embed_ref1'], // reads past the reference's end
  'hts-specs/cram/3.0/passed/1403_index_multiref.cram': ['original', 'bam-csi'],
  // CRAM 3.1 with every 3.1 codec: 20000 reads.
  'hts-specs/cram/3.1/passed/level-4.cram': ['original'],
  // SAM parser tests, as BAM and re-encoded.
  'hts-specs/sam/passed/pnext.pass.sam': ['bam-bai', 'cram3.0'],
  'hts-specs/sam/passed/aux.pass-B.sam': ['bam-bai', 'cram3.0-lzma_bzip2'],
  'hts-specs/sam/passed/cigar.pass1.sam': ['bam-csi', 'cram3.1'],
  'hts-specs/sam/passed/rnext.pass.sam': ['bam-bai', 'cram3.0-embed_ref2'],
  // htslib's own tests: aux values (floats, arrays), padded and clipped reads, MD, unmapped mates.
  'htslib-test/auxf#values.sam': ['bam-bai', 'cram3.1-archive'],
  'htslib-test/c1#pad2.sam': ['bam-bai', 'cram3.0'],
  'htslib-test/ce#5b.sam': ['bam-csi', 'cram3.0-store_md_nm'],
  'htslib-test/ce#unmap2.sam': ['bam-bai', 'cram3.0-small_slices'],
  'htslib-test/xx#MD.sam': ['cram3.0', 'cram3.0-no_ref'],
  'htslib-test/colons.bam': ['original'], // contig names with colons
  'htslib-test/no_hdr_sq_1.bam': ['original'], // a header text without @SQ lines
  'htslib-test/range.cram': ['original'],
};

/** Random regions per file variant: the edges are compared too; the full run does more. */
const RANDOM = 10;
/** The seed of the random regions (each file mixes its id in: test/conformance/suite.ts). */
const SEED = 17;

test('view equals samtools view on a slice of the public conformance corpora (BAM, CRAM 2.1/3.0/3.1)', { timeout: 15 * 60_000 }, async () => {
  const corpus = await loadCorpus();
  const missing = Object.keys(SLICE).filter((id) => !corpus.files.some((f) => f.id === id));
  assert.deepEqual(missing, [], 'every file of the slice is in the corpus');
  const results = await runSuite({
    files: (f) => f.id in SLICE,
    variants: (f) => SLICE[f.id].map(variantNamed),
    randomCount: RANDOM,
    seed: SEED,
    jobs: 1,
  });
  assert.equal(results.length, Object.values(SLICE).flat().length, 'every file variant ran');
  const skipped = results.filter((r) => r.skipped !== undefined).map((r) => `${r.file} ${r.variant}: ${r.skipped}`);
  assert.deepEqual(skipped, [], 'samtools makes and reads every variant of the slice');
  for (const r of results) assert.ok(r.outcome!.compared > 1, `${r.file} ${r.variant}: compared the whole file and regions`);
  const unexpected = results.flatMap((r) => r.outcome!.differences.filter((d) => !knownClass(r.file, r.variant, d)).map((d) => `${r.file} ${r.variant} ${d.region}`));
  assert.deepEqual(unexpected, [], report(results));
});
