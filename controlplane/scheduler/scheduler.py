"""The scheduler loop: binds every unscheduled pod to a node.

    pods informer ──(unbound pod)──▶ queue ──▶ filter ─▶ score ─▶ assume ─▶ bind (CAS)
    nodes informer ─▶ node snapshot (NodeInfo: requested cpu/mem, ports, owners)

The scheduler is a Controller (controllers/base.py) with one worker: one
decision at a time (as kube-scheduler), so each decision sees every
earlier one: a chosen node is charged for the pod at once ("assumed")
before the bind write returns. Binds run in the background, batched: the
decisions made while earlier Bind calls are in flight go together in the
next one (one RPC and one store write for many pods). A failed bind
(Conflict: the pod was replaced, is being deleted or already bound;
NotFound: it is gone) forgets the assumption and requeues the pod. The
decision itself is the pure pkapi.scheduling.schedule() over the snapshot.

Unschedulable pods get PodScheduled=False/Unschedulable with
kube-scheduler's message and a FailedScheduling event, and wait in an
"unschedulable" set that is flushed back into the queue whenever a node is
added or changes, or a bound pod goes away (so capacity may have freed),
and at least every 30 s (the controller's background work).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from controlplane.controllers.base import Controller, SharedInformers
from pkapi import meta, scheduling
from pkapi.client.events import EventRecorder
from pkapi.client.informer import Informer
from pkapi.client.workqueue import WorkQueue
from pkapi.errors import ApiError, is_not_found
from pkapi.scheduling import NodeInfo, PodInfo

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"
FLUSH_INTERVAL = 30.0
# Pods decided but not yet bound, at most (the loop waits beyond this).
MAX_INFLIGHT_BINDS = 256
# Bind calls in flight, and pods per call.
MAX_BIND_CALLS = 4
MAX_BIND_BATCH = 100


def _responsible(pod: Any) -> bool:
    return pod.spec.scheduler_name in ("", SCHEDULER_NAME)


def needs_scheduling(pod: Any) -> bool:
    return (not pod.spec.node_name and _responsible(pod)
            and not pod.metadata.HasField("deletion_timestamp")
            and pod.status.phase not in ("Succeeded", "Failed"))


def _counts(pod: Any) -> bool:
    """Does a bound pod use its node's resources?"""
    return bool(pod.spec.node_name) and pod.status.phase not in ("Succeeded", "Failed")


