# syntax=docker/dockerfile:1.7
#
# The Phalanx image: `phalanx` on distroless, running as the unprivileged user 65532.
#
#   docker build -t phalanx:0.1.0 --build-arg VERSION=0.1.0 .
#   podman build -t phalanx:0.1.0 --build-arg VERSION=0.1.0 .
#
# Runtime contract (kept by deploy/image/build.sh, which assembles the same layout without a
# container engine and runs the binary inside it):
#   /usr/local/bin/phalanx  root-owned, 0755, debug info stripped (symbols kept for backtraces)
#   user 65532:65532 (distroless "nonroot"); nothing is written at run time, so the root
#   filesystem can be mounted read-only
#   config at /etc/phalanx/config.yaml (a ConfigMap mount, see deploy/deployment.yaml)
#   10259/tcp: /metrics, /healthz, /readyz, /api/v1/...

# ---- build ------------------------------------------------------------------------------------
# Debian 12 (bookworm) on both sides: the binary links the same glibc it runs on.
FROM rust:1.95.0-slim-bookworm AS build

WORKDIR /src
# .dockerignore keeps target/ and .git out of the context.
COPY . .

# BuildKit cache mounts: crates.io downloads and incremental target/ survive between builds.
# target/ lives in a cache mount, so the binary is copied out of it within the same step.
# objcopy (binutils, pulled in by the image's gcc) drops the line tables of the release profile:
# ~110 MB -> ~24 MB; the symbol table stays, so panics still name their functions.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin phalanx \
 && objcopy --strip-debug target/release/phalanx /usr/local/bin/phalanx \
 && /usr/local/bin/phalanx --version

# ---- runtime ----------------------------------------------------------------------------------
# distroless/cc: glibc, libgcc_s, CA certificates, tzdata, /etc/passwd with nonroot (65532);
# no shell, no package manager. The ":nonroot" tag defaults to USER 65532 as well; it is set
# explicitly below so the image does not depend on that.
FROM gcr.io/distroless/cc-debian12:nonroot

# Pass the release's version: --build-arg VERSION=0.1.0 (the default follows Cargo.toml's).
ARG VERSION=0.1.0
ARG REVISION=unknown

LABEL org.opencontainers.image.title="phalanx" \
      org.opencontainers.image.description="A gang-aware batch scheduler for Kubernetes" \
      org.opencontainers.image.source="https://github.com/phalanx-sched/phalanx" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /usr/local/bin/phalanx /usr/local/bin/phalanx

USER 65532:65532
EXPOSE 10259
ENTRYPOINT ["/usr/local/bin/phalanx"]
CMD ["serve", "--config", "/etc/phalanx/config.yaml"]
