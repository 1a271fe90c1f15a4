"""decide() and decide_image() (agent/pods/decide.py) as tables: the runs
the runtime shows, the container's record and the probes' word in; the
action out. And the record's bookkeeping (agent/pods/record.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from agent.pods.backoff import Backoff
from agent.pods.decide import (
    Create,
    Done,
    Event,
    Keep,
    ProbeFacts,
    Pull,
    Stop,
    UseImage,
    Wait,
    decide,
    decide_image,
    probe_grace,
)
from agent.pods.record import ContainerRecord, PullFailure
from agent.runtime.base import LABEL_ATTEMPT, ContainerState
from pkapi import meta
from pkapi.v1 import core_pb2

NOW = 1000.0
T0 = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
POD = "pod=web_default(u-1)"


def pod(policy: str = "", **container: Any) -> core_pb2.Pod:
    c = {"name": "c", "image": "pocketkube/hello:1", **container}
    spec: dict[str, Any] = {"containers": [c]}
    if policy:
        spec["restartPolicy"] = policy
    p = meta.from_dict({"metadata": {"name": "web", "namespace": "default", "uid": "u-1"}, "spec": spec}, core_pb2.Pod)
    assert isinstance(p, core_pb2.Pod)
    return p


def run(cid: str, status: str, attempt: int = 0, code: int = 0, ran: float = 1.0) -> ContainerState:
    st = ContainerState(cid, f"k8s_c_{attempt}", {LABEL_ATTEMPT: str(attempt)}, "pocketkube/hello:1", status=status)
    if status != "created":
        st.started_at = T0
    if status in ("exited", "dead"):
        st.exit_code = code
        st.finished_at = T0 + dt.timedelta(seconds=ran)
    return st


def rec(**kw: Any) -> ContainerRecord:
    r = ContainerRecord.new(1.0, 300.0)
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def crash_waiting(delay: float = 2.0) -> Backoff:
    """A restart back-off that started 0.5 s ago and has `delay` - 0.5 s left."""
    return Backoff(1.0, 300.0, delay=delay, until=NOW - 0.5 + delay, next_delay=delay * 2)


def crash_over() -> Backoff:
    return Backoff(1.0, 300.0, delay=2.0, until=NOW - 0.1, next_delay=4.0)


OK = ProbeFacts(started=True, ready=True)
BACKOFF_EVENT = Event("Warning", "BackOff", "Back-off restarting failed container c in pod web_default(u-1)")

DECIDE: list[tuple[str, str, list[ContainerState], Callable[[], ContainerRecord], ProbeFacts | None, object]] = [
    ("no run yet: create attempt 0", "", [], rec, None, Create(0)),
    ("created, never started: removed and made again, same attempt", "",
     [run("c2", "created", 2), run("c1", "exited", 1)], rec, None, Create(2, remove=("c2",))),
    ("running, probes pass: keep", "", [run("c1", "running")], rec, OK, Keep(True, True)),
    ("running, not started yet: keep, not ready", "", [run("c1", "running")], rec,
     ProbeFacts(False, False), Keep(False, False)),
    ("running, started, not ready", "", [run("c1", "running")], rec, ProbeFacts(True, False), Keep(True, False)),
    ("running, liveness failed: stop it", "", [run("c1", "running")], rec,
     ProbeFacts(True, True, "Container c failed liveness probe, will be restarted"),
     Stop("c1", "Container c failed liveness probe, will be restarted")),
    ("removing: look again later", "", [run("c1", "removing")], rec, None, Keep()),
    ("exited 0, Never: done", "Never", [run("c1", "exited", 0, 0)], rec, None, Done()),
    ("exited 1, Never: done", "Never", [run("c1", "exited", 0, 1)], rec, None, Done()),
    ("exited 0, OnFailure: done", "OnFailure", [run("c1", "exited", 0, 0)], rec, None, Done()),
    ("exited 1, OnFailure: restart", "OnFailure", [run("c1", "exited", 0, 1)], rec, None, Create(1)),
    ("exited 0, Always: restart", "", [run("c1", "exited", 3, 0)], rec, None, Create(4)),
    ("exited, restart back-off over: restart, replacing the run before", "",
     [run("c2", "exited", 1, 1), run("c1", "exited", 0, 1)], lambda: rec(crash=crash_over()), None,
     Create(2, replaces="c1")),
    ("exited, in back-off: CrashLoopBackOff with its event", "", [run("c1", "exited", 1, 1)],
     lambda: rec(crash=crash_waiting()), None,
     Wait("CrashLoopBackOff", f"back-off 2s restarting failed container=c {POD}", NOW + 1.5,
          (BACKOFF_EVENT,), report_once="c1")),
    ("exited, in back-off, event already sent for this run", "", [run("c1", "exited", 1, 1)],
     lambda: rec(crash=crash_waiting(), backoff_reported={"c1"}), None,
     Wait("CrashLoopBackOff", f"back-off 2s restarting failed container=c {POD}", NOW + 1.5, (), report_once="c1")),
    ("four runs: the two oldest are removed", "",
     [run("c4", "running", 3), run("c3", "exited", 2, 1), run("c2", "exited", 1, 1), run("c1", "exited", 0, 1)],
     rec, OK, Keep(True, True, remove=("c2", "c1"))),
    ("missing, create failed and in back-off: the error, until the back-off ends", "", [],
     lambda: rec(crash=crash_waiting(), create_error=("RunContainerError", "exec: \"nope\": not found")), None,
     Wait("RunContainerError", "exec: \"nope\": not found", NOW + 1.5)),
    ("missing, create failed, back-off over: try again", "", [],
     lambda: rec(crash=crash_over(), create_error=("RunContainerError", "boom")), None, Create(0)),
    ("exited, create failed since, back-off over: next attempt", "", [run("c1", "exited", 0, 1)],
     lambda: rec(crash=crash_over(), create_error=("RunContainerError", "boom")), None, Create(1)),
]


@pytest.mark.parametrize(("policy", "runs", "record", "probe", "want"), [r[1:] for r in DECIDE], ids=[r[0] for r in DECIDE])
def test_decide(policy: str, runs: list[ContainerState], record: Callable[[], ContainerRecord],
                probe: ProbeFacts | None, want: object) -> None:
    p = pod(policy)
    r = record()
    before = (r.crash, r.seen_exits.copy(), r.backoff_reported.copy(), r.create_error)
    assert decide(p, p.spec.containers[0], runs, r, probe, NOW) == want
    assert (r.crash, r.seen_exits, r.backoff_reported, r.create_error) == before  # decide reads, never writes


def failed_pull(ago: float, delay: float = 2.0) -> dict[str, Any]:
    at = NOW - ago
    return {
        "pull": Backoff(1.0, 300.0, first_immediate=False, delay=delay, until=at + delay, next_delay=delay * 2),
        "pull_failure": PullFailure(at, "manifest unknown"),
    }


IMAGE = "pocketkube/none:1"
IMAGES: list[tuple[str, dict[str, Any], bool, dict[str, Any], object]] = [
    ("present: used", {}, True, {},
     UseImage((Event("Normal", "Pulled", f'Container image "{IMAGE}" already present on machine'),))),
    ("present, pull policy Always, no registry on this machine: used as is", {"imagePullPolicy": "Always"}, True, {},
     UseImage((Event("Normal", "Pulled", f'Container image "{IMAGE}" already present on machine'),))),
    ("present, Always, a registry on this machine: pulled again", {"imagePullPolicy": "Always", "local": True},
     True, {}, Pull()),
    ("present, IfNotPresent, a registry on this machine: used", {"imagePullPolicy": "IfNotPresent", "local": True},
     True, {}, UseImage((Event("Normal", "Pulled", f'Container image "{IMAGE}" already present on machine'),))),
    ("present, Always, a registry, the last pull failed: back-off", {"imagePullPolicy": "Always", "local": True},
     True, failed_pull(1.5),
     Wait("ImagePullBackOff", f'Back-off pulling image "{IMAGE}": ErrImagePull: manifest unknown', NOW + 0.5,
          (Event("Normal", "BackOff", f'Back-off pulling image "{IMAGE}"'),))),
    ("absent: pull", {}, False, {}, Pull()),
    ("absent, Always: pull", {"imagePullPolicy": "Always"}, False, {}, Pull()),
    ("absent, Never: ErrImageNeverPull, looked at again after a resync interval", {"imagePullPolicy": "Never"},
     False, {},
     Wait("ErrImageNeverPull", f'Container image "{IMAGE}" is not present with pull policy of Never', NOW + 10.0,
          (Event("Warning", "ErrImageNeverPull",
                 f'Container image "{IMAGE}" is not present with pull policy of Never'),))),
    ("failed 0.2 s ago: ErrImagePull is shown for a while", {}, False, failed_pull(0.2),
     Wait("ErrImagePull", "manifest unknown", NOW - 0.2 + 1.0)),
    ("failed 0.1 s ago with a 1 s back-off: shown half the back-off", {}, False, failed_pull(0.1, delay=1.0),
     Wait("ErrImagePull", "manifest unknown", NOW - 0.1 + 0.5)),
    ("failed 1.5 s ago, back-off 2 s: ImagePullBackOff until it ends", {}, False, failed_pull(1.5),
     Wait("ImagePullBackOff", f'Back-off pulling image "{IMAGE}": ErrImagePull: manifest unknown', NOW + 0.5,
          (Event("Normal", "BackOff", f'Back-off pulling image "{IMAGE}"'),))),
    ("failed, back-off over: pull again", {}, False, failed_pull(2.5), Pull()),
    ("failed before, now present: used", {}, True, failed_pull(0.2),
     UseImage((Event("Normal", "Pulled", f'Container image "{IMAGE}" already present on machine'),))),
]


@pytest.mark.parametrize(("container", "present", "record", "want"), [r[1:] for r in IMAGES], ids=[r[0] for r in IMAGES])
def test_decide_image(container: dict[str, Any], present: bool, record: dict[str, Any], want: object) -> None:
    container = dict(container)
    local = container.pop("local", False)
    c = pod(image=IMAGE, **container).spec.containers[0]
    assert decide_image(c, present, rec(**record), NOW, 10.0, local) == want


def test_an_exit_is_counted_once_and_a_long_run_starts_the_back_off_over() -> None:
    r = ContainerRecord.new(1.0, 300.0)
    first = run("c1", "exited", 0, 1)
    r.observe_exit(first, True, NOW)
    assert (r.crash.delay, r.crash.next_delay) == (0.0, 1.0)  # first restart immediate
    r.observe_exit(first, True, NOW + 5)  # seen again on the next sync
    assert r.crash.next_delay == 1.0
    r.observe_exit(run("c2", "exited", 1, 1), True, NOW + 6)
    r.observe_exit(run("c3", "exited", 2, 1), True, NOW + 8)
    assert (r.crash.delay, r.crash.until) == (2.0, NOW + 10)
    r.observe_exit(run("c4", "exited", 3, 1, ran=601), True, NOW + 700)
    assert (r.crash.delay, r.crash.until) == (0.0, NOW + 700)
    r.observe_exit(run("c5", "exited", 0, 0), False, NOW + 800)  # not restarted: no back-off
    assert r.crash.until == NOW + 700 and "c5" in r.seen_exits


def test_pull_outcomes_are_recorded() -> None:
    r = ContainerRecord.new(1.0, 300.0)
    r.pull_failed(NOW, "manifest unknown")
    assert r.pull_failure == PullFailure(NOW, "manifest unknown") and (r.pull.delay, r.pull.until) == (1.0, NOW + 1)
    r.pull_failed(NOW + 1, "manifest unknown")
    assert r.pull.delay == 2.0
    r.pull_succeeded()
    assert r.pull_failure is None and not r.pull.waiting(NOW + 1)


def test_probe_grace_prefers_the_probe_then_the_pod() -> None:
    p = pod(livenessProbe={"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 3})
    assert probe_grace(p, p.spec.containers[0]) == 3
    p = pod(livenessProbe={"exec": {"command": ["true"]}})
    p.spec.termination_grace_period_seconds = 7
    assert probe_grace(p, p.spec.containers[0]) == 7
    p = pod()
    assert probe_grace(p, p.spec.containers[0]) == 30
