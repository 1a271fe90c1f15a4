#!/bin/sh
# pocketkube/hello: an HTTP server answering every GET of /
# with the pod's hostname (pocketkube/hello:2 prefixes "v2 "), and /healthz
# with "ok". Port: $PORT (8080).
# Exits 0 at once on SIGTERM so pod deletion and rolling updates are quick.
PORT="${PORT:-8080}"
mkdir -p /www
printf '%s%s\n' "${BODY_PREFIX:-}" "$(hostname)" > /www/index.html
echo ok > /www/healthz
echo "hello: serving $(hostname) on :$PORT"
busybox httpd -f -p "$PORT" -h /www &
pid=$!
trap 'kill $pid 2>/dev/null; echo "hello: terminating"; exit 0' TERM INT
wait $pid
