#!/bin/sh
# pocketkube/flaky: serves like pocketkube/hello, but /healthz disappears
# (404) after $HEALTHY_FOR seconds (default 10): its liveness probe fails.
PORT="${PORT:-8080}"
mkdir -p /www
hostname > /www/index.html
echo ok > /www/healthz
echo "flaky: serving on :$PORT, healthy for ${HEALTHY_FOR:-10}s"
busybox httpd -f -p "$PORT" -h /www &
pid=$!
trap 'kill $pid 2>/dev/null; exit 0' TERM INT
sleep "${HEALTHY_FOR:-10}" &
wait $!
rm -f /www/healthz
echo "flaky: now unhealthy"
wait $pid
