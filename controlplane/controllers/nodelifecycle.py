"""Node lifecycle controller: notices dead nodes and evicts their pods.

Liveness is judged by when THIS process last saw each node's Lease
(kube-node-lease/<node>) change, on its own monotonic clock; node and
control-plane wall clocks never enter into it. On becoming leader every
known node is given a fresh grace period (as kube-controller-manager
does), so a failover never evicts healthy nodes.

Every tick (a quarter of the grace period, at most 1 s):
  - a node not seen for --node-grace-period: Ready=Unknown
    (NodeStatusUnknown), taint node.kubernetes.io/unreachable:NoExecute,
    an event NodeNotReady, and each of its pods' Ready condition set False
    at once (so the endpoints controller drops them from Services);
  - each pod on an unreachable node is deleted (grace 0: its agent is gone
    and cannot confirm a graceful stop) once its toleration of the taint
    has run out (tolerationSeconds, or --default-unreachable-toleration
    when no toleration matches), with a TaintManagerEviction event; its
    ReplicaSet then creates a replacement, which the scheduler places on a
    live node (the taint keeps it off the dead one);
  - a node seen again: the taint goes and Ready turns True; its returning
    agent removes the containers of pods that were replaced (their pod
    objects no longer exist), so no duplicate remains.

Concurrency: one task runs the ticks; the informers' handlers only record
timestamps, so there is no shared mutable state between tasks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from controlplane.controllers.base import SharedInformers
from pkapi import meta, scheduling
from pkapi.client.events import EventRecorder
from pkapi.errors import ApiError, is_not_found
from pkapi.meta import copy

log = logging.getLogger(__name__)

NODE_LEASE_NS = "kube-node-lease"


def node_index(pod: Any) -> list[str]:
    return [pod.spec.node_name] if pod.spec.node_name else []


class NodeLifecycleController:
    name = "nodelifecycle"

    def __init__(self, client: Any, config: Any, informers: SharedInformers) -> None:
        self.client = client
        self.grace = float(config.node_grace_period)
        self.default_toleration = int(config.default_unreachable_toleration)
        self.nodes = informers.informer("nodes")
        self.leases = informers.informer("leases", NODE_LEASE_NS)
        self.pods = informers.informer("pods")
        self.pods.add_index("node", node_index)
        self.recorder = EventRecorder(client, "node-controller")
        self.last_seen: dict[str, float] = {}
        # pod key -> monotonic time the unreachable taint was seen on its node
        self.tainted_since: dict[str, float] = {}
        # node name -> when we first saw pods bound to it but no such Node
        self.missing_since: dict[str, float] = {}
        self.leases.add_handler(on_add=self._lease_seen, on_update=self._lease_updated)
        self.nodes.add_handler(on_add=self._node_added)

    def _lease_seen(self, lease: Any) -> None:
        self.last_seen[lease.metadata.name] = time.monotonic()

    def _lease_updated(self, old: Any, new: Any) -> None:
        if old.metadata.resource_version != new.metadata.resource_version:
            self.last_seen[new.metadata.name] = time.monotonic()

    def _node_added(self, node: Any) -> None:
        # A node we have never seen a lease for gets one grace period.
        self.last_seen.setdefault(node.metadata.name, time.monotonic())

    async def run(self) -> None:
        for inf in (self.nodes, self.leases, self.pods):
            await inf.wait_synced(None)
        now = time.monotonic()
        for node in self.nodes.list():
            self.last_seen[node.metadata.name] = now  # fresh grace on taking over
        tick = min(1.0, max(self.grace / 4, 0.05))
        while True:
            try:
                await self.monitor()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("node lifecycle: %r", err)
            await asyncio.sleep(tick)

    async def monitor(self) -> None:
        now = time.monotonic()
        await self._collect_orphans(now)
        for node in self.nodes.list():
            name = node.metadata.name
            seen = self.last_seen.get(name, now)
            try:
                if now - seen > self.grace:
                    node = await self._unreachable(node)
                    await self._evict(node, now)
                else:
                    await self._reachable(node)
            except ApiError as err:
                # A Conflict with the agent's own writes: the next tick
                # starts from the fresher cache. Other nodes go on.
                log.debug("node lifecycle %s: %s", name, err)

    # ------------------------------------------------------------ unreachable

    def _taint(self, node: Any) -> Any | None:
        for t in node.spec.taints:
            if t.key == scheduling.UNREACHABLE_TAINT and t.effect == "NoExecute":
                return t
        return None

    async def _unreachable(self, node: Any) -> Any:
        """Mark the node and its pods; returns the node as last written."""
        name = node.metadata.name
        ready = meta.condition(node.status.conditions, "Ready")
        if ready is None or ready.status != "Unknown":
            new = copy(node)
            meta.set_condition(new.status.conditions, "Ready", "Unknown", "NodeStatusUnknown",
                               "Kubelet stopped posting node status.", now=time.time())
            new.metadata.resource_version = ""
            node = await self.client.update_status(new)
            self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            log.info("node %s: no heartbeat for %.1fs: NotReady", name, self.grace)
        if self._taint(node) is None:
            new = copy(node)
            t = new.spec.taints.add(key=scheduling.UNREACHABLE_TAINT, effect="NoExecute")
            t.time_added.seconds = int(time.time())
            node = await self.client.update(new)
        # Pods on it are not ready any more, whatever they last reported.
        for pod in self.pods.by_index("node", name):
            if pod.metadata.HasField("deletion_timestamp"):
                continue
            c = meta.condition(pod.status.conditions, "Ready")
            if c is not None and c.status == "False":
                continue
            new_pod = copy(pod)
            c = meta.condition(new_pod.status.conditions, "Ready")
            if c is None:
                c = new_pod.status.conditions.add(type="Ready")
            c.status = "False"
            c.reason = "NodeLost"
            c.message = f"Node {name} is unreachable"
            c.last_transition_time.seconds = int(time.time())
            try:
                await self.client.update_status(new_pod)
            except ApiError as err:
                if err.reason not in ("Conflict", "NotFound"):
                    raise
        return node

    async def _evict(self, node: Any, now: float) -> None:
        taint = self._taint(node)
        if taint is None:
            return
        for pod in self.pods.by_index("node", node.metadata.name):
            key = meta.ns_name(pod)
            if pod.status.phase in ("Succeeded", "Failed"):
                continue
            since = self.tainted_since.setdefault(key, now)
            secs = scheduling.toleration_seconds(pod.spec.tolerations, taint, self.default_toleration)
            if secs is None or now - since < secs:
                continue
            try:
                await self.client.delete("pods", pod.metadata.namespace, pod.metadata.name,
                                         grace_period_seconds=0, uid=pod.metadata.uid)
            except ApiError as err:
                if err.reason not in ("NotFound", "Conflict"):
                    raise
                continue
            self.tainted_since.pop(key, None)
            self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
            log.info("node %s unreachable: evicted pod %s", node.metadata.name, key)

    # -------------------------------------------------------------- reachable

    async def _reachable(self, node: Any) -> None:
        name = node.metadata.name
        for key in [k for k in self.tainted_since if self._pod_node(k) in (name, None)]:
            self.tainted_since.pop(key, None)
        ready = meta.condition(node.status.conditions, "Ready")
        if ready is None or ready.status == "Unknown":
            new = copy(node)
            meta.set_condition(new.status.conditions, "Ready", "True", "KubeletReady",
                               "kubelet is posting ready status", now=time.time())
            new.metadata.resource_version = ""
            node = await self.client.update_status(new)
            if ready is not None:
                self.recorder.event(node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady")
        if self._taint(node) is not None:
            new = copy(node)
            keep = [t for t in new.spec.taints if t.key != scheduling.UNREACHABLE_TAINT]
            del new.spec.taints[:]
            new.spec.taints.extend(keep)
            await self.client.update(new)
            log.info("node %s is back: taint removed", name)

    async def _collect_orphans(self, now: float) -> None:
        """PodGC's orphan rule: pods bound to a node that no longer exists
        (deleted with `pkctl delete node`) are deleted with grace 0, after
        the node has been missing from our cache for a grace period and a
        live GET confirms it is gone (the caches of nodes and pods are not
        mutually ordered)."""
        for name in list(self._pod_nodes()):
            if self.nodes.get("", name) is not None:
                self.missing_since.pop(name, None)
                continue
            since = self.missing_since.setdefault(name, now)
            if now - since < self.grace:
                continue
            try:
                await self.client.get("nodes", "", name)
                continue  # it exists: our cache lags
            except ApiError as err:
                if not is_not_found(err):
                    raise
            for pod in self.pods.by_index("node", name):
                try:
                    await self.client.delete("pods", pod.metadata.namespace, pod.metadata.name,
                                             grace_period_seconds=0, uid=pod.metadata.uid)
                    log.info("pod %s: its node %s is gone; deleted", meta.ns_name(pod), name)
                except ApiError as err:
                    if err.reason not in ("NotFound", "Conflict"):
                        raise
            self.missing_since.pop(name, None)

    def _pod_nodes(self) -> list[str]:
        return [v for v in self.pods.index_values("node") if v]

    def _pod_node(self, key: str) -> str | None:
        pod = self.pods.get(*meta.split_key(key))
        return pod.spec.node_name if pod is not None else None


def new(client: Any, config: Any, informers: SharedInformers) -> NodeLifecycleController:
    return NodeLifecycleController(client, config, informers)

