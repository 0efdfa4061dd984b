#!/bin/bash
# BAM -> SAM per record: samtools and two slicefs builds, interleaved, on a local BAM.
#   test/bench/bam-sam-ab.sh RUNS REGION BEFORE_BIN AFTER_BIN [BAM]
# Prints one line per run: who, wall s, user s, sys s, and for slicefs the CPU s of its main
# thread, libuv's pool and V8's helper threads (test/bench/thread-cpu-preload.cjs).
set -euo pipefail
runs=$1 region=$2 before=$3 after=$4
bam=${5:-.bench/data/sample-bench/sample.bam}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for _ in $(seq "$runs"); do
  /usr/bin/time -o "$tmp/t" -f "samtools %e %U %S" samtools view "$bam" "$region" > /dev/null
  cat "$tmp/t"
  for who in before after; do
    bin=${!who}
    rm -f "$tmp/c"
    THREAD_CPU_OUT=$tmp/c /usr/bin/time -o "$tmp/t" -f "$who %e %U %S" \
      node -r "$here/thread-cpu-preload.cjs" "$bin" view --input-file "$bam" -q "$region" --no-header > /dev/null
    echo "$(cat "$tmp/t") $(cat "$tmp/c")"
  done
done
