#!/usr/bin/env bash
# Builds PocketKube's test images with `docker import` from Debian's
# busybox-static (no registry needed), into the engine chosen by DOCKER_HOST,
# and saves each as images/out/<name>.tar for `docker load` on lab nodes.
#
#   pocketkube/hello:1   HTTP on $PORT (8080): body = hostname, /healthz = ok
#   pocketkube/hello:2   same, body = "v2 <hostname>" (a second version)
#   pocketkube/crash:1   exits $EXIT_CODE (1) after $CRASH_AFTER s (3)
#   pocketkube/flaky:1   like hello, /healthz 404s after $HEALTHY_FOR s (10)
#   nginx:latest         hello listening on 80 (the seed manifest's image)
#
# Idempotent and fast: each image carries a label with the hash of its
# inputs; an image (or tar) already built from the same inputs is kept.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/out"
busybox="${BUSYBOX:-/bin/busybox}"
[ -x "$busybox" ] || { echo "error: $busybox not found: run scripts/apt-install.sh busybox-static (as root)" >&2; exit 1; }
command -v docker >/dev/null || { echo "error: the docker CLI is not installed" >&2; exit 1; }
docker version >/dev/null 2>&1 || { echo "error: no Docker Engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}" >&2; exit 1; }
mkdir -p "$out"

base_hash=$(cat "$busybox" "$here"/hello.sh "$here"/crash.sh "$here"/flaky.sh "$here"/build.sh | sha256sum | cut -c1-16)
rootfs_tar="$out/rootfs-$base_hash.tar"
if [ ! -s "$rootfs_tar" ]; then
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,www,proc,sys,dev}
  chmod 1777 "$stage/tmp"
  cp "$busybox" "$stage/bin/busybox"
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$stage/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
  echo 'root:x:0:' >"$stage/etc/group"
  cp "$here"/hello.sh "$here"/crash.sh "$here"/flaky.sh "$stage/"
  rm -f "$out"/rootfs-*.tar
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$stage" -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
fi

# file|tag|command|one extra ENV instruction (Dockerfile syntax) or nothing
images=(
  "hello-1|pocketkube/hello:1|/hello.sh|"
  'hello-2|pocketkube/hello:2|/hello.sh|BODY_PREFIX="v2 "'
  "crash-1|pocketkube/crash:1|/crash.sh|"
  "flaky-1|pocketkube/flaky:1|/flaky.sh|"
  "nginx-latest|nginx:latest|/hello.sh|PORT=80"
)
tags=()
for entry in "${images[@]}"; do
  IFS='|' read -r file tag cmd env <<<"$entry"
  tags+=("$tag")
  hash=$(echo "$base_hash $entry" | sha256sum | cut -c1-16)
  have=$(docker image inspect -f '{{index .Config.Labels "io.pocketkube.build"}}' "$tag" 2>/dev/null || true)
  if [ "$have" != "$hash" ]; then
    changes=(--change "CMD [\"$cmd\"]" --change "ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin"
             --change "LABEL io.pocketkube.build=$hash" --change "WORKDIR /")
    [ -z "$env" ] || changes+=(--change "ENV $env")
    old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    docker import "${changes[@]}" "$rootfs_tar" "$tag" >/dev/null
    # the previous build of this tag is now untagged: remove it (only it)
    [ -z "$old" ] || docker rmi "$old" >/dev/null 2>&1 || true
    echo "built $tag"
  fi
  if [ "$(cat "$out/$file.tar.hash" 2>/dev/null)" != "$hash" ] || [ ! -s "$out/$file.tar" ]; then
    docker save -o "$out/$file.tar.tmp" "$tag"
    mv "$out/$file.tar.tmp" "$out/$file.tar"
    echo "$hash" >"$out/$file.tar.hash"
  fi
done
echo "images up to date: ${tags[*]}"
