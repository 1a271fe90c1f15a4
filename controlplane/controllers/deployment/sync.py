"""Deployment sync phase: find or create the new ReplicaSet, keep revision
annotations, scale (proportionally when resized mid-rollout), clean up old
ReplicaSets beyond revisionHistoryLimit, and compute status.

Every function takes the controller (`ctl`: client, caches, recorder) and
the Deployment as read from the cache (never modified: copies are written).
"""

from __future__ import annotations

import logging
from typing import Any

from controlplane.controllers.base import copy
from pkapi import intstr, rollout
from pkapi.errors import ApiError
from pkapi.rollout import RSInfo
from pkapi.v1 import apps_pb2, meta_pb2

log = logging.getLogger(__name__)


def controller_ref(d: Any) -> meta_pb2.OwnerReference:
    return meta_pb2.OwnerReference(api_version="apps/v1", kind="Deployment", name=d.metadata.name,
                                   uid=d.metadata.uid, controller=True, block_owner_deletion=True)


def desired(d: Any) -> int:
    return d.spec.replicas if d.spec.HasField("replicas") else 1


def is_rolling(d: Any) -> bool:
    return d.spec.strategy.type != "Recreate"


def fenceposts(d: Any) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas."""
    if not is_rolling(d):
        return 0, 0
    ru = d.spec.strategy.rolling_update
    ms = ru.max_surge if intstr.is_set(ru.max_surge) else None
    mu = ru.max_unavailable if intstr.is_set(ru.max_unavailable) else None
    return rollout.resolve_fenceposts(ms, mu, desired(d))


def max_unavailable(d: Any) -> int:
    if not is_rolling(d) or desired(d) == 0:
        return 0
    _, mu = fenceposts(d)
    return min(mu, desired(d))


def replicas_of(rs: Any) -> int:
    return rs.spec.replicas if rs.spec.HasField("replicas") else 1


def created(obj: Any) -> float:
    return rollout.ts_seconds(obj.metadata.creation_timestamp)


def info(rs: Any) -> RSInfo:
    mx = rs.metadata.annotations.get(rollout.MAX_REPLICAS)
    try:
        max_r = int(mx) if mx else None
    except ValueError:
        max_r = None
    return RSInfo(rs.metadata.name, replicas_of(rs), rs.status.available_replicas, created(rs), max_r)


def find_new(d: Any, rss: list[Any]) -> Any | None:
    """FindNewReplicaSet: the oldest ReplicaSet whose template equals the
    Deployment's (ignoring the hash label)."""
    matches = [rs for rs in rss if rollout.equal_ignore_hash(rs.spec.template, d.spec.template)]
    if not matches:
        return None
    return min(matches, key=lambda r: (created(r), r.metadata.name))


def split(d: Any, rss: list[Any]) -> tuple[Any | None, list[Any]]:
    new = find_new(d, rss)
    old = [rs for rs in rss if new is None or rs.metadata.uid != new.metadata.uid]
    return new, old


def _scale_annotations(d: Any) -> dict[str, str]:
    surge, _ = fenceposts(d)
    return {rollout.DESIRED_REPLICAS: str(desired(d)), rollout.MAX_REPLICAS: str(desired(d) + surge)}


async def get_all(ctl: Any, d: Any, rss: list[Any], create: bool) -> tuple[Any | None, list[Any]]:
    """getAllReplicaSetsAndSyncRevision: (new RS or None, old RSs); with
    create, a missing new ReplicaSet is created. The new ReplicaSet's
    revision is one more than any old one's; the Deployment carries it."""
    new, old = split(d, rss)
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
            ann.update(_scale_annotations(d))
        want.spec.min_ready_seconds = d.spec.min_ready_seconds
        if want != new:
            new = await ctl.client.update(want)
        if not _has_progressing(d):
            await _set_deployment_revision(ctl, d, new, "FoundNewReplicaSet",
                                           f'Found new replica set "{new.metadata.name}"')
        else:
            await _set_deployment_revision(ctl, d, new, "", "")
        return new, old
    if not create:
        return None, old
    new = await _create_new(ctl, d, old, revision)
    return new, old


