/**
 * Differences the public conformance corpora found (test/conformance/, `npm run conformance`),
 * each pinned on the corpus file, encoding and regions where it showed, `slicefs view` against
 * `samtools view` (1.16), one region at a time.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanup, tempDir } from '../helpers/daemon.js';
import { FixtureServer } from '../helpers/fixture-server.js';
import { compareRegions } from '../conformance/compare.js';
import { prepareOne } from '../conformance/suite.js';
import { variantNamed } from '../conformance/variants.js';

let server: FixtureServer;
let work: string;

before(async () => {
  server = await FixtureServer.start();
  work = await tempDir('slicefs-conformance-cases-');
});
after(async () => {
  await server?.close();
  await cleanup(work);
});

async function differences(fileId: string, variant: string, regions: string[]): Promise<string[]> {
  const { prepared, served, reference } = await prepareOne(server, work, fileId, variantNamed(variant));
  const diffs = await compareRegions(prepared, served, reference, regions);
  return diffs.map((d) => `${fileId} ${variant} ${d.region}: samtools '${d.samtools.slice(0, 60)}' / slicefs '${d.slicefs.slice(0, 60)}'`);
}

test('CRAM: a slice whose span (the CRAI\'s) ends before the region is not read, as htslib skips it', async () => {
  // A 60M read at 4951 on a 5000-base contig: the slice's span stops at 5000, so samtools finds
  // nothing at 5001-5100; a read of 50 inserted bases at the contig's last base is outside the
  // span 1..1009799 htslib gives its slice. The regions inside the spans still find them.
  assert.deepEqual(
    [
      ...(await differences('hts-specs/cram/3.0/passed/1200_overflow.cram', 'original', ['CHROMOSOME_II:5001-5100', 'CHROMOSOME_II:5000-5000', 'CHROMOSOME_II:4990-5100'])),
      ...(await differences('hts-specs/sam/passed/cigar.pass4.sam', 'cram3.0', ['CHROMOSOME_I:1009800-1009800', 'CHROMOSOME_I:1009799-1009800'])),
      ...(await differences('htslib-test/c1#bounds.sam', 'cram3.0', ['c1:11-110', 'c1:10-10'])),
    ],
    [],
  );
});

test('CRAM: a read at the last position a contig can have (2^31-1) is printed, not a decode error', async () => {
  // Its BAI bin does not fit the record's 16-bit field (htslib's wraps; SAM does not print it).
  assert.deepEqual(await differences('hts-specs/sam/passed/pos.pass.sam', 'cram3.0-no_ref', ['.', 'long', 'long:2147483647-2147483647', '*']), []);
});

test('CRAM: with a reference in use, bases after the last read feature that run past LN do not extend the read (htslib\'s aend), for regions and TLEN', async () => {
  // A reference longer than @SQ LN (the consensus embed_ref=2 builds from reads past it) lets the
  // encoder store those bases as an implicit match, which htslib's decoder does not count into
  // the read's end: samtools finds such a read only up to its last feature (or its start), and
  // computes its mates' TLEN from that end (31, not 40, for the pair at yy:111 and yy:141).
  assert.deepEqual(
    [
      ...(await differences('hts-specs/sam/passed/pos.warn2.sam', 'cram3.0', ['range:1064-1065', 'range:1001-1001', 'range:1002-1002', 'range'])),
      ...(await differences('hts-specs/sam/passed/pnext.warn-pair-2nd.sam', 'cram3.0', ['yy', 'xx'])),
      ...(await differences('htslib-test/c1#bounds.sam', 'cram3.0-embed_ref2', ['c1:3-4', 'c1:5-10', 'c1:2-2'])),
      ...(await differences('htslib-test/realn01.sam', 'cram3.0-embed_ref2', ['000000F:682-686', '000000F:660-660', '000000F:661-661'])),
    ],
    [],
  );
});

test('CRAM not sorted by position: a region stops at the first record past its end, as htslib reads it', async () => {
  // 0709_tag.cram holds r1 at 1000, r1 at 1200, r2 at 1000, r2 at 1200 (CHROMOSOME_I): samtools
  // stops reading 953-1103 at the record at 1200, so r2 at 1000 is not printed.
  assert.deepEqual(
    [
      ...(await differences('hts-specs/cram/3.0/passed/0709_tag.cram', 'original', ['CHROMOSOME_I:953-1103', 'CHROMOSOME_I:1000-1000', 'CHROMOSOME_I', 'CHROMOSOME_I:1150-1250'])),
      ...(await differences('hts-specs/cram/3.0/passed/0901_comp_gz.cram', 'original', ['CHROMOSOME_I:1007-1017'])),
    ],
    [],
  );
});
