"""The lab's network, built and removed with iproute2 (`ip`).

Topology (see plan.py for the addresses):

    host namespace                switch namespace pklabK         node namespace pklabK-node-i
    pklabK 10.231.K.1/24  <veth>  uplink --[bridge pklabK]-- node-i  <veth>  eth0 10.231.K.(10+i)/24

The bridge lives in a namespace of its own, not in the host's: with
br_netfilter loaded (Docker loads it) bridged frames traverse the host's
iptables FORWARD chain, whose policy Docker sets to DROP, so nodes could not
reach each other. In its own namespace the bridge sees an empty netfilter
ruleset, and the lab needs no iptables rule on the host.

Containment (nothing the lab does may head for an address off this machine),
installed before any process of the lab runs:
  - host: an `ip rule` sends every packet that arrives from the lab (iif
    pklabK) to table 23100+K, which knows only the lab subnet and the LB pool
    and is `unreachable` for everything else, so the host never forwards lab
    traffic anywhere; the service CIDR is `unreachable` in the main table
    (ClusterIPs exist only on the nodes' loopbacks); the LB pool is routed
    onto the lab link.
  - nodes: default route via the host end (where the rule above stops
    anything not for the lab), the service CIDR `unreachable` (ClusterIPs are
    local addresses on lo, which the local table finds first), the LB pool on
    the lab link.
  - IPv6 is disabled on every lab interface and namespace.

Every operation is idempotent (adding what exists, or removing what is gone,
is not an error), so `up` can resume and `down` can be repeated after a
crash. Single-threaded: one pkctl process changes a lab at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from cli.lab.plan import RULE_PRIORITY, LabPlan, NodePlan

NETNS_DIR = "/var/run/netns"


class NetError(RuntimeError):
    """An `ip` command failed; str() names the command and its error."""


def run(args: list[str], check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, input=input, timeout=30)
    if check and proc.returncode != 0:
        raise NetError(f"`{' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _ip(*args: str, ns: str | None = None, ok_if: tuple[str, ...] = ()) -> None:
    """`ip [-n ns] ARGS`; errors whose text contains one of ok_if are the
    idempotent cases ("File exists", "Cannot find device"...)."""
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    proc = run(cmd, check=False)
    if proc.returncode != 0:
        err = proc.stderr.strip()
        if any(s in err for s in ok_if):
            return
        raise NetError(f"`{' '.join(cmd)}` failed: {err}")


EXISTS = ("File exists", "exists", "already assigned")
GONE = ("Cannot find device", "No such process", "does not exist", "No such file or directory", "Cannot find")


def netns_exists(name: str) -> bool:
    return os.path.exists(f"{NETNS_DIR}/{name}")


def link_exists(name: str, ns: str | None = None) -> bool:
    if ns and not netns_exists(ns):
        return False
    cmd = ["ip"] + (["-n", ns] if ns else []) + ["link", "show", "dev", name]
    return run(cmd, check=False).returncode == 0


def link_is_up(name: str, ns: str | None = None) -> bool:
    cmd = ["ip", "-j"] + (["-n", ns] if ns else []) + ["link", "show", "dev", name]
    proc = run(cmd, check=False)
    if proc.returncode != 0:
        return False
    try:
        info = json.loads(proc.stdout)[0]
    except (ValueError, IndexError):
        return False
    return "UP" in info.get("flags", [])


def _sysctl(ns: str | None, key: str, value: str) -> None:
    """Write /proc/sys/KEY in namespace ns (sysctl values under net/ are per
    network namespace); nsenter keeps the host's mounts, unlike `ip netns exec`."""
    path = "/proc/sys/" + key.replace(".", "/")
    if ns is None:
        with open(path, "w") as f:
            f.write(value)
        return
    run(["nsenter", f"--net={NETNS_DIR}/{ns}", "--", "sh", "-c", f"echo {value} > {path}"])


def add_netns(name: str) -> None:
    if not netns_exists(name):
        _ip("netns", "add", name, ok_if=EXISTS)
    # no IPv6 anywhere in the lab: no router solicitations, no MLD, nothing to route
    _sysctl(name, "net.ipv6.conf.all.disable_ipv6", "1")
    _sysctl(name, "net.ipv6.conf.default.disable_ipv6", "1")


