"""What the Deployment controller's phases share (Kubernetes'
deployment/util): the arithmetic over a Deployment and its ReplicaSets,
the Progressing/Available conditions, the status calculation, and the
`Control` protocol through which a phase acts.

Pure: no I/O and no clock (`now` is an argument); the phases (sync,
rolling, recreate, progress) import this module and never each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NamedTuple, Protocol

from pkapi import intstr, meta, rollout
from pkapi.rollout import RSInfo
from pkapi.v1 import apps_pb2, meta_pb2

if TYPE_CHECKING:
    from pkapi.client.cluster import ClusterClient
    from pkapi.client.events import EventRecorder
    from pkapi.client.informer import Informer
    from pkapi.client.workqueue import WorkQueue

Deployment = apps_pb2.Deployment
ReplicaSet = apps_pb2.ReplicaSet

TIMED_OUT = "ProgressDeadlineExceeded"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


class Condition(NamedTuple):
    """A condition one step of a sync decided, written with its status."""

    type: str
    status: str
    reason: str
    message: str


class Step(NamedTuple):
    """What a rollout step (rolling, recreate) leaves for the status write:
    the new and old ReplicaSets as it saw them and the condition decided."""

    new: ReplicaSet | None
    old: list[ReplicaSet]
    cond: Condition | None


class Control(Protocol):
    """What a phase uses of the controller: its client, recorder, queue,
    pod cache and clock, and the ReplicaSet operations of the sync phase
    (so phases call each other only through the controller)."""

    client: ClusterClient
    recorder: EventRecorder
    queue: WorkQueue
    pods: Informer
    clock: Callable[[], float]

    async def get_all(self, d: Deployment, rss: list[ReplicaSet],
                      create: bool) -> tuple[ReplicaSet | None, list[ReplicaSet], Condition | None]: ...

    async def scale_rs(self, d: Deployment, rs: ReplicaSet, size: int) -> tuple[bool, ReplicaSet]: ...

    async def cleanup(self, d: Deployment, new: ReplicaSet | None, old: list[ReplicaSet]) -> None: ...

    async def write_status(self, d: Deployment, st: apps_pb2.DeploymentStatus) -> None: ...


# ------------------------------------------------------------ arithmetic


def controller_ref(d: Deployment) -> meta_pb2.OwnerReference:
    return meta_pb2.OwnerReference(api_version="apps/v1", kind="Deployment", name=d.metadata.name,
                                   uid=d.metadata.uid, controller=True, block_owner_deletion=True)


def desired(d: Deployment) -> int:
    return d.spec.replicas if d.spec.HasField("replicas") else 1


def is_rolling(d: Deployment) -> bool:
    return d.spec.strategy.type != "Recreate"


def fenceposts(d: Deployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas."""
    if not is_rolling(d):
        return 0, 0
    ru = d.spec.strategy.rolling_update
    ms = ru.max_surge if intstr.is_set(ru.max_surge) else None
    mu = ru.max_unavailable if intstr.is_set(ru.max_unavailable) else None
    return rollout.resolve_fenceposts(ms, mu, desired(d))


def max_unavailable(d: Deployment) -> int:
    if not is_rolling(d) or desired(d) == 0:
        return 0
    _, mu = fenceposts(d)
    return min(mu, desired(d))


def replicas_of(rs: ReplicaSet) -> int:
    return rs.spec.replicas if rs.spec.HasField("replicas") else 1


def created(obj: Deployment | ReplicaSet) -> float:
    return rollout.ts_seconds(obj.metadata.creation_timestamp)


def info(rs: ReplicaSet) -> RSInfo:
    mx = rs.metadata.annotations.get(rollout.MAX_REPLICAS)
    try:
        max_r = int(mx) if mx else None
    except ValueError:
        max_r = None
    return RSInfo(rs.metadata.name, replicas_of(rs), rs.status.available_replicas, created(rs), max_r)


def find_new(d: Deployment, rss: list[ReplicaSet]) -> ReplicaSet | None:
    """FindNewReplicaSet: the oldest ReplicaSet whose template equals the
    Deployment's (ignoring the hash label)."""
    matches = [rs for rs in rss if rollout.equal_ignore_hash(rs.spec.template, d.spec.template)]
    if not matches:
        return None
    return min(matches, key=lambda r: (created(r), r.metadata.name))


