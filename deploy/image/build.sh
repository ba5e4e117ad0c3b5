#!/usr/bin/env bash
# Assembles the Phalanx image without a container engine, from an already built release binary,
# and checks that it holds: the image's config (user, entrypoint, cmd, port, labels) and the
# binary running inside the image's own root filesystem, as user 65532, with that filesystem
# mounted read-only, `phalanx serve` against the emulator until /readyz answers 200.
#
# Usage (from anywhere): deploy/image/build.sh [BINARY]
#   BINARY    the release binary (default: target/release/phalanx; not built here, see check.sh)
#   VERSION   env: the image's version label and tag (default: what `BINARY --version` prints);
#             must equal the binary's own version
#   REVISION  env: the revision label (default: `git rev-parse HEAD`, else "unknown")
#   OUT       env: where the image goes (default: target/image): OUT/oci is an OCI image layout
#             with the tag phalanx:VERSION, OUT/phalanx-VERSION.oci.tar the same as one archive
#             (`podman load -i`, `skopeo copy oci-archive:...`)
#
# How: the base image (gcr.io/distroless/cc-debian12:nonroot) cannot be pulled here, so a
# stand-in is made with `buildah from scratch`: the binary's shared libraries (found by ldd),
# /etc/passwd and /etc/group with nonroot 65532, CA certificates, /tmp, /home/nonroot, and the
# config distroless sets (user, working directory, PATH, SSL_CERT_FILE). Then the runtime stage
# of the repository's Dockerfile itself is built on that stand-in by `buildah build --isolation
# chroot`, with only its FROM line and its COPY --from=build source swapped for the stand-in and
# the stripped binary: the labels, user, port, entrypoint and cmd are the Dockerfile's own.
# Needs root (chroot, mounts). Installs buildah and jq with apt-get when they are missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
start=$SECONDS
say() { printf '[image] %s\n' "$*"; }
die() { printf '[image] FAIL: %s\n' "$*" >&2; exit 1; }

binary=${1:-target/release/phalanx}
out=${OUT:-$root/target/image}
[ -x "$binary" ] || die "no executable binary at $binary (build it: cargo build --release --bin phalanx)"
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
[ "$(id -u)" = 0 ] || die "needs root (chroot, mount namespaces, buildah storage)"
[ "$(uname -m)" = x86_64 ] || die "written for x86_64 (found $(uname -m))"

