"""ReplicaSet controller: keeps `spec.replicas` pods of each ReplicaSet.

Informers on ReplicaSets and Pods (pods indexed by controller-owner uid);
handlers enqueue ReplicaSet keys. sync(key):
  1. claim pods: adopt matching orphans (add a controller ownerReference,
     CAS on the pod's resourceVersion), release owned pods whose labels no
     longer match (remove the reference);
  2. if the expectations are satisfied, create or delete the difference:
     creation in slow-start batches (1, 2, 4, ...), deletion of the least
     valuable pods first (pkapi.rollout.pods_to_delete);
  3. write status (replicas, fullyLabeledReplicas, readyReplicas,
     availableReplicas honouring minReadySeconds, observedGeneration).

Expectations (client-go's ControllerExpectations): before creating N pods
the controller expects N pod creations, before deleting it expects those
pods' deletions; until the informer has observed them (or 30 s pass) the
ReplicaSet is not managed again. A watch that lags behind our own writes
therefore never makes us create duplicates or delete twice.

Concurrency: the work queue gives each ReplicaSet key to one worker at a
time; several ReplicaSets are synced in parallel by `workers` workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from controlplane.controllers.base import Controller, SharedInformers, owner_uid_index
from pkapi import meta, rollout, selectors
from pkapi.client.events import EventRecorder
from pkapi.errors import ApiError, is_conflict, is_not_found
from pkapi.meta import copy
from pkapi.v1 import apps_pb2, core_pb2, meta_pb2

log = logging.getLogger(__name__)

EXPECTATIONS_TTL = 30.0
BURST = 500  # at most this many creations/deletions per sync


@dataclass
class _Expect:
    adds: int = 0
    dels: set[str] = field(default_factory=set)
    at: float = 0.0


class Expectations:
    """Creations and deletions a controller waits to observe, per key."""

    def __init__(self, ttl: float = EXPECTATIONS_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._e: dict[str, _Expect] = {}

    def satisfied(self, key: str) -> bool:
        e = self._e.get(key)
        if e is None:
            return True
        if e.adds <= 0 and not e.dels:
            return True
        return self.clock() - e.at > self.ttl

    def expect_creations(self, key: str, n: int) -> None:
        self._e[key] = _Expect(adds=n, at=self.clock())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._e[key] = _Expect(dels=set(pod_keys), at=self.clock())

    def creation_observed(self, key: str) -> None:
        e = self._e.get(key)
        if e is not None and e.adds > 0:
            e.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._e.get(key)
        if e is not None:
            e.dels.discard(pod_key)

    def delete(self, key: str) -> None:
        self._e.pop(key, None)


def controller_ref(owner: Any, kind: str) -> meta_pb2.OwnerReference:
    return meta_pb2.OwnerReference(api_version="apps/v1", kind=kind, name=owner.metadata.name,
                                   uid=owner.metadata.uid, controller=True, block_owner_deletion=True)


def pod_from_template(rs: apps_pb2.ReplicaSet) -> core_pb2.Pod:
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    t = rs.spec.template
    pod.metadata.generate_name = rs.metadata.name + "-"
    pod.metadata.namespace = rs.metadata.namespace
    pod.metadata.labels.update(t.metadata.labels)
    pod.metadata.annotations.update(t.metadata.annotations)
    pod.metadata.owner_references.append(controller_ref(rs, "ReplicaSet"))
    pod.spec.CopyFrom(t.spec)
    return pod


def calculate_status(rs: apps_pb2.ReplicaSet, pods: list[core_pb2.Pod], now: float) -> apps_pb2.ReplicaSetStatus:
    """Pure: the status for the active pods of rs."""
    tlabels = rs.spec.template.metadata.labels
    st = apps_pb2.ReplicaSetStatus()
    st.CopyFrom(rs.status)
    st.replicas = len(pods)
    st.fully_labeled_replicas = sum(1 for p in pods if all(p.metadata.labels.get(k) == v for k, v in tlabels.items()))
    st.ready_replicas = sum(1 for p in pods if rollout.is_pod_ready(p))
    st.available_replicas = sum(1 for p in pods if rollout.is_pod_available(p, rs.spec.min_ready_seconds, now))
    st.observed_generation = rs.metadata.generation
    return st


class ReplicaSetController(Controller):
    name = "replicaset"
    # Slow-start creation waits for each batch: more workers keep many
    # ReplicaSets growing at once (Kubernetes' default is 5).
    workers = 8

    def __init__(self, client: Any, config: Any, informers: SharedInformers,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.client = client
        self.clock = clock
        self.rss = informers.informer("replicasets")
        self.pods = informers.informer("pods")
        self.pods.add_index("owner", owner_uid_index)
        self.informers = [self.rss, self.pods]
        self.expectations = Expectations(clock=monotonic)
        self.recorder = EventRecorder(client, "replicaset-controller")
        self.rss.add_handler(on_add=self._enqueue, on_update=lambda o, n: self._enqueue(n),
                             on_delete=self._rs_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    # ------------------------------------------------------------ handlers

    def _enqueue(self, rs: Any) -> None:
        self.queue.add(meta.ns_name(rs))

    def _rs_deleted(self, rs: Any) -> None:
        self.expectations.delete(meta.ns_name(rs))
        self.queue.add(meta.ns_name(rs))

    def _owner_key(self, pod: Any) -> str | None:
        ref = meta.controller_of(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return None
        rs = self.rss.get(pod.metadata.namespace, ref.name)
        if rs is None or rs.metadata.uid != ref.uid:
            return None
        return meta.ns_name(rs)

    def _enqueue_matching(self, pod: Any) -> None:
        """An orphan: every ReplicaSet whose selector matches may adopt it."""
        for rs in self.rss.list(pod.metadata.namespace):
            try:
                if selectors.from_label_selector(rs.spec.selector).matches(pod.metadata.labels):
                    self.queue.add(meta.ns_name(rs))
            except selectors.SelectorError:
                continue

    def _pod_added(self, pod: Any) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif meta.controller_of(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Any, new: Any) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        key = self._owner_key(new)
        if new.metadata.HasField("deletion_timestamp") and not old.metadata.HasField("deletion_timestamp"):
            if key is not None:
                self.expectations.deletion_observed(key, meta.ns_name(new))
        old_key = self._owner_key(old)
        if old_key is not None and old_key != key:
            self.queue.add(old_key)
        if key is not None:
            self.queue.add(key)
        elif meta.controller_of(new) is None:
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Any) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, meta.ns_name(pod))
            self.queue.add(key)

    # ---------------------------------------------------------------- sync

    async def sync(self, key: Any) -> None:
        key = str(key)
        ns, name = meta.split_key(key)
        cached = self.rss.get(ns, name)
        if cached is None:
            self.expectations.delete(key)
            return
        rs: apps_pb2.ReplicaSet = cached
        try:
            selector = selectors.from_label_selector(rs.spec.selector)
        except selectors.SelectorError as err:
            log.warning("replicaset %s: bad selector: %s", key, err)
            return
        deleting = rs.metadata.HasField("deletion_timestamp")
        owned = await self._claim(rs, selector, deleting)
        active = [p for p in owned if rollout.is_pod_active(p)]
        if not deleting and self.expectations.satisfied(key):
            await self._manage(rs, key, active)
        now = self.clock()
        status = calculate_status(rs, active, now)
        if status != rs.status:
            new = copy(rs)
            new.status.CopyFrom(status)
            await self.client.update_status(new)
        if rs.spec.min_ready_seconds > 0 and status.ready_replicas != status.available_replicas:
            self.queue.add_after(key, float(rs.spec.min_ready_seconds) + 0.1)

    async def _claim(self, rs: Any, selector: Any, deleting: bool) -> list[Any]:
        """ClaimPods: owned pods that match, after adopting and releasing."""
        out: list[Any] = []
        for pod in self.pods.by_index("owner", rs.metadata.uid):
            if selector.matches(pod.metadata.labels):
                out.append(pod)
            elif not deleting:
                await self._release(rs, pod)
        if not deleting:
            for pod in self.pods.by_index("owner", f"orphan/{rs.metadata.namespace}"):
                if not rollout.is_pod_active(pod) or not selector.matches(pod.metadata.labels):
                    continue
                adopted = await self._adopt(rs, pod)
                if adopted is not None:
                    out.append(adopted)
        return out

    async def _adopt(self, rs: Any, pod: Any) -> Any | None:
        new = copy(pod)
        new.metadata.owner_references.append(controller_ref(rs, "ReplicaSet"))
        try:
            return await self.client.update(new)  # CAS on the cached resourceVersion
        except ApiError as err:
            if is_conflict(err) or is_not_found(err):
                return None  # changed meanwhile: the next sync decides again
            raise

    async def _release(self, rs: Any, pod: Any) -> None:
        new = copy(pod)
        refs = [r for r in new.metadata.owner_references if r.uid != rs.metadata.uid]
        del new.metadata.owner_references[:]
        new.metadata.owner_references.extend(refs)
        try:
            await self.client.update(new)
        except ApiError as err:
            if err.reason not in ("Conflict", "NotFound"):
                raise

    async def _manage(self, rs: Any, key: str, active: list[Any]) -> None:
        desired = rs.spec.replicas if rs.spec.HasField("replicas") else 1
        diff = len(active) - desired
        if diff < 0:
            n = min(-diff, BURST)
            self.expectations.expect_creations(key, n)
            created = 0
            for batch in rollout.slow_start_batches(n):
                results = await self._create_pods(rs, batch)
                ok = sum(1 for r in results if not isinstance(r, BaseException))
                created += ok
                if ok < batch:
                    # The rest will not be observed: stop expecting them.
                    for _ in range(n - created):
                        self.expectations.creation_observed(key)
                    err = next(r for r in results if isinstance(r, BaseException))
                    raise err
        elif diff > 0:
            victims = rollout.pods_to_delete(active, min(diff, BURST))
            self.expectations.expect_deletions(key, [meta.ns_name(p) for p in victims])
            results = await asyncio.gather(*(self._delete_pod(rs, key, p) for p in victims), return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    raise r

    async def _create_pods(self, rs: Any, n: int) -> list[Any]:
        """One batch: n pods in one CreateBatch call (one store write);
        per pod the created pod or the exception."""
        try:
            results: list[Any] = await self.client.create_batch([pod_from_template(rs) for _ in range(n)])
        except Exception as err:  # noqa: BLE001 - the whole call failed: every item did
            return [err] * n
        for out in results:
            if not isinstance(out, BaseException):
                self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {out.metadata.name}")
        return results

    async def _delete_pod(self, rs: Any, key: str, pod: Any) -> None:
        try:
            await self.client.delete("pods", pod.metadata.namespace, pod.metadata.name, uid=pod.metadata.uid)
        except ApiError as err:
            if is_not_found(err):
                self.expectations.deletion_observed(key, meta.ns_name(pod))
                return
            self.expectations.deletion_observed(key, meta.ns_name(pod))
            raise
        self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")


def new(client: Any, config: Any, informers: SharedInformers) -> ReplicaSetController:
    return ReplicaSetController(client, config, informers)
