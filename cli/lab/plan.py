"""The lab's layout: every name, address, path and port of one lab, computed
from (lab name, lab index, node count, options). Pure: no I/O, no clock;
unit-tested in tests/unit/lab/test_lab_plan.py.

Addressing (lab index K, 0..MAX_LABS-1, allocated per lab name):

  10.231.K.0/24        the lab network (the switch); never routed off the host
    10.231.K.1         the host's end (interface pklabK): the control plane
                       listens here, and nodes reach it here
    10.231.K.2..       further control planes of an HA lab (--control-planes
                       N: cp-i on 10.231.K.i, addresses of the same interface)
    10.231.K.(10+i)    node-i (i = 1..MAX_NODES)
    10.231.K.192/27    the LoadBalancer pool by default (on the lab network,
                       so whichever node holds an address answers ARP for it)
  10.232.(32K+i).1/24  node-i's docker0 (dockerd --bip): distinct for every
                       node of every lab, never seen outside its node
  10.96.0.0/16         the service CIDR by default: ClusterIPs live on each
                       node's loopback; elsewhere the range is unreachable

Names derive from the index, not from the lab name, so they stay short
(Linux interface names are at most 15 bytes) and two labs never collide:
host interface and switch namespace `pklabK`, node namespaces `pklabK-node-i`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

MAX_LABS = 8
MAX_NODES = 30
# Control planes (and etcd members) of one lab: 10.231.K.1 .. .K.MAX, below
# the nodes' 10.231.K.11.
MAX_CONTROLPLANES = 7
LAB_NET = "10.231.0.0/16"
DOCKER_NET = "10.232.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/16"
DEFAULT_STATE_ROOT = "/var/lib/pocketkube/lab"
DEFAULT_RUN_ROOT = "/run/pocketkube/lab"
# The Kubernetes HTTPS API (kubectl) on Kubernetes' port, gRPC (pkctl,
# agents) on the next one.
HTTPS_PORT = 6443
GRPC_PORT = 6444
# The lab registry's port (REGISTRY_PORT_BASE + K): images are named
# localhost:PORT/NAME:TAG, so the port stays the same for a lab's whole life.
REGISTRY_PORT_BASE = 5100
# Policy-routing table for packets arriving from a lab (23100 + K).
ROUTE_TABLE_BASE = 23100
# `ip rule` priority of that lookup: before the main table (32766).
RULE_PRIORITY = 1000
PRESETS = ("lab", "kubernetes")
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")


class PlanError(ValueError):
    """Bad lab options; str() is the user-facing reason."""


@dataclass(frozen=True)
class NodePlan:
    name: str  # node-1
    index: int  # 1
    netns: str  # pklab0-node-1
    ip: str  # 10.231.0.11
    port: str  # its port on the switch (an interface in the switch namespace)
    bip: str  # 10.232.1.1/24
    state_dir: str  # engine data, logs
    run_dir: str  # exec-root, sockets, pidfiles

    @property
    def docker_socket(self) -> str:
        return f"{self.run_dir}/docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"

    @property
    def data_root(self) -> str:
        return f"{self.state_dir}/docker"

    @property
    def exec_root(self) -> str:
        return f"{self.run_dir}/exec"

    @property
    def netns_path(self) -> str:
        return f"/var/run/netns/{self.netns}"


@dataclass(frozen=True)
class ControlPlanePlan:
    """One pk-controlplane of the lab. A lab of one keeps the names it always
    had ("controlplane", <state>/controlplane); an HA lab has cp-1..cp-N."""

    name: str  # controlplane | cp-1
    ip: str  # 10.231.K.1
    data_dir: str
    pidfile: str
    log: str

    @property
    def server(self) -> str:
        return f"{self.ip}:{GRPC_PORT}"

    @property
    def https_server(self) -> str:
        return f"{self.ip}:{HTTPS_PORT}"


@dataclass(frozen=True)
class EtcdMemberPlan:
    """One etcd member (loopback ports come from the lab's record)."""

    name: str  # etcd | etcd-1
    member: str  # etcd's --name
    data_dir: str
    pidfile: str
    log: str


@dataclass(frozen=True)
class LabPlan:
    name: str
    index: int
    preset: str
    subnet: str  # 10.231.K.0/24
    gateway: str  # 10.231.K.1 (host end)
    uplink: str  # host interface pklabK
    switch_ns: str  # namespace holding the bridge: pklabK
    bridge: str  # bridge name inside the switch namespace
    service_cidr: str
    lb_pool: str  # as given to pk-controlplane (CIDR or first-last)
    lb_cidrs: tuple[str, ...]  # lb_pool as CIDRs, for routes
    route_table: int
    state_dir: str
    run_dir: str
    nodes: tuple[NodePlan, ...] = field(default_factory=tuple)
    controlplanes: tuple[ControlPlanePlan, ...] = field(default_factory=tuple)
    etcd_members: tuple[EtcdMemberPlan, ...] = field(default_factory=tuple)

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    @property
    def server(self) -> str:
        """The control planes' gRPC addresses (comma-separated when several),
        for nodes and for pkctl alike: clients fail over between them."""
        return ",".join(cp.server for cp in self.controlplanes)

    @property
    def https_server(self) -> str:
        """The first control plane's Kubernetes HTTPS API address (kubectl
        takes one server)."""
        return self.controlplanes[0].https_server

    @property
    def servers(self) -> tuple[ControlPlanePlan | EtcdMemberPlan, ...]:
        """The control planes, then the etcd members."""
        return (*self.controlplanes, *self.etcd_members)

    def controlplane(self, name: str) -> ControlPlanePlan:
        for cp in self.controlplanes:
            if cp.name == name:
                return cp
        known = ", ".join(cp.name for cp in self.controlplanes)
        raise PlanError(f'control plane "{name}" is not in lab "{self.name}" (control planes: {known})')

    def etcd_member(self, name: str) -> EtcdMemberPlan:
        for m in self.etcd_members:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.etcd_members)
        raise PlanError(f'etcd member "{name}" is not in lab "{self.name}" (members: {known})')

    @property
    def etcd_dir(self) -> str:
        return f"{self.state_dir}/etcd"

    @property
    def registry_port(self) -> int:
        return REGISTRY_PORT_BASE + self.index

    @property
    def registry(self) -> str:
        """The registry's name for pushing and pulling, on this machine and on every node."""
        return f"localhost:{self.registry_port}"

    @property
    def registry_dir(self) -> str:
        return f"{self.state_dir}/registry"

    @property
    def controlplane_dir(self) -> str:
        """The first control plane's data directory (its kubeconfig.yaml)."""
        return self.controlplanes[0].data_dir

    @property
    def state_file(self) -> str:
        return f"{self.state_dir}/lab.json"

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise PlanError(f'node "{name}" is not in lab "{self.name}" (nodes: {known})')


