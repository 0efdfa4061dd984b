#!/bin/sh
# Regenerates every file in this directory (see README.md): CRAMs written by htsjdk 3.0.4 (Picard
# 2.27.5 and WriteCram.java), their .crai written by htsjdk's CRAMCRAIIndexer, and the gzipped
# references. Needs java 17, Debian's libhtsjdk-java 3.0.4 and picard-tools 2.27.5, samtools and
# python3. Tests never run this (CI has no Java): they read the committed files.
#
#   ./make.sh SAMPLE_DIR HTS_SPECS_GIT_DIR
#     SAMPLE_DIR: test/.generated/sample-v2 (made by test/helpers/sample-data.ts's ensureSampleData)
#     HTS_SPECS_GIT_DIR: a clone (or bare git dir) of samtools/hts-specs at commit
#       c101c797106d8a1006b9b06f75e8bcc6062cf81e
set -eu
SAMPLE=$(cd "$1" && pwd)
SPECS=$(cd "$2" && pwd)
SPECS_COMMIT=c101c797106d8a1006b9b06f75e8bcc6062cf81e
HTSJDK=/usr/share/java/htsjdk.jar
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$here"
javac -d "$tmp" -cp "$HTSJDK" WriteCram.java
writecram() { java -cp "$HTSJDK:$tmp" WriteCram "$@" 2>/dev/null; }
picard() { PicardCommandLine "$@" -VALIDATION_STRINGENCY SILENT 2>/dev/null; }
rm -rf hts-specs ./*.cram ./*.crai ./*.fa.gz
mkdir hts-specs

# 1. Part of the sample data of the other view tests (its BAM, written by samtools), converted by Picard.
cp "$SAMPLE/ref.fa" "$tmp/sample.fa"
samtools faidx "$tmp/sample.fa"
samtools view -M -b -o "$tmp/sample-part.bam" "$SAMPLE/sample.bam" chr1:1-150000 chr2:1-100000 chrM '{HLA-A*01:01:01:01}' '*'
picard SamFormatConverter -I "$tmp/sample-part.bam" -O sample.cram -R "$tmp/sample.fa"
writecram index sample.cram

# 2. Hand-made corners (make_edge.py): Picard's defaults (one multi-reference slice per container
#    of 10 000 reads), and slices of 40 reads, 3 per container, multi-reference below 10.
(cd "$tmp" && python3 "$here/make_edge.py")
samtools faidx "$tmp/edge.fa"
picard SortSam -I "$tmp/edge.sam" -O edge.cram -R "$tmp/edge.fa" -SO coordinate
writecram index edge.cram
writecram "$tmp/edge.sam" "$tmp/edge.fa" edge-slices.cram 40 3 10
picard SortSam -I "$tmp/edge-nref.sam" -O edge-nref.cram -R "$tmp/edge.fa" -SO coordinate
writecram index edge-nref.cram

# 3. The hts-specs SAM conformance files (test/sam/passed), against ce.fa (test/cram/ce.fa) or,
#    for other contigs, a seeded reference (synth_ref.py).
git --git-dir="$SPECS/.git" rev-parse HEAD >/dev/null 2>&1 && GIT="git --git-dir=$SPECS/.git" || GIT="git --git-dir=$SPECS"
$GIT show "$SPECS_COMMIT:test/cram/ce.fa" > "$tmp/ce.fa"
samtools faidx "$tmp/ce.fa"
for path in $($GIT ls-tree --name-only "$SPECS_COMMIT" test/sam/passed/); do
  name=$(basename "$path" .sam)
  $GIT show "$SPECS_COMMIT:$path" > "$tmp/$name.sam"
  ref=ce.fa
  if grep '^@SQ' "$tmp/$name.sam" | grep -v -q -P '\tSN:CHROMOSOME_(I|II)\t'; then
    # A seeded reference is committed beside its CRAM: contigs of up to 2^31-1 bases (hdr.SQ9) are not.
    if grep '^@SQ' "$tmp/$name.sam" | grep -q -P '\tLN:[0-9]{8,}'; then
      echo "$name.sam: a contig of 10^7 bases or more, too large to commit: left out" >&2
      continue
    fi
    ref=$name.fa
    python3 "$here/synth_ref.py" "$tmp/$name.sam" "$tmp/$ref"
    samtools faidx "$tmp/$ref"
  fi
  if writecram "$tmp/$name.sam" "$tmp/$ref" "hts-specs/$name.cram" 10000 1 1000; then
    [ "$ref" = ce.fa ] || gzip -9 -n -c "$tmp/$ref" > "hts-specs/$ref.gz"
  else
    echo "htsjdk cannot write $name.sam: left out" >&2
    rm -f "hts-specs/$name.cram" "hts-specs/$name.cram.crai"
  fi
done

gzip -9 -n -c "$tmp/sample.fa" > sample.fa.gz
gzip -9 -n -c "$tmp/edge.fa" > edge.fa.gz
gzip -9 -n -c "$tmp/ce.fa" > hts-specs/ce.fa.gz