def _has_progressing(d: Any) -> bool:
    return any(c.type == "Progressing" for c in d.status.conditions)


async def _set_deployment_revision(ctl: Any, d: Any, new_rs: Any, reason: str, message: str) -> None:
    rev = new_rs.metadata.annotations.get(rollout.REVISION, "")
    if rev and d.metadata.annotations.get(rollout.REVISION) != rev:
        want = copy(d)
        want.metadata.annotations[rollout.REVISION] = rev
        await ctl.client.update(want)
        # The update is observed through the informer and synced again.
    if reason:
        # Written with this sync's status (one status write per sync).
        ctl.pending[_key(d)] = ("Progressing", "True", reason, message)


def _key(d: Any) -> str:
    return f"{d.metadata.namespace}/{d.metadata.name}"


async def _create_new(ctl: Any, d: Any, old: list[Any], revision: int) -> Any:
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
    rs.metadata.annotations.update(_scale_annotations(d))
    rs.metadata.owner_references.append(controller_ref(d))
    rs.spec.selector.CopyFrom(d.spec.selector)
    rs.spec.selector.match_labels[rollout.POD_TEMPLATE_HASH] = h
    rs.spec.template.CopyFrom(d.spec.template)
    rs.spec.template.metadata.labels[rollout.POD_TEMPLATE_HASH] = h
    rs.spec.min_ready_seconds = d.spec.min_ready_seconds
    surge, _ = fenceposts(d)
    all_info = [info(r) for r in old]
    size = rollout.new_rs_replicas(is_rolling(d), desired(d), surge, RSInfo(rs.metadata.name, 0), all_info)
    rs.spec.replicas = size
    try:
        out = await ctl.client.create(rs)
    except ApiError as err:
        if err.reason != "AlreadyExists":
            raise
        # Same name: ours with an equal template (a lagging cache), or a
        # hash collision: bump collisionCount and retry with a new name.
        existing = await ctl.client.get("replicasets", rs.metadata.namespace, rs.metadata.name)
        ref = next((r for r in existing.metadata.owner_references if r.uid == d.metadata.uid), None)
        if ref is not None and rollout.equal_ignore_hash(existing.spec.template, d.spec.template):
            return existing
        st = copy(d)
        st.status.collision_count = collision + 1
        await ctl.client.update_status(st)
        raise
    if size > 0:
        ctl.recorder.event(d, "Normal", "ScalingReplicaSet",
                           f"Scaled up replica set {out.metadata.name} to {size} from 0")
    await _set_deployment_revision(ctl, d, out, "NewReplicaSetCreated",
                                   f'Created new replica set "{out.metadata.name}"')
    return out


async def scale_rs(ctl: Any, d: Any, rs: Any, size: int) -> tuple[bool, Any]:
    """scaleReplicaSetAndRecordEvent: set spec.replicas and the scale
    annotations; (changed, rs)."""
    want = copy(rs)
    want.spec.replicas = size
    want.metadata.annotations.update(_scale_annotations(d))
    if want == rs:
        return False, rs
    old_size = replicas_of(rs)
    out = await ctl.client.update(want)
    if old_size != size:
        verb = "up" if size > old_size else "down"
        ctl.recorder.event(d, "Normal", "ScalingReplicaSet",
                           f"Scaled {verb} replica set {rs.metadata.name} to {size} from {old_size}")
    return True, out


async def is_scaling_event(ctl: Any, d: Any, rss: list[Any]) -> bool:
    """isScalingEvent: an active ReplicaSet was sized for another replicas."""
    new, old = split(d, rss)
    for rs in ([new] if new is not None else []) + old:
        if replicas_of(rs) == 0:
            continue
        want = rs.metadata.annotations.get(rollout.DESIRED_REPLICAS)
        if want is not None and want != str(desired(d)):
            return True
    return False


