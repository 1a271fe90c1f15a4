"""PodWorker on the FakeRuntime with a stub API client: the sync decisions
(create, restart with back-off, adopt, pull errors, terminate) without Docker
or a control plane."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from agent.clock import Clock, FakeClock, MonotonicClock
from agent.config import AgentConfig
from agent.hooks import PodHooks
from agent.pods import spec as podspec
from agent.pods.context import PodContext, PodTiming
from agent.pods.ports import PortAllocator
from agent.pods.teardown import TeardownGate
from agent.pods.worker import PodWorker
from agent.runtime.base import ContainerNotFound, CreateError, RuntimeUnavailable
from agent.runtime.fake import FakeRuntime
from pkapi import meta
from pkapi.client.cluster import ServerUnreachable
from pkapi.errors import ApiError
from pkapi.v1 import core_pb2
from tests.helpers import eventually


class StubClient:
    def __init__(self) -> None:
        self.statuses: list[core_pb2.PodStatus] = []
        self.deletes: list[tuple[str, str, int | None, str]] = []
        self.rv = 10

    async def update_status(self, pod: core_pb2.Pod) -> core_pb2.Pod:
        self.rv += 1
        out = core_pb2.Pod()
        out.CopyFrom(pod)
        out.metadata.resource_version = str(self.rv)
        self.statuses.append(out.status)
        return out

    async def delete(self, resource: str, ns: str, name: str, grace_period_seconds: int | None = None, uid: str = "") -> Any:
        self.deletes.append((ns, name, grace_period_seconds, uid))
        return core_pb2.Pod()


class EventLog:
    """An EventSink that keeps (type, reason, message) of every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def __call__(self, pod: Any, type_: str, reason: str, message: str, container: str = "") -> None:
        self.events.append((type_, reason, message))


class StubContext(PodContext):
    """A PodContext on fakes: a StubClient, an EventLog, node n1 at 10.0.0.5."""

    client: StubClient
    event: EventLog


def stub_context(
    runtime: FakeRuntime, backoff: float = 0.2, clock: Clock | None = None, teardown: TeardownGate | None = None
) -> StubContext:
    clock = clock or MonotonicClock()
    return StubContext(
        runtime=runtime,
        client=StubClient(),
        ports=PortAllocator("10.0.0.5", 40000, 40099, check_bind=False),
        teardown=teardown or TeardownGate(AgentConfig().max_parallel_teardowns, clock=clock),
        hooks=PodHooks(nameserver="10.0.0.5"),
        node_name="n1",
        node_ip="10.0.0.5",
        event=EventLog(),
        timing=PodTiming(backoff_initial=backoff),
        clock=clock,
    )


def mkpod(image: str = "pocketkube/hello:1", uid: str = "u-1", **spec: Any) -> core_pb2.Pod:
    c: dict[str, Any] = {"name": "c", "image": image, "ports": [{"containerPort": 8080}]}
    c.update(spec.pop("container", {}))
    d = {
        "metadata": {"name": "web", "namespace": "default", "uid": uid, "resourceVersion": "5"},
        "spec": {"nodeName": "n1", "containers": [c], **spec},
    }
    p = meta.from_dict(d, core_pb2.Pod)
    assert isinstance(p, core_pb2.Pod)
    return p


def last(m: StubContext) -> core_pb2.PodStatus:
    assert m.client.statuses, "no status written"
    return m.client.statuses[-1]


def observe(w: PodWorker, m: StubContext) -> None:
    """What the watch would deliver: our own write."""
    assert w.pod is not None
    w.pod.status.CopyFrom(last(m))
    w.pod.metadata.resource_version = str(m.client.rv)


@pytest.fixture
def rt() -> FakeRuntime:
    return FakeRuntime()


async def test_creates_container_and_reports_running_ready(rt: FakeRuntime) -> None:
    m = stub_context(rt)
    w = PodWorker(m, "u-1", mkpod())
    assert not await w.sync()
    [c] = rt.containers.values()
    assert c.state.running and c.config.labels["io.pocketkube.node"] == "n1"
    assert c.config.ports[0].host_ip == "10.0.0.5" and 40000 <= c.config.ports[0].host_port <= 40099
    st = last(m)
    assert st.phase == "Running" and st.container_statuses[0].ready
    assert st.port_mappings[0].host_port == c.config.ports[0].host_port
    assert [r for _, r, _ in m.event.events] == ["Pulled", "Created", "Started"]
    # a second sync with nothing new changes nothing and writes nothing
    observe(w, m)
    n = len(m.client.statuses)
    await w.sync()
    assert len(m.client.statuses) == n and rt.calls.count("create") == 1