def del_netns(name: str) -> None:
    if netns_exists(name):
        _ip("netns", "del", name, ok_if=GONE)


# ----------------------------------------------------------------- routing


def install_containment(plan: LabPlan) -> None:
    """The host side of containment that needs no lab interface: the policy
    rule and table for traffic from the lab, and the unreachable service
    CIDR. Runs first in `up`, before any link or process exists."""
    table = str(plan.route_table)
    _ip("route", "add", "unreachable", "default", "table", table, ok_if=EXISTS)
    if not _rule_exists(plan):
        _ip("rule", "add", "pref", str(RULE_PRIORITY + plan.index), "iif", plan.uplink, "lookup", table, ok_if=EXISTS)
    _ip("route", "add", "unreachable", plan.service_cidr, ok_if=EXISTS)


def _rule_exists(plan: LabPlan) -> bool:
    proc = run(["ip", "-j", "rule", "show", "pref", str(RULE_PRIORITY + plan.index)], check=False)
    try:
        return bool(json.loads(proc.stdout or "[]"))
    except ValueError:
        return False


def remove_containment(plan: LabPlan, service_cidr_shared: bool) -> None:
    _ip("rule", "del", "pref", str(RULE_PRIORITY + plan.index), ok_if=GONE)
    _ip("route", "flush", "table", str(plan.route_table), ok_if=GONE)
    for cidr in plan.lb_cidrs:
        _ip("route", "del", cidr, "dev", plan.uplink, ok_if=GONE)
    if not service_cidr_shared:
        _ip("route", "del", "unreachable", plan.service_cidr, ok_if=GONE)


def subnet_in_use(cidr: str) -> bool:
    """Does any route of the host (any table, but the default route) overlap
    cidr? A lab must not shadow or share an existing network."""
    import ipaddress

    net = ipaddress.ip_network(cidr)
    proc = run(["ip", "-j", "-4", "route", "show", "table", "all"], check=False)
    try:
        routes = json.loads(proc.stdout or "[]")
    except ValueError:
        return False
    for r in routes:
        dst = r.get("dst", "")
        if not dst or dst == "default":
            continue
        try:
            other = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if other.prefixlen > 0 and other.overlaps(net):
            return True
    return False


def route_exists(dest: str, ns: str | None = None, table: str | None = None) -> bool:
    cmd = ["ip", "-j"] + (["-n", ns] if ns else []) + ["route", "show", "exact", dest]
    if table:
        cmd += ["table", table]
    proc = run(cmd, check=False)
    try:
        return bool(json.loads(proc.stdout or "[]"))
    except ValueError:
        return False


# ----------------------------------------------------------------- switch


def create_switch(plan: LabPlan) -> None:
    """The switch namespace with its bridge, and the host's link into it."""
    sw = plan.switch_ns
    add_netns(sw)
    if not link_exists(plan.bridge, sw):
        _ip("link", "add", plan.bridge, "type", "bridge", ns=sw, ok_if=EXISTS)
    _ip("link", "set", plan.bridge, "up", ns=sw)
    if not link_exists(plan.uplink):
        _ip("link", "add", plan.uplink, "type", "veth", "peer", "name", "uplink", "netns", sw, ok_if=EXISTS)
    _sysctl(None, f"net.ipv6.conf.{plan.uplink}.disable_ipv6", "1")
    _ip("link", "set", "uplink", "master", plan.bridge, "up", ns=sw)
    _ip("addr", "add", f"{plan.gateway}/{plan.prefixlen}", "dev", plan.uplink, ok_if=EXISTS)
    for cp in plan.controlplanes:  # an HA lab's further control planes (10.231.K.2, ...)
        if cp.ip != plan.gateway:
            _ip("addr", "add", f"{cp.ip}/{plan.prefixlen}", "dev", plan.uplink, ok_if=EXISTS)
    _ip("link", "set", plan.uplink, "up")
    table = str(plan.route_table)
    _ip("route", "replace", plan.subnet, "dev", plan.uplink, "table", table)
    for cidr in plan.lb_cidrs:
        _ip("route", "replace", cidr, "dev", plan.uplink, "table", table)
        _ip("route", "replace", cidr, "dev", plan.uplink)