def split(d: Deployment, rss: list[ReplicaSet]) -> tuple[ReplicaSet | None, list[ReplicaSet]]:
    new = find_new(d, rss)
    old = [rs for rs in rss if new is None or rs.metadata.uid != new.metadata.uid]
    return new, old


def scale_annotations(d: Deployment) -> dict[str, str]:
    surge, _ = fenceposts(d)
    return {rollout.DESIRED_REPLICAS: str(desired(d)), rollout.MAX_REPLICAS: str(desired(d) + surge)}


def parse_int(s: str | None) -> int | None:
    try:
        return int(s) if s is not None else None
    except ValueError:
        return None


def is_scaling_event(d: Deployment, rss: list[ReplicaSet]) -> bool:
    """isScalingEvent: an active ReplicaSet was sized for another replicas."""
    new, old = split(d, rss)
    for rs in ([new] if new is not None else []) + old:
        if replicas_of(rs) == 0:
            continue
        want = rs.metadata.annotations.get(rollout.DESIRED_REPLICAS)
        if want is not None and want != str(desired(d)):
            return True
    return False


# ------------------------------------------------------------ conditions


def progressing_condition(st: apps_pb2.DeploymentStatus) -> meta_pb2.Condition | None:
    return next((c for c in st.conditions if c.type == "Progressing"), None)


def put_condition(st: apps_pb2.DeploymentStatus, type_: str, status: str, reason: str, message: str,
                  now: float) -> None:
    """SetDeploymentCondition: an unchanged status and reason keep the
    condition as it is (its message too)."""
    meta.set_condition(st.conditions, type_, status, reason, message, now=now, message_counts=False,
                       update_time=True)


def complete(d: Deployment, st: apps_pb2.DeploymentStatus) -> bool:
    """DeploymentComplete."""
    n = desired(d)
    return (st.updated_replicas == n and st.replicas == n and st.available_replicas == n
            and st.observed_generation >= d.metadata.generation)


def progressing(d: Deployment, st: apps_pb2.DeploymentStatus) -> bool:
    """DeploymentProgressing: some measure of the rollout moved forward."""
    old = d.status
    return (st.updated_replicas > old.updated_replicas
            or (st.replicas - st.updated_replicas) < (old.replicas - old.updated_replicas)
            or st.ready_replicas > old.ready_replicas
            or st.available_replicas > old.available_replicas)


def deadline(d: Deployment) -> int | None:
    if not d.spec.HasField("progress_deadline_seconds"):
        return rollout.DEFAULT_PROGRESS_DEADLINE
    return d.spec.progress_deadline_seconds


def timed_out(d: Deployment, st: apps_pb2.DeploymentStatus, now: float) -> bool:
    """DeploymentTimedOut."""
    secs = deadline(d)
    if secs is None:
        return False
    cond = progressing_condition(st)
    if cond is None:
        return False
    if cond.reason == NEW_RS_AVAILABLE:
        return False
    if cond.reason == TIMED_OUT:
        return True
    return cond.last_update_time.seconds + secs < now


def calculate_status(d: Deployment, new: ReplicaSet | None, old: list[ReplicaSet],
                     now: float) -> apps_pb2.DeploymentStatus:
    """calculateStatus: counts from the ReplicaSets, and Available."""
    every = ([new] if new is not None else []) + old
    st = apps_pb2.DeploymentStatus()
    st.CopyFrom(d.status)
    st.observed_generation = d.metadata.generation
    st.replicas = sum(rs.status.replicas for rs in every)
    st.updated_replicas = new.status.replicas if new is not None else 0
    st.ready_replicas = sum(rs.status.ready_replicas for rs in every)
    st.available_replicas = sum(rs.status.available_replicas for rs in every)
    st.unavailable_replicas = max(desired(d) - st.available_replicas, 0)
    if st.available_replicas >= desired(d) - max_unavailable(d):
        put_condition(st, "Available", "True", "MinimumReplicasAvailable",
                      "Deployment has minimum availability.", now)
    else:
        put_condition(st, "Available", "False", "MinimumReplicasUnavailable",
                      "Deployment does not have minimum availability.", now)
    return st
