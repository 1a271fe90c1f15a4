#!/usr/bin/env bash
# Runs a command with a Docker Engine reachable at /var/run/docker.sock:
# uses the running one, or starts dockerd for the command's duration and
# stops it (by its PID) afterwards.
set -uo pipefail
sock=/var/run/docker.sock
started=""
if ! docker -H unix://$sock version >/dev/null 2>&1; then
  log=$(mktemp /tmp/pk-dockerd.XXXXXX.log)
  dockerd -H unix://$sock >"$log" 2>&1 &
  started=$!
  for _ in $(seq 1 60); do
    docker -H unix://$sock version >/dev/null 2>&1 && break
    kill -0 $started 2>/dev/null || { echo "dockerd failed to start:"; tail -20 "$log"; exit 1; }
    sleep 0.5
  done
  docker -H unix://$sock version >/dev/null 2>&1 || { echo "dockerd did not answer within 30 s"; tail -20 "$log"; exit 1; }
fi
"$@"
rc=$?
if [ -n "$started" ]; then
  kill "$started" 2>/dev/null
  for _ in $(seq 1 40); do kill -0 "$started" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$started" 2>/dev/null
  rm -f "$log"
fi
exit $rc