async def test_crash_restarts_with_back_off(rt: FakeRuntime) -> None:
    clock = FakeClock()
    m = stub_context(rt, backoff=0.3, clock=clock)
    w = PodWorker(m, "u-1", mkpod("pocketkube/crash:1", container={"env": [{"name": "CRASH_AFTER", "value": "0"}]}))
    await w.sync()
    await asyncio.sleep(0.01)  # the fake exits at once
    await w.sync()  # first restart: immediate
    assert last(m).container_statuses[0].restart_count == 1
    await asyncio.sleep(0.01)
    await w.sync()  # second crash: back-off 0.3 s
    cs = last(m).container_statuses[0]
    assert cs.state.waiting.reason == "CrashLoopBackOff" and "back-off 0.3s" in cs.state.waiting.message
    assert cs.last_state.terminated.exit_code == 1 and cs.restart_count == 1
    assert w.next_wake is not None and w.next_wake - clock.now() == pytest.approx(0.3)
    await clock.advance(0.299)
    await w.sync()  # still backing off: no restart
    assert last(m).container_statuses[0].restart_count == 1 and len(rt.containers) == 2
    await clock.advance(0.001)
    await w.sync()
    assert last(m).container_statuses[0].restart_count == 2
    assert ("Warning", "BackOff") in {(t, r) for t, r, _ in m.event.events}
    # only the current and the previous container are kept
    assert len(rt.containers) == 2


async def test_restart_keeps_host_port(rt: FakeRuntime) -> None:
    m = stub_context(rt)
    w = PodWorker(m, "u-1", mkpod())
    await w.sync()
    [first] = rt.containers.values()
    rt.crash(first.state.id)
    await w.sync()
    ports = {c.config.ports[0].host_port for c in rt.containers.values()}
    assert len(rt.containers) == 2 and len(ports) == 1


async def test_never_restart_policy_fails_pod(rt: FakeRuntime) -> None:
    m = stub_context(rt)
    w = PodWorker(m, "u-1", mkpod(restartPolicy="Never"))
    await w.sync()
    [c] = rt.containers.values()
    rt.crash(c.state.id, 2)
    await w.sync()
    st = last(m)
    assert st.phase == "Failed" and st.container_statuses[0].state.terminated.exit_code == 2
    assert len(rt.containers) == 1


async def test_adopts_running_containers(rt: FakeRuntime) -> None:
    m = stub_context(rt)
    w = PodWorker(m, "u-1", mkpod())
    await w.sync()
    [c] = rt.containers.values()
    port = c.config.ports[0].host_port
    # a new agent process: new manager (empty port table), new worker
    m2 = stub_context(rt)
    pod = mkpod()
    pod.status.CopyFrom(last(m))
    w2 = PodWorker(m2, "u-1", pod)
    await w2.sync()
    assert rt.calls.count("create") == 1 and rt.calls.count("stop") == 0
    assert not m2.client.statuses or m2.client.statuses[-1].port_mappings[0].host_port == port


async def test_missing_image_err_image_pull_then_back_off(rt: FakeRuntime) -> None:
    m = stub_context(rt, backoff=2.0)
    w = PodWorker(m, "u-1", mkpod("example/missing:1"))
    await w.sync()
    cs = last(m).container_statuses[0]
    assert cs.state.waiting.reason == "ErrImagePull" and "pull access denied" in cs.state.waiting.message
    assert last(m).phase == "Pending"
    observe(w, m)
    await asyncio.sleep(1.01)
    await w.sync()
    cs = last(m).container_statuses[0]
    assert cs.state.waiting.reason == "ImagePullBackOff"
    assert rt.calls.count("pull") == 1  # no retry inside the back-off
    rt.pullable.add("example/missing:1")
    await asyncio.sleep(1.0)
    await w.sync()
    assert last(m).container_statuses[0].state.HasField("running")


async def test_image_pull_policy_never(rt: FakeRuntime) -> None:
    m = stub_context(rt)
    w = PodWorker(m, "u-1", mkpod("example/missing:1", container={"imagePullPolicy": "Never"}))
    await w.sync()
    assert last(m).container_statuses[0].state.waiting.reason == "ErrImageNeverPull"
    assert "pull" not in rt.calls


