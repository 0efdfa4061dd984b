# slicefs: mount manifests of remote BAM/CRAM files read-only (FUSE), view regions, download files.
#
#   docker build -t slicefs .
#   docker run --rm slicefs view --url https://…/sample.bam -q chr1:1-100000 | samtools view -c -
#   docker run -d --name slicefs --device /dev/fuse --cap-add SYS_ADMIN --security-opt apparmor:unconfined \
#     -v "$PWD/files.tsv:/manifest.tsv:ro" slicefs mount --manifest /manifest.tsv /mnt/data
#
# How to run it (three ways), behind a TLS-inspecting proxy, and the smoke test: docker/README.md.
# Runs as root: a FUSE mount inside a container needs CAP_SYS_ADMIN and /dev/fuse, and mounting as an
# unprivileged user in there gains nothing (the capability is the container's, not the user's).
# amd64 only: fuse-native ships a prebuilt addon for linux-x64 and this image has no compiler.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
# build: dev dependencies, tsc + esbuild (npm run build), then the few files the image runs.
FROM ${NODE_IMAGE} AS build

# Extra root CAs (docker/certs/*.crt, PEM) for a TLS-inspecting proxy: trusted by apt, npm and Node.
# apt needs none to start with: Debian's sources are plain http (deb.debian.org), so ca-certificates
# itself installs through such a proxy before any CA is in place. update-ca-certificates finds *.crt
# in subdirectories of /usr/local/share/ca-certificates; the README beside them is ignored.
COPY docker/certs/ /usr/local/share/ca-certificates/slicefs/
# libfuse2: `npm ci` runs fuse-native's install script, which loads its prebuilt addon (linked to
# libfuse.so.2) and would try to compile one, with no compiler here, if that failed.
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libfuse2; \
    update-ca-certificates; \
    rm -rf /var/lib/apt/lists/*
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    npm_config_cafile=/etc/ssl/certs/ca-certificates.crt \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --loglevel=error
COPY tsconfig.json ./
COPY scripts/bundle.mjs scripts/code-cache.mjs scripts/
# The code cache's training view (scripts/code-cache.mjs) reads this small BAM.
COPY test/data/conformance/htslib-test/range.bam test/data/conformance/htslib-test/range.bam.bai test/data/conformance/htslib-test/
COPY bin/ bin/
COPY src/ src/
COPY docker/runtime-files.mjs docker/
# tsc compiles src/ (test/ is not copied: the image carries no tests), esbuild bundles dist/bundle/
# and a training run makes its V8 code cache (same Node image as the runtime's, so V8 accepts it);
# runtime-files.mjs collects package.json, bin/, the bundle and fuse-native's node_modules into /out.
RUN npm run build && node docker/runtime-files.mjs /out

# ---------------------------------------------------------------------------------------------
# runtime: Node 20, libfuse2 + fusermount, samtools, tini; the bundle and fuse-native. No compilers.
FROM ${NODE_IMAGE}

ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="slicefs" \
      org.opencontainers.image.description="Mount manifests of remote BAM/CRAM files read-only (FUSE), view regions, download files: cached, verified HTTP Range requests" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.documentation="docker/README.md"

COPY docker/certs/ /usr/local/share/ca-certificates/slicefs/
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libfuse2 fuse samtools tini; \
    update-ca-certificates; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log
# Node's own CA list plus the system's (and so the extra CAs above) for slicefs's HTTPS requests.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    NODE_ENV=production

COPY --from=build /out/ /opt/slicefs/
# The prebuilt fuse-native addon must load against this libfuse2: checked here, not at first mount.
RUN set -eux; \
    ln -s /opt/slicefs/bin/slicefs.js /usr/local/bin/slicefs; \
    node -e "require('/opt/slicefs/node_modules/fuse-native')"; \
    slicefs --help >/dev/null; \
    mkdir -p /mnt/data /data

# view -o and download write relative paths here: `-v "$PWD":/data`.
WORKDIR /data

# `slicefs status --health`: 0 when no mount is registered or every mount answers a stat in time.
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD ["slicefs", "status", "--health"]

# tini as PID 1 forwards `docker stop`'s SIGTERM to slicefs, which unmounts and exits 0, and reaps
# whatever slicefs's children leave behind.
ENTRYPOINT ["/usr/bin/tini", "--", "slicefs"]
CMD ["--help"]
