#!/usr/bin/env bash
# Smoke test of the Docker image: build it, serve the project's sample data on the host's loopback,
# mount a manifest of it inside a container, and check with samtools (in the container and on the
# host) that what comes through the mount and through `slicefs view` is what the local files hold;
# then the health check, a mount shared with the host and with a second container (bind
# propagation), and that `docker stop` unmounts cleanly (SIGTERM via tini, exit 0).
#
#   bash docker/smoke-test.sh
#
# Needs: docker (a daemon that allows --cap-add SYS_ADMIN --device /dev/fuse), root or the docker
# group, /dev/fuse on the host, samtools, node and the npm dev dependencies (npm ci): the host
# builds the project (npm run build) to serve the sample data with the test suite's own helpers.
# Environment: IMAGE (default slicefs:smoke); SKIP_BUILD=1 to test an image already built;
# SMOKE_SHARED=0 to skip the shared-mount step (it needs root on the host: it bind-mounts a scratch
# directory onto itself and makes it rshared when it is not on a shared mount already).
# Exits non-zero at the first failure; removes its containers, mounts, server and files on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
IMAGE=${IMAGE:-slicefs:smoke}
NAME=slicefs-smoke-$$
SHARED_NAME=$NAME-shared
RUN_FUSE=(--network host --device /dev/fuse --cap-add SYS_ADMIN --security-opt apparmor:unconfined)

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'ok: %s\n' "$*"; }
expect_eq() { # what got want
  if [[ $2 == "$3" ]]; then pass "$1: $2"; else fail "$1: got '$2', want '$3'"; fi
}

for tool in docker samtools node; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
[[ -x node_modules/.bin/tsc ]] || fail "node_modules/.bin/tsc is missing: run 'npm ci' first"
[[ -e /dev/fuse ]] || fail "/dev/fuse is missing on this host"

# Scratch inside the repository (git- and docker-ignored): the sample-data helper finds the
# repository root upwards from where it runs, and keeps its data in test/.generated/.
work=$(mktemp -d "$REPO/docker/.smoke-XXXXXX")
server_pid=""
bound=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  docker rm -f "$NAME" "$SHARED_NAME" >/dev/null 2>&1 || true
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ -d $work/shared ]]; then
    # A FUSE mount left on the host (the container died before unmounting), then our bind mount.
    while grep -q " $work/shared/data fuse" /proc/mounts; do fusermount -uz "$work/shared/data" 2>/dev/null || umount -l "$work/shared/data" || break; done
    if [[ -n $bound ]]; then umount "$work/shared" 2>/dev/null || umount -l "$work/shared" || true; fi
  fi
  rm -rf "$work"
  if ((rc == 0)); then printf '\nsmoke test PASSED\n'; else printf '\nsmoke test FAILED (exit %d)\n' "$rc" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls CMD... every 0.5 s for up to $1 seconds.
