#!/usr/bin/env bash
# Provisions one PocketKube VM (run by Vagrant as root):
#   provision.sh ROLE NODE_NAME NODE_IP SERVER PRESET LB_POOL
# ROLE is controlplane (etcd + pk-controlplane + the image registry, which it
# fills with `images/build.sh`) or worker (Docker + pk-agent, pulling from the
# control plane's registry: its Docker Hub mirror).
# Installs PocketKube as the README does (Debian packages, a virtualenv,
# pip install), writes /etc/pocketkube/*.env with the values the systemd
# units in vagrant/units/ read, and starts the units. Idempotent.
set -euo pipefail

role=$1 node_name=$2 node_ip=$3 server=$4 preset=$5 lb_pool=$6
src=/opt/pocketkube
venv=$src/.venv

case "$role" in
  controlplane) packages=(etcd-server docker-registry docker.io mmdebstrap python3-venv python3-pip iproute2 curl) ;;
  worker) packages=(docker.io busybox-static python3-venv python3-pip iproute2 curl) ;;
  *) echo "provision.sh: unknown role '$role' (controlplane or worker)" >&2; exit 1 ;;
esac

echo "== $node_name ($role, $node_ip): packages"
"$src/scripts/apt-install.sh" "${packages[@]}"

echo "== $node_name: PocketKube into $venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "$src"

# the registry on the control plane VM, port 5000 (plain HTTP on the private network)
registry="${server%:*}:5000"
install -d -m 0755 /etc/pocketkube
if [ "$role" = controlplane ]; then
  systemctl enable --now etcd
  echo "== $node_name: image registry on $node_ip:5000"
  # no authentication (Debian's default configuration asks for htpasswd)
  cat >/etc/docker/registry/config.yml <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: $node_ip:5000
YML
  systemctl enable docker-registry
  systemctl restart docker-registry
  # this VM's Docker builds the images (make images) and pushes them; it
  # trusts the registry over plain HTTP by its address
  printf '{"insecure-registries": ["%s"]}\n' "$registry" >/etc/docker/daemon.json
  systemctl enable docker
  systemctl restart docker
  echo "== $node_name: images (Debian packages, mmdebstrap), pushed to $registry"
  "$src/images/build.sh"
  while read -r tag _; do
    name=${tag%:*} t=${tag##*:}
    case "$name" in */*) ;; *) name="library/$name" ;; esac
    docker tag "$tag" "$registry/$name:$t"
    docker push -q "$registry/$name:$t" >/dev/null
    docker rmi "$registry/$name:$t" >/dev/null
  done <"$src/images/out/images.tar.hash"
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
  # the control plane's registry is this engine's Docker Hub mirror: pk-agent
  # pulls nginx:latest as $registry/library/nginx:latest
  printf '{"registry-mirrors": ["http://%s"], "insecure-registries": ["%s"]}\n' "$registry" "$registry" \
    >/etc/docker/daemon.json
  systemctl enable docker
  systemctl restart docker
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
