#!/usr/bin/env bash
# `npm test`: setup, build, then every test under dist/test (unit, integration, FUSE) with node:test.
# FUSE tests need /dev/fuse and root (or fusermount rights): when FUSE is missing they FAIL, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent build
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
# The disk cache of the commands the tests run is a fresh directory, not the user's.
XDG_CACHE_HOME="$(mktemp -d)"
export XDG_CACHE_HOME
trap 'rm -rf "$XDG_CACHE_HOME"' EXIT
# One file at a time: the FUSE tests mount real filesystems and measure request counts.
node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
