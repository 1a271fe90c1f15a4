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

from controlplane.controllers.deployment import util
from controlplane.controllers.deployment.util import (
    NEW_RS_AVAILABLE,
    PAUSED,
    RESUMED,
    RS_UPDATED,
    TIMED_OUT,
    Condition,
    Control,
    Deployment,
    ReplicaSet,
)
from pkapi import meta


def paused_condition(d: Deployment) -> Condition | None:
    """checkPausedConditions: Progressing=Unknown/DeploymentPaused for a
    newly paused Deployment (a timed-out one keeps its verdict)."""
    cond = util.progressing_condition(d.status)
    if cond is not None and cond.reason == TIMED_OUT:
        return None
    if d.spec.paused and (cond is None or cond.reason != PAUSED):
        return Condition("Progressing", "Unknown", PAUSED, "Deployment is paused")
    return None


async def sync_rollout_status(ctl: Control, d: Deployment, new: ReplicaSet | None, old: list[ReplicaSet],
                              pend: Condition | None) -> None:
    """syncRolloutStatus: status plus Progressing (pend: a condition this
    sync decided earlier); requeue for the deadline."""
    now = ctl.clock()
    st = util.calculate_status(d, new, old, now)
    if pend is not None:
        util.put_condition(st, *pend, now)
    cur = util.progressing_condition(st)
    if cur is not None and cur.reason == PAUSED and not d.spec.paused:
        util.put_condition(st, "Progressing", "Unknown", RESUMED, "Deployment is resumed", now)
    secs = util.deadline(d)
    name = new.metadata.name if new is not None else ""
    if secs is not None and not d.spec.paused:
        if util.complete(d, st):
            util.put_condition(st, "Progressing", "True", NEW_RS_AVAILABLE,
                               f'ReplicaSet "{name}" has successfully progressed.', now)
        elif util.progressing(d, st) or pend is not None:
            cur = util.progressing_condition(st)
            if cur is not None and cur.reason not in (TIMED_OUT,):
                # Progress: move lastUpdateTime (and keep transition time).
                cur.reason = RS_UPDATED if pend is None else cur.reason
                if pend is None:
                    cur.message = f'ReplicaSet "{name}" is progressing.'
                cur.status = "True"
                cur.last_update_time.seconds = int(now)
            else:
                util.put_condition(st, "Progressing", "True", RS_UPDATED, f'ReplicaSet "{name}" is progressing.',
                                   now)
        elif util.timed_out(d, st, now):
            util.put_condition(st, "Progressing", "False", TIMED_OUT,
                               f'ReplicaSet "{name}" has timed out progressing.', now)
        if not util.complete(d, st):
            cur = util.progressing_condition(st)
            if cur is not None and cur.reason != TIMED_OUT:
                left = cur.last_update_time.seconds + secs - now
                ctl.queue.add_after(meta.ns_name(d), max(left, 0) + 1.0)
    await ctl.write_status(d, st)
