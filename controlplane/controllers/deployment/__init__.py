"""Deployment controller: rolls a Deployment's pod template out through
ReplicaSets named <deployment>-<pod-template-hash>.

One file per phase, as Kubernetes' own controller:
  __init__.py  the controller: informers, handlers, claim, dispatch
  sync.py      ReplicaSet lookup/creation, revisions, scaling (incl.
               proportional scaling mid-rollout), clean-up, status
  rolling.py   RollingUpdate: surge the new ReplicaSet, shrink old ones,
               never beyond maxSurge / maxUnavailable
  recreate.py  Recreate: old pods all gone before any new pod exists
  progress.py  Progressing/Available conditions, progressDeadlineSeconds
  util.py      pure: what the phases share (fenceposts, conditions, status
               arithmetic) and the Control protocol they act through
The phases import util and never each other: a phase reaches the sync
phase's ReplicaSet operations through the controller (util.Control), and a
condition one step decides travels as a value (util.Condition, util.Step)
to the sync's one status write. The rollout arithmetic (how many to surge,
proportional shares, hashes) lives in pkapi.rollout and is unit-tested
there.

Rollback (`pkctl rollout undo`) is done by the client, as kubectl does
since Kubernetes 1.18: it copies an old ReplicaSet's template into the
Deployment; this controller then simply rolls to it, and the ReplicaSet
that already had that template becomes the new one with a new revision.

Concurrency: each Deployment key is synced by one worker at a time;
ReplicaSet and Pod changes only enqueue their owning Deployment. All
writes are CAS on the cached resourceVersion; a Conflict requeues.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from controlplane.controllers.base import Controller, SharedInformers, owner_uid_index
from controlplane.controllers.deployment import progress, recreate, rolling, sync, util
from controlplane.controllers.deployment.util import Condition, Deployment, ReplicaSet
from pkapi import meta, selectors
from pkapi.client.cluster import ClusterClient
from pkapi.client.events import EventRecorder
from pkapi.client.informer import Informer
from pkapi.errors import ApiError, is_conflict, is_not_found
from pkapi.meta import copy
from pkapi.v1 import apps_pb2, core_pb2

log = logging.getLogger(__name__)


class DeploymentController(Controller):
    name = "deployment"
    workers = 4

    def __init__(self, client: ClusterClient, config: Any, informers: SharedInformers,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.client = client
        self.clock = clock
        self.deployments = informers.informer("deployments")
        self.rss = informers.informer("replicasets")
        self.pods = informers.informer("pods")
        self.rss.add_index("owner", owner_uid_index)
        self.pods.add_index("owner", owner_uid_index)
        self.informers = [self.deployments, self.rss, self.pods]
        self.recorder = EventRecorder(client, "deployment-controller")
        self.deployments.add_handler(on_add=self._enqueue, on_update=lambda o, n: self._enqueue(n),
                                     on_delete=self._enqueue)
        self.rss.add_handler(on_add=self._rs_changed, on_update=self._rs_updated, on_delete=self._rs_changed)
        self.pods.add_handler(on_delete=self._pod_deleted)

    def _enqueue(self, d: Deployment) -> None:
        self.queue.add(meta.ns_name(d))

    def _owner_key(self, obj: ReplicaSet | core_pb2.Pod, kind: str, informer: Informer) -> str | None:
        ref = meta.controller_of(obj)
        if ref is None or ref.kind != kind:
            return None
        owner = informer.get(obj.metadata.namespace, ref.name)
        if owner is None or owner.metadata.uid != ref.uid:
            return None
        return meta.ns_name(owner)

    def _rs_changed(self, rs: ReplicaSet) -> None:
        key = self._owner_key(rs, "Deployment", self.deployments)
        if key is not None:
            self.queue.add(key)
        elif meta.controller_of(rs) is None:
            for d in self.deployments.list(rs.metadata.namespace):
                try:
                    if selectors.from_label_selector(d.spec.selector).matches(rs.metadata.labels):
                        self._enqueue(d)
                except selectors.SelectorError:
                    continue

    def _rs_updated(self, old: ReplicaSet, new: ReplicaSet) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        okey = self._owner_key(old, "Deployment", self.deployments)
        nkey = self._owner_key(new, "Deployment", self.deployments)
        if okey is not None and okey != nkey:
            self.queue.add(okey)
        self._rs_changed(new)

    def _pod_deleted(self, pod: core_pb2.Pod) -> None:
        # Recreate waits for old pods to be gone: their deletion is news.
        rs_key = self._owner_key(pod, "ReplicaSet", self.rss)
        if rs_key is None:
            return
        rs = self.rss.get(*meta.split_key(rs_key))
        if rs is None:
            return
        d_key = self._owner_key(rs, "Deployment", self.deployments)
        if d_key is not None:
            self.queue.add(d_key)

    # ---------------------------------------------------------------- claim

    async def claim_replicasets(self, d: Deployment, selector: selectors.LabelSelectorExpr) -> list[ReplicaSet]:
        out: list[ReplicaSet] = []
        deleting = d.metadata.HasField("deletion_timestamp")
        for rs in self.rss.by_index("owner", d.metadata.uid):
            if selector.matches(rs.metadata.labels):
                out.append(rs)
            elif not deleting:
                new = copy(rs)
                refs = [r for r in new.metadata.owner_references if r.uid != d.metadata.uid]
                del new.metadata.owner_references[:]
                new.metadata.owner_references.extend(refs)
                await self._write_ignoring_races(new)
        if not deleting:
            for rs in self.rss.by_index("owner", f"orphan/{d.metadata.namespace}"):
                if rs.metadata.HasField("deletion_timestamp") or not selector.matches(rs.metadata.labels):
                    continue
                new = copy(rs)
                new.metadata.owner_references.append(util.controller_ref(d))
                got = await self._write_ignoring_races(new)
                if got is not None:
                    out.append(got)
        return out

    async def _write_ignoring_races(self, obj: ReplicaSet) -> ReplicaSet | None:
        try:
            return await self.client.update(obj)
        except ApiError as err:
            if is_conflict(err) or is_not_found(err):
                return None
            raise

    # ------------------------------------------- util.Control: the sync phase

    async def get_all(self, d: Deployment, rss: list[ReplicaSet],
                      create: bool) -> tuple[ReplicaSet | None, list[ReplicaSet], Condition | None]:
        return await sync.get_all(self, d, rss, create)

    async def scale_rs(self, d: Deployment, rs: ReplicaSet, size: int) -> tuple[bool, ReplicaSet]:
        return await sync.scale_rs(self, d, rs, size)

    async def cleanup(self, d: Deployment, new: ReplicaSet | None, old: list[ReplicaSet]) -> None:
        await sync.cleanup(self, d, new, old)

    async def write_status(self, d: Deployment, st: apps_pb2.DeploymentStatus) -> None:
        await sync.write_status(self, d, st)

    # ----------------------------------------------------------------- sync

    async def sync(self, key: object) -> None:
        ns, name = meta.split_key(str(key))
        cached = self.deployments.get(ns, name)
        if cached is None:
            return
        d: Deployment = cached
        try:
            selector = selectors.from_label_selector(d.spec.selector)
        except selectors.SelectorError as err:
            log.warning("deployment %s: bad selector: %s", key, err)
            return
        if not d.spec.selector.match_labels and not d.spec.selector.match_expressions:
            # An empty selector would match every pod: Kubernetes refuses too.
            return
        rss = await self.claim_replicasets(d, selector)
        if d.metadata.HasField("deletion_timestamp"):
            await sync.sync_status_only(self, d, rss)
            return
        if d.spec.paused:
            await sync.sync_scale_only(self, d, rss, progress.paused_condition(d))
            return
        if util.is_scaling_event(d, rss):
            await sync.sync_scale_only(self, d, rss, None)
            return
        phase = recreate if d.spec.strategy.type == "Recreate" else rolling
        step = await phase.rollout(self, d, rss)
        await progress.sync_rollout_status(self, d, step.new, step.old, step.cond)


def new(client: ClusterClient, config: Any, informers: SharedInformers) -> DeploymentController:
    return DeploymentController(client, config, informers)
