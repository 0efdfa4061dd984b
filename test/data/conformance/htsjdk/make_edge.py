"""Writes edge.fa and edge.sam (seeded, reproducible): the reads and reference corners that
htsjdk's CRAM writer encodes its own way. See README.md; run by make.sh."""
import random

rnd = random.Random(17)


def random_bases(n):
    return ''.join(rnd.choice('ACGT') for _ in range(n))


# --- the reference: soft-masked (lowercase) stretches, an N run, IUPAC codes ---------------------
contigs = [('chr1', 60000), ('chr2', 40000), ('chrM', 16569), ('chrUn', 2000), ('HLA-A*01:01:01:01', 3500)]
ref = {name: list(random_bases(length)) for name, length in contigs}
for i in range(10000, 12000):
    ref['chr1'][i] = ref['chr1'][i].lower()
for i in range(20000, 20500):
    ref['chr1'][i] = 'N'
for i in range(30000, 30100, 7):
    ref['chr1'][i] = rnd.choice('RYMKSWBDHVN')
for i in range(500, 600):
    ref['chr2'][i] = ref['chr2'][i].lower()
ref = {k: ''.join(v) for k, v in ref.items()}
with open('edge.fa', 'w') as f:
    for name, length in contigs:
        s = ref[name]
        f.write('>' + name + '\n' + ''.join(s[i:i + 60] + '\n' for i in range(0, length, 60)))
REF = {k: v.upper() for k, v in ref.items()}

# --- the reads ---------------------------------------------------------------------------------
out = ['@HD\tVN:1.6\tSO:unsorted']
out += [f'@SQ\tSN:{name}\tLN:{length}' for name, length in contigs]
out += ['@RG\tID:rgA\tSM:s1\tPL:ILLUMINA', '@RG\tID:rgB\tSM:s1\tPL:ILLUMINA', '@PG\tID:hand\tPN:make_edge.py', '@CO\thand-made corners for htsjdk CRAM']


def qual(n):
    return ''.join(chr(33 + rnd.randint(2, 40)) for _ in range(n))


def at(c, pos, n):
    return REF[c][pos - 1:pos - 1 + n]


def rec(*fields):
    out.append('\t'.join(str(x) for x in fields))


def mut(s, i, b=None):
    s = list(s)
    s[i] = b or ('A' if s[i] != 'A' else 'C')
    return ''.join(s)


# A proper pair: a mismatch and an insertion; a deletion.
rec('pairA', 99, 'chr1', 1001, 60, '20M2I28M', '=', 1201, 250, mut(at('chr1', 1001, 20), 7) + 'TT' + at('chr1', 1021, 28), qual(50), 'RG:Z:rgA', 'XS:i:-5')
rec('pairA', 147, 'chr1', 1201, 60, '25M3D25M', '=', 1001, -250, at('chr1', 1201, 25) + at('chr1', 1229, 25), qual(50), 'RG:Z:rgA')
# Secondary and supplementary alignments without SEQ/QUAL, as aligners write them: htsjdk stores
# them with RL 0 and read features for the whole alignment (class 3 of issue 17).
rec('pairA', 355, 'chr1', 5001, 0, '20H30M', '=', 1201, 0, '*', '*', 'RG:Z:rgA', 'NM:i:0')
rec('pairA', 403, 'chr2', 7001, 0, '50M', 'chr1', 1001, 0, '*', '*', 'RG:Z:rgA')
for i, cigar in enumerate(['10S40M', '40M10S', '5S40M10S', '10M2D10M5I20M', '10M200N10M', '10M2P10M', '5H10M5H', '3S10M1I10M2S', '25M25S', '10M3I']):
    rec(f'noseq2nd{i}', 256, 'chr1', 5003 + i, 3, cigar, '*', 0, 0, '*', '*', 'RG:Z:rgB')