async def test_graceful_termination_confirms_with_grace_zero() -> None:
    clock = FakeClock()
    rt = FakeRuntime(clock=clock)
    m = stub_context(rt, clock=clock)
    pod = mkpod(terminationGracePeriodSeconds=1)
    w = PodWorker(m, "u-1", pod)
    await w.sync()
    rt.ignore_sigterm.add("pocketkube/hello:1")
    meta.set_timestamp(pod.metadata.deletion_timestamp)
    pod.metadata.deletion_grace_period_seconds = 1
    terminating = asyncio.create_task(w.sync())
    await clock.advance(0.99)  # SIGTERM ignored: the container runs out its grace
    assert not terminating.done() and rt.containers and m.client.deletes == []
    await clock.advance(0.01)
    assert await asyncio.wait_for(terminating, 2)
    assert rt.containers == {}
    assert m.client.deletes == [("default", "web", 0, "u-1")]
    assert ("Normal", "Killing") in {(t, r) for t, r, _ in m.event.events}
    assert m.ports.in_use == set()


async def test_pod_gone_removes_without_confirmation(rt: FakeRuntime) -> None:
    m = stub_context(rt)
    w = PodWorker(m, "u-1", mkpod())
    await w.sync()
    w.pod = None
    assert await w.sync()
    assert rt.containers == {} and m.client.deletes == []


async def test_status_write_not_found_is_ignored(rt: FakeRuntime) -> None:
    m = stub_context(rt)

    async def gone(pod: Any) -> Any:
        raise ApiError("NotFound", 'pods "web" not found')

    m.client.update_status = gone  # type: ignore[method-assign]
    w = PodWorker(m, "u-1", mkpod())
    assert not await w.sync()


async def test_a_failed_create_is_retried_when_its_back_off_ends_even_after_a_poke(rt: FakeRuntime) -> None:
    clock = FakeClock()
    m = stub_context(rt, backoff=1.0, clock=clock)

    async def start(container_id: str) -> None:
        raise CreateError('exec: "nope": executable file not found in $PATH')

    rt.start = start  # type: ignore[method-assign]
    w = PodWorker(m, "u-1", mkpod())
    await w.sync()  # fails; the first retry is immediate
    await w.sync()  # fails again: 1 s of back-off
    failed_at = clock.now()
    assert last(m).container_statuses[0].state.waiting.reason == "RunContainerError"
    await clock.advance(0.5)
    w.next_wake = None  # what the run loop does when something else (a poke) wakes it
    await w.sync()  # still backing off
    assert rt.calls.count("create") == 2
    assert w.next_wake == pytest.approx(failed_at + 1.0)


async def test_run_loop_wakes_on_poke_and_timer(rt: FakeRuntime) -> None:
    m = stub_context(rt, backoff=0.2)
    w = PodWorker(m, "u-1", mkpod("pocketkube/crash:1", container={"env": [{"name": "CRASH_AFTER", "value": "0.05"}]}))
    task = asyncio.create_task(w.run())
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if m.client.statuses and m.client.statuses[-1].container_statuses[0].restart_count >= 3:
                break
            w.poke()  # what the container events would do
            await asyncio.sleep(0.05)
        assert m.client.statuses[-1].container_statuses[0].restart_count >= 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_max_pods_admission_rejects_with_out_of_pods(rt: FakeRuntime) -> None:
    m = stub_context(rt)
    w = PodWorker(m, "u-9", mkpod(uid="u-9"))
    w.rejected = "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2"
    await w.sync()
    st = last(m)
    assert (st.phase, st.reason) == ("Failed", "OutOfpods") and "capacity: 2" in st.message
    assert rt.containers == {}
    assert ("Warning", "OutOfpods") in {(t, r) for t, r, _ in m.event.events}


async def test_manager_admits_up_to_max_pods(rt: FakeRuntime) -> None:
    from agent.pods.manager import PodManager

    cfg = AgentConfig(node_name="n1", node_ip="10.0.0.5", max_pods=2)
    client = StubClient()
    mgr = PodManager(cfg, client, rt, PodHooks(), check_port_bind=False)
    try:
        for i in range(3):
            mgr._on_add(mkpod(uid=f"u-{i}"))
        assert [bool(mgr.workers[f"u-{i}"].rejected) for i in range(3)] == [False, False, True]
        assert "used: 2, capacity: 2" in mgr.workers["u-2"].rejected

        async def settled() -> bool:
            return len(rt.containers) == 2 and any(s.reason == "OutOfpods" for s in client.statuses)

        await eventually("workers to run two pods and reject the third", settled, timeout=5, interval=0.02)
    finally:
        for w in mgr.workers.values():
            assert w.task is not None
            w.task.cancel()
        await asyncio.gather(*(w.task for w in mgr.workers.values() if w.task), return_exceptions=True)