wait_for() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.5
  done
}
running() { [[ $(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }
fuse_mounted_in() { docker exec "$1" awk -v m="$2" '$2 == m && $3 ~ /^fuse/ { f = 1 } END { exit !f }' /proc/mounts; }
wait_mounted() { # container mount-point
  local end=$((SECONDS + 60))
  until fuse_mounted_in "$1" "$2" 2>/dev/null; do
    running "$1" || { docker logs "$1" >&2 || true; fail "container $1 exited before mounting"; }
    ((SECONDS < end)) || { docker logs "$1" >&2 || true; fail "$2 not mounted in $1 after 60 s"; }
    sleep 0.5
  done
}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  step "docker build --network host -t $IMAGE ."
  start=$SECONDS
  if ! docker build --network host -t "$IMAGE" . >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    fail "docker build failed"
  fi
  pass "built in $((SECONDS - start)) s"
fi
docker image inspect "$IMAGE" >/dev/null || fail "no image $IMAGE"

step "sample data and a test HTTP server on 127.0.0.1 (test/helpers, built by npm run build)"
# The project's own build (tsc of src/ and test/ into dist/), not a hand-picked list of helper files:
# whatever the helpers import after the next refactor is compiled with them.
if ! npm run --silent build >"$work/host-build.log" 2>&1; then
  tail -n 40 "$work/host-build.log" >&2
  fail "npm run build failed on the host"
fi
node docker/sample-server.mjs "$REPO/dist/test/helpers" "$work" &
server_pid=$!
wait_for 300 test -f "$work/sample.env" || fail "the sample server did not start"
# shellcheck source=/dev/null
. "$work/sample.env"
pass "serving $ORIGIN; region $REGION"
cat "$work/manifest.tsv"

# What the local files say: the oracle.
want_bam=$(samtools view -c "$BAM" "$REGION")
want_cram=$(samtools view -c -T "$REF" "$CRAM" "$REGION")
((want_bam > 0)) || fail "the region $REGION holds no record in $BAM: a useless test"

step "docker run -d $IMAGE mount --manifest /manifest.tsv /mnt/data"
# A short health interval so Docker's own health status is known within seconds (the image's
# command is kept; only its timing is overridden).
docker run -d --name "$NAME" "${RUN_FUSE[@]}" --health-interval 2s --health-start-period 60s \
  -v "$work/manifest.tsv:/manifest.tsv:ro" "$IMAGE" mount --manifest /manifest.tsv /mnt/data >/dev/null
wait_mounted "$NAME" /mnt/data
pass "mounted"
docker logs "$NAME" 2>&1 | sed 's/^/  | /'

step "ls -lR /mnt/data (in the container)"
docker exec "$NAME" ls -lR /mnt/data
for pair in "donor1/sample.bam:$BAM" "donor1/sample.bam.bai:$BAI" "donor1/sample.cram:$CRAM" \
  "donor1/sample.cram.crai:$CRAI" "ref/sample.fa:$REF" "ref/sample.fa.fai:$FAI"; do
  path=${pair%%:*} local=${pair#*:}
  expect_eq "size of $path" "$(docker exec "$NAME" stat -c %s "/mnt/data/$path")" "$(stat -c %s "$local")"
done

step "samtools view -c through the mount (samtools in the container)"
expect_eq "BAM $REGION" "$(docker exec "$NAME" samtools view -c /mnt/data/donor1/sample.bam "$REGION")" "$want_bam"
expect_eq "CRAM $REGION (-T the mounted reference)" \
  "$(docker exec "$NAME" samtools view -c -T /mnt/data/ref/sample.fa /mnt/data/donor1/sample.cram "$REGION")" "$want_cram"

step "slicefs view | samtools view -c - (both in the container)"
in_view() { # url region [view options...]
  docker exec "$NAME" bash -c 'set -euo pipefail; u=$1 r=$2; shift 2; slicefs view --url "$u" -q "$r" --output-format bam "$@" | samtools view -c -' _ "$@"
}
expect_eq "view BAM $REGION" "$(in_view "$BAM_URL" "$REGION")" "$want_bam"
expect_eq "view CRAM $REGION" "$(in_view "$CRAM_URL" "$REGION" --reference-url "$REF_URL")" "$want_cram"

step "docker run --rm $IMAGE view … | samtools view -c - (samtools on the host; no FUSE privileges)"
got=$(docker run --rm --network host "$IMAGE" view --url "$BAM_URL" -q "$REGION" --output-format bam | samtools view -c -)
expect_eq "view BAM $REGION on the host" "$got" "$want_bam"

step "health check"
if docker exec "$NAME" slicefs status --help >/dev/null 2>&1; then
  docker exec "$NAME" slicefs status || true
  docker exec "$NAME" slicefs status --health || fail "slicefs status --health exited $? with the mount up"
  pass "slicefs status --health exits 0 with the mount up"
  wait_for 30 bash -c "[[ \$(docker inspect -f '{{.State.Health.Status}}' $NAME) == healthy ]]" \
    || fail "Docker's health status is '$(docker inspect -f '{{.State.Health.Status}}' "$NAME")', not healthy"
  pass "Docker's health status: healthy"
else
  echo "skipped: this image has no 'slicefs status' command (the HEALTHCHECK will fail until it does)"
fi

step "docker stop (SIGTERM to tini, forwarded to slicefs)"
before=$(docker top "$NAME" -o pid,args | tail -n +2)
printf '%s\n' "$before" | sed 's/^/  | /'
start=$SECONDS
docker stop -t 30 "$NAME" >/dev/null
took=$((SECONDS - start))
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
logs=$(docker logs "$NAME" 2>&1)
printf '%s\n' "$logs" | tail -n 4 | sed 's/^/  | /'
expect_eq "exit code after docker stop" "$code" 0
grep -q 'SIGTERM: unmounting /mnt/data' <<<"$logs" || fail "slicefs did not log 'SIGTERM: unmounting /mnt/data'"
! grep -q 'unmount failed' <<<"$logs" || fail "slicefs logged an unmount failure"
((took < 30)) || fail "docker stop took $took s: slicefs did not stop on SIGTERM"
pass "unmounted on SIGTERM and exited 0 in ${took} s"
docker rm "$NAME" >/dev/null

if [[ ${SMOKE_SHARED:-1} != 0 ]]; then
  # The container mounts on a subdirectory of the shared bind mount: slicefs refuses a mount point
  # that is itself a mount point (the bind mount), as it would a stale mount.
  step "the mount shared with the host and a second container (-v DIR:/mnt/shared:rshared, mount on /mnt/shared/data)"
  mkdir "$work/shared"
  # Bind propagation needs the host directory on a shared mount; make a private one shared.
  if ! findmnt -n -o PROPAGATION --target "$work/shared" | grep -q shared; then
    ((EUID == 0)) || fail "$work/shared is not on a shared mount and making one needs root (SMOKE_SHARED=0 skips this step)"
    mount --bind "$work/shared" "$work/shared"
    bound=1
    mount --make-rshared "$work/shared"
  fi
  docker run -d --name "$SHARED_NAME" "${RUN_FUSE[@]}" -v "$work/manifest.tsv:/manifest.tsv:ro" \
    -v "$work/shared:/mnt/shared:rshared" "$IMAGE" mount --manifest /manifest.tsv /mnt/shared/data >/dev/null
  wait_mounted "$SHARED_NAME" /mnt/shared/data
  wait_for 10 grep -q " $work/shared/data fuse" /proc/mounts || fail "the mount did not propagate to the host's $work/shared/data"
  pass "the host sees the mount at $work/shared/data"
  expect_eq "BAM $REGION, samtools on the host" "$(samtools view -c "$work/shared/data/donor1/sample.bam" "$REGION")" "$want_bam"
  got=$(docker run --rm --entrypoint samtools -v "$work/shared:/mnt/shared:rslave" "$IMAGE" view -c /mnt/shared/data/donor1/sample.bam "$REGION")
  expect_eq "BAM $REGION, samtools in a second container (rslave)" "$got" "$want_bam"
  docker stop -t 30 "$SHARED_NAME" >/dev/null
  expect_eq "exit code after docker stop" "$(docker inspect -f '{{.State.ExitCode}}' "$SHARED_NAME")" 0
  ! grep -q " $work/shared/data fuse" /proc/mounts || fail "the FUSE mount is still on the host after docker stop"
  pass "the unmount propagated: nothing left on the host"
  docker rm "$SHARED_NAME" >/dev/null
fi

step "image size"
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
printf '%s: %s bytes (%s MB)\n' "$IMAGE" "$size" "$((size / 1000000))"
