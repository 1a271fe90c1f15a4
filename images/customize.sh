#!/bin/sh
# mmdebstrap customize hook for PocketKube's base image ($1: the new root
# filesystem). Runs on the build machine, before the tarball is written.
set -eu
root="$1"
# busybox applets that no installed Debian package provides (nslookup, nc,
# wget, vi...) as commands: Debian's busybox is dynamically linked, so they
# resolve names through glibc like curl does.
for applet in $(chroot "$root" /usr/bin/busybox --list); do
  found=""
  for d in usr/bin usr/sbin; do
    [ -e "$root/$d/$applet" ] || [ -L "$root/$d/$applet" ] && found=1
  done
  [ -n "$found" ] || ln -s busybox "$root/usr/bin/$applet"
done
# nginx logs to the container's output, as `pkctl logs` expects
ln -sf /dev/stdout "$root/var/log/nginx/access.log"
ln -sf /dev/stderr "$root/var/log/nginx/error.log"
# no package index, no apt cache: the image stays small
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old