async def test_startup_probe_failure_restarts_and_gates_readiness(rt: FakeRuntime) -> None:
    rt.exec_results["started?"] = (1, b"not yet")
    m = stub_context(rt, backoff=0.1)
    probe = {"exec": {"command": ["started?"]}, "periodSeconds": 1, "failureThreshold": 2}
    ready_probe = {"exec": {"command": ["true"]}, "periodSeconds": 1}
    w = PodWorker(m, "u-1", mkpod(container={"startupProbe": probe, "readinessProbe": ready_probe}))
    task = asyncio.create_task(w.run())
    try:
        deadline = time.monotonic() + 5
        while not (m.client.statuses and m.client.statuses[-1].container_statuses[0].restart_count >= 1):
            assert time.monotonic() < deadline, "no restart after the startup probe failed twice"
            st = m.client.statuses[-1] if m.client.statuses else None
            if st is not None:
                cs = st.container_statuses[0]
                assert not cs.ready and not cs.started  # readiness held back while starting
            await asyncio.sleep(0.05)
        assert any(r == "Killing" and "failed startup probe" in msg for _, r, msg in m.event.events), m.event.events
        # once started, readiness runs and the pod becomes Ready
        rt.exec_results["started?"] = (0, b"")
        deadline = time.monotonic() + 5
        while not m.client.statuses[-1].container_statuses[0].ready:
            assert time.monotonic() < deadline, "not Ready after the startup probe passed"
            await asyncio.sleep(0.05)
        assert m.client.statuses[-1].container_statuses[0].started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_fake_runtime_answers_network_probes(rt: FakeRuntime) -> None:
    m = stub_context(rt)
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    w = PodWorker(m, "u-1", mkpod(container={"readinessProbe": probe}))
    task = asyncio.create_task(w.run())
    try:
        await eventually("a hollow pod's http readiness probe to pass",
                         lambda: m.client.statuses and m.client.statuses[-1].container_statuses[0].ready,
                         timeout=3, interval=0.02)
        rt.probe_results["Readiness"] = (False, "HTTP probe failed with statuscode: 503")
        await eventually("readiness to turn false", lambda: not m.client.statuses[-1].container_statuses[0].ready,
                         timeout=5)
        assert any("statuscode: 503" in msg for _, r, msg in m.event.events if r == "Unhealthy")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_cluster_first_pod_gets_cluster_dns_with_ndots(rt: FakeRuntime) -> None:
    m = stub_context(rt)
    m.hooks.cluster_dns = True
    w = PodWorker(m, "u-1", mkpod())
    assert not await w.sync()
    [c] = rt.containers.values()
    assert c.config.dns_servers == ["10.0.0.5"] and c.config.dns_options == ["ndots:5"]
    _, out = await rt.exec(c.state.id, ["cat", "/etc/resolv.conf"], 5)
    assert out.decode().splitlines() == [
        "nameserver 10.0.0.5",
        "search default.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ]


async def _graceful_stop_under_way(rt: FakeRuntime, m: StubContext) -> tuple[PodWorker, asyncio.Task[bool], str]:
    """A pod with 60 s of grace whose container ignores SIGTERM, its
    termination started (the graceful stop is waiting)."""
    pod = mkpod(terminationGracePeriodSeconds=60)
    w = PodWorker(m, "u-1", pod)
    await w.sync()
    [cid] = list(rt.containers)
    rt.ignore_sigterm.add("pocketkube/hello:1")
    meta.set_timestamp(pod.metadata.deletion_timestamp)
    pod.metadata.deletion_grace_period_seconds = 60
    task = asyncio.create_task(w.sync())
    await eventually("the graceful stop to begin", lambda: "stop" in rt.calls, timeout=2, interval=0.01)
    assert not task.done()
    return w, task, cid


async def test_force_delete_during_graceful_stop_kills_at_once() -> None:
    clock = FakeClock()  # never advanced: the 60 s grace cannot run out
    rt = FakeRuntime(clock=clock)
    m = stub_context(rt, clock=clock)
    w, task, _ = await _graceful_stop_under_way(rt, m)
    t0 = clock.now()
    w.pod = None  # the force delete: the pod is gone from the API
    w.poke()
    assert await asyncio.wait_for(task, 2)
    assert clock.now() == t0  # killed, not stopped by the grace running out
    assert rt.containers == {}


async def test_force_delete_kill_of_a_container_already_gone_is_done(rt: FakeRuntime) -> None:
    """The race: the container exits and is removed (by anyone) between the
    force delete waking the worker and its kill, and the kill reports it
    gone. Gone is what the kill wants; termination completes."""
    m = stub_context(rt)
    w, task, cid = await _graceful_stop_under_way(rt, m)
    real_stop = rt.stop

    async def stop(container_id: str, timeout: float) -> None:
        if timeout == 0:
            await rt.remove(container_id)  # ends the graceful stop too
            raise ContainerNotFound(f"No such container: {container_id}")
        await real_stop(container_id, timeout)

    rt.stop = stop  # type: ignore[method-assign]
    w.pod = None
    w.poke()
    assert await asyncio.wait_for(task, 2)
    assert rt.containers == {}


async def test_force_delete_kill_failure_is_logged_not_hidden(rt: FakeRuntime, caplog: pytest.LogCaptureFixture) -> None:
    m = stub_context(rt)
    pod = mkpod(terminationGracePeriodSeconds=1)
    w = PodWorker(m, "u-1", pod)
    await w.sync()
    rt.ignore_sigterm.add("pocketkube/hello:1")
    meta.set_timestamp(pod.metadata.deletion_timestamp)
    pod.metadata.deletion_grace_period_seconds = 1
    real_stop = rt.stop

    async def stop(container_id: str, timeout: float) -> None:
        if timeout == 0:
            raise RuntimeUnavailable("engine hiccup")
        await real_stop(container_id, timeout)

    rt.stop = stop  # type: ignore[method-assign]
    task = asyncio.create_task(w.sync())
    while "stop" not in rt.calls:
        await asyncio.sleep(0.01)
    w.pod = None
    w.poke()
    assert await asyncio.wait_for(task, 3)  # the graceful stop still bounds it
    assert rt.containers == {}
    assert "killing container" in caplog.text and "engine hiccup" in caplog.text


class AwayClient(StubClient):
    """A control plane that does not answer until `back` is set; then it
    lists `pods` and its watch stays open."""

    def __init__(self, pods: list[core_pb2.Pod]) -> None:
        super().__init__()
        self.pods = pods
        self.back = asyncio.Event()
        self.lists = 0

    async def list(self, resource: str, namespace: str = "", **kw: Any) -> tuple[list[Any], str]:
        self.lists += 1
        if not self.back.is_set():
            raise ServerUnreachable("127.0.0.1:1", "connection refused")
        return self.pods, "7"

    async def watch(self, *a: Any, **kw: Any) -> Any:
        await asyncio.Event().wait()
        yield  # pragma: no cover


async def test_manager_outwaits_a_control_plane_that_is_away(
    rt: FakeRuntime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from agent.pods import manager as manager_mod
    from agent.pods.manager import PodManager

    monkeypatch.setattr(manager_mod, "SYNC_LOG_EVERY", 0.02)
    caplog.set_level(logging.INFO, logger="agent.pods.manager")
    running = await rt.create(podspec.container_config(mkpod(), mkpod().spec.containers[0], 0, "n1", "10.0.0.5", [], {}, ([], [], [])))
    await rt.start(running)
    client = AwayClient([mkpod()])
    mgr = PodManager(AgentConfig(node_name="n1", node_ip="10.0.0.5"), client, rt, PodHooks(), check_port_bind=False)
    task = asyncio.create_task(mgr.run())
    try:
        await eventually("several failed lists and 'still waiting' twice", lambda: task.done() or (
            client.lists >= 3 and caplog.text.count("still waiting") >= 2))
        assert not task.done(), task  # waiting is not failing
        assert rt.calls.count("remove") == 0 and (await rt.inspect(running)).running  # nothing touched meanwhile
        client.back.set()
        await eventually("the pod's worker once the pods are listed", lambda: "u-1" in mgr.workers)
        await eventually("the pod's status written", lambda: bool(client.statuses))
        assert not task.done()
        assert rt.calls.count("create") == 1  # only the container made above: adopted, not restarted
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

