#!/usr/bin/env bash
# The README's quick start on a fresh machine: a container of the Node 20 bookworm base image
# (minimal Debian + node/npm, nothing else), a clean copy of the repository, and the README's two
# commands, `npm run demo` then `npm test`, as root. A tool the demo or a test uses that
# scripts/setup.sh does not install fails here rather than on a user's machine. CI runs it (.ci/run).
#
#   bash scripts/fresh-machine.sh
#
# Needs docker with the base image (here: ../shared/tools/docker-dev-env.sh), and a daemon that
# allows --cap-add SYS_ADMIN --device /dev/fuse: the FUSE tests mount for real, and a few tests mount
# a tmpfs to fill a disk. --init gives the container what a machine has, a PID 1 that reaps
# orphans: the tests wait for `mount --daemon`'s detached process to be gone, and without a reaper it
# would stay a zombie. The copy is `git archive` of HEAD plus the uncommitted changes to tracked
# files (`git stash create`): no node_modules, dist/ or generated data of this machine goes in.
# Environment: BASE_IMAGE (default node:20-bookworm-slim); FRESH_NETWORK (default bridge: the
# container has its own loopback, as a machine of its own would, so its test servers and the nginx
# that Debian's package starts on port 80 meet nothing of the host's; `host` where bridged
# containers cannot reach the package mirrors); FRESH_TIMEOUT (default 45m: the suite takes ~8 min).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE_IMAGE:-node:20-bookworm-slim}
NETWORK=${FRESH_NETWORK:-bridge}
TIMEOUT=${FRESH_TIMEOUT:-45m}
NAME=slicefs-fresh-$$

command -v docker >/dev/null || { echo "fresh-machine: docker is not installed" >&2; exit 1; }
docker image inspect "$BASE" >/dev/null 2>&1 || { echo "fresh-machine: no image $BASE (../shared/tools/docker-dev-env.sh builds one)" >&2; exit 1; }
[[ -e /dev/fuse ]] || { echo "fresh-machine: /dev/fuse is missing on this host" >&2; exit 1; }

# A commit object of the working tree's tracked files, or HEAD when nothing is changed.
rev=$(git stash create)
rev=${rev:-HEAD}

cleanup() {
  local rc=$?
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  if ((rc == 124)); then echo "fresh-machine: FAILED: npm run demo + npm test did not finish within $TIMEOUT" >&2
  elif ((rc != 0)); then echo "fresh-machine: FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# This machine's CA bundle, for npm only: where a TLS-inspecting proxy stands between this machine
# and the npm registry (as on the CI machines), npm needs its root CA, and elsewhere the bundle
# holds only public CAs that npm trusts anyway. It is mounted outside /etc/ssl, so the container
# still has no system CA bundle until scripts/setup.sh installs ca-certificates.
# The Crypt4GH interoperability vectors that the tests read from ../shared/reference beside the
# repository (test/helpers/c4gh-vectors.ts), as CI has them: the copy is /slicefs, so /shared.
shared=()
if [[ -d ../shared/reference ]]; then
  shared=(-v "$(cd ../shared/reference && pwd -P):/shared/reference:ro")
fi

ca=()
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  ca=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca/npm-ca.crt:ro -e npm_config_cafile=/run/host-ca/npm-ca.crt)
fi

# stdin carries the repository (a tar stream); the commands then read /dev/null, as in CI.
inside='set -euo pipefail
mkdir /slicefs && tar -x -C /slicefs && exec </dev/null && cd /slicefs
t0=$SECONDS
echo "==> npm run demo"
npm run demo
t1=$SECONDS
echo "==> npm test"
npm test
t2=$SECONDS
echo "fresh-machine: npm run demo took $((t1 - t0)) s (with setup: apt and npm ci), npm test $((t2 - t1)) s"'

echo "fresh-machine: $(git rev-parse --short HEAD)$([[ $rev == HEAD ]] || echo ' + uncommitted changes') in a fresh $BASE container"
git archive --format=tar "$rev" |
  docker run -i --name "$NAME" --network "$NETWORK" --init \
    --cap-add SYS_ADMIN --device /dev/fuse --security-opt apparmor:unconfined \
    "${shared[@]}" "${ca[@]}" "$BASE" timeout -k 30s "$TIMEOUT" bash -c "$inside"