def remove_switch(plan: LabPlan) -> None:
    if link_exists(plan.uplink):
        _ip("link", "del", plan.uplink, ok_if=GONE)
    del_netns(plan.switch_ns)


# ------------------------------------------------------------------- nodes


def create_node(plan: LabPlan, node: NodePlan) -> None:
    ns = node.netns
    add_netns(ns)
    if not link_exists("eth0", ns):
        # One veth pair created straight into both namespaces: no interface
        # ever appears in the host namespace.
        if link_exists(node.port, plan.switch_ns):
            _ip("link", "del", node.port, ns=plan.switch_ns, ok_if=GONE)
        _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", node.port, "netns", plan.switch_ns)
    _ip("link", "set", node.port, "master", plan.bridge, "up", ns=plan.switch_ns)
    _ip("addr", "add", f"{node.ip}/{plan.prefixlen}", "dev", "eth0", ns=ns, ok_if=EXISTS)
    _ip("link", "set", "lo", "up", ns=ns)
    _ip("link", "set", "eth0", "up", ns=ns)
    _ip("route", "replace", "default", "via", plan.gateway, ns=ns)
    _ip("route", "replace", "unreachable", plan.service_cidr, ns=ns)
    for cidr in plan.lb_cidrs:
        _ip("route", "replace", cidr, "dev", "eth0", ns=ns)


def remove_node(plan: LabPlan, node: NodePlan) -> None:
    if link_exists(node.port, plan.switch_ns):
        _ip("link", "del", node.port, ns=plan.switch_ns, ok_if=GONE)
    del_netns(node.netns)


def set_partitioned(plan: LabPlan, node: NodePlan, partitioned: bool) -> None:
    """Cut (or restore) the node's cable: its switch port goes down, so the
    node keeps running but reaches nothing, and nothing reaches it."""
    _ip("link", "set", node.port, "down" if partitioned else "up", ns=plan.switch_ns)


def is_partitioned(plan: LabPlan, node: NodePlan) -> bool:
    return link_exists(node.port, plan.switch_ns) and not link_is_up(node.port, plan.switch_ns)


def drop_extra_addresses(node: NodePlan) -> list[str]:
    """Delete every IPv4 address of the node's eth0 but its own (the
    LoadBalancer addresses it held): a dead machine answers for nothing, so
    the address can move to a live node without a duplicate on the wire."""
    proc = run(["ip", "-j", "-n", node.netns, "-4", "addr", "show", "dev", "eth0"], check=False)
    try:
        infos = json.loads(proc.stdout or "[]")
    except ValueError:
        return []
    dropped = []
    for info in infos:
        for a in info.get("addr_info", []):
            if a.get("local") and a["local"] != node.ip:
                _ip("addr", "del", f"{a['local']}/{a.get('prefixlen', 32)}", "dev", "eth0", ns=node.netns, ok_if=GONE)
                dropped.append(a["local"])
    return dropped


def wait_gone(plan: LabPlan, timeout: float = 10.0) -> list[str]:
    """Namespace teardown is asynchronous in the kernel: wait until the lab's
    interfaces and namespaces are gone; returns what is left at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(plan)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def leftovers(plan: LabPlan) -> list[str]:
    """What of the lab's network still exists (for `down` and the tests)."""
    left = []
    if link_exists(plan.uplink):
        left.append(f"link {plan.uplink}")
    for ns in [plan.switch_ns] + [n.netns for n in plan.nodes]:
        if netns_exists(ns):
            left.append(f"namespace {ns}")
    if _rule_exists(plan):
        left.append(f"ip rule pref {RULE_PRIORITY + plan.index}")
    proc = run(["ip", "-j", "route", "show", "table", str(plan.route_table)], check=False)
    try:
        if proc.returncode == 0 and json.loads(proc.stdout or "[]"):
            left.append(f"routes in table {plan.route_table}")
    except ValueError:
        pass
    for cidr in plan.lb_cidrs:
        if route_exists(cidr):
            left.append(f"route {cidr}")
    return left
