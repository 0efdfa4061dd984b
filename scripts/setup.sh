#!/usr/bin/env bash
# Idempotent setup for a fresh Debian machine with Node 20: installs what slicefs, its demo and its
# tests need and is missing, then `npm ci` when node_modules is absent or older than package-lock.json.
# Called by .ci/run, `npm test`, `npm run check` and the demo; safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# Every program the demo, the tests and the benchmarks run, by Debian package. A fresh container of
# node:20-bookworm-slim checks this list in CI (scripts/fresh-machine.sh); what the tests run besides
# these (mount, umount, setpriv, md5sum, dd, find, grep, cmp…) is in Debian's Essential or required set.
#   libfuse2 + fuse: fuse-native's prebuilt binary links libfuse.so.2 and unmounts with fusermount.
#   samtools: the oracle of the tests and the demo. nginx-light: the real server of the cache-tier
#     tests and the benchmarks. ca-certificates: /etc/ssl/certs/ca-certificates.crt, which the cache
#     tier's nginx.conf loads as its upstream CA file. openssl: the cache-tier tests make a
#     self-signed certificate with it. gettext-base: envsubst, with which the tests render the cache
#     tier's nginx.conf as the nginx image of docker/cache-tier/compose.yaml does. tini: the Docker
#     image's init, whose signal forwarding the tests check without a container.
#   Benchmarks (npm run bench): curl and aria2 (aria2c -x8 -s8), the download's peers; time
#     (/usr/bin/time, GNU time) for CPU and memory; iproute2 (ss) for the connections of a download.
for p in libfuse2 fuse samtools nginx-light ca-certificates openssl gettext-base tini curl aria2 time iproute2; do
  have_pkg "$p" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
      echo "setup: need root (or sudo) to install: ${need[*]}" >&2; exit 1
    fi
  fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# Debian's nginx package starts a system nginx on port 80; our tests and benchmarks run their own
# on 127.0.0.1 port 0-style free ports, so the system one is left as it is.

stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