async def scale(ctl: Any, d: Any, new: Any | None, old: list[Any]) -> None:
    """scale(): resize for a changed spec.replicas."""
    every = ([new] if new is not None else []) + old
    active = [rs for rs in every if replicas_of(rs) > 0]
    if len(active) <= 1:
        target = active[0] if active else (new if new is not None else
                                           (max(old, key=lambda r: (created(r), r.metadata.name)) if old else None))
        if target is not None:
            await scale_rs(ctl, d, target, desired(d))
        return
    if new is not None and rollout.is_saturated(desired(d), replicas_of(new), new.status.available_replicas,
                                               _int(new.metadata.annotations.get(rollout.DESIRED_REPLICAS))):
        for rs in old:
            if replicas_of(rs) != 0:
                await scale_rs(ctl, d, rs, 0)
        return
    surge, _ = fenceposts(d)
    sizes = rollout.proportional_scale([info(rs) for rs in active], desired(d), surge, is_rolling(d),
                                       d.status.replicas)
    for rs in active:
        await scale_rs(ctl, d, rs, sizes[rs.metadata.name])


def _int(s: str | None) -> int | None:
    try:
        return int(s) if s is not None else None
    except ValueError:
        return None


async def sync_scale_only(ctl: Any, d: Any, rss: list[Any]) -> None:
    """sync(): a paused Deployment or a scaling event: resize only."""
    new, old = await get_all(ctl, d, rss, create=False)
    await scale(ctl, d, new, old)
    if d.spec.paused:
        await cleanup(ctl, d, new, old)
    await sync_status_only(ctl, d, rss)


async def cleanup(ctl: Any, d: Any, new: Any | None, old: list[Any]) -> None:
    """cleanupDeployment: keep revisionHistoryLimit old, empty ReplicaSets."""
    limit = d.spec.revision_history_limit if d.spec.HasField("revision_history_limit") \
        else rollout.DEFAULT_REVISION_HISTORY_LIMIT
    cands = [(rs.metadata.name, replicas_of(rs), rs.status.replicas, float(rollout.revision_of(rs.metadata.annotations)))
             for rs in old if not rs.metadata.HasField("deletion_timestamp")]
    for name in rollout.rs_to_clean_up(cands, limit):
        try:
            await ctl.client.delete("replicasets", d.metadata.namespace, name)
        except ApiError as err:
            if err.reason != "NotFound":
                raise


def calculate_status(d: Any, new: Any | None, old: list[Any], now: float) -> apps_pb2.DeploymentStatus:
    every = ([new] if new is not None else []) + old
    st = apps_pb2.DeploymentStatus()
    st.CopyFrom(d.status)
    st.observed_generation = d.metadata.generation
    st.replicas = sum(rs.status.replicas for rs in every)
    st.updated_replicas = new.status.replicas if new is not None else 0
    st.ready_replicas = sum(rs.status.ready_replicas for rs in every)
    st.available_replicas = sum(rs.status.available_replicas for rs in every)
    st.unavailable_replicas = max(desired(d) - st.available_replicas, 0)
    from controlplane.controllers.deployment import progress

    if st.available_replicas >= desired(d) - max_unavailable(d):
        progress.put_condition(st, "Available", "True", "MinimumReplicasAvailable",
                               "Deployment has minimum availability.", now)
    else:
        progress.put_condition(st, "Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability.", now)
    return st


async def write_status(ctl: Any, d: Any, st: apps_pb2.DeploymentStatus) -> None:
    """Status has one writer (this controller, one worker per key), so the
    write is unconditional: a metadata update earlier in the same sync must
    not turn it into a Conflict."""
    from controlplane.controllers.deployment import progress

    pend = ctl.pending.pop(_key(d), None)
    if pend is not None:
        progress.put_condition(st, pend[0], pend[1], pend[2], pend[3], ctl.clock())
    if st == d.status:
        return
    want = copy(d)
    want.status.CopyFrom(st)
    want.metadata.resource_version = ""
    await ctl.client.update_status(want)


async def sync_status_only(ctl: Any, d: Any, rss: list[Any]) -> None:
    new, old = split(d, rss)
    await write_status(ctl, d, calculate_status(d, new, old, ctl.clock()))
