"""What this node's proxy should do, computed from Services and Endpoints.

Pure: no I/O. proxier.py feeds it the informer caches and applies the
difference (listeners, addresses); tests call it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pkapi.v1 import core_pb2

LB_NODE_ANNOTATION = "pocketkube.io/lb-node"
# sessionAffinity ClientIP without timeoutSeconds (Kubernetes' default).
DEFAULT_AFFINITY_TIMEOUT = 10800

ListenKey = tuple[str, int, str]  # (ip, port, "TCP"|"UDP")


@dataclass(frozen=True)
class ListenSpec:
    service: str  # "ns/name"
    port_name: str
    backends: tuple[tuple[str, int], ...]
    affinity_timeout: int | None  # None: no ClientIP affinity


@dataclass
class Desired:
    listeners: dict[ListenKey, ListenSpec]
    cluster_ips: set[str]  # to put on the loopback device
    lb_ips: set[str]  # LoadBalancer addresses this node holds


def backends_for(ep: core_pb2.Endpoints | None, port_name: str, protocol: str) -> tuple[tuple[str, int], ...]:
    """Ready (ip, port) pairs of the Endpoints for one Service port, in a
    stable order (so an unchanged set does not disturb round robin)."""
    if ep is None:
        return ()
    out: list[tuple[str, int]] = []
    for subset in ep.subsets:
        for p in subset.ports:
            if p.name == port_name and (p.protocol or "TCP") == protocol:
                out.extend((a.ip, p.port) for a in subset.addresses if a.ip)
    return tuple(sorted(set(out)))


def affinity_of(svc: core_pb2.Service) -> int | None:
    if svc.spec.session_affinity != "ClientIP":
        return None
    cfg = svc.spec.session_affinity_config.client_ip
    if cfg.HasField("timeout_seconds") and cfg.timeout_seconds > 0:
        return int(cfg.timeout_seconds)
    return DEFAULT_AFFINITY_TIMEOUT


def compute(
    services: Iterable[core_pb2.Service],
    endpoints: dict[tuple[str, str], core_pb2.Endpoints],
    node_name: str,
    node_ip: str,
) -> Desired:
    listeners: dict[ListenKey, ListenSpec] = {}
    cluster_ips: set[str] = set()
    lb_ips: set[str] = set()
    for svc in services:
        t = svc.spec.type or "ClusterIP"
        if t == "ExternalName":
            continue
        ns, name = svc.metadata.namespace, svc.metadata.name
        key = f"{ns}/{name}"
        cip = svc.spec.cluster_ip
        has_cip = bool(cip) and cip != "None"
        if has_cip:
            cluster_ips.add(cip)
        held: list[str] = []
        if t == "LoadBalancer" and svc.metadata.annotations.get(LB_NODE_ANNOTATION) == node_name:
            held = [i.ip for i in svc.status.load_balancer.ingress if i.ip]
            lb_ips.update(held)
        ep = endpoints.get((ns, name))
        aff = affinity_of(svc)
        for sp in svc.spec.ports:
            proto = sp.protocol or "TCP"
            if proto not in ("TCP", "UDP"):
                continue
            spec = ListenSpec(key, sp.name, backends_for(ep, sp.name, proto), aff)
            if has_cip:
                listeners[(cip, sp.port, proto)] = spec
            if t in ("NodePort", "LoadBalancer") and sp.node_port and node_ip:
                listeners[(node_ip, sp.node_port, proto)] = spec
            for ip in held:
                listeners[(ip, sp.port, proto)] = spec
    return Desired(listeners, cluster_ips, lb_ips)
