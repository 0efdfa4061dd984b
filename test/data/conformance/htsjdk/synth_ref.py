"""Writes a FASTA with the @SQ lines of a SAM file: seeded random bases (seeded by the output
name), for the hts-specs SAMs whose contigs are not in ce.fa. Usage: synth_ref.py IN.sam OUT.fa"""
import os
import random
import sys

sam, out = sys.argv[1], sys.argv[2]
rnd = random.Random(os.path.basename(out))
with open(sam) as f, open(out, 'w') as o:
    for line in f:
        if not line.startswith('@SQ'):
            continue
        fields = dict(x.split(':', 1) for x in line.rstrip('\n').split('\t')[1:])
        n = int(fields['LN'])
        s = ''.join(rnd.choice('ACGT') for _ in range(n))
        o.write('>' + fields['SN'] + '\n' + ''.join(s[i:i + 60] + '\n' for i in range(0, n, 60)))