def validate_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise PlanError(
            f'invalid lab name "{name}": a lowercase RFC 1123 label of at most 32 characters '
            "(letters, digits, '-'; starting and ending with a letter or digit)"
        )


def lb_cidrs(pool: str) -> tuple[str, ...]:
    """A pool given as CIDR or `first-last` as the CIDRs covering it."""
    pool = pool.strip()
    if not pool:
        return ()
    try:
        if "-" in pool:
            first_s, last_s = (p.strip() for p in pool.split("-", 1))
            first, last = ipaddress.IPv4Address(first_s), ipaddress.IPv4Address(last_s)
            if last < first:
                raise PlanError(f'invalid LoadBalancer pool "{pool}": the last address is before the first')
            return tuple(str(n) for n in ipaddress.summarize_address_range(first, last))
        return (str(ipaddress.IPv4Network(pool, strict=False)),)
    except ValueError as err:
        if isinstance(err, PlanError):
            raise
        raise PlanError(f'invalid LoadBalancer pool "{pool}": {err}') from None


def _check_private(what: str, cidr: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(cidr, strict=False)
    except ValueError as err:
        raise PlanError(f'invalid {what} "{cidr}": {err}') from None
    # The lab only ever creates addresses that stay on this machine; a public
    # range would shadow real destinations.
    if not net.is_private:
        raise PlanError(f'invalid {what} "{cidr}": must be a private range (e.g. 10.96.0.0/16)')
    return net


def make_plan(
    name: str,
    index: int,
    nodes: int = 3,
    preset: str = "lab",
    service_cidr: str = DEFAULT_SERVICE_CIDR,
    lb_pool: str | None = None,
    state_root: str = DEFAULT_STATE_ROOT,
    run_root: str = DEFAULT_RUN_ROOT,
    control_planes: int = 1,
) -> LabPlan:
    validate_name(name)
    if not 1 <= control_planes <= MAX_CONTROLPLANES or control_planes % 2 == 0:
        raise PlanError(f"--control-planes must be an odd number between 1 and {MAX_CONTROLPLANES} "
                        f"(etcd needs a majority of its members), not {control_planes}")
    if not 0 <= index < MAX_LABS:
        raise PlanError(f"lab index {index} out of range 0..{MAX_LABS - 1}")
    if not 1 <= nodes <= MAX_NODES:
        raise PlanError(f"--nodes must be between 1 and {MAX_NODES}, not {nodes}")
    if preset not in PRESETS:
        raise PlanError(f'Unsupported value: "{preset}": supported values: "lab", "kubernetes"')
    svc = _check_private("service CIDR", service_cidr)
    subnet = ipaddress.IPv4Network(f"10.231.{index}.0/24")
    if svc.overlaps(ipaddress.IPv4Network(LAB_NET)) or svc.overlaps(ipaddress.IPv4Network(DOCKER_NET)):
        raise PlanError(f'invalid service CIDR "{service_cidr}": overlaps the lab\'s own {LAB_NET} or {DOCKER_NET}')
    pool = f"10.231.{index}.192/27" if lb_pool is None else lb_pool
    cidrs = lb_cidrs(pool)
    for c in cidrs:
        net = _check_private("LoadBalancer pool", c)
        if net.overlaps(svc):
            raise PlanError(f'invalid LoadBalancer pool "{pool}": overlaps the service CIDR {svc}')
    state_dir = f"{state_root.rstrip('/')}/{name}"
    run_dir = f"{run_root.rstrip('/')}/{name}"
    prefix = f"pklab{index}"
    node_plans = tuple(
        NodePlan(
            name=f"node-{i}",
            index=i,
            netns=f"{prefix}-node-{i}",
            ip=str(subnet.network_address + 10 + i),
            port=f"node-{i}",
            bip=f"10.232.{index * 32 + i}.1/24",
            state_dir=f"{state_dir}/nodes/node-{i}",
            run_dir=f"{run_dir}/node-{i}",
        )
        for i in range(1, nodes + 1)
    )
    if control_planes == 1:
        cps: tuple[ControlPlanePlan, ...] = (ControlPlanePlan(
            "controlplane", str(subnet.network_address + 1), f"{state_dir}/controlplane",
            f"{run_dir}/controlplane.pid", f"{state_dir}/logs/controlplane.log"),)
        members: tuple[EtcdMemberPlan, ...] = (EtcdMemberPlan(
            "etcd", f"pklab-{name}", f"{state_dir}/etcd", f"{run_dir}/etcd.pid", f"{state_dir}/logs/etcd.log"),)
    else:
        cps = tuple(ControlPlanePlan(
            f"cp-{i}", str(subnet.network_address + i), f"{state_dir}/controlplanes/cp-{i}",
            f"{run_dir}/cp-{i}.pid", f"{state_dir}/logs/cp-{i}.log") for i in range(1, control_planes + 1))
        members = tuple(EtcdMemberPlan(
            f"etcd-{i}", f"etcd-{i}", f"{state_dir}/etcd/etcd-{i}", f"{run_dir}/etcd-{i}.pid",
            f"{state_dir}/logs/etcd-{i}.log") for i in range(1, control_planes + 1))
    return LabPlan(
        name=name,
        index=index,
        preset=preset,
        subnet=str(subnet),
        gateway=str(subnet.network_address + 1),
        uplink=prefix,
        switch_ns=prefix,
        bridge=prefix,
        service_cidr=str(svc),
        lb_pool=pool,
        lb_cidrs=cidrs,
        route_table=ROUTE_TABLE_BASE + index,
        state_dir=state_dir,
        run_dir=run_dir,
        nodes=node_plans,
        controlplanes=cps,
        etcd_members=members,
    )


def free_index(used: set[int]) -> int:
    """The lowest lab index not in used."""
    for i in range(MAX_LABS):
        if i not in used:
            return i
    raise PlanError(f"too many labs on this machine (at most {MAX_LABS}): remove one with `pkctl lab down --name NAME`")
