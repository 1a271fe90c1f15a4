"""What a pod worker does next with one container: kubelet's
computePodActions, as two pure functions the worker executes
(agent/pods/worker.py). Pure: no I/O; `now` is passed in (monotonic s).

    action = decide(pod, c, runs, record, probe, now)
        Keep(started, ready)            running (or paused...): nothing to do
        Stop(container_id, reason)      a liveness/startup probe failed: stop
                                        it, then decide again on what is
        Wait(reason, message, until)    CrashLoopBackOff, or a create error
                                        still in back-off
        Done()                          exited, restartPolicy says no restart
        Create(attempt, replaces)       (re)create: first decide_image()
    step = decide_image(c, present, record, now, resync_interval)
        UseImage()                      present: go on to create
        Pull()                          pull it (the worker records the outcome
                                        in the record: pull_failed/succeeded)
        Wait(...)                       ErrImageNeverPull, ErrImagePull,
                                        ImagePullBackOff

`runs` are the container's runs in the runtime, newest attempt first. Every
action carries `remove`: runs to remove before anything else (runs older
than the previous one; a run created but never started, which an agent
stopped between create and start leaves: it is created again). Events the
decision implies are data in the action (`events`); the worker records
them. The worker calls ContainerRecord.observe_exit() for an exited run
before deciding.

Order of the checks (as kubelet's SyncPod): restart policy, restart
back-off, create-error back-off, then the image.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.pods.record import ContainerRecord
from agent.runtime.base import LABEL_ATTEMPT, ContainerState
from pkapi.v1 import core_pb2

DEFAULT_GRACE = 30


def attempt_of(st: ContainerState) -> int:
    try:
        return int(st.labels.get(LABEL_ATTEMPT, "0"))
    except ValueError:
        return 0


def should_restart(policy: str, exit_code: int) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


def probe_grace(pod: core_pb2.Pod, c: core_pb2.Container) -> int:
    """Grace of a stop that a failed liveness/startup probe asked for."""
    for p in (c.liveness_probe, c.startup_probe):
        if p.HasField("termination_grace_period_seconds"):
            return p.termination_grace_period_seconds
    if pod.spec.HasField("termination_grace_period_seconds"):
        return pod.spec.termination_grace_period_seconds
    return DEFAULT_GRACE


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class ProbeFacts:
    """What the probes of the running container say."""

    started: bool
    ready: bool
    kill_reason: str = ""


@dataclass(frozen=True)
class Keep:
    started: bool = False
    ready: bool = False
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stop:
    container_id: str
    reason: str
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Wait:
    reason: str
    message: str
    # When to look again (None: on the next event or resync).
    until: float | None
    events: tuple[Event, ...] = ()
    # A container id whose back-off event is now sent (sent once per run).
    report_once: str = ""
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Done:
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Create:
    attempt: int
    # The run before the exited one: removed once the new run started.
    replaces: str = ""
    remove: tuple[str, ...] = ()


Action = Keep | Stop | Wait | Done | Create


def decide(
    pod: core_pb2.Pod,
    c: core_pb2.Container,
    runs: list[ContainerState],
    rec: ContainerRecord,
    probe: ProbeFacts | None,
    now: float,
) -> Action:
    remove = tuple(st.id for st in runs[2:])  # keep the current and the previous run only
    cur = runs[0] if runs else None
    prev = runs[1] if len(runs) > 1 else None
    attempt = attempt_of(cur) if cur is not None else 0
    if cur is None:
        return _create(rec, attempt, "", remove, now)
    if cur.status == "created":
        return _create(rec, attempt, "", remove + (cur.id,), now)
    if cur.running:
        if probe is not None and probe.kill_reason:
            return Stop(cur.id, probe.kill_reason, remove)
        if probe is None:
            return Keep(remove=remove)
        return Keep(probe.started, probe.ready, remove)
    if not cur.exited:
        return Keep(remove=remove)  # paused, removing...: look again on the next event
    policy = pod.spec.restart_policy or "Always"
    if not should_restart(policy, cur.exit_code):
        return Done(remove)
    bo = rec.crash
    if bo.waiting(now):
        md = pod.metadata
        events: tuple[Event, ...] = ()
        if cur.id not in rec.backoff_reported:
            events = (
                Event(
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {c.name} in pod {md.name}_{md.namespace}({md.uid})",
                ),
            )
        return Wait(
            "CrashLoopBackOff",
            f"back-off {bo.delay:g}s restarting failed container={c.name} pod={md.name}_{md.namespace}({md.uid})",
            bo.until,
            events,
            report_once=cur.id,
            remove=remove,
        )
    return _create(rec, attempt + 1, prev.id if prev is not None else "", remove, now)


def _create(rec: ContainerRecord, attempt: int, replaces: str, remove: tuple[str, ...], now: float) -> Action:
    if rec.create_error is not None and rec.crash.waiting(now):
        reason, message = rec.create_error
        # Wake when the back-off ends: the timer set when the create failed
        # is gone once anything else woke the worker.
        return Wait(reason, message, rec.crash.until, remove=remove)
    return Create(attempt, replaces, remove)


@dataclass(frozen=True)
class UseImage:
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Pull:
    pass


ImageStep = UseImage | Pull | Wait


def decide_image(c: core_pb2.Container, present: bool, rec: ContainerRecord, now: float, resync_interval: float,
                 local_registry: bool = False) -> ImageStep:
    """The image step of a create. Policy as kubelet's: Always pulls even a
    present image, when the pull asks a registry on this machine
    (`local_registry`: Runtime.pulls_locally; otherwise a present image is
    used as is, as no pull may leave the machine); IfNotPresent uses a
    present image; Never never pulls; a missing image is pulled
    (ErrImagePull, then ImagePullBackOff with back-off while it keeps
    failing; ErrImagePull is shown for min(1 s, half the back-off) first)."""
    image = c.image
    policy = c.image_pull_policy or "IfNotPresent"
    if present and not (policy == "Always" and local_registry):
        return UseImage((Event("Normal", "Pulled", f'Container image "{image}" already present on machine'),))
    if policy == "Never":
        msg = f'Container image "{image}" is not present with pull policy of Never'
        return Wait("ErrImageNeverPull", msg, now + resync_interval, (Event("Warning", "ErrImageNeverPull", msg),))
    bo, failed = rec.pull, rec.pull_failure
    if failed is not None and bo.waiting(now):
        shown = min(1.0, bo.delay / 2)
        if now - failed.at < shown:
            return Wait("ErrImagePull", failed.message, failed.at + shown)
        return Wait(
            "ImagePullBackOff",
            f'Back-off pulling image "{image}": ErrImagePull: {failed.message}',
            bo.until,
            (Event("Normal", "BackOff", f'Back-off pulling image "{image}"'),),
        )
    return Pull()
