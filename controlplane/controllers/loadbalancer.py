"""LoadBalancer holder controller: LoadBalancer addresses without a cloud.

The allocator (controlplane.apiserver.service_alloc) gives a LoadBalancer
Service an address from --lb-pool (status.loadBalancer.ingress). This
controller picks the one Ready node that holds it, recorded in the
annotation pocketkube.io/lb-node on the Service; that node's proxy puts
the address on its interface, sends a gratuitous ARP and serves it. When
the holder is no longer Ready (NotReady/Unknown: the node lifecycle
controller judged it dead) or is deleted, the address moves to another
Ready node within one sync.

It also retries pending LoadBalancer Services (no address: the pool was
exhausted) whenever an address may have been freed (a LoadBalancer
Service deleted or changed type), by writing the annotation
pocketkube.io/lb-retry, which sends the Service through the allocator
again.

Choice (pure, choose_holder): keep a Ready holder; otherwise the Ready node
holding the fewest LoadBalancer addresses, ties by name, so addresses
spread and the choice is deterministic.

Concurrency: the usual informer + work-queue pattern (controllers/base.py);
handlers only enqueue Service keys ("namespace/name"), and a retry request
is remembered beside the queue (`_retry`) until a sync of that key writes
it; one key is synced by one worker at a time, in one write; writes carry
the cached resourceVersion, a Conflict requeues.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from controlplane.controllers.base import Controller, SharedInformers
from pkapi import meta
from pkapi.meta import copy

log = logging.getLogger(__name__)

LB_NODE = "pocketkube.io/lb-node"
LB_RETRY = "pocketkube.io/lb-retry"


def node_ready(node: Any) -> bool:
    if node.metadata.HasField("deletion_timestamp"):
        return False
    c = meta.condition(node.status.conditions, "Ready")
    return c is not None and c.status == "True"


def choose_holder(current: str, ready_nodes: Iterable[str], load: dict[str, int]) -> str:
    """Pure. The node that should hold a LoadBalancer address ("" if none
    is Ready)."""
    ready = sorted(set(ready_nodes))
    if current in ready:
        return current
    if not ready:
        return ""
    return min(ready, key=lambda n: (load.get(n, 0), n))


class LoadBalancerController(Controller):
    name = "loadbalancer"
    workers = 1  # one worker: the load counts used for spreading stay consistent

    def __init__(self, client: Any, config: Any, informers: SharedInformers) -> None:
        super().__init__()
        self.client = client
        self.config = config
        self.services = informers.informer("services")
        self.nodes = informers.informer("nodes")
        # Pending Services whose next sync sends them through the allocator
        # again (an address may have been freed).
        self._retry: set[str] = set()
        self.informers = [self.services, self.nodes]
        self.services.add_handler(on_add=self._svc, on_update=self._svc_updated, on_delete=self._svc_deleted)
        self.nodes.add_handler(on_add=self._node, on_update=lambda o, n: self._node(n), on_delete=self._node)

    def _is_lb(self, svc: Any) -> bool:
        return bool(svc.spec.type == "LoadBalancer")

    def _svc(self, svc: Any) -> None:
        if self._is_lb(svc):
            self.queue.add(meta.ns_name(svc))

    def _svc_updated(self, old: Any, new: Any) -> None:
        self._svc(new)
        if self._is_lb(old) and (not self._is_lb(new) or not new.status.load_balancer.ingress):
            self._retry_pending()

    def _svc_deleted(self, svc: Any) -> None:
        if self._is_lb(svc) and svc.status.load_balancer.ingress:
            self._retry_pending()

    def _retry_pending(self) -> None:
        for s in self.services.list():
            if self._is_lb(s) and not s.status.load_balancer.ingress:
                key = meta.ns_name(s)
                self._retry.add(key)
                self.queue.add(key)

    def _node(self, _node: Any) -> None:
        for s in self.services.list():
            if self._is_lb(s):
                self.queue.add(meta.ns_name(s))

    async def started(self) -> None:
        self._node(None)
        self._retry_pending()  # the pool may have grown since they were created

    def _load(self, exclude: str) -> dict[str, int]:
        load: dict[str, int] = {}
        for s in self.services.list():
            if meta.ns_name(s) == exclude or not self._is_lb(s):
                continue
            holder = s.metadata.annotations.get(LB_NODE, "")
            if holder:
                load[holder] = load.get(holder, 0) + len(s.status.load_balancer.ingress)
        return load

    async def sync(self, key: object) -> None:
        key = str(key)
        retry = key in self._retry
        self._retry.discard(key)
        try:
            await self._sync(key, retry)
        except BaseException:
            if retry:
                self._retry.add(key)  # the requeued sync still owes the retry
            raise

    async def _sync(self, key: str, retry: bool) -> None:
        ns, name = meta.split_key(key)
        svc = self.services.get(ns, name)
        if svc is None or not self._is_lb(svc):
            return
        new = copy(svc)
        if retry and not svc.status.load_balancer.ingress:
            new.metadata.annotations[LB_RETRY] = str(int(new.metadata.annotations.get(LB_RETRY, "0") or 0) + 1)
        current = svc.metadata.annotations.get(LB_NODE, "")
        want = ""
        if svc.status.load_balancer.ingress:
            ready = [n.metadata.name for n in self.nodes.list() if node_ready(n)]
            want = choose_holder(current, ready, self._load(key))
        if want != current:
            if want:
                new.metadata.annotations[LB_NODE] = want
            else:
                new.metadata.annotations.pop(LB_NODE, None)
            log.info("LoadBalancer %s: %s now held by %s (was %s)", key,
                     ",".join(i.ip for i in svc.status.load_balancer.ingress), want or "nobody",
                     current or "nobody")
        if new != svc:
            await self.client.update(new)