class Scheduler(Controller):
    name = "scheduler"
    workers = 1  # one decision at a time: each sees every earlier one

    def __init__(self, client: Any, pods: Informer, nodes: Informer) -> None:
        super().__init__()
        self.client = client
        self.pods = pods
        self.nodes = nodes
        self.informers = [pods, nodes]
        self.queue = WorkQueue(name=self.name, base_delay=0.05, max_delay=10.0)
        self.recorder = EventRecorder(client, SCHEDULER_NAME)
        self.snapshot: dict[str, NodeInfo] = {}
        self.node_order: list[str] = []
        # pod key -> (node, PodInfo) charged to that node (bound or assumed)
        self.charged: dict[str, tuple[str, PodInfo]] = {}
        self.by_node: dict[str, dict[str, PodInfo]] = {}
        self.assumed: set[str] = set()
        self.unschedulable: set[str] = set()
        self.next_start = 0
        self.bound = 0
        self._binds: set[asyncio.Task[None]] = set()
        self._bind_slots = asyncio.Semaphore(MAX_INFLIGHT_BINDS)
        self._to_bind: list[tuple[Any, str, str]] = []  # (pod, key, node) decided, not yet sent
        self._bind_calls = 0
        pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        nodes.add_handler(on_add=self._node_changed, on_update=lambda o, n: self._node_changed(n),
                          on_delete=self._node_deleted)

    # -------------------------------------------------------------- cache

    def _node_changed(self, node: Any) -> None:
        name = node.metadata.name
        fresh = scheduling.node_info(node)
        for info in self.by_node.get(name, {}).values():
            fresh.add(info)
        if name not in self.snapshot:
            self.node_order.append(name)
        self.snapshot[name] = fresh
        self._flush_unschedulable()

    def _node_deleted(self, node: Any) -> None:
        name = node.metadata.name
        self.snapshot.pop(name, None)
        if name in self.node_order:
            self.node_order.remove(name)

    def _charge(self, key: str, node: str, info: PodInfo) -> None:
        self._uncharge(key)
        self.charged[key] = (node, info)
        self.by_node.setdefault(node, {})[key] = info
        ni = self.snapshot.get(node)
        if ni is not None:
            ni.add(info)

    def _uncharge(self, key: str) -> None:
        prev = self.charged.pop(key, None)
        if prev is not None:
            self.by_node.get(prev[0], {}).pop(key, None)
            ni = self.snapshot.get(prev[0])
            if ni is not None:
                ni.remove(prev[1])

    def _pod_added(self, pod: Any) -> None:
        key = meta.ns_name(pod)
        if _counts(pod):
            self.assumed.discard(key)
            if self.charged.get(key, ("",))[0] != pod.spec.node_name:
                self._charge(key, pod.spec.node_name, scheduling.pod_info(pod))
        elif needs_scheduling(pod):
            self.queue.add(key)

    def _pod_updated(self, old: Any, new: Any) -> None:
        key = meta.ns_name(new)
        if _counts(new):
            self.assumed.discard(key)
            self.unschedulable.discard(key)
            if self.charged.get(key, ("",))[0] != new.spec.node_name:
                self._charge(key, new.spec.node_name, scheduling.pod_info(new))
        else:
            if key in self.charged and key not in self.assumed:
                self._uncharge(key)
                self._flush_unschedulable()
            if needs_scheduling(new) and key not in self.unschedulable:
                self.queue.add(key)

    def _pod_deleted(self, pod: Any) -> None:
        key = meta.ns_name(pod)
        self.unschedulable.discard(key)
        self.assumed.discard(key)
        if key in self.charged:
            self._uncharge(key)
            self._flush_unschedulable()

    def _flush_unschedulable(self) -> None:
        for key in self.unschedulable:
            self.queue.add_after(key, 0.05)
        self.unschedulable.clear()

    # ---------------------------------------------------------------- run

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            for t in list(self._binds):
                t.cancel()

    def background(self) -> Any:
        return self._periodic_flush()

    async def _periodic_flush(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            log.debug("scheduler: %d bound, %d queued, %d binding, %d unschedulable",
                      self.bound, len(self.queue), len(self._binds), len(self.unschedulable))
            if time.monotonic() - last >= FLUSH_INTERVAL:
                last = time.monotonic()
                self._flush_unschedulable()

    async def sync(self, key: object) -> None:
        """Schedule one pod: decide, assume, and queue its bind."""
        key = str(key)
        ns, name = meta.split_key(key)
        pod = self.pods.get(ns, name)
        if pod is None or not needs_scheduling(pod) or key in self.assumed:
            return
        info = scheduling.pod_info(pod)
        nodes = [self.snapshot[n] for n in self.node_order]
        d = scheduling.schedule(info, nodes, self.next_start)
        self.next_start = d.next_start
        if d.node is None:
            self.unschedulable.add(key)
            await self._mark_unschedulable(pod, d.message)
            return
        self.assumed.add(key)
        self._charge(key, d.node, info)
        await self._bind_slots.acquire()
        self._to_bind.append((pod, key, d.node))
        if self._bind_calls < MAX_BIND_CALLS:
            self._bind_calls += 1
            task = asyncio.get_running_loop().create_task(self._binder())
            self._binds.add(task)
            task.add_done_callback(self._binds.discard)

    async def binds_sent(self) -> None:
        """Wait until every decision made so far has had its Bind call
        answered (and its outcome applied)."""
        while self._binds:
            await asyncio.gather(*self._binds, return_exceptions=True)

    async def _binder(self) -> None:
        """Send the decisions queued when this task runs, and those queued
        meanwhile, MAX_BIND_BATCH per Bind call, until none are left."""
        try:
            while self._to_bind:
                batch = self._to_bind[:MAX_BIND_BATCH]
                del self._to_bind[:MAX_BIND_BATCH]
                await self._bind(batch)
        finally:
            self._bind_calls -= 1

    async def _bind(self, batch: list[tuple[Any, str, str]]) -> None:
        try:
            results: list[Any] = await self.client.bind([(pod, node) for pod, _, node in batch])
        except asyncio.CancelledError:
            for _ in batch:
                self._bind_slots.release()
            raise
        except Exception as err:  # noqa: BLE001 - the API is unreachable: every item failed
            results = [err] * len(batch)
        for (_, key, node), out in zip(batch, results, strict=True):
            self._bind_slots.release()
            if isinstance(out, BaseException):
                # The pod changed or vanished, or the API is unreachable:
                # undo the assumption and decide again from fresh state.
                if key in self.assumed:
                    self.assumed.discard(key)
                    self._uncharge(key)
                if not (is_not_found(out)):
                    log.info("binding %s to %s: %s; retrying", key, node, out)
                    self.queue.add_rate_limited(key)
                continue
            self.bound += 1
            # PodScheduled=True is written by the node's agent with the pod's
            # first status (agent/pods/status.py): one write less per pod.
            self.recorder.event(out, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")

    async def _set_scheduled_condition(self, key: str, status: str, reason: str, message: str,
                                       cur: Any = None) -> None:
        ns, name = meta.split_key(key)
        if cur is None:
            cur = self.pods.get(ns, name)
            if cur is None:
                return
        new = meta.copy(cur)
        if not meta.set_condition(new.status.conditions, "PodScheduled", status, reason, message, now=time.time()):
            return
        try:
            await self.client.update_status(new)  # CAS: a changed pod is looked at again anyway
        except ApiError as err:
            log.debug("pod %s condition: %s", key, err)

    async def _mark_unschedulable(self, pod: Any, message: str) -> None:
        key = meta.ns_name(pod)
        self.recorder.event(pod, "Warning", "FailedScheduling", message)
        cond = meta.condition(pod.status.conditions, "PodScheduled")
        if cond is not None and (cond.status, cond.reason, cond.message) == ("False", "Unschedulable", message):
            return
        await self._set_scheduled_condition(key, "False", "Unschedulable", message)


def new(client: Any, config: Any, informers: SharedInformers) -> Scheduler:
    return Scheduler(client, informers.informer("pods"), informers.informer("nodes"))
