"""PodManager: watches the pods bound to this node and runs a PodWorker per pod.

    mgr = PodManager(config, client, runtime, hooks)
    await mgr.run()

Sources of work, all of which only poke workers (cheap, synchronous):
  - an Informer on pods with fieldSelector spec.nodeName=<node> (list +
    watch, resuming from the last resourceVersion, relist on Expired,
    reconnect with backoff: pkapi.client.informer)
  - the runtime's container events for this node's containers (a container
    died -> its pod's worker re-syncs at once)
  - a periodic resync (every --resync-interval) of every pod, and garbage
    collection: containers labelled with this node whose pod is not bound
    here (deleted, or bound elsewhere while the agent was away) are removed.
    GC runs only once the informer has synced, so an agent that cannot
    reach the control plane never removes anything.

Start-up never gives up: an agent started before any control plane answers,
or across a control-plane restart, waits (the informer reconnects with
jittered back-off; the wait is logged every SYNC_LOG_EVERY seconds) and
carries on when the pods are listed. Containers already running are left
alone meanwhile and adopted then, not restarted.

Stops and removals of deleted pods' containers (workers' termination and
GC) pass through one TeardownGate (--max-parallel-teardowns at a time), so
a mass deletion does not delay new pods' starts in the engine.

Ordering: one worker per pod UID; a pod re-created under the same name is a
new UID and a new worker (the old one terminates its containers).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from agent.config import AgentConfig
from agent.hooks import PodHooks
from agent.pods import spec as podspec
from agent.pods.context import PodContext, PodTiming, RecorderEvents
from agent.pods.ports import PortAllocator
from agent.pods.teardown import TeardownGate
from agent.pods.worker import PodWorker
from agent.runtime.base import LABEL_CONTAINER, LABEL_NODE, LABEL_POD_UID, LABEL_PORTS, Runtime
from pkapi.client.informer import Informer
from pkapi.client.retry import RetryDelay
from pkapi.v1 import core_pb2

log = logging.getLogger(__name__)

# While the first list of this node's pods has not arrived, say so this often.
SYNC_LOG_EVERY = 10.0


class PodManager:
    def __init__(
        self,
        config: AgentConfig,
        client: Any,
        runtime: Runtime,
        hooks: PodHooks,
        recorder: Any = None,
        check_port_bind: bool = True,
    ) -> None:
        self.config = config
        self.client = client
        self.runtime = runtime
        self.hooks = hooks
        self.node_name = config.node_name
        self.node_ip = config.node_ip
        first, last = config.host_port_range
        self.ports = PortAllocator(config.node_ip, first, last, check_bind=check_port_bind)
        # Stops and removals of deleted pods' containers, a few at a time.
        self.teardown = TeardownGate(config.max_parallel_teardowns)
        self.workers: dict[str, PodWorker] = {}
        # What the workers see of the node.
        self.ctx = PodContext(
            runtime,
            client,
            self.ports,
            self.teardown,
            hooks,
            self.node_name,
            self.node_ip,
            event=RecorderEvents(recorder),
            timing=PodTiming.of(config),
        )
        self.informer = Informer(client, "pods", field_selector=f"spec.nodeName={config.node_name}")
        self.informer.add_handler(on_add=self._on_add, on_update=self._on_update, on_delete=self._on_delete)
        self._gc_soon = asyncio.Event()

    # ---------------------------------------------------------- handlers

    def _on_add(self, pod: core_pb2.Pod) -> None:
        uid = pod.metadata.uid
        w = self.workers.get(uid)
        if w is None:
            w = self.workers[uid] = PodWorker(self.ctx, uid, pod)
            w.rejected = self.admit(pod)
            w.task = asyncio.create_task(w.run(), name=f"pod-{pod.metadata.namespace}/{pod.metadata.name}")
            w.task.add_done_callback(functools.partial(self._worker_done, uid, w))
        else:
            prev, w.pod = w.pod, pod
            if (
                prev is not None
                and w.last_written is not None
                and pod.status == w.last_written
                and pod.spec == prev.spec
                and pod.metadata.deletion_timestamp == prev.metadata.deletion_timestamp
            ):
                return  # the echo of the worker's own status write: nothing to do
        w.poke()

    def admit(self, pod: core_pb2.Pod) -> str:
        """"" when the pod may run here, else why not (kubelet's admission for
        --max-pods). Pods that already ran here (containers exist, or a
        status says so) are always admitted, so a restarted agent keeps them."""
        if pod.status.phase in ("Succeeded", "Failed") or pod.status.container_statuses:
            return ""
        active = sum(
            1
            for w in self.workers.values()
            if not w.rejected and w.pod is not None and w.pod.status.phase not in ("Succeeded", "Failed")
        )
        # this pod's own worker is already in self.workers
        used = active - 1
        if used >= self.config.max_pods:
            return (
                f"Node didn't have enough resource: pods, requested: 1, used: {used}, capacity: {self.config.max_pods}"
            )
        return ""

    def _on_update(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        if old.metadata.uid != new.metadata.uid:
            self._on_delete(old)
        self._on_add(new)

    def _on_delete(self, pod: core_pb2.Pod) -> None:
        w = self.workers.get(pod.metadata.uid)
        if w is not None:
            w.pod = None
            w.poke()
        else:
            self._gc_soon.set()

    def _worker_done(self, uid: str, w: PodWorker, _task: object) -> None:
        if self.workers.get(uid) is w:
            del self.workers[uid]
        # A pod whose confirmation failed is still cached: it gets a new
        # worker on its next watch event or resync.

    # --------------------------------------------------------------- run

    async def run(self) -> None:
        await self._reserve_ports()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.informer.run(), name="pod-informer")
                tg.create_task(self._container_events(), name="container-events")
                tg.create_task(self._resync(), name="pod-resync")
        finally:
            for w in list(self.workers.values()):
                if w.task is not None:
                    w.task.cancel()

    async def _reserve_ports(self) -> None:
        """Host ports of containers that survived an agent restart stay taken."""
        delay = RetryDelay(0.5, 5.0)
        while True:
            try:
                states = await self.runtime.list_containers({LABEL_NODE: self.node_name})
                break
            except Exception as err:  # noqa: BLE001 - engine not up yet: wait for it
                wait = delay.next()
                log.warning("container runtime not reachable (%s); retrying in %.1fs", err, wait)
                await asyncio.sleep(wait)
        for st in states:
            for b in podspec.parse_ports_label(st.labels.get(LABEL_PORTS, "")):
                self.ports.reserve(b.host_port, b.protocol)

    async def _container_events(self) -> None:
        delay = RetryDelay(0.5, 5.0)
        while True:
            try:
                async for ev in self.runtime.events({LABEL_NODE: self.node_name}):
                    delay.reset()
                    uid = ev.labels.get(LABEL_POD_UID, "")
                    w = self.workers.get(uid)
                    if w is not None:
                        # Only what the worker did not do itself: its own
                        # create/start would just cost another sync each.
                        if ev.action in ("die", "destroy", "oom"):
                            w.poke()
                    elif ev.action in ("start", "create") and self.informer.synced:
                        self._gc_soon.set()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - reconnect to the engine
                log.warning("container event stream failed (%s); reconnecting", err)
            await asyncio.sleep(delay.next())
            for w in list(self.workers.values()):
                w.poke()  # events may have been missed

    async def wait_synced(self) -> None:
        """Wait, for as long as it takes, for the first list of this node's
        pods; an agent whose control plane is away or slow keeps waiting
        (and says so now and then), it never gives up."""
        waited = 0.0
        while True:
            try:
                await self.informer.wait_synced(SYNC_LOG_EVERY)
                return
            except TimeoutError:
                waited += SYNC_LOG_EVERY
                log.info(
                    "pods of node %s not listed yet after %.0fs (control plane at %s); still waiting",
                    self.node_name,
                    waited,
                    self.config.server,
                )

    async def _resync(self) -> None:
        await self.wait_synced()
        log.info("pods of node %s synced: %d", self.node_name, len(self.informer))
        while True:
            try:
                await self.gc()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - next round retries
                log.warning("container garbage collection failed: %s", err)
            # Re-create workers of cached pods that lost theirs (a failed
            # termination confirmation), then poke everyone.
            for pod in self.informer.list():
                if pod.metadata.uid not in self.workers:
                    self._on_add(pod)
            for w in list(self.workers.values()):
                w.poke()
            try:
                await asyncio.wait_for(self._gc_soon.wait(), self.config.resync_interval)
            except TimeoutError:
                pass
            self._gc_soon.clear()

    async def gc(self) -> None:
        """Remove this node's containers whose pod is not bound here."""
        bound = {p.metadata.uid for p in self.informer.list()}
        states = await self.runtime.list_containers({LABEL_NODE: self.node_name})
        for st in states:
            uid = st.labels.get(LABEL_POD_UID, "")
            if uid in bound or uid in self.workers:
                continue
            log.info(
                "removing container %s (%s): its pod %s is not bound to this node",
                st.name,
                st.labels.get(LABEL_CONTAINER, ""),
                uid,
            )
            await self.teardown.run(self.runtime.remove(st.id))
            for b in podspec.parse_ports_label(st.labels.get(LABEL_PORTS, "")):
                self.ports.release(b.host_port, b.protocol)
