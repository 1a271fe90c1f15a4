#!/usr/bin/env bash
# Builds PocketKube's images from Debian packages into the engine chosen by
# DOCKER_HOST:
#
#   pocketkube/debian:bookworm  the base: a minimal bookworm root filesystem
#                        made by mmdebstrap from Debian's mirror
#                        ($PK_DEBIAN_MIRROR) and `docker import`ed: bash,
#                        coreutils, curl, busybox (nslookup, nc, wget, httpd),
#                        procps, iproute2, nginx-light
#   nginx:latest         Debian's nginx on :80; / = the hostname, /healthz = ok
#   pocketkube/hello:1   HTTP on $PORT (8080): body = hostname, /healthz = ok
#   pocketkube/hello:2   same, body = "v2 <hostname>" (a second version)
#   pocketkube/crash:1   exits $EXIT_CODE (1) after $CRASH_AFTER s (3)
#   pocketkube/flaky:1   like hello, /healthz 404s after $HEALTHY_FOR s (10)
#
# and saves them all as images/out/images.tar (`docker save`: the base layer
# once), with images/out/images.tar.hash ("TAG HASH" lines).
#
# Cached by a hash of the inputs: every image carries the label
# io.pocketkube.build=<hash of its inputs>; an image (or archive) built from
# the same inputs is kept, and the root filesystem tarball is kept in
# images/out/rootfs-<hash>.tar, so only a change of the package list or of
# customize.sh downloads packages again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/out"
mirror="${PK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
packages=nginx-light,curl,busybox,netbase,procps,iproute2
base=pocketkube/debian:bookworm
label=io.pocketkube.build
command -v docker >/dev/null || { echo "error: the docker CLI is not installed (Debian package docker.io)" >&2; exit 1; }
docker version >/dev/null 2>&1 || { echo "error: no Docker Engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}" >&2; exit 1; }
mkdir -p "$out"

label_of() { docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null || true; }
# the previous build of a tag, untagged by a new one: removed (only it, and
# only while no tag names it: a build from another checkout may have tagged it)
drop() {
  [ -n "$1" ] && [ "$(docker image inspect -f '{{len .RepoTags}}' "$1" 2>/dev/null)" = 0 ] || return 0
  docker rmi "$1" >/dev/null 2>&1 || true
}

mmdebstrap_args=(--variant=essential "--include=$packages"
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  "--customize-hook=$here/customize.sh \"\$1\""
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*')
# (the checkout's path is not an input: two checkouts build the same images)
base_hash=$( (echo "$suite ${mmdebstrap_args[*]//$here/}"; cat "$here/customize.sh") | sha256sum | cut -c1-16)
if [ "$(label_of "$base")" != "$base_hash" ]; then
  rootfs="$out/rootfs-$base_hash.tar"
  if [ ! -s "$rootfs" ]; then
    command -v mmdebstrap >/dev/null || { echo "error: mmdebstrap is not installed: run scripts/apt-install.sh mmdebstrap (as root)" >&2; exit 1; }
    echo "building the base root filesystem with mmdebstrap ($suite from $mirror)..."
    log=$(mktemp /tmp/pk-mmdebstrap.XXXXXX.log)
    if ! mmdebstrap "${mmdebstrap_args[@]}" "$suite" "$out/rootfs-$base_hash.part.tar" "$mirror" >"$log" 2>&1; then
      tail -20 "$log" >&2; rm -f "$log" "$out/rootfs-$base_hash.part.tar"
      echo "error: mmdebstrap failed (log above)" >&2; exit 1
    fi
    rm -f "$log"
    mv "$out/rootfs-$base_hash.part.tar" "$rootfs"
    find "$out" -maxdepth 1 -name 'rootfs-*.tar' ! -name "rootfs-$base_hash.tar" -delete
  fi
  old=$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null || true)
  docker import --change "LABEL $label=$base_hash" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' --change 'WORKDIR /' "$rootfs" "$base" >/dev/null
  drop "$old"
  echo "built $base"
fi

# tag|directory (its Dockerfile and files)|build arguments
images=(
  "nginx:latest|nginx|"
  "pocketkube/hello:1|app|SCRIPT=hello.sh"
  "pocketkube/hello:2|app|SCRIPT=hello.sh BODY_PREFIX=v2 "
  "pocketkube/crash:1|app|SCRIPT=crash.sh"
  "pocketkube/flaky:1|app|SCRIPT=flaky.sh"
)
tags=("$base")
hashes="$base $base_hash"$'\n'
for entry in "${images[@]}"; do
  IFS='|' read -r tag dir args <<<"$entry"
  tags+=("$tag")
  hash=$( (echo "$base_hash $entry"; cat "$here/$dir"/*) | sha256sum | cut -c1-16)
  hashes+="$tag $hash"$'\n'
  [ "$(label_of "$tag")" = "$hash" ] && continue
  build_args=()
  # one argument may hold spaces (BODY_PREFIX=v2 ): split on the known names
  while IFS= read -r a; do [ -z "$a" ] || build_args+=(--build-arg "$a"); done \
    < <(sed -E 's/ (SCRIPT|BODY_PREFIX)=/\n\1=/g' <<<"$args")
  old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  # the legacy builder (no buildx needed); its output only when it fails
  if ! built=$(DOCKER_BUILDKIT=0 docker build -q --label "$label=$hash" "${build_args[@]}" -t "$tag" "$here/$dir" 2>&1); then
    echo "$built" >&2; echo "error: building $tag failed" >&2; exit 1
  fi
  drop "$old"
  echo "built $tag"
done

if [ "$(cat "$out/images.tar.hash" 2>/dev/null)" != "${hashes%$'\n'}" ] || [ ! -s "$out/images.tar" ]; then
  docker save -o "$out/images.tar.tmp" "${tags[@]}"
  mv "$out/images.tar.tmp" "$out/images.tar"
  printf '%s' "$hashes" >"$out/images.tar.hash"
  # archives of the previous layout (one per image)
  rm -f "$out"/{hello-1,hello-2,crash-1,flaky-1,nginx-latest}.tar{,.hash}
fi
echo "images up to date: ${tags[*]}"
