#!/usr/bin/env bash
# The PocketKube tour (`make demo`, as root, after `make setup` and
# `make images`): a 3-node lab on this machine, the seed's Deployment and
# Service, a node hard-killed under a request loop, scaling, a new version,
# a rollback, and the seed's update to nginx:1.23 (an image that does not
# exist: the rollout stalls, the old pods keep serving) undone. Leaves the lab up; `make demo-down` removes it.
#
# Every request goes to an address of the lab (its private bridge, the
# ClusterIP on the nodes' loopbacks): nothing leaves this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
DEPLOY=deployment/my-web-app-deployment
SVC=my-web-app-service
T0=$(date +%s)

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s  (%ss)\n' "$bold" "$*" "$plain" "$(( $(date +%s) - T0 ))"; }
run() { printf '$ %s\n' "$*"; "$@"; }

if [ "$(id -u)" != 0 ]; then
  echo "error: the demo needs root (it creates network namespaces and a dockerd per node): sudo make demo" >&2
  exit 1
fi

step "a 3-node lab on this machine"
run pkctl lab up --nodes 3
run pkctl get nodes -o wide

step "the seed's Deployment and Service (examples/web.yaml, unchanged)"
echo "(nginx:latest is Debian's nginx, built by make images from Debian packages)"
run pkctl apply -f examples/web.yaml
run pkctl rollout status "$DEPLOY" --timeout 60s
run pkctl get pods -o wide
run pkctl get svc "$SVC"

cip=$(pkctl get svc "$SVC" -o jsonpath='{.spec.clusterIP}' 2>/dev/null || true)
[ -n "$cip" ] || cip=$(pkctl get svc "$SVC" --no-headers | awk '{print $3}')

step "20 requests to the Service from inside node-1 (ClusterIP $cip): which replicas answered"
printf '$ pkctl lab exec node-1 -- curl -s http://%s/   (x20)\n' "$cip"
# shellcheck disable=SC2016 # $i and $(seq) expand inside the node's shell
pkctl lab exec node-1 -- sh -c 'for i in $(seq 20); do curl -s -m 2 http://'"$cip"'/; done' | sort | uniq -c

# the node running the most replicas, and another one to send requests from
victim=$(pkctl get pods -o wide --no-headers | awk '{print $7}' | sort | uniq -c | sort -k1,1nr -k2 | awk 'NR==1{print $2}')
source_node=$(pkctl get nodes --no-headers | awk -v v="$victim" '$1 != v {print $1; exit}')

step "hard-kill $victim (the most pods) while $source_node sends ~20 requests/s"
log=$(mktemp /tmp/pk-demo-requests.XXXXXX)
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2016
pkctl lab exec "$source_node" -- sh -c 'end=$(( $(date +%s) + 15 )); while [ $(date +%s) -lt $end ]; do
    curl -s -m 2 -o /dev/null -w "%{http_code}\n" http://'"$cip"'/ || echo fail; sleep 0.05; done' >"$log" 2>&1 &
loop=$!
sleep 2
killed_at=$(date +%s.%N)
run pkctl lab kill-node "$victim" --hard
echo "waiting for 3 Ready replicas on the other nodes..."
for _ in $(seq 1 60); do
  ready=$(pkctl get pods -o wide --no-headers | awk -v v="$victim" '$2 == "1/1" && $3 == "Running" && $7 != v' | wc -l)
  [ "$ready" -ge 3 ] && break
  sleep 0.5
done
awk -v a="$killed_at" -v b="$(date +%s.%N)" 'BEGIN {printf "all 3 replicas Ready again %.1f s after the kill\n", b - a}'
run pkctl get nodes
run pkctl get pods -o wide
wait "$loop" || true
total=$(wc -l <"$log")
failed=$(grep -cv '^200$' "$log" || true)
echo "request loop: $total requests, $failed failed"

step "scale to 5"
run pkctl scale "$DEPLOY" --replicas 5
run pkctl rollout status "$DEPLOY" --timeout 60s
run pkctl get pods -o wide

step "a new version: pocketkube/hello:2 (examples/web-v2.yaml, keeping 5 replicas)"
printf '$ pkctl apply -f examples/web-v2.yaml   (replicas: 5)\n'
sed 's/replicas: 3/replicas: 5/' examples/web-v2.yaml | pkctl apply -f -
run pkctl rollout status "$DEPLOY" --timeout 90s
# shellcheck disable=SC2016
pkctl lab exec "$source_node" -- sh -c 'for i in $(seq 5); do curl -s -m 2 http://'"$cip"'/; done'

step "roll back"
run pkctl rollout undo "$DEPLOY"
run pkctl rollout status "$DEPLOY" --timeout 90s
run pkctl rollout history "$DEPLOY"
# shellcheck disable=SC2016
pkctl lab exec "$source_node" -- sh -c 'for i in $(seq 5); do curl -s -m 2 http://'"$cip"'/; done'

step "the seed's update: nginx:1.23, an image that does not exist (the lab registry lacks it)"
run pkctl patch "$DEPLOY" -p '{"spec":{"progressDeadlineSeconds":20}}'
log2=$(mktemp /tmp/pk-demo-requests.XXXXXX)
trap 'rm -f "$log" "$log2"' EXIT
# shellcheck disable=SC2016
pkctl lab exec "$source_node" -- sh -c 'end=$(( $(date +%s) + 60 )); while [ $(date +%s) -lt $end ]; do
    curl -s -m 2 -o /dev/null -w "%{http_code}\n" http://'"$cip"'/ || echo fail; sleep 0.05; done' >"$log2" 2>&1 &
loop2=$!
run pkctl set image "$DEPLOY" my-web-app-container=nginx:1.23
run pkctl rollout status "$DEPLOY" --timeout 10s || true
run pkctl get pods -o wide
echo "the old pods keep serving (maxUnavailable); waiting for the progress deadline (20 s)..."
run pkctl rollout status "$DEPLOY" --timeout 60s || true
pkctl get deployment my-web-app-deployment -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}{"\n"}{end}'
run pkctl rollout undo "$DEPLOY"
run pkctl rollout status "$DEPLOY" --timeout 90s
run pkctl patch "$DEPLOY" -p '{"spec":{"progressDeadlineSeconds":600}}'
kill "$loop2" 2>/dev/null || true
wait "$loop2" 2>/dev/null || true
total=$(wc -l <"$log2")
failed=$(grep -cv '^200$' "$log2" || true)
echo "request loop through the bad update and the undo: $total requests, $failed failed"

step "done in $(( $(date +%s) - T0 )) s; the lab is still up"
cat <<EOF
Try next:
  export PATH=\$PWD/.venv/bin:\$PATH
  pkctl get pods -o wide -w                     # watch (Ctrl-C to stop)
  pkctl lab start-node $victim                   # bring the killed node back: its stale containers are removed
  pkctl lab partition $source_node; pkctl lab heal $source_node
  pkctl lab exec node-2 -- curl -s http://$cip/
  pkctl describe deployment my-web-app-deployment
  pkctl lab status; pkctl lab logs controlplane
  make demo-down                                 # remove the lab (everything it made)
EOF
