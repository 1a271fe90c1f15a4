"""Deployment and ReplicaSet arithmetic: surge/unavailable bounds, rolling
steps, proportional scaling, pod-template hashes, revisions, pod ranking.

Pure: no external calls or any I/O. Functions take plain data (RSInfo
records, ints, messages read but never modified) and return decisions; the
deployment and replicaset controllers apply them. Each function follows the
Kubernetes function named in its docstring, so behaviour (and rounding)
matches kube-controller-manager.
"""

from __future__ import annotations

import datetime as _dt
import struct
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from pkapi import intstr, meta

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
POD_TEMPLATE_HASH = "pod-template-hash"

DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
DEFAULT_REVISION_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE = 600

# Annotations a Deployment does not copy to its ReplicaSets (kubectl's own).
SKIP_COPY_ANNOTATIONS = frozenset({
    REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
    "kubectl.kubernetes.io/last-applied-configuration",
})


# ------------------------------------------------------------ fenceposts


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """ResolveFenceposts: maxSurge rounds up, maxUnavailable rounds down;
    when both resolve to 0, maxUnavailable becomes 1 so a rollout can always
    progress. (Both given as 0 is rejected by validation, see
    validate_fenceposts.) Values are ints, "P%" strings, Values or None
    (None: the 25% default)."""
    surge = intstr.scaled(_or(max_surge, DEFAULT_MAX_SURGE), desired, True)
    unavailable = intstr.scaled(_or(max_unavailable, DEFAULT_MAX_UNAVAILABLE), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _or(v: Any, default: str) -> Any:
    if v is None or (not isinstance(v, (int, str)) and not intstr.is_set(v)):
        return default
    return v


def validate_fenceposts(max_surge: Any, max_unavailable: Any) -> list[str]:
    """Validation causes for spec.strategy.rollingUpdate (Kubernetes' wording)."""
    causes: list[str] = []
    base = "spec.strategy.rollingUpdate"
    vals: dict[str, int | str] = {}
    for name, v, d in (("maxSurge", max_surge, DEFAULT_MAX_SURGE),
                       ("maxUnavailable", max_unavailable, DEFAULT_MAX_UNAVAILABLE)):
        x = intstr.value(_or(v, d)) if not isinstance(v, (int, str)) else v
        assert x is not None
        vals[name] = x
        if isinstance(x, int):
            if x < 0:
                causes.append(f"{base}.{name}: Invalid value: {x}: must be greater than or equal to 0")
        else:
            try:
                p = intstr.percent(x)
            except ValueError:
                causes.append(f'{base}.{name}: Invalid value: "{x}": a valid percent string must be a numeric '
                              "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation "
                              "is '[0-9]+%')")
                continue
            if p < 0:
                causes.append(f'{base}.{name}: Invalid value: "{x}": must be greater than or equal to 0')
            if name == "maxUnavailable" and p > 100:
                causes.append(f'{base}.{name}: Invalid value: "{x}": must not be greater than 100%')

    def zero(x: int | str) -> bool:
        return x == 0 or (isinstance(x, str) and x.rstrip("%") in ("0", "-0"))

    if zero(vals["maxSurge"]) and zero(vals["maxUnavailable"]):
        x = vals["maxUnavailable"]
        shown = f'"{x}"' if isinstance(x, str) else str(x)
        causes.append(f"{base}.maxUnavailable: Invalid value: {shown}: may not be 0 when `maxSurge` is 0")
    return causes


# ---------------------------------------------------------- ReplicaSets


@dataclass(frozen=True)
class RSInfo:
    """What the arithmetic needs of a ReplicaSet."""

    name: str
    replicas: int  # spec.replicas
    available: int = 0  # status.availableReplicas
    created: float = 0.0  # creation time (seconds); ties broken by name
    max_replicas: int | None = None  # deployment.kubernetes.io/max-replicas


def new_rs_replicas(rolling: bool, desired: int, max_surge: int, new_rs: RSInfo, all_rs: Sequence[RSInfo]) -> int:
    """NewRSNewReplicas: how big the new ReplicaSet may be now. Recreate:
    the desired size. RollingUpdate: grow while all pods stay within
    desired + maxSurge, never beyond desired."""
    if not rolling:
        return desired
    current = sum(r.replicas for r in all_rs)
    max_total = desired + max_surge
    if current >= max_total:
        return new_rs.replicas
    scale_up = min(max_total - current, desired - new_rs.replicas)
    return new_rs.replicas + max(scale_up, 0)


def _oldest_first(rss: Iterable[RSInfo]) -> list[RSInfo]:
    return sorted(rss, key=lambda r: (r.created, r.name))


def rolling_scale_down(old: Sequence[RSInfo], new_rs: RSInfo | None, desired: int, max_unavailable: int) -> dict[str, int]:
    """reconcileOldReplicaSets: new sizes for old ReplicaSets in one rolling
    step. First unhealthy old pods go (they cost no availability), then
    available ones, oldest ReplicaSet first, keeping at least
    desired - maxUnavailable pods available. Returns only changed sizes."""
    old = [r for r in old]
    if sum(r.replicas for r in old) == 0:
        return {}
    all_rs = old + ([new_rs] if new_rs else [])
    all_pods = sum(r.replicas for r in all_rs)
    min_available = desired - max_unavailable
    new_unavailable = (new_rs.replicas - new_rs.available) if new_rs else 0
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    sizes = {r.name: r.replicas for r in old}
    avail = {r.name: r.available for r in old}
    # cleanupUnhealthyReplicas
    cleaned = 0
    for r in _oldest_first(old):
        if cleaned >= max_scaled_down:
            break
        if sizes[r.name] == 0:
            continue
        unhealthy = sizes[r.name] - min(avail[r.name], sizes[r.name])
        if unhealthy <= 0:
            continue
        down = min(max_scaled_down - cleaned, unhealthy)
        sizes[r.name] -= down
        cleaned += down
    # scaleDownOldReplicaSetsForRollingUpdate
    available = sum(min(avail[r.name], sizes[r.name]) for r in old) + (new_rs.available if new_rs else 0)
    if available > min_available:
        total = available - min_available
        done = 0
        for r in _oldest_first(old):
            if done >= total:
                break
            if sizes[r.name] == 0:
                continue
            down = min(sizes[r.name], total - done)
            sizes[r.name] -= down
            done += down
    return {r.name: sizes[r.name] for r in old if sizes[r.name] != r.replicas}


def proportional_scale(active: Sequence[RSInfo], desired: int, max_surge: int, rolling: bool,
                       status_replicas: int) -> dict[str, int]:
    """scale() with getProportion: when a Deployment is resized while several
    ReplicaSets have pods, share the change between them in proportion to
    their sizes (relative to the size recorded in their max-replicas
    annotation), so a mid-rollout resize neither favours the new nor the old
    template. Leftovers go to the biggest ReplicaSet. Returns new sizes of
    every active ReplicaSet."""
    sizes = {r.name: r.replicas for r in active}
    if not active:
        return sizes
    allowed = desired + (max_surge if rolling else 0)
    current = sum(r.replicas for r in active)
    to_add = allowed - current
    if to_add == 0:
        return sizes
    if to_add > 0:  # ReplicaSetsBySizeNewer
        order = sorted(active, key=lambda r: (-r.replicas, -r.created, r.name))
    else:  # ReplicaSetsBySizeOlder
        order = sorted(active, key=lambda r: (-r.replicas, r.created, r.name))
    added = 0
    for r in order:
        if added == to_add:
            break
        if r.replicas == 0:
            continue
        # getReplicaSetFraction
        if desired == 0:
            fraction = -r.replicas
        else:
            d_replicas = desired + max_surge
            annotated = r.max_replicas if r.max_replicas else status_replicas
            if annotated <= 0:
                annotated = d_replicas
            fraction = _round_half_away(r.replicas * d_replicas / annotated) - r.replicas
        left = to_add - added
        step = min(fraction, left) if to_add > 0 else max(fraction, left)
        sizes[r.name] += step
        added += step
    if added != to_add:
        first = order[0].name
        sizes[first] = max(sizes[first] + to_add - added, 0)
    return sizes


def _round_half_away(x: float) -> int:
    """Go's math.Round (integer.RoundToInt32): halves away from zero."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def is_saturated(desired: int, rs_replicas: int, rs_available: int, rs_desired_annotation: int | None) -> bool:
    """IsSaturated: the new ReplicaSet is exactly the desired size and all of
    it is available."""
    return rs_desired_annotation == desired and rs_replicas == desired and rs_available == desired


# ------------------------------------------------------------ templates


_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(s: str) -> str:
    """rand.SafeEncodeString: no vowels or look-alikes, so a hash never spells
    a word and survives DNS-label rules."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in s)


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def pod_template_hash(template: Any, collision_count: int = 0) -> str:
    """ComputeHash: a short, stable name fragment for a pod template. The
    template's deterministic protobuf encoding (without any pod-template-hash
    label) is hashed with FNV-32a, the collision count mixed in, and the
    decimal result safe-encoded (as Kubernetes does)."""
    t = meta.copy(template)
    t.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    data = t.SerializeToString(deterministic=True)
    if collision_count:
        data += struct.pack(">I", collision_count & 0xFFFFFFFF)
    return safe_encode(str(fnv32a(data)))


def equal_ignore_hash(a: Any, b: Any) -> bool:
    """EqualIgnoreHash: two pod templates are the same rollout target if they
    differ only in the pod-template-hash label."""
    x, y = type(a)(), type(b)()
    x.CopyFrom(a)
    y.CopyFrom(b)
    x.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    y.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    return bool(x.SerializeToString(deterministic=True) == y.SerializeToString(deterministic=True))


# ------------------------------------------------------------ revisions


def revision_of(annotations: Any) -> int:
    try:
        return int(annotations.get(REVISION, "0") or 0)
    except ValueError:
        return 0


def max_revision(annotation_maps: Iterable[Any]) -> int:
    return max((revision_of(a) for a in annotation_maps), default=0)


def revision_annotations(current: Any, new_revision: int) -> dict[str, str]:
    """The revision annotations a ReplicaSet should carry when it becomes the
    new one at new_revision: when it already had an older revision (a
    rollback re-used it), that one moves into revision-history."""
    out = {REVISION: str(new_revision)}
    old = current.get(REVISION, "")
    if old and old != str(new_revision):
        hist = [h for h in current.get(REVISION_HISTORY, "").split(",") if h]
        hist.append(old)
        out[REVISION_HISTORY] = ",".join(hist)
    elif current.get(REVISION_HISTORY):
        out[REVISION_HISTORY] = current[REVISION_HISTORY]
    return out


def rs_to_clean_up(old: Sequence[tuple[str, int, int, float]], limit: int) -> list[str]:
    """cleanupDeployment: names of old ReplicaSets to delete so that at most
    `limit` remain. Items are (name, spec.replicas, status.replicas, revision
    as float for sorting); only empty ones (no pods) may go, lowest revision
    first."""
    diff = len(old) - limit
    if diff <= 0:
        return []
    out: list[str] = []
    for name, spec_r, status_r, _ in sorted(old, key=lambda t: (t[3], t[0])):
        if len(out) >= diff:
            break
        if spec_r != 0 or status_r != 0:
            continue
        out.append(name)
    return out


# ------------------------------------------------------------ pod state


def pod_ready_since(pod: Any) -> float | None:
    """When the pod's Ready condition turned True (epoch seconds), or None."""
    for c in pod.status.conditions:
        if c.type == "Ready":
            if c.status != "True":
                return None
            if c.HasField("last_transition_time"):
                return float(c.last_transition_time.seconds)
            return 0.0
    return None


def is_pod_ready(pod: Any) -> bool:
    return pod_ready_since(pod) is not None


def is_pod_available(pod: Any, min_ready_seconds: int, now: float) -> bool:
    """IsPodAvailable: ready for at least minReadySeconds."""
    since = pod_ready_since(pod)
    if since is None:
        return False
    return min_ready_seconds == 0 or since + min_ready_seconds <= now


def is_pod_active(pod: Any) -> bool:
    """IsPodActive: not terminating and not finished."""
    return (not pod.metadata.HasField("deletion_timestamp")
            and pod.status.phase not in ("Succeeded", "Failed"))


_PHASE_RANK = {"Pending": 0, "": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: Any, now: float = 0.0) -> tuple[Any, ...]:
    """Sort key for ActivePodsWithRanks: the pods to delete first sort first:
    unscheduled < scheduled; Pending < Unknown < Running; not ready < ready;
    ready for a shorter time first; more container restarts first; newer
    (later created) first; then name for determinism."""
    since = pod_ready_since(pod)
    ready = since is not None
    restarts = sum(cs.restart_count for cs in pod.status.container_statuses)
    created = pod.metadata.creation_timestamp.seconds + pod.metadata.creation_timestamp.nanos / 1e9
    return (
        1 if pod.spec.node_name else 0,
        _PHASE_RANK.get(pod.status.phase, 2),
        1 if ready else 0,
        -(since or 0.0) if ready else 0.0,
        -restarts,
        -created,
        pod.metadata.name,
    )


def pods_to_delete(pods: Sequence[Any], count: int) -> list[Any]:
    """getPodsToDelete: the `count` least valuable pods."""
    if count <= 0:
        return []
    return sorted(pods, key=deletion_rank)[:count]


def slow_start_batches(total: int, initial: int = 1) -> list[int]:
    """slowStartBatch: create in batches of 1, 2, 4, ... so a template that
    fails (quota, bad image pull secrets) costs one call, not `total`."""
    out: list[int] = []
    size = initial
    left = total
    while left > 0:
        b = min(size, left)
        out.append(b)
        left -= b
        size *= 2
    return out


def ts_seconds(ts: Any) -> float:
    return float(ts.seconds) + float(ts.nanos) / 1e9


def utc(ts_seconds_: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts_seconds_, _dt.UTC)


# ------------------------------------------------ kubectl's client side


def rollout_status_message(d: Any) -> tuple[str, bool]:
    """kubectl's DeploymentStatusViewer: (message, done). Raises
    RolloutError when the progress deadline was exceeded."""
    name = d.metadata.name
    st = d.status
    if d.metadata.generation > st.observed_generation:
        return "Waiting for deployment spec update to be observed...", False
    for c in st.conditions:
        if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
            raise RolloutError(f'deployment "{name}" exceeded its progress deadline')
    want = d.spec.replicas if d.spec.HasField("replicas") else 1
    if st.updated_replicas < want:
        return (f'Waiting for deployment "{name}" rollout to finish: {st.updated_replicas} out of {want} '
                "new replicas have been updated..."), False
    if st.replicas > st.updated_replicas:
        return (f'Waiting for deployment "{name}" rollout to finish: {st.replicas - st.updated_replicas} '
                "old replicas are pending termination..."), False
    if st.available_replicas < st.updated_replicas:
        return (f'Waiting for deployment "{name}" rollout to finish: {st.available_replicas} of '
                f"{st.updated_replicas} updated replicas are available..."), False
    return f'deployment "{name}" successfully rolled out', True


class RolloutError(Exception):
    pass


def history(rss: Sequence[Any]) -> list[tuple[int, str, Any]]:
    """(revision, change-cause, ReplicaSet) sorted by revision; a
    ReplicaSet with revision-history appears under each old revision too
    only by its current number (as kubectl)."""
    out = []
    for rs in rss:
        rev = revision_of(rs.metadata.annotations)
        if rev > 0:
            out.append((rev, rs.metadata.annotations.get(CHANGE_CAUSE, ""), rs))
    return sorted(out, key=lambda t: t[0])


def rollback_target(rss: Sequence[Any], to_revision: int) -> Any:
    """The ReplicaSet to roll back to: revision `to_revision`, or with 0 the
    one before the current (highest) revision. Raises RolloutError with
    kubectl's wording."""
    h = history(rss)
    if to_revision > 0:
        for rev, _, rs in h:
            if rev == to_revision:
                return rs
        raise RolloutError(f"unable to find specified revision {to_revision} in history")
    if len(h) < 2:
        raise RolloutError("no rollout history found for deployment")
    return h[-2][2]


def rollback_template(rs: Any) -> Any:
    """The pod template a rollback writes into the Deployment: the
    ReplicaSet's, without its pod-template-hash label."""
    t = meta.copy(rs.spec.template)
    t.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    return t
