"""Deployment sync phase: find or create the new ReplicaSet, keep revision
annotations, scale (proportionally when resized mid-rollout), clean up old
ReplicaSets beyond revisionHistoryLimit, and write status.

Every function takes the controller (`ctl`, util.Control) and the
Deployment as read from the cache (never modified: copies are written).
A condition decided here (FoundNewReplicaSet, NewReplicaSetCreated) is
returned to the caller, which writes it with the sync's one status write.
"""

from __future__ import annotations

import logging

from controlplane.controllers.deployment import util
from controlplane.controllers.deployment.util import Condition, Control, Deployment, ReplicaSet
from pkapi import rollout
from pkapi.errors import ApiError, is_already_exists, is_not_found
from pkapi.meta import copy
from pkapi.rollout import RSInfo
from pkapi.v1 import apps_pb2

log = logging.getLogger(__name__)


async def get_all(ctl: Control, d: Deployment, rss: list[ReplicaSet],
                  create: bool) -> tuple[ReplicaSet | None, list[ReplicaSet], Condition | None]:
    """getAllReplicaSetsAndSyncRevision: (new RS or None, old RSs, the
    Progressing condition to write, if any); with create, a missing new
    ReplicaSet is created. The new ReplicaSet's revision is one more than
    any old one's; the Deployment carries it."""
    new, old = util.split(d, rss)
    max_old = rollout.max_revision(rs.metadata.annotations for rs in old)
    revision = max_old + 1
    if new is not None:
        want = copy(new)
        ann = want.metadata.annotations
        if rollout.revision_of(ann) < revision:
            ann.update(rollout.revision_annotations(dict(ann), revision))
        for k, v in d.metadata.annotations.items():
            if k not in rollout.SKIP_COPY_ANNOTATIONS:
                ann[k] = v
        if rollout.DESIRED_REPLICAS not in ann:
            ann.update(util.scale_annotations(d))
        want.spec.min_ready_seconds = d.spec.min_ready_seconds
        if want != new:
            new = await ctl.client.update(want)
        if not _has_progressing(d):
            cond = await _set_deployment_revision(ctl, d, new, "FoundNewReplicaSet",
                                                  f'Found new replica set "{new.metadata.name}"')
        else:
            cond = await _set_deployment_revision(ctl, d, new, "", "")
        return new, old, cond
    if not create:
        return None, old, None
    new, cond = await _create_new(ctl, d, old, revision)
    return new, old, cond


def _has_progressing(d: Deployment) -> bool:
    return any(c.type == "Progressing" for c in d.status.conditions)


async def _set_deployment_revision(ctl: Control, d: Deployment, new_rs: ReplicaSet, reason: str,
                                   message: str) -> Condition | None:
    rev = new_rs.metadata.annotations.get(rollout.REVISION, "")
    if rev and d.metadata.annotations.get(rollout.REVISION) != rev:
        want = copy(d)
        want.metadata.annotations[rollout.REVISION] = rev
        await ctl.client.update(want)
        # The update is observed through the informer and synced again.
    if reason:
        # Written with this sync's status (one status write per sync).
        return Condition("Progressing", "True", reason, message)
    return None


async def _create_new(ctl: Control, d: Deployment, old: list[ReplicaSet],
                      revision: int) -> tuple[ReplicaSet, Condition | None]:
    collision = d.status.collision_count
    h = rollout.pod_template_hash(d.spec.template, collision)
    rs = apps_pb2.ReplicaSet(api_version="apps/v1", kind="ReplicaSet")
    rs.metadata.name = f"{d.metadata.name}-{h}"
    rs.metadata.namespace = d.metadata.namespace
    rs.metadata.labels.update(d.spec.template.metadata.labels)
    rs.metadata.labels[rollout.POD_TEMPLATE_HASH] = h
    for k, v in d.metadata.annotations.items():
        if k not in rollout.SKIP_COPY_ANNOTATIONS:
            rs.metadata.annotations[k] = v
    rs.metadata.annotations[rollout.REVISION] = str(revision)
    rs.metadata.annotations.update(util.scale_annotations(d))
    rs.metadata.owner_references.append(util.controller_ref(d))
    rs.spec.selector.CopyFrom(d.spec.selector)
    rs.spec.selector.match_labels[rollout.POD_TEMPLATE_HASH] = h
    rs.spec.template.CopyFrom(d.spec.template)
    rs.spec.template.metadata.labels[rollout.POD_TEMPLATE_HASH] = h
    rs.spec.min_ready_seconds = d.spec.min_ready_seconds
    surge, _ = util.fenceposts(d)
    all_info = [util.info(r) for r in old]
    size = rollout.new_rs_replicas(util.is_rolling(d), util.desired(d), surge, RSInfo(rs.metadata.name, 0), all_info)
    rs.spec.replicas = size
    try:
        out = await ctl.client.create(rs)
    except ApiError as err:
        if not is_already_exists(err):
            raise
        # Same name: ours with an equal template (a lagging cache), or a
        # hash collision: bump collisionCount and retry with a new name.
        existing: ReplicaSet = await ctl.client.get(  # type: ignore[assignment]
            "replicasets", rs.metadata.namespace, rs.metadata.name)
        ref = next((r for r in existing.metadata.owner_references if r.uid == d.metadata.uid), None)
        if ref is not None and rollout.equal_ignore_hash(existing.spec.template, d.spec.template):
            return existing, None
        st = copy(d)
        st.status.collision_count = collision + 1
        await ctl.client.update_status(st)
        raise
    if size > 0:
        ctl.recorder.event(d, "Normal", "ScalingReplicaSet",
                           f"Scaled up replica set {out.metadata.name} to {size} from 0")
    cond = await _set_deployment_revision(ctl, d, out, "NewReplicaSetCreated",
                                          f'Created new replica set "{out.metadata.name}"')
    return out, cond


