"""Deployment progress: the Progressing and Available conditions and
progressDeadlineSeconds (Kubernetes' progress.go).

Progressing is True while the rollout moves (reason NewReplicaSetCreated,
FoundNewReplicaSet, ReplicaSetUpdated) and True/NewReplicaSetAvailable once
complete. If no progress is seen for progressDeadlineSeconds (measured
from the condition's lastUpdateTime, which every observed step of progress
bumps) it turns False with reason ProgressDeadlineExceeded; `pkctl rollout
status` then exits non-zero. The controller re-queues a rolling Deployment
to be looked at when its deadline would pass, so the timeout is reported
without any other event happening.
"""

from __future__ import annotations

from typing import Any

from controlplane.controllers.deployment import sync
from pkapi import rollout

TIMED_OUT = "ProgressDeadlineExceeded"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


def put_condition(st: Any, type_: str, status: str, reason: str, message: str, now: float) -> None:
    """SetDeploymentCondition: unchanged status+reason keeps the condition
    as is; a changed status moves lastTransitionTime."""
    cur = next((c for c in st.conditions if c.type == type_), None)
    if cur is not None and cur.status == status and cur.reason == reason:
        return
    new = st.conditions.add() if cur is None else cur
    when = int(now)
    transition = cur is None or cur.status != status
    new.type, new.status, new.reason, new.message = type_, status, reason, message
    new.last_update_time.seconds = when
    new.last_update_time.nanos = 0
    if transition:
        new.last_transition_time.seconds = when
        new.last_transition_time.nanos = 0


def complete(d: Any, st: Any) -> bool:
    """DeploymentComplete."""
    n = sync.desired(d)
    return (st.updated_replicas == n and st.replicas == n and st.available_replicas == n
            and st.observed_generation >= d.metadata.generation)


def progressing(d: Any, st: Any) -> bool:
    """DeploymentProgressing: some measure of the rollout moved forward."""
    old = d.status
    return (st.updated_replicas > old.updated_replicas
            or (st.replicas - st.updated_replicas) < (old.replicas - old.updated_replicas)
            or st.ready_replicas > old.ready_replicas
            or st.available_replicas > old.available_replicas)


def deadline(d: Any) -> int | None:
    if not d.spec.HasField("progress_deadline_seconds"):
        return rollout.DEFAULT_PROGRESS_DEADLINE
    return d.spec.progress_deadline_seconds


def timed_out(d: Any, st: Any, now: float) -> bool:
    """DeploymentTimedOut."""
    secs = deadline(d)
    if secs is None:
        return False
    cond = next((c for c in st.conditions if c.type == "Progressing"), None)
    if cond is None:
        return False
    if cond.reason == NEW_RS_AVAILABLE:
        return False
    if cond.reason == TIMED_OUT:
        return True
    return cond.last_update_time.seconds + secs < now


async def check_paused_conditions(ctl: Any, d: Any) -> None:
    cond = next((c for c in d.status.conditions if c.type == "Progressing"), None)
    if cond is not None and cond.reason == TIMED_OUT:
        return
    if d.spec.paused and (cond is None or cond.reason != PAUSED):
        ctl.pending[sync._key(d)] = ("Progressing", "Unknown", PAUSED, "Deployment is paused")


async def sync_rollout_status(ctl: Any, d: Any, new: Any | None, old: list[Any]) -> None:
    """syncRolloutStatus: status plus Progressing; requeue for the deadline."""
    now = ctl.clock()
    st = sync.calculate_status(d, new, old, now)
    pend = ctl.pending.pop(sync._key(d), None)
    if pend is not None:
        put_condition(st, pend[0], pend[1], pend[2], pend[3], now)
    cur = next((c for c in st.conditions if c.type == "Progressing"), None)
    if cur is not None and cur.reason == PAUSED and not d.spec.paused:
        put_condition(st, "Progressing", "Unknown", RESUMED, "Deployment is resumed", now)
    secs = deadline(d)
    name = new.metadata.name if new is not None else ""
    if secs is not None and not d.spec.paused:
        if complete(d, st):
            put_condition(st, "Progressing", "True", NEW_RS_AVAILABLE,
                          f'ReplicaSet "{name}" has successfully progressed.', now)
        elif progressing(d, st) or pend is not None:
            cur = next((c for c in st.conditions if c.type == "Progressing"), None)
            if cur is not None and cur.reason not in (TIMED_OUT,):
                # Progress: move lastUpdateTime (and keep transition time).
                cur.reason = RS_UPDATED if pend is None else cur.reason
                if pend is None:
                    cur.message = f'ReplicaSet "{name}" is progressing.'
                cur.status = "True"
                cur.last_update_time.seconds = int(now)
            else:
                put_condition(st, "Progressing", "True", RS_UPDATED, f'ReplicaSet "{name}" is progressing.', now)
        elif timed_out(d, st, now):
            put_condition(st, "Progressing", "False", TIMED_OUT, f'ReplicaSet "{name}" has timed out progressing.', now)
        if not complete(d, st):
            cur = next((c for c in st.conditions if c.type == "Progressing"), None)
            if cur is not None and cur.reason != TIMED_OUT:
                left = cur.last_update_time.seconds + secs - now
                ctl.queue.add_after(sync._key(d), max(left, 0) + 1.0)
    await sync.write_status(ctl, d, st)
