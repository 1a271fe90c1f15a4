#!/usr/bin/env bash
# Provisions one PocketKube VM (run by Vagrant as root):
#   provision.sh ROLE NODE_NAME NODE_IP SERVER PRESET LB_POOL
# ROLE is controlplane (etcd + pk-controlplane) or worker (Docker + pk-agent).
# Installs PocketKube as the README does (Debian packages, a virtualenv,
# pip install), writes /etc/pocketkube/*.env with the values the systemd
# units in vagrant/units/ read, and starts the units. Idempotent.
set -euo pipefail

role=$1 node_name=$2 node_ip=$3 server=$4 preset=$5 lb_pool=$6
src=/opt/pocketkube
venv=$src/.venv

case "$role" in
  controlplane) packages=(etcd-server python3-venv python3-pip iproute2 curl) ;;
  worker) packages=(docker.io mmdebstrap busybox-static python3-venv python3-pip iproute2 curl) ;;
  *) echo "provision.sh: unknown role '$role' (controlplane or worker)" >&2; exit 1 ;;
esac

echo "== $node_name ($role, $node_ip): packages"
"$src/scripts/apt-install.sh" "${packages[@]}"

echo "== $node_name: PocketKube into $venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "$src"

install -d -m 0755 /etc/pocketkube
if [ "$role" = controlplane ]; then
  systemctl enable --now etcd
  cat >/etc/pocketkube/controlplane.env <<ENV
PK_LISTEN=$node_ip:6444
PK_HTTP_LISTEN=$node_ip:6443
PK_ETCD_SERVERS=http://127.0.0.1:2379
PK_DATA_DIR=/var/lib/pocketkube
PK_SERVICE_CIDR=10.96.0.0/16
PK_LB_POOL=$lb_pool
PK_PRESET=$preset
ENV
  unit=pk-controlplane
else
  systemctl enable --now docker
  echo "== $node_name: images (Debian packages, mmdebstrap)"
  "$src/images/build.sh"
  # PK_DNS_UPSTREAMS empty: cluster DNS forwards other names to the VM's own
  # resolv.conf nameservers.
  cat >/etc/pocketkube/agent.env <<ENV
PK_NODE_NAME=$node_name
PK_NODE_IP=$node_ip
PK_DOCKER_HOST=unix:///var/run/docker.sock
PK_SERVER=$server
PK_DATA_DIR=/var/lib/pocketkube/agent
PK_PRESET=$preset
PK_DNS_UPSTREAMS=
ENV
  unit=pk-agent
fi

install -m 0644 "$src/vagrant/units/$unit.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable "$unit"
systemctl restart "$unit"
echo "== $node_name: $unit running"
systemctl --no-pager --lines=0 status "$unit" || true
