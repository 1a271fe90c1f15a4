"""Services: the allocator's clusterIP, nodePorts and load-balancer IP,
taken before the write and kept across updates and applies that omit them
(Kubernetes' patchAllocatedValues)."""

from __future__ import annotations

import logging

from google.protobuf.message import Message

from controlplane.apiserver.codec import same_stored
from controlplane.apiserver.service_alloc import ServiceAllocator
from controlplane.apiserver.strategy import ResetStatusStrategy
from pkapi import meta
from pkapi.v1 import core_pb2

log = logging.getLogger(__name__)


class ServiceStrategy(ResetStatusStrategy):
    # The allocator takes addresses outside the store's transaction, and
    # reads the old object to know what to give back.
    batch_create = False
    guess_from_cache = False

    def __init__(self, allocator: ServiceAllocator | None) -> None:
        self.allocator = allocator

    async def before_create(self, obj: Message, dry_run: bool) -> None:
        if self.allocator is not None:
            await self.allocator.on_create(_svc(obj), dry_run)

    async def create_failed(self, obj: Message) -> None:
        await self._release(obj)

    def prepare_update(self, old: Message, new: Message) -> None:
        # An update that omits clusterIP/nodePorts keeps the allocated ones.
        keep_allocations(old, new)

    async def before_update(self, old: Message, new: Message, dry_run: bool) -> None:
        if self.allocator is not None and not same_stored(old, new):
            await self.allocator.on_update(_svc(old), _svc(new), dry_run)

    def keep_on_apply(self, incoming: Message, new: Message, old: Message) -> None:
        keep_allocations(old, new)

    async def after_delete(self, obj: Message) -> None:
        await self._release(obj)

    async def _release(self, svc: Message) -> None:
        if self.allocator is None:
            return
        try:
            await self.allocator.on_delete(_svc(svc))
        except Exception:  # the allocator's repair loop reclaims leaks
            log.exception("releasing the allocations of %s", meta.ns_name(svc))


def _svc(msg: Message) -> core_pb2.Service:
    assert isinstance(msg, core_pb2.Service), type(msg)
    return msg


def keep_allocations(old: Message, new: Message) -> None:
    """Put the stored Service's clusterIP(s), IP families and nodePorts
    onto an update that omits them (a port keeps its nodePort when the
    port and protocol, or the name, match)."""
    o, n = _svc(old).spec, _svc(new).spec
    if n.type == "ExternalName":
        return  # an ExternalName Service has no clusterIP or ports to keep
    if not n.cluster_ip and o.cluster_ip:
        n.cluster_ip = o.cluster_ip
        if not n.cluster_ips:
            n.cluster_ips.extend(o.cluster_ips)
    if not n.ip_families and o.ip_families:
        n.ip_families.extend(o.ip_families)
    if not n.ip_family_policy and o.ip_family_policy:
        n.ip_family_policy = o.ip_family_policy
    if n.type in ("NodePort", "LoadBalancer") and o.type in ("NodePort", "LoadBalancer"):
        for p in n.ports:
            if p.node_port:
                continue
            for q in o.ports:
                if (q.port, q.protocol or "TCP") == (p.port, p.protocol or "TCP") or (p.name and q.name == p.name):
                    p.node_port = q.node_port
                    break
