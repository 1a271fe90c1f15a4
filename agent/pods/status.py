"""A pod's status from what the worker observed. Pure: no I/O.

The worker summarises each container as a ContainerView; pod_status() turns
the views into a Kubernetes PodStatus (phase, conditions, containerStatuses,
hostIP/podIP, portMappings), carrying condition timestamps over from the
previous status when a condition did not change, so an unchanged pod yields
an identical status and no write.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from agent.runtime.base import ContainerState, PortBinding
from pkapi import meta
from pkapi.v1 import core_pb2


@dataclass
class ContainerView:
    name: str
    image: str
    current: ContainerState | None = None
    previous: ContainerState | None = None
    restart_count: int = 0
    # Why it is not running, when it is not (ContainerCreating,
    # CrashLoopBackOff, ErrImagePull, ImagePullBackOff, ...).
    waiting_reason: str = ""
    waiting_message: str = ""
    # Exited and will not be restarted (restartPolicy).
    done: bool = False
    ready: bool = False
    started: bool = False


def _ts(target: object, when: _dt.datetime | None) -> None:
    if when is not None:
        target.FromDatetime(when.replace(microsecond=0))  # type: ignore[attr-defined]


def terminated_reason(st: ContainerState) -> str:
    if st.oom_killed:
        return "OOMKilled"
    if st.error and st.exit_code not in (0,):
        return "ContainerCannotRun" if st.started_at is None else "Error"
    return "Completed" if st.exit_code == 0 else "Error"


def _terminated(out: core_pb2.ContainerStateTerminated, st: ContainerState) -> None:
    out.exit_code = st.exit_code
    out.reason = terminated_reason(st)
    if st.error:
        out.message = st.error
    if st.exit_code > 128:
        out.signal = st.exit_code - 128
    _ts(out.started_at, st.started_at)
    _ts(out.finished_at, st.finished_at)
    out.container_id = f"docker://{st.id}"


def container_status(v: ContainerView) -> core_pb2.ContainerStatus:
    cs = core_pb2.ContainerStatus(name=v.name, image=v.image, restart_count=v.restart_count)
    cur = v.current
    if cur is not None:
        cs.container_id = f"docker://{cur.id}"
        cs.image_id = cur.image_id
    if cur is not None and cur.running and not v.waiting_reason:
        _ts(cs.state.running.started_at, cur.started_at)
        cs.ready = v.ready
        cs.started = v.started
    elif cur is not None and cur.exited and (v.done or not v.waiting_reason):
        _terminated(cs.state.terminated, cur)
        cs.started = False
    else:
        cs.state.waiting.reason = v.waiting_reason or "ContainerCreating"
        if v.waiting_message:
            cs.state.waiting.message = v.waiting_message
        cs.started = False
    # lastState: the previous run (the current container if it exited and is
    # waiting to be replaced, else the one before it).
    last = None
    if cur is not None and cur.exited and v.waiting_reason:
        last = cur
    elif v.previous is not None and v.previous.exited:
        last = v.previous
    if last is not None:
        _terminated(cs.last_state.terminated, last)
    return cs


def phase(spec: core_pb2.PodSpec, views: list[ContainerView]) -> str:
    if not views:
        return "Pending"
    policy = spec.restart_policy or "Always"
    if all(v.done for v in views):
        failed = any(v.current is not None and v.current.exit_code != 0 for v in views)
        if policy == "Always":
            return "Running"
        return "Failed" if failed else "Succeeded"
    ever_ran = all(v.current is not None and v.current.started_at is not None or v.previous is not None for v in views)
    if not ever_ran:
        return "Pending"
    return "Running"


def _set_condition(
    status: core_pb2.PodStatus,
    old: core_pb2.PodStatus,
    type_: str,
    ok: bool,
    reason: str = "",
    message: str = "",
    *,
    now: float,
) -> None:
    """Append the condition to `status`, starting from the one in `old`, so
    an unchanged condition keeps its times (and the status compares equal:
    no write) and lastTransitionTime moves only when it flips."""
    conds = status.conditions
    prev = meta.condition(old.conditions, type_)
    if prev is not None:
        conds.add().CopyFrom(prev)
    flag = "True" if ok else "False"
    meta.set_condition(conds, type_, flag, "" if ok else reason, "" if ok else message, now=now)
    if prev is not None and prev.status != flag:
        conds[-1].ClearField("last_probe_time")


def pod_status(
    pod: core_pb2.Pod,
    views: list[ContainerView],
    node_ip: str,
    bindings: dict[str, list[PortBinding]],
    start_time: _dt.datetime | None = None,
) -> core_pb2.PodStatus:
    """The status to report (`start_time`: the pod's startTime if it has
    none yet, default now)."""
    when = meta.now()
    now = when.timestamp()
    old = pod.status
    st = core_pb2.PodStatus()
    st.phase = phase(pod.spec, views)
    st.host_ip = node_ip
    st.pod_ip = node_ip
    st.pod_ips.add(ip=node_ip)
    if old.HasField("start_time"):
        st.start_time.CopyFrom(old.start_time)
    else:
        _ts(st.start_time, start_time or when)
    st.qos_class = old.qos_class or qos_class(pod.spec)
    st.nominated_node_name = old.nominated_node_name
    for v in views:
        st.container_statuses.append(container_status(v))
    for c in pod.spec.containers:
        names = {(p.container_port, (p.protocol or "TCP").upper()): p.name for p in c.ports}
        for b in bindings.get(c.name, []):
            st.port_mappings.add(
                container_name=c.name,
                name=names.get((b.container_port, b.protocol), ""),
                container_port=b.container_port,
                protocol=b.protocol,
                host_ip=b.host_ip,
                host_port=b.host_port,
            )
    terminal = st.phase in ("Succeeded", "Failed")
    not_ready = [v.name for v in views if not v.ready]
    all_ready = bool(views) and not not_ready and not terminal
    reason, msg = "", ""
    if terminal:
        reason = "PodCompleted"
    elif not_ready:
        reason, msg = "ContainersNotReady", f"containers with unready status: [{' '.join(not_ready)}]"
    _set_condition(st, old, "Initialized", True, now=now)
    _set_condition(st, old, "Ready", all_ready, reason, msg, now=now)
    _set_condition(st, old, "ContainersReady", all_ready, reason, msg, now=now)
    _set_condition(st, old, "PodScheduled", True, now=now)
    # keep conditions we don't own (e.g. DisruptionTarget) as they are
    mine = {"Initialized", "Ready", "ContainersReady", "PodScheduled"}
    for cond in old.conditions:
        if cond.type not in mine:
            st.conditions.append(cond)
    return st


def qos_class(spec: core_pb2.PodSpec) -> str:
    any_set = False
    guaranteed = True
    for c in spec.containers:
        lim, req = c.resources.limits, c.resources.requests
        if lim or req:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim:
                guaranteed = False
            elif r in req and req[r] != lim[r]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
