#!/usr/bin/env bash
# `npm run demo`: installs what is missing, builds, and runs the demo (test/demo/run-demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent build
exec node dist/test/demo/run-demo.js