rec('noseqsupp', 2048, 'chr1', 6101, 60, '30H20M', '*', 0, 0, '*', '*')
rec('noseqsupp', 0, 'chr1', 6500, 60, '30M20S', '*', 0, 0, at('chr1', 6500, 30) + at('chr1', 6101, 20), qual(50))
rec('noseqsupp2', 2064, 'chr1', 6201, 60, '15M35S', '*', 0, 0, '*', '*')
# Primary reads without SEQ, without QUAL, with SEQ but no QUAL.
rec('noseq', 16, 'chr1', 7101, 60, '50M', '*', 0, 0, '*', '*')
rec('noseqclip', 0, 'chr1', 7151, 60, '10M5I10M7S', '*', 0, 0, '*', '*')
rec('noqual', 0, 'chr1', 7001, 60, '50M', '*', 0, 0, mut(at('chr1', 7001, 50), 10), '*')
rec('noqual2nd', 256, 'chr1', 5010, 3, '50M', '*', 0, 0, at('chr1', 5010, 50), '*', 'RG:Z:rgB')
# A supplementary with hard clips, and its primary on another contig.
rec('chim', 0, 'chr1', 6001, 60, '25M25S', '*', 0, 0, at('chr1', 6001, 25) + at('chr2', 9001, 25), qual(50), 'SA:Z:chr2,9001,+,25H25M,60,0;', 'RG:Z:rgB')
rec('chim', 2048, 'chr2', 9001, 60, '25H25M', '*', 0, 0, at('chr2', 9001, 25), qual(25), 'SA:Z:chr1,6001,+,25M25S,60,0;', 'RG:Z:rgB')
# Unmapped reads: placed at their mapped mate; a wholly unmapped pair; without QUAL; without SEQ; placed alone.
rec('placed', 73, 'chr1', 8001, 60, '50M', '=', 8001, 0, at('chr1', 8001, 50), qual(50))
rec('placed', 133, 'chr1', 8001, 0, '*', '=', 8001, 0, 'ACGTN' * 10, qual(50))
rec('unmp', 77, '*', 0, 0, '*', '*', 0, 0, 'ACGTACGTAC' * 5, qual(50))
rec('unmp', 141, '*', 0, 0, '*', '*', 0, 0, 'TTTTGGGGCC' * 5, qual(50))
rec('unmnoqual', 4, '*', 0, 0, '*', '*', 0, 0, 'ACGTAC', '*')
rec('unmnoseq', 4, '*', 0, 0, '*', '*', 0, 0, '*', '*')
rec('unmplaced', 4, 'chr2', 100, 0, '*', '*', 0, 0, 'GGGGAAAACC', qual(10))
# CIGAR corners: splice, padding, clips at both ends, a leading insertion, =/X.
rec('splice', 0, 'chr1', 9001, 60, '20M1000N30M', '*', 0, 0, at('chr1', 9001, 20) + at('chr1', 10021, 30), qual(50))
rec('pad', 0, 'chr1', 12501, 60, '20M2I1P2I26M', '*', 0, 0, at('chr1', 12501, 20) + 'ACGT' + at('chr1', 12521, 26), qual(50))
rec('pad2', 0, 'chr1', 12551, 60, '20M1P1D29M', '*', 0, 0, at('chr1', 12551, 20) + at('chr1', 12572, 29), qual(49))
rec('clips', 0, 'chr1', 13001, 60, '5S40M5S', '*', 0, 0, 'GGGGG' + at('chr1', 13001, 40) + 'CCCCC', qual(50))
rec('hclips', 16, 'chr1', 13051, 60, '3H5S40M2S7H', '*', 0, 0, 'GGGGG' + at('chr1', 13051, 40) + 'CC', qual(47))
rec('leadins', 0, 'chr1', 14101, 60, '3I47M', '*', 0, 0, 'TTT' + at('chr1', 14101, 47), qual(50))
rec('eqx', 0, 'chr1', 14001, 60, '20=1X29=', '*', 0, 0, mut(at('chr1', 14001, 50), 20), qual(50))
rec('allins', 0, 'chr1', 14201, 60, '30I', '*', 0, 0, 'ACGT' * 7 + 'AC', qual(30))
# Read bases: IUPAC codes, N, lowercase.
iu = at('chr1', 13501, 50)
for i, b in ((3, 'R'), (15, 'N'), (30, 'Y'), (44, 'N')):
    iu = mut(iu, i, b)
rec('iupac', 0, 'chr1', 13501, 60, '50M', '*', 0, 0, iu, qual(50))
rec('lower', 0, 'chr1', 13601, 60, '50M', '*', 0, 0, mut(at('chr1', 13601, 50), 25).lower(), qual(50))
# Reads over the soft-masked reference, its N run, its IUPAC codes.
rec('masked', 0, 'chr1', 10981, 60, '50M', '*', 0, 0, mut(at('chr1', 10981, 50), 30), qual(50))
rec('overN', 0, 'chr1', 19981, 60, '50M', '*', 0, 0, mut(at('chr1', 19981, 50), 5).replace('N', 'A'), qual(50))
rec('inN', 16, 'chr1', 20101, 60, '50M', '*', 0, 0, 'ACGT' * 12 + 'AC', qual(50))
rec('refiupac', 0, 'chr1', 29981, 60, '100M', '*', 0, 0, ''.join(b if b in 'ACGT' else 'G' for b in at('chr1', 29981, 100)), qual(100))
rec('refiupac2', 0, 'chr1', 30001, 60, '60M', '*', 0, 0, at('chr1', 30001, 60).replace('N', 'A'), qual(60))
# Mates across contigs (detached), far apart on one contig, and mate fields that disagree with the mate.
rec('xpair', 97, 'chr1', 15001, 60, '50M', 'chr2', 15001, 0, at('chr1', 15001, 50), qual(50), 'MC:Z:50M')
rec('xpair', 145, 'chr2', 15001, 60, '50M', 'chr1', 15001, 0, at('chr2', 15001, 50), qual(50), 'MC:Z:50M')
rec('far', 65, 'chr1', 16001, 60, '50M', '=', 50001, 0, at('chr1', 16001, 50), qual(50))
rec('far', 129, 'chr1', 50001, 60, '50M', '=', 16001, 0, at('chr1', 50001, 50), qual(50))
rec('oddtlen', 99, 'chr1', 17001, 60, '50M', '=', 17101, 123, at('chr1', 17001, 50), qual(50))
rec('oddtlen', 147, 'chr1', 17101, 60, '50M', '=', 17001, -123, at('chr1', 17101, 50), qual(50))
# Tags of every type; duplicate and QC-fail flags; MAPQ 255; stored MD/NM, right and wrong.
rec('tags', 1024 + 512, 'chr2', 20001, 255, '50M', '*', 0, 0, at('chr2', 20001, 50), qual(50),
    'XA:A:q', 'XI:i:-70000', 'XU:i:4000000000', 'XF:f:3.5', 'XZ:Z:hello world', 'XH:H:1AE3', 'XB:B:c,-1,2,-3', 'XS:B:S,1,65535', 'XL:B:f,1.5,-2', 'MD:Z:50', 'NM:i:0')