async def scale_rs(ctl: Control, d: Deployment, rs: ReplicaSet, size: int) -> tuple[bool, ReplicaSet]:
    """scaleReplicaSetAndRecordEvent: set spec.replicas and the scale
    annotations; (changed, rs)."""
    want = copy(rs)
    want.spec.replicas = size
    want.metadata.annotations.update(util.scale_annotations(d))
    if want == rs:
        return False, rs
    old_size = util.replicas_of(rs)
    out = await ctl.client.update(want)
    if old_size != size:
        verb = "up" if size > old_size else "down"
        ctl.recorder.event(d, "Normal", "ScalingReplicaSet",
                           f"Scaled {verb} replica set {rs.metadata.name} to {size} from {old_size}")
    return True, out


async def scale(ctl: Control, d: Deployment, new: ReplicaSet | None, old: list[ReplicaSet]) -> None:
    """scale(): resize for a changed spec.replicas."""
    every = ([new] if new is not None else []) + old
    active = [rs for rs in every if util.replicas_of(rs) > 0]
    if len(active) <= 1:
        target = active[0] if active else (new if new is not None else
                                           (max(old, key=lambda r: (util.created(r), r.metadata.name))
                                            if old else None))
        if target is not None:
            await scale_rs(ctl, d, target, util.desired(d))
        return
    if new is not None and rollout.is_saturated(
            util.desired(d), util.replicas_of(new), new.status.available_replicas,
            util.parse_int(new.metadata.annotations.get(rollout.DESIRED_REPLICAS))):
        for rs in old:
            if util.replicas_of(rs) != 0:
                await scale_rs(ctl, d, rs, 0)
        return
    surge, _ = util.fenceposts(d)
    sizes = rollout.proportional_scale([util.info(rs) for rs in active], util.desired(d), surge,
                                       util.is_rolling(d), d.status.replicas)
    for rs in active:
        await scale_rs(ctl, d, rs, sizes[rs.metadata.name])


async def sync_scale_only(ctl: Control, d: Deployment, rss: list[ReplicaSet], cond: Condition | None) -> None:
    """sync(): a paused Deployment or a scaling event: resize only. cond:
    a condition decided before (a pause), written unless this sync
    decides another."""
    new, old, found = await get_all(ctl, d, rss, create=False)
    await scale(ctl, d, new, old)
    if d.spec.paused:
        await cleanup(ctl, d, new, old)
    await sync_status_only(ctl, d, rss, found or cond)


async def cleanup(ctl: Control, d: Deployment, new: ReplicaSet | None, old: list[ReplicaSet]) -> None:
    """cleanupDeployment: keep revisionHistoryLimit old, empty ReplicaSets."""
    limit = d.spec.revision_history_limit if d.spec.HasField("revision_history_limit") \
        else rollout.DEFAULT_REVISION_HISTORY_LIMIT
    cands = [(rs.metadata.name, util.replicas_of(rs), rs.status.replicas,
              float(rollout.revision_of(rs.metadata.annotations)))
             for rs in old if not rs.metadata.HasField("deletion_timestamp")]
    for name in rollout.rs_to_clean_up(cands, limit):
        try:
            await ctl.client.delete("replicasets", d.metadata.namespace, name)
        except ApiError as err:
            if not is_not_found(err):
                raise


async def write_status(ctl: Control, d: Deployment, st: apps_pb2.DeploymentStatus) -> None:
    """Status has one writer (this controller, one worker per key), so the
    write is unconditional: a metadata update earlier in the same sync must
    not turn it into a Conflict."""
    if st == d.status:
        return
    want = copy(d)
    want.status.CopyFrom(st)
    want.metadata.resource_version = ""
    await ctl.client.update_status(want)


async def sync_status_only(ctl: Control, d: Deployment, rss: list[ReplicaSet], cond: Condition | None = None) -> None:
    new, old = util.split(d, rss)
    now = ctl.clock()
    st = util.calculate_status(d, new, old, now)
    if cond is not None:
        util.put_condition(st, *cond, now)
    await write_status(ctl, d, st)