# ---- tools ------------------------------------------------------------------------------------
need_apt=()
command -v buildah >/dev/null || need_apt+=(buildah)
command -v jq >/dev/null || need_apt+=(jq)
command -v curl >/dev/null || need_apt+=(curl)
command -v objcopy >/dev/null || need_apt+=(binutils)
command -v unshare >/dev/null || need_apt+=(util-linux)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# ---- version ----------------------------------------------------------------------------------
bin_version=$("$binary" --version) || die "$binary --version failed on the host"
bin_version=${bin_version#phalanx }
version=${VERSION:-$bin_version}
[ "$version" = "$bin_version" ] ||
  die "VERSION=$version but the binary says $bin_version: the version label would lie"
revision=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
tag="localhost/phalanx:$version"
say "phalanx $version (revision $revision) from $binary"

# ---- scratch space ----------------------------------------------------------------------------
work=$(mktemp -d /tmp/phalanx-image.XXXXXX)
chmod 755 "$work"
emulator_pid=""
serve_pid=""
cleanup() {
  local pid
  for pid in "$serve_pid" "$emulator_pid"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  # A private store under $work: nothing is left in /var/lib/containers.
  bah rm --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bah() {
  buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"
}
export BUILDAH_ISOLATION=chroot

# ---- 1. the stand-in for gcr.io/distroless/cc-debian12:nonroot ---------------------------------
say "stand-in base: buildah from scratch + the binary's shared libraries"
base=$(bah from scratch)
base_root=$(bah mount "$base")
# The same stripping as the Dockerfile's build stage (the Dockerfile runs objcopy there).
mkdir -p "$work/ctx"
objcopy --strip-debug "$binary" "$work/ctx/phalanx"
chmod 0755 "$work/ctx/phalanx"
# Every library ldd resolves, at the path ldd resolves it to, dereferenced; plus the interpreter.
libs=$(ldd "$work/ctx/phalanx" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -n "$libs" ] || die "ldd found no shared libraries: is $binary dynamically linked?"
for lib in $libs; do
  mkdir -p "$base_root$(dirname "$lib")"
  cp -L "$lib" "$base_root$lib"
done
say "  libraries: $(echo "$libs" | tr '\n' ' ')"
mkdir -p "$base_root"/{etc/ssl/certs,tmp,home/nonroot,usr/local/bin}
chmod 1777 "$base_root/tmp"
chown 65532:65532 "$base_root/home/nonroot"
chmod 0700 "$base_root/home/nonroot"
cp -L /etc/ssl/certs/ca-certificates.crt "$base_root/etc/ssl/certs/ca-certificates.crt"
# distroless's own entries.
cat >"$base_root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$base_root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
GROUP
printf 'hosts: files dns\n' >"$base_root/etc/nsswitch.conf"
bah unmount "$base" >/dev/null
bah config --user 65532 --workingdir /home/nonroot \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --os linux --arch amd64 "$base"
bah commit --quiet --rm "$base" localhost/distroless-cc-standin:nonroot >/dev/null

# ---- 2. the Dockerfile's runtime stage on it ----------------------------------------------------
say "runtime stage of the Dockerfile: buildah build --isolation chroot"
# Everything from the last FROM on, with the two lines that reach outside swapped.
awk '/^FROM /{ n = NR } { line[NR] = $0 } END { for (i = n; i <= NR; i++) print line[i] }' \
  Dockerfile >"$work/runtime.Dockerfile"
grep -qx 'FROM gcr.io/distroless/cc-debian12:nonroot' "$work/runtime.Dockerfile" ||
  die "the Dockerfile's last stage no longer starts FROM gcr.io/distroless/cc-debian12:nonroot; update the stand-in"
grep -qx 'COPY --from=build /usr/local/bin/phalanx /usr/local/bin/phalanx' "$work/runtime.Dockerfile" ||
  die "the Dockerfile no longer copies /usr/local/bin/phalanx from the build stage; update build.sh"
sed -i \
  -e 's|^FROM gcr.io/distroless/cc-debian12:nonroot$|FROM localhost/distroless-cc-standin:nonroot|' \
  -e 's|^COPY --from=build /usr/local/bin/phalanx /usr/local/bin/phalanx$|COPY phalanx /usr/local/bin/phalanx|' \
  "$work/runtime.Dockerfile"
if grep -q -- '--from=' "$work/runtime.Dockerfile" || grep -qE '^RUN ' "$work/runtime.Dockerfile"; then
  die "the runtime stage gained a COPY --from or a RUN that this assembly does not reproduce"
fi
bah build --quiet --isolation chroot --pull=never --layers=false \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  -f "$work/runtime.Dockerfile" -t "$tag" "$work/ctx" >/dev/null 2>"$work/build.log" ||
  { cat "$work/build.log" >&2; die "buildah build failed"; }

# ---- 3. export as an OCI layout and an archive ------------------------------------------------
rm -rf "$out/oci" "$out"/phalanx-*.oci.tar
mkdir -p "$out"
bah push --quiet "$tag" "oci:$out/oci:phalanx:$version" >/dev/null
tar -C "$out/oci" -cf "$out/phalanx-$version.oci.tar" .
say "exported: $out/oci (tag phalanx:$version), $out/phalanx-$version.oci.tar"

# ---- 4. the image's config, read from the exported layout -------------------------------------
blob() { printf '%s/oci/blobs/%s' "$out" "${1/://}"; }
manifest_digest=$(jq -r --arg t "phalanx:$version" \
  '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
  "$out/oci/index.json")
[ -n "$manifest_digest" ] || die "no manifest tagged phalanx:$version in $out/oci/index.json"
manifest=$(blob "$manifest_digest")
config=$(blob "$(jq -r .config.digest "$manifest")")
failures=0
expect() { # expect "what" JQ-FILTER EXPECTED-JSON
  local got
  got=$(jq -c "$2" "$config")
  if [ "$got" = "$(jq -cn "$3")" ]; then
    say "  ok   $1 = $got"
  else
    say "  FAIL $1: expected $3, got $got"
    failures=$((failures + 1))
  fi
}
say "image config ($(jq -r .config.digest "$manifest")):"
expect "user" '.config.User' '"65532:65532"'
expect "entrypoint" '.config.Entrypoint' '["/usr/local/bin/phalanx"]'
expect "cmd" '.config.Cmd' '["serve","--config","/etc/phalanx/config.yaml"]'
expect "exposed ports" '.config.ExposedPorts | keys' '["10259/tcp"]'
expect "os/arch" '[.os, .architecture]' '["linux","amd64"]'
expect "title" '.config.Labels["org.opencontainers.image.title"]' '"phalanx"'
expect "version" '.config.Labels["org.opencontainers.image.version"]' "\"$version\""
expect "revision" '.config.Labels["org.opencontainers.image.revision"]' "\"$revision\""
expect "licenses" '.config.Labels["org.opencontainers.image.licenses"]' '"Apache-2.0"'
expect "source" '.config.Labels["org.opencontainers.image.source"]' \
  '"https://github.com/phalanx-sched/phalanx"'
expect "description set" '.config.Labels["org.opencontainers.image.description"] | length > 0' true
# buildah's own view of the image it stored agrees.
[ "$(bah inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")" = "65532:65532" ] ||
  { say "  FAIL buildah inspect: user is not 65532:65532"; failures=$((failures + 1)); }
[ "$failures" = 0 ] || die "$failures check(s) of the image config failed"

# ---- 5. the root filesystem, from the exported layers only -------------------------------------
rootfs="$work/rootfs"
mkdir -p "$rootfs"
for layer in $(jq -r '.layers[].digest' "$manifest"); do
  tar -C "$rootfs" --same-owner -xf "$(blob "$layer")"
done
[ "$(stat -c '%u:%g %a' "$rootfs/usr/local/bin/phalanx")" = "0:0 755" ] ||
  die "/usr/local/bin/phalanx is $(stat -c '%u:%g %a' "$rootfs/usr/local/bin/phalanx"), not 0:0 755"
grep -q '^nonroot:x:65532:65532:' "$rootfs/etc/passwd" || die "/etc/passwd has no nonroot 65532"
say "rootfs: $(du -sh "$rootfs" | cut -f1), $(find "$rootfs" -type f | wc -l) files"

# Run as the image says: its user, its environment, its entrypoint + cmd, in a private mount
# namespace where the rootfs is read-only (as with readOnlyRootFilesystem: true), /proc mounted,
# and /etc/phalanx a read-only mount as the ConfigMap would be. The mount point is made first in
# this scratch copy, as a container runtime does.
user=$(jq -r .config.User "$config")
mapfile -t image_env < <(jq -r '.config.Env[]' "$config")
mapfile -t entry < <(jq -r '(.config.Entrypoint + .config.Cmd)[]' "$config")
mkdir -p "$rootfs/etc/phalanx" "$rootfs/proc" "$rootfs/dev"
mkdir -p "$work/etc-phalanx"
chmod 755 "$work/etc-phalanx"
in_image() { # in_image [--exec] ARGV...: run ARGV inside the read-only rootfs as the image's user
  # --exec replaces the calling (sub)shell, so that `in_image --exec ... &` leaves $! = phalanx's
  # pid (env, unshare, sh and chroot all exec in turn) and a signal to $! reaches phalanx.
  local ex=""
  if [ "${1:-}" = --exec ]; then ex="exec"; shift; fi
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  $ex env -i "${image_env[@]}" HOME=/home/nonroot KUBECONFIG=/etc/phalanx/kubeconfig \
    POD_NAME=phalanx-image-check RUST_LOG=info \
    unshare --mount --propagation private -- /bin/sh -c '
      set -e
      r=$1 etc_phalanx=$2 userspec=$3; shift 3
      mount --bind "$r" "$r"
      mount -t proc proc "$r/proc"
      for d in null zero random urandom; do touch "$r/dev/$d"; mount --bind "/dev/$d" "$r/dev/$d"; done
      mount --bind "$etc_phalanx" "$r/etc/phalanx"
      mount -o remount,bind,ro "$r/etc/phalanx"
      mount -o remount,bind,ro "$r"
      # Even root cannot write now, not to / nor to /tmp: whatever runs next needs no writes.
      for p in "$r/.probe" "$r/tmp/.probe" "$r/etc/phalanx/.probe"; do
        if touch "$p" 2>/dev/null; then echo "not read-only: $p" >&2; exit 97; fi
      done
      exec chroot --userspec="$userspec" "$r" "$@"
    ' sh "$rootfs" "$work/etc-phalanx" "$user" "$@"
}

say "inside the image (read-only root, user $user):"
got=$(in_image /usr/local/bin/phalanx --version) || die "phalanx --version failed inside the image"
[ "$got" = "phalanx $version" ] || die "inside the image, --version printed '$got'"
say "  ok   phalanx --version -> $got"
in_image /usr/local/bin/phalanx serve --help >"$work/serve-help" 2>&1 ||
  { cat "$work/serve-help" >&2; die "phalanx serve --help failed inside the image"; }
grep -q -- '--config' "$work/serve-help" || die "serve --help does not mention --config"
say "  ok   phalanx serve --help"

# ---- 6. `phalanx serve` from the image's entrypoint + cmd, against the emulator ----------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
admin_port=$(free_port)
# The emulator runs on the host (it is a test fixture, not part of the image).
"$binary" emulator --listen "127.0.0.1:$api_port" --nodes 2 --node-shape cpu=4,memory=16Gi \
  --kubeconfig "$work/etc-phalanx/kubeconfig" >"$work/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/etc-phalanx/kubeconfig" ] && curl -fsS "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -s "$work/etc-phalanx/kubeconfig" ] || { cat "$work/emulator.log" >&2; die "the emulator did not start"; }
chmod 644 "$work/etc-phalanx/kubeconfig"
# deploy/deployment.yaml's config, but listening on loopback on a free port.
sed -n '/^  config.yaml: |$/,/^---$/p' deploy/deployment.yaml | sed '1d;$d;s/^    //' |
  sed "s/^listen: .*/listen: 127.0.0.1:$admin_port/" >"$work/etc-phalanx/config.yaml"
grep -qx "listen: 127.0.0.1:$admin_port" "$work/etc-phalanx/config.yaml" ||
  die "could not take the config from deploy/deployment.yaml"
chmod 644 "$work/etc-phalanx/config.yaml"
say "  serve: ${entry[*]} (API on :$api_port, admin on :$admin_port)"
in_image --exec "${entry[@]}" >"$work/serve.log" 2>&1 &
serve_pid=$!
sleep 0.2
[ "$(readlink "/proc/$serve_pid/exe" 2>/dev/null || true)" != "$(readlink /proc/$$/exe)" ] ||
  die "internal: \$! is a shell, not phalanx"
ready=""
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; then ready=yes; break; fi
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  tail -n 40 "$work/serve.log" >&2
  die "phalanx serve inside the image did not become ready on /readyz within 30 s"
fi
uid=$(awk '/^Uid:/ { print $2 "," $3 "," $4 "," $5 }' "/proc/$serve_pid/status")
[ "$uid" = "65532,65532,65532,65532" ] || die "serve runs as uids $uid, not 65532"
gid=$(awk '/^Gid:/ { print $2 }' "/proc/$serve_pid/status")
[ "$gid" = 65532 ] || die "serve runs as gid $gid, not 65532"
grep -q 'became leader' "$work/serve.log" || die "serve did not take the leader lease from the emulator"
curl -fsS "http://127.0.0.1:$admin_port/healthz" >/dev/null || die "/healthz failed"
curl -fsS "http://127.0.0.1:$admin_port/metrics" >"$work/metrics" || die "/metrics failed"
[ -s "$work/metrics" ] || die "/metrics is empty"
say "  ok   serve as uid/gid 65532: leader lease taken, /readyz 200, /healthz 200, /metrics $(wc -l <"$work/metrics") lines"
kill -TERM "$serve_pid"
rc=0
wait "$serve_pid" || rc=$?
serve_pid=""
[ "$rc" = 0 ] || { tail -n 40 "$work/serve.log" >&2; die "serve exited $rc on SIGTERM"; }
say "  ok   serve stopped cleanly on SIGTERM"
if grep -qiE 'read-only file system|permission denied' "$work/serve.log"; then
  grep -iE 'read-only file system|permission denied' "$work/serve.log" | head -5 >&2
  die "serve tried to write somewhere"
fi

say "PASS: image phalanx:$version assembled and checked in $((SECONDS - start)) s"