rec('wrongmd', 0, 'chr2', 20101, 60, '50M', '*', 0, 0, at('chr2', 20101, 50), qual(50), 'MD:Z:10A39', 'NM:i:7')
# At contig edges: the first base, past the end of chrM, on the colon contig and at its end.
rec('chrMbeg', 0, 'chrM', 1, 60, '50M', '*', 0, 0, at('chrM', 1, 50), qual(50))
rec('chrMend', 0, 'chrM', 16540, 60, '50M', '*', 0, 0, at('chrM', 16540, 30) + 'ACGTACGTACGTACGTACGT', qual(50))
rec('hla', 0, 'HLA-A*01:01:01:01', 100, 60, '50M', '*', 0, 0, at('HLA-A*01:01:01:01', 100, 50), qual(50))
rec('hlaend', 16, 'HLA-A*01:01:01:01', 3451, 60, '50M', '*', 0, 0, at('HLA-A*01:01:01:01', 3451, 50), qual(50))
# Bulk: reads with a few mismatches (and secondaries without SEQ among them), so slices fill.
for i in range(1500):
    c = rnd.choice(['chr1', 'chr1', 'chr2', 'chrM'])
    p = rnd.randint(1, len(REF[c]) - 200)
    s = at(c, p, 100)
    for _ in range(rnd.randint(0, 3)):
        s = mut(s, rnd.randint(0, 99), rnd.choice('ACGTN'))
    flag = rnd.choice([0, 16, 0, 16, 256, 2048])
    # htsjdk stores no X feature where a read without bases lies over a reference N, which htslib
    # refuses (a feature past RL): that case has its own file, edge-nref.sam, below.
    if flag in (256, 2048) and rnd.random() < 0.6 and not (c == 'chr1' and 19700 < p < 20600):
        rec(f'bulk{i}', flag, c, p, 0, rnd.choice(['100M', '30S70M', '70M30S', '40M2D60M', '50M5I45M']), '*', 0, 0, '*', '*')
    else:
        rec(f'bulk{i}', flag, c, p, rnd.randint(0, 60), '100M', '*', 0, 0, s, qual(100), 'RG:Z:' + rnd.choice(['rgA', 'rgB']))
with open('edge.sam', 'w') as f:
    f.write('\n'.join(out) + '\n')

# A secondary alignment without SEQ over the reference's N run: htsjdk writes RL 0 and X features
# only where the reference is not N, so the features skip read positions; htslib refuses the slice.
header = [l for l in out if l.startswith('@')]
nref = [
    '\t'.join(str(x) for x in ('nrefmate', 0, 'chr1', 19951, 60, '50M', '*', 0, 0, at('chr1', 19951, 50), qual(50))),
    # Ends in the N run: no feature after the last X, so htslib's CIGAR stops there (40M).
    '\t'.join(str(x) for x in ('nreftail', 256, 'chr1', 19961, 0, '60M', '*', 0, 0, '*', '*')),
    # Starts in it: the first feature is at read position 51 of a read of 0 bases.
    '\t'.join(str(x) for x in ('nref', 256, 'chr1', 20451, 0, '100M', '*', 0, 0, '*', '*')),
    '\t'.join(str(x) for x in ('after', 0, 'chr1', 30501, 60, '50M', '*', 0, 0, at('chr1', 30501, 50), qual(50))),
]
with open('edge-nref.sam', 'w') as f:
    f.write('\n'.join(header + nref) + '\n')
