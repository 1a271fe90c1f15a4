"""pk-agent on the real Docker Engine, a real etcd and a real control plane
(controllers off: pods are created already bound with spec.nodeName)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import docker
import pytest
import pytest_asyncio

from controlplane.etcdproc import EtcdProcess
from pkapi import meta
from pkapi.client.cluster import ClusterClient
from pkapi.v1 import api_pb2, core_pb2
from tests.fixtures.agent import AgentProcess
from tests.fixtures.controlplane import ControlPlane
from tests.fixtures.docker import remove_containers
from tests.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


def make_pod(node: str, name: str | None = None, containers: list[dict[str, Any]] | None = None, **spec: Any) -> core_pb2.Pod:
    d = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name or f"p-{uuid.uuid4().hex[:6]}", "namespace": "default", "labels": {"app": "t"}},
        "spec": {
            "nodeName": node,
            "containers": containers
            or [{"name": "web", "image": "pocketkube/hello:1", "ports": [{"containerPort": 8080, "name": "http"}]}],
            **spec,
        },
    }
    pod = meta.from_dict(d, core_pb2.Pod)
    assert isinstance(pod, core_pb2.Pod)
    return pod


async def wait_pod(
    client: ClusterClient, name: str, pred: Callable[[core_pb2.Pod], bool], what: str, timeout: float = 20.0
) -> core_pb2.Pod:
    deadline = time.monotonic() + timeout
    pod: Any = None
    while True:
        try:
            pod = await client.get("pods", "default", name)
            if pred(pod):
                return pod  # type: ignore[no-any-return]
        except Exception as e:  # noqa: BLE001 - polled until the deadline
            if getattr(e, "reason", "") != "NotFound":
                raise
            pod = None
        if time.monotonic() > deadline:
            shown = meta.to_dict(pod).get("status") if pod is not None else "pod not found"
            raise AssertionError(f"timed out after {timeout}s waiting for pod {name}: {what}; last status: {shown}")
        await asyncio.sleep(0.1)


async def wait_gone(client: ClusterClient, name: str, timeout: float = 20.0) -> float:
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        try:
            await client.get("pods", "default", name)
        except Exception as e:  # noqa: BLE001
            if getattr(e, "reason", "") == "NotFound":
                return time.monotonic() - t0
            raise
        await asyncio.sleep(0.05)
    raise AssertionError(f"pod {name} still exists after {timeout}s")


def ready(pod: core_pb2.Pod) -> bool:
    c = meta.condition(pod.status.conditions, "Ready")
    return c is not None and c.status == "True"


def cstatus(pod: core_pb2.Pod, name: str = "") -> core_pb2.ContainerStatus | None:
    for cs in pod.status.container_statuses:
        if not name or cs.name == name:
            return cs
    return None


def waiting_reason(pod: core_pb2.Pod) -> str:
    cs = cstatus(pod)
    return cs.state.waiting.reason if cs is not None and cs.state.HasField("waiting") else ""


async def http_get(host: str, port: int, path: str = "/", timeout: float = 10.0) -> tuple[int, str]:
    """GET, retried until `timeout`: Ready without a readiness probe means the
    container started, not that its server listens yet (as in Kubernetes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
            try:
                writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                data = await asyncio.wait_for(reader.read(), 3)
            finally:
                writer.close()
            if data:
                head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
                return int(head.split()[1]), body
            err: Exception = ConnectionError("empty response")
        except (OSError, TimeoutError) as e:
            err = e
        if time.monotonic() > deadline:
            raise AssertionError(f"no HTTP answer from {host}:{port}{path} within {timeout}s: {err}")
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_cp(docker_host: str) -> AsyncIterator[ControlPlane]:
    """One control plane (controllers off) for the module: each test gets its
    own node (agent), so tests never see each other's containers."""
    tmp = tempfile.mkdtemp(prefix="pk-agent-cp-")
    etcd = EtcdProcess(os.path.join(tmp, "etcd"), auto_compaction_retention="")
    await etcd.start()
    cp = ControlPlane(tmp, etcd.endpoint, False, {})
    try:
        await cp.start()
        yield cp
    finally:
        await cp.stop()
        await etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="module")
async def start_node(shared_cp: ControlPlane, docker_host: str) -> AsyncIterator[Callable[..., Awaitable[AgentProcess]]]:
    """Factory: a pk-agent on the shared control plane with a unique node name;
    stopped, its containers and its pods removed at teardown."""
    made: list[AgentProcess] = []
    tmp = tempfile.mkdtemp(prefix="pk-agent-")

    async def factory(docker_host_: str | None = None, **flags: Any) -> AgentProcess:
        ag = AgentProcess(tmp, shared_cp.address, docker_host_ or docker_host, f"node-{uuid.uuid4().hex[:8]}", flags)
        made.append(ag)
        await ag.start()
        return ag

    try:
        yield factory
    finally:
        client = shared_cp.client()
        try:
            for ag in made:
                await ag.stop()
                dc = docker.DockerClient(base_url=ag.docker_host, timeout=30)
                try:
                    await asyncio.to_thread(remove_containers, dc, f"io.pocketkube.node={ag.node_name}")
                finally:
                    dc.close()
                pods, _ = await client.list("pods", field_selector=f"spec.nodeName={ag.node_name}")
                for p in pods:
                    md = p.metadata  # type: ignore[attr-defined]
                    await client.delete("pods", md.namespace, md.name, grace_period_seconds=0)
        finally:
            await client.close()
            shutil.rmtree(tmp, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="module")
async def node(shared_cp: ControlPlane, start_node: Any) -> AsyncIterator[tuple[ControlPlane, AgentProcess, ClusterClient]]:
    ag = await start_node()
    client = shared_cp.client()
    yield shared_cp, ag, client
    await client.close()


async def test_pod_runs_and_answers_on_host_port(node: Any, docker_client: Any) -> None:
    cp, ag, client = node
    t0 = time.monotonic()
    await client.create(make_pod(ag.node_name, "web"))
    pod = await wait_pod(client, "web", ready, "Ready")
    elapsed = time.monotonic() - t0
    assert pod.status.phase == "Running"
    assert pod.status.host_ip == "127.0.0.1" and pod.status.pod_ip == "127.0.0.1"
    assert pod.status.HasField("start_time")
    conds = {c.type: c.status for c in pod.status.conditions}
    assert conds == {"PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}
    cs = cstatus(pod)
    assert cs is not None and cs.ready and cs.restart_count == 0 and cs.state.HasField("running")
    assert cs.container_id.startswith("docker://")
    [pm] = pod.status.port_mappings
    assert (pm.container_name, pm.name, pm.container_port, pm.protocol, pm.host_ip) == ("web", "http", 8080, "TCP", "127.0.0.1")
    assert 40000 <= pm.host_port <= 44999
    status, body = await http_get("127.0.0.1", pm.host_port)
    assert status == 200 and body.strip() == "web"  # the pod's hostname
    # Docker labels identify node, pod and container
    [c] = docker_client.containers.list(filters={"label": f"io.pocketkube.node={ag.node_name}"})
    assert c.labels["io.pocketkube.pod.name"] == "web"
    assert c.labels["io.pocketkube.pod.uid"] == pod.metadata.uid
    assert c.labels["io.pocketkube.container.name"] == "web"
    assert elapsed < 10


# ------------------------------------------------------------------ helpers


async def pod_logs(client: ClusterClient, name: str, timeout: float = 10.0, **kw: Any) -> bytes:
    call = client.resources.PodLogs(api_pb2.LogsRequest(namespace="default", pod=name, **kw), timeout=timeout)
    return b"".join([chunk.data async for chunk in call])


async def pod_exec(
    client: ClusterClient, name: str, command: list[str], stdin: bytes | None = None, container: str = "", tty: bool = False
) -> tuple[int, bytes, bytes]:
    call = client.resources.PodExec(timeout=15)
    start = api_pb2.ExecStart(
        namespace="default", pod=name, container=container, command=command, stdin=stdin is not None, tty=tty
    )
    await call.write(api_pb2.ExecRequest(start=start))
    if stdin is not None:
        await call.write(api_pb2.ExecRequest(stdin=stdin))
        await call.write(api_pb2.ExecRequest(stdin_close=True))
    await call.done_writing()
    out, err, code = b"", b"", None
    async for r in call:
        kind = r.WhichOneof("msg")
        if kind == "stdout":
            out += r.stdout
        elif kind == "stderr":
            err += r.stderr
        elif kind == "exit_code":
            code = r.exit_code
    assert code is not None, "exec stream ended without an exit code"
    return code, out, err


async def events_of(client: ClusterClient, name: str) -> list[tuple[str, str, str]]:
    evs, _ = await client.list("events", "default")
    return [(e.type, e.reason, e.message) for e in evs if e.involved_object.name == name]  # type: ignore[attr-defined]


async def events_until(client: ClusterClient, name: str, pred: Callable[[list[tuple[str, str, str]]], bool],
                       what: str, timeout: float = 10.0) -> list[tuple[str, str, str]]:
    """The events of `name` once pred holds for them: events are written
    asynchronously (batched), so one may land after the status it caused."""
    async def check() -> list[tuple[str, str, str]] | None:
        evs = await events_of(client, name)
        return evs if pred(evs) else None

    return await eventually(what, check, timeout=timeout)  # type: ignore[no-any-return]



def listed(docker_client: Any, label: str) -> list[Any]:
    """The containers carrying `label`, all states. The SDK lists, then
    inspects each container: one the agent removes in between would raise
    NotFound ("No such container") unless ignored, and gone is what the
    callers wait for."""
    return list(docker_client.containers.list(all=True, filters={"label": label}, ignore_removed=True))


def sh(script: str) -> dict[str, Any]:
    return {"name": "main", "image": "pocketkube/hello:1", "command": ["sh", "-c", script]}


# -------------------------------------------------------------------- tests


async def test_listing_tolerates_a_container_removed_while_listing(docker_host: str) -> None:
    """The flake of the force-delete test: the agent removed the container
    between the SDK's list and its inspect of that container. Injected here
    at exactly that point, so it fails every time without ignore_removed."""
    label = f"io.pocketkube.test=listed-{uuid.uuid4().hex[:8]}"
    key, value = label.split("=")
    client = docker.DockerClient(base_url=docker_host, timeout=30)
    real = client.api.containers

    def list_then_agent_removes(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        for s in out:
            client.api.remove_container(s["Id"], force=True)
        return out

    try:
        client.api.create_container("pocketkube/hello:1", command=["true"], labels={key: value})
        client.api.containers = list_then_agent_removes
        assert listed(client, label) == []
    finally:
        client.api.containers = real
        remove_containers(client, label)
        client.close()


async def test_env_args_and_workdir_reach_the_process(node: Any) -> None:
    cp, ag, client = node
    c = {
        "name": "main",
        "image": "pocketkube/hello:1",
        "command": ["sh", "-c"],
        "args": ['echo "name=$POD_NAME ns=$POD_NAMESPACE node=$NODE_NAME greet=$GREET app=$APP pwd=$(pwd) arg=$(A)"; sleep 3600'],
        "workingDir": "/tmp",
        "env": [
            {"name": "A", "value": "x1"},
            {"name": "GREET", "value": "hi-$(A)"},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        ],
        "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
    }
    await client.create(make_pod(ag.node_name, "envy", [c]))
    await wait_pod(client, "envy", ready, "Ready")
    logs = await eventually("the env line in the logs", lambda: pod_logs(client, "envy"), timeout=15)
    line = logs.decode().strip()
    assert line == f"name=envy ns=default node={ag.node_name} greet=hi-x1 app=t pwd=/tmp arg=x1", line


async def test_dns_config_reaches_the_containers_resolv_conf(node: Any) -> None:
    """dnsPolicy None with a dnsConfig: the container's resolv.conf has
    exactly its nameservers, search path and options (valueless ones by
    name). 127.0.0.1: nothing is ever sent anywhere."""
    cp, ag, client = node
    c = sh("cat /etc/resolv.conf; sleep 3600")
    p = make_pod(ag.node_name, "tuned", [c], dnsPolicy="None", dnsConfig={
        "nameservers": ["127.0.0.1"], "searches": ["example.internal"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    await client.create(p)
    await wait_pod(client, "tuned", ready, "Ready")
    logs = await eventually("resolv.conf in the logs", lambda: pod_logs(client, "tuned"), timeout=15)
    lines = [ln.strip() for ln in logs.decode().splitlines() if ln.strip() and not ln.startswith("#")]
    assert "nameserver 127.0.0.1" in lines and "search example.internal" in lines, lines
    opts = next(ln for ln in lines if ln.startswith("options ")).split()[1:]
    assert sorted(opts) == ["edns0", "ndots:2"], lines
    assert [ln for ln in lines if ln.startswith("nameserver")] == ["nameserver 127.0.0.1"], lines


async def test_limits_become_docker_limits(node: Any, docker_client: Any) -> None:
    cp, ag, client = node
    c = sh("sleep 3600") | {"resources": {"limits": {"cpu": "250m", "memory": "32Mi"}}}
    await client.create(make_pod(ag.node_name, "lim", [c]))
    await wait_pod(client, "lim", ready, "Ready")
    [ct] = docker_client.containers.list(filters={"label": f"io.pocketkube.node={ag.node_name}"})
    hc = ct.attrs["HostConfig"]
    assert hc["NanoCpus"] == 250_000_000 and hc["Memory"] == 32 * 2**20


async def test_crash_loop_back_off(node: Any) -> None:
    cp, ag, client = node
    c = {"name": "main", "image": "pocketkube/crash:1", "env": [{"name": "CRASH_AFTER", "value": "0"}]}
    await client.create(make_pod(ag.node_name, "crashy", [c]))
    seen: dict[int, float] = {}
    reasons: set[str] = set()
    deadline = time.monotonic() + 30
    pod = None
    while len(seen) < 5 and time.monotonic() < deadline:
        pod = await client.get("pods", "default", "crashy")
        cs = cstatus(pod)  # type: ignore[arg-type]
        if cs is not None:
            seen.setdefault(cs.restart_count, time.monotonic())
            if cs.state.HasField("waiting"):
                reasons.add(cs.state.waiting.reason)
                assert not ready(pod) and not cs.ready  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
    assert len(seen) >= 5, f"restart counts seen: {sorted(seen)}"
    assert "CrashLoopBackOff" in reasons
    t = [seen[i] for i in range(1, 5)]
    gaps = [b - a for a, b in zip(t, t[1:], strict=False)]  # ~1 s, 2 s, 4 s (lab back-off)
    assert gaps[2] > gaps[0] + 1.0, gaps
    cs = cstatus(pod)  # type: ignore[arg-type]
    assert cs is not None and cs.last_state.terminated.exit_code == 1
    assert cs.last_state.terminated.reason == "Error"
    await events_until(client, "crashy", lambda evs: any(r == "BackOff" for _, r, _ in evs), "a BackOff event")


async def test_restart_policy_never_and_on_failure(node: Any) -> None:
    cp, ag, client = node
    await client.create(make_pod(ag.node_name, "ok-once", [sh("exit 0")], restartPolicy="OnFailure"))
    await client.create(make_pod(ag.node_name, "fail-once", [sh("exit 3")], restartPolicy="Never"))
    pod = await wait_pod(client, "ok-once", lambda p: p.status.phase == "Succeeded", "Succeeded")
    cs = cstatus(pod)
    assert cs is not None and cs.restart_count == 0 and cs.state.terminated.reason == "Completed"
    pod = await wait_pod(client, "fail-once", lambda p: p.status.phase == "Failed", "Failed")
    cs = cstatus(pod)
    assert cs is not None and cs.restart_count == 0 and cs.state.terminated.exit_code == 3


async def test_liveness_failure_restarts_the_container(node: Any) -> None:
    cp, ag, client = node
    c = {
        "name": "main",
        "image": "pocketkube/flaky:1",
        "env": [{"name": "HEALTHY_FOR", "value": "1"}],
        "ports": [{"containerPort": 8080, "name": "http"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1, "failureThreshold": 2},
    }
    await client.create(make_pod(ag.node_name, "flaky", [c]))
    pod = await wait_pod(client, "flaky", lambda p: (cstatus(p) or core_pb2.ContainerStatus()).restart_count >= 1,
                         "a restart after the liveness probe failed")
    await events_until(client, "flaky", lambda evs: any(
        r == "Unhealthy" and "Liveness probe failed" in m for _, r, m in evs) and any(
        r == "Killing" and "failed liveness probe" in m for _, r, m in evs), "Unhealthy and Killing events")
    # the same host port after the restart
    [pm] = pod.status.port_mappings
    pod = await wait_pod(client, "flaky", ready, "Ready again after the restart")
    assert pod.status.port_mappings[0].host_port == pm.host_port


async def test_readiness_flips_ready_both_ways(node: Any) -> None:
    cp, ag, client = node
    c = {
        "name": "main",
        "image": "pocketkube/hello:1",
        "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1},
    }
    await client.create(make_pod(ag.node_name, "ready", [c]))
    pod = await wait_pod(client, "ready", lambda p: p.status.phase == "Running", "Running")
    assert not ready(pod)
    code, _, _ = await pod_exec(client, "ready", ["touch", "/tmp/ready"])
    assert code == 0
    await wait_pod(client, "ready", ready, "Ready after /tmp/ready appeared", timeout=10)
    code, _, _ = await pod_exec(client, "ready", ["rm", "/tmp/ready"])
    assert code == 0
    pod = await wait_pod(client, "ready", lambda p: not ready(p), "not Ready after /tmp/ready vanished", timeout=10)
    assert meta.condition(pod.status.conditions, "ContainersReady").status == "False"  # type: ignore[union-attr]
    assert cstatus(pod).restart_count == 0  # type: ignore[union-attr]


async def test_startup_probe_holds_back_readiness(node: Any) -> None:
    cp, ag, client = node
    c = {
        "name": "main",
        "image": "pocketkube/hello:1",
        "ports": [{"containerPort": 8080}],
        "startupProbe": {"exec": {"command": ["cat", "/tmp/started"]}, "periodSeconds": 1, "failureThreshold": 30},
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    }
    await client.create(make_pod(ag.node_name, "slow", [c]))
    await wait_pod(client, "slow", lambda p: p.status.phase == "Running", "Running")
    await asyncio.sleep(1.5)  # the tcp readiness probe would pass by now if it ran
    pod = await client.get("pods", "default", "slow")
    assert not ready(pod) and not cstatus(pod).started  # type: ignore[arg-type,union-attr]
    await pod_exec(client, "slow", ["touch", "/tmp/started"])
    pod = await wait_pod(client, "slow", ready, "Ready once the startup probe passed")
    assert cstatus(pod).started  # type: ignore[union-attr]


async def test_missing_image_shows_pull_errors_and_agent_stays_healthy(node: Any) -> None:
    cp, ag, client = node
    # A registry on a closed loopback port: the pull fails fast, nothing leaves the machine.
    image = "127.0.0.1:1/pocketkube/missing:1"
    await client.create(make_pod(ag.node_name, "noimg", [{"name": "main", "image": image}]))
    reasons: dict[str, str] = {}

    async def both() -> bool:
        pod = await client.get("pods", "default", "noimg")
        cs = cstatus(pod)  # type: ignore[arg-type]
        if cs is not None and cs.state.HasField("waiting"):
            reasons[cs.state.waiting.reason] = cs.state.waiting.message
        return {"ErrImagePull", "ImagePullBackOff"} <= reasons.keys()

    await eventually("ErrImagePull then ImagePullBackOff", both, timeout=20)
    assert "127.0.0.1:1" in reasons["ErrImagePull"]  # Docker's own message
    assert reasons["ImagePullBackOff"].startswith(f'Back-off pulling image "{image}"')
    pod = await client.get("pods", "default", "noimg")
    assert pod.status.phase == "Pending"  # type: ignore[attr-defined]
    await events_until(client, "noimg", lambda evs: any(r == "Failed" and "ErrImagePull" in m for _, r, m in evs),
                       "a Failed ErrImagePull event")
    # the agent is alive and still runs other pods
    assert ag.process.poll() is None
    await client.create(make_pod(ag.node_name, "fine"))
    await wait_pod(client, "fine", ready, "Ready next to a pod with a missing image")


async def test_image_pull_policy_never(node: Any) -> None:
    cp, ag, client = node
    c = {"name": "main", "image": "pocketkube/absent:1", "imagePullPolicy": "Never"}
    await client.create(make_pod(ag.node_name, "never", [c]))
    pod = await wait_pod(client, "never", lambda p: waiting_reason(p) == "ErrImageNeverPull", "ErrImageNeverPull")
    assert "is not present with pull policy of Never" in cstatus(pod).state.waiting.message  # type: ignore[union-attr]


async def test_graceful_termination(node: Any, docker_client: Any) -> None:
    cp, ag, client = node
    polite = sh('trap "echo got TERM; sleep 1; exit 0" TERM; while true; do sleep 0.1; done')
    stubborn = sh('trap "" TERM; while true; do sleep 0.1; done')
    await client.create(make_pod(ag.node_name, "polite", [polite], terminationGracePeriodSeconds=10))
    await client.create(make_pod(ag.node_name, "stubborn", [stubborn], terminationGracePeriodSeconds=2))
    await wait_pod(client, "polite", ready, "Ready")
    await wait_pod(client, "stubborn", ready, "Ready")
    await client.delete("pods", "default", "polite")
    await client.delete("pods", "default", "stubborn")
    # deleting marks the pod; it stays until the agent confirms
    pod = await client.get("pods", "default", "polite")
    assert pod.metadata.HasField("deletion_timestamp")  # type: ignore[attr-defined]
    t_polite, t_stubborn = await asyncio.gather(wait_gone(client, "polite"), wait_gone(client, "stubborn"))
    assert 0.9 <= t_polite < 8, t_polite  # exited on its own after its 1 s of cleanup, well before its 10 s
    assert 1.8 <= t_stubborn < 8, t_stubborn  # killed at the end of its 2 s
    assert docker_client.containers.list(all=True, filters={"label": f"io.pocketkube.node={ag.node_name}"}) == []


async def test_force_delete_skips_the_wait(node: Any) -> None:
    cp, ag, client = node
    await client.create(make_pod(ag.node_name, "forced", [sh('trap "" TERM; while true; do sleep 0.1; done')]))
    await wait_pod(client, "forced", ready, "Ready")
    await client.delete("pods", "default", "forced", grace_period_seconds=0)
    assert await wait_gone(client, "forced", timeout=2) < 2


async def test_logs_and_exec(node: Any) -> None:
    cp, ag, client = node
    script = 'i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.2; done'
    await client.create(make_pod(ag.node_name, "talky", [sh(script)]))
    await wait_pod(client, "talky", ready, "Ready")
    await eventually("3 log lines", lambda: _count_lines(client, "talky", 3), timeout=15)
    tail = await pod_logs(client, "talky", tail_lines=2)
    assert len(tail.decode().splitlines()) == 2
    # follow: new lines keep arriving on one stream
    call = client.resources.PodLogs(api_pb2.LogsRequest(namespace="default", pod="talky", follow=True, tail_lines=1))
    got = b""
    async for chunk in call:
        got += chunk.data
        if got.count(b"\n") >= 4:
            break
    call.cancel()
    nums = [int(s.split()[1]) for s in got.decode().splitlines()[:4]]
    assert nums == list(range(nums[0], nums[0] + 4))
    # exec: output, stdin and exit codes pass through
    code, out, err = await pod_exec(client, "talky", ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (code, out, err) == (7, b"out\n", b"err\n")
    code, out, _ = await pod_exec(client, "talky", ["cat"], stdin=b"hello stdin\n")
    assert (code, out) == (0, b"hello stdin\n")
    code, out, err = await pod_exec(client, "talky", ["no-such-command"])
    assert code != 0
    code, out, _ = await pod_exec(client, "talky", ["tty"], tty=True)
    assert code == 0 and out.startswith(b"/dev/pts/"), out
    # errors in kubectl's words
    with pytest.raises(Exception) as e:
        await pod_logs(client, "talky", container="nope")
    assert "container nope is not valid for pod talky" in str(e.value)


async def _count_lines(client: ClusterClient, name: str, n: int) -> bool:
    return len((await pod_logs(client, name)).splitlines()) >= n


async def test_logs_previous(node: Any) -> None:
    cp, ag, client = node
    # A random id per run: busybox's date has no %N, and two runs within one
    # second printed the same line.
    c = sh('echo "run at $(cat /proc/sys/kernel/random/uuid)"; sleep 0.3; exit 1')
    await client.create(make_pod(ag.node_name, "prev", [c]))
    await wait_pod(client, "prev", lambda p: (cstatus(p) or core_pb2.ContainerStatus()).restart_count >= 1, "a restart")
    prev = await pod_logs(client, "prev", previous=True)
    cur = await eventually("current logs", lambda: pod_logs(client, "prev"), timeout=15)
    assert prev.startswith(b"run at") and cur.startswith(b"run at") and prev != cur


async def test_agent_restart_adopts_running_pods(node: Any, docker_client: Any) -> None:
    cp, ag, client = node
    await client.create(make_pod(ag.node_name, "keep"))
    pod = await wait_pod(client, "keep", ready, "Ready")
    cid = cstatus(pod).container_id  # type: ignore[union-attr]
    host_port = pod.status.port_mappings[0].host_port
    await ag.stop()
    assert docker_client.containers.get(cid.removeprefix("docker://")).status == "running"
    await ag.start()

    async def synced() -> bool:
        return "pods of node" in ag.log_tail(200).split("stopping (containers keep running)")[-1]

    await eventually("the restarted agent to sync its pods", synced, timeout=15)
    await asyncio.sleep(1.0)  # an observation window: nothing may be restarted in it
    pod = await wait_pod(client, "keep", ready, "Ready")
    cs = cstatus(pod)
    assert cs is not None and cs.container_id == cid and cs.restart_count == 0
    assert pod.status.port_mappings[0].host_port == host_port
    status, body = await http_get("127.0.0.1", host_port)
    assert status == 200 and body.strip() == "keep"


async def test_pod_deleted_while_agent_down_is_removed_on_return(node: Any, docker_client: Any) -> None:
    cp, ag, client = node
    await client.create(make_pod(ag.node_name, "gone"))
    await client.create(make_pod(ag.node_name, "stays"))
    await wait_pod(client, "gone", ready, "Ready")
    await wait_pod(client, "stays", ready, "Ready")
    await ag.kill()
    await client.delete("pods", "default", "gone", grace_period_seconds=0)
    label = f"io.pocketkube.node={ag.node_name}"
    assert len(docker_client.containers.list(filters={"label": label})) == 2
    await ag.start()

    async def only_stays() -> bool:
        names = [c.labels["io.pocketkube.pod.name"] for c in listed(docker_client, label)]
        return names == ["stays"]

    await eventually("the deleted pod's container to be removed", only_stays, timeout=10)
    assert ready(await client.get("pods", "default", "stays"))  # type: ignore[arg-type]


async def test_two_agents_sharing_one_engine_do_not_touch_each_other(
    shared_cp: ControlPlane, start_node: Any, docker_client: Any, docker_host: str, tmp_path: Any
) -> None:
    cp = shared_cp
    # The second agent reaches the engine by another address (--docker-host).
    alias = tmp_path / "docker.sock"
    alias.symlink_to(docker_host.removeprefix("unix://"))
    a = await start_node(node_ip="127.0.0.1")
    b = await start_node(docker_host_=f"unix://{alias}", node_ip="127.0.0.2", host_port_range="40000-40010")
    client = cp.client()
    try:
        await client.create(make_pod(a.node_name, "on-a"))
        await client.create(make_pod(b.node_name, "on-b"))
        pa = await wait_pod(client, "on-a", ready, "Ready")
        pb = await wait_pod(client, "on-b", ready, "Ready")
        assert pb.status.host_ip == "127.0.0.2" and pb.status.port_mappings[0].host_ip == "127.0.0.2"
        ida, idb = cstatus(pa).container_id, cstatus(pb).container_id  # type: ignore[union-attr]
        # A restarts (adopt + garbage-collect) and its pod is deleted: B's container is untouched.
        await a.restart()
        await client.delete("pods", "default", "on-a")
        await wait_gone(client, "on-a")
        ct = docker_client.containers.get(idb.removeprefix("docker://"))
        assert ct.status == "running" and ct.labels["io.pocketkube.node"] == b.node_name
        assert ida != idb
        status, body = await http_get("127.0.0.2", pb.status.port_mappings[0].host_port)
        assert status == 200 and body.strip() == "on-b"
    finally:
        await client.close()


async def test_two_agents_with_their_own_engines(
    private_engine: str, shared_cp: ControlPlane, start_node: Any, docker_client: Any
) -> None:
    # (private_engine first: it is set up before, and torn down after, the agents)
    a = await start_node()
    b = await start_node(docker_host_=private_engine, node_ip="127.0.0.3")
    client = shared_cp.client()
    other = docker.DockerClient(base_url=private_engine, timeout=30)
    try:
        # the private engine has no bridge network: B's pod publishes no ports
        await client.create(make_pod(a.node_name, "eng-a"))
        await client.create(make_pod(b.node_name, "eng-b", [{"name": "web", "image": "pocketkube/hello:1"}]))
        await wait_pod(client, "eng-a", ready, "Ready")
        pb = await wait_pod(client, "eng-b", ready, "Ready")
        idb = cstatus(pb).container_id.removeprefix("docker://")  # type: ignore[union-attr]
        assert [c.id for c in other.containers.list()] == [idb]
        assert docker_client.containers.list(filters={"label": f"io.pocketkube.node={b.node_name}"}) == []
        await a.restart()
        await client.delete("pods", "default", "eng-a")
        await wait_gone(client, "eng-a")
        assert other.containers.get(idb).status == "running"
        await client.delete("pods", "default", "eng-b")
        await wait_gone(client, "eng-b")
        assert other.containers.list(all=True) == []
    finally:
        other.close()
        await client.close()


async def test_events_and_node_object(node: Any) -> None:
    cp, ag, client = node
    await client.create(make_pod(ag.node_name, "ev"))
    await wait_pod(client, "ev", ready, "Ready")
    reasons = await eventually("Created and Started events", lambda: _reasons(client, "ev", {"Pulled", "Created", "Started"}), timeout=15)
    assert reasons
    n = await client.get("nodes", "", ag.node_name)
    st = n.status  # type: ignore[attr-defined]
    assert [(a.type, a.address) for a in st.addresses][0] == ("InternalIP", "127.0.0.1")
    assert st.daemon_endpoints.kubelet_endpoint.port > 0
    assert st.node_info.container_runtime_version.startswith("docker://")
    assert st.node_info.kubelet_version.startswith("pk-agent/")
    for k in ("cpu", "memory", "pods"):
        assert st.capacity[k].string_value and st.allocatable[k].string_value
    # registering again (a restarted agent) is idempotent
    await ag.restart()
    n2 = await client.get("nodes", "", ag.node_name)
    assert n2.metadata.uid == n.metadata.uid  # type: ignore[attr-defined]


async def _reasons(client: ClusterClient, name: str, want: set[str]) -> bool:
    return want <= {r for _, r, _ in await events_of(client, name)}


@pytest.mark.asyncio(loop_scope="function")
async def test_control_plane_outage_keeps_pods_running_and_agent_reconnects(
    start_controlplane: Any, start_agent: Any, docker_client: Any
) -> None:
    cp = await start_controlplane()  # its own: this test stops it
    ag = await start_agent(cp)
    client = cp.client()
    await client.create(make_pod(ag.node_name, "steady"))
    pod = await wait_pod(client, "steady", ready, "Ready")
    cid = cstatus(pod).container_id.removeprefix("docker://")  # type: ignore[union-attr]
    port = pod.status.port_mappings[0].host_port
    await cp.stop()

    async def noticed() -> bool:
        return "heartbeat failed" in ag.log_tail(200)

    await eventually("the agent to notice the outage", noticed, timeout=10)
    assert ag.process.poll() is None
    assert docker_client.containers.get(cid).status == "running"
    status, _ = await http_get("127.0.0.1", port)
    assert status == 200
    await cp.start()
    # the agent watches again: a new pod runs, the old one was never restarted
    await client.create(make_pod(ag.node_name, "after"))
    await wait_pod(client, "after", ready, "Ready after the control plane came back", timeout=20)
    pod = await client.get("pods", "default", "steady")
    assert cstatus(pod).container_id.endswith(cid) and cstatus(pod).restart_count == 0  # type: ignore[arg-type,union-attr]
    await client.close()


def assert_running(ag: AgentProcess, what: str) -> None:
    code = ag.process.poll() if ag.process is not None else "not started"
    assert code is None, f"pk-agent exited ({code}) {what}:\n{ag.log_tail(40)}"
    assert "Traceback" not in ag.log_tail(400), ag.log_tail(400)


@pytest.mark.asyncio(loop_scope="function")
async def test_agent_started_before_any_control_plane_answers_joins_when_it_appears(
    start_controlplane: Any, start_agent: Any
) -> None:
    cp = await start_controlplane()
    await cp.stop()  # its address is known; nothing answers there now
    ag = await start_agent(cp, wait=False)
    # Well past the first list's old 1 s time-out (the agent takes ~1 s to boot).
    await asyncio.sleep(4.0)
    assert_running(ag, "while no control plane answered")
    await cp.start()
    await ag.wait_ready(timeout=20)
    client = cp.client()
    try:
        await client.create(make_pod(ag.node_name, "late"))
        await wait_pod(client, "late", ready, "Ready on the agent that started first", timeout=20)
        assert_running(ag, "after the control plane appeared")
    finally:
        await client.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_control_plane_restarted_while_the_agent_starts_restarts_no_pod(
    start_controlplane: Any, start_agent: Any, docker_client: Any
) -> None:
    cp = await start_controlplane()
    ag = await start_agent(cp)
    client = cp.client()
    try:
        await client.create(make_pod(ag.node_name, "steady"))
        pod = await wait_pod(client, "steady", ready, "Ready")
        cid = cstatus(pod).container_id  # type: ignore[union-attr]
        # The agent restarts while its control plane restarts: its start-up
        # (first list of its pods) spans the outage.
        await cp.stop()
        await ag.stop()
        await ag.start(wait=False)
        await asyncio.sleep(4.0)
        assert_running(ag, "while its control plane was down")
        assert docker_client.containers.get(cid.removeprefix("docker://")).status == "running"
        await cp.start()
        await ag.wait_ready(timeout=20)
        await client.create(make_pod(ag.node_name, "after"))
        await wait_pod(client, "after", ready, "Ready after the control plane came back", timeout=20)
        pod = await wait_pod(client, "steady", ready, "still Ready")
        cs = cstatus(pod)
        assert cs is not None and cs.container_id == cid and cs.restart_count == 0
        assert docker_client.containers.get(cid.removeprefix("docker://")).status == "running"
        assert_running(ag, "after the control plane came back")
    finally:
        await client.close()


async def run_pkctl(cp: ControlPlane, *args: str, stdin: bytes = b"", timeout: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "--server", cp.address, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_pkctl_logs_and_exec(node: Any) -> None:
    cp, ag, client = node
    script = 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'
    await client.create(make_pod(ag.node_name, "cli-pod", [sh(script)]))
    await wait_pod(client, "cli-pod", ready, "Ready")
    await eventually("2 log lines", lambda: _count_lines(client, "cli-pod", 2), timeout=15)
    code, out, err = await run_pkctl(cp, "logs", "cli-pod", "--tail", "1")
    assert code == 0 and len(out.splitlines()) == 1 and out.startswith("tick "), (out, err)
    # -f streams: read three new lines, then stop the client
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "--server", cp.address, "logs", "-f", "--tail", "0", "cli-pod",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [await asyncio.wait_for(proc.stdout.readline(), 10) for _ in range(3)]
        nums = [int(line.split()[1]) for line in lines]
        assert nums == [nums[0], nums[0] + 1, nums[0] + 2]
    finally:
        proc.kill()
        await proc.wait()
    code, out, err = await run_pkctl(cp, "exec", "cli-pod", "--", "sh", "-c", "echo hi; exit 3")
    assert (code, out) == (3, "hi\n"), err
    code, out, err = await run_pkctl(cp, "exec", "-i", "cli-pod", "--", "cat", stdin=b"piped\n")
    assert (code, out) == (0, "piped\n"), err


async def test_deleted_node_object_is_registered_again(node: Any) -> None:
    cp, ag, client = node
    await client.delete("nodes", "", ag.node_name)

    async def back() -> bool:
        try:
            await client.get("nodes", "", ag.node_name)
            return True
        except Exception as e:  # noqa: BLE001
            if getattr(e, "reason", "") != "NotFound":
                raise
            return False

    await eventually("the agent to register its deleted Node again", back, timeout=15)


async def test_bad_command_shows_run_container_error(node: Any) -> None:
    cp, ag, client = node
    c = {"name": "main", "image": "pocketkube/hello:1", "command": ["/no/such/binary"]}
    await client.create(make_pod(ag.node_name, "badcmd", [c]))
    pod = await wait_pod(client, "badcmd", lambda p: waiting_reason(p) == "RunContainerError", "RunContainerError")
    assert "/no/such/binary" in cstatus(pod).state.waiting.message  # type: ignore[union-attr]
    assert pod.status.phase == "Pending"
    await client.create(make_pod(ag.node_name, "still-fine"))
    await wait_pod(client, "still-fine", ready, "Ready next to a pod that cannot start")


async def test_force_delete_during_graceful_termination_kills_at_once(node: Any, docker_client: Any) -> None:
    cp, ag, client = node
    stubborn = sh('trap "" TERM; while true; do sleep 0.1; done')
    await client.create(make_pod(ag.node_name, "slowpoke", [stubborn], terminationGracePeriodSeconds=60))
    await wait_pod(client, "slowpoke", ready, "Ready")
    await client.delete("pods", "default", "slowpoke")  # 60 s of grace
    await wait_pod(client, "slowpoke", lambda p: p.metadata.HasField("deletion_timestamp"), "deletionTimestamp")
    await eventually("the agent to begin the graceful stop", lambda: _reasons(client, "slowpoke", {"Killing"}), timeout=15)
    t0 = time.monotonic()
    await client.delete("pods", "default", "slowpoke", grace_period_seconds=0)
    label = f"io.pocketkube.node={ag.node_name}"

    async def no_containers() -> bool:
        return not await asyncio.to_thread(listed, docker_client, label)

    await eventually("the container to be killed after the force delete", no_containers, timeout=10)
    assert time.monotonic() - t0 < 10  # not the 60 s grace
    assert "deletion grace shortened" in ag.log_tail(200)


def _max_overlap(intervals: list[tuple[int, int]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now = peak = 0
    for _, d in edges:
        now += d
        peak = max(peak, now)
    return peak


async def test_mass_force_delete_stops_containers_a_few_at_a_time(
    start_node: Any, shared_cp: ControlPlane, docker_client: Any
) -> None:
    """--max-parallel-teardowns: eight pods force-deleted at once reach the
    engine one kill at a time (a burst of exits delays other pods' starts:
    agent/pods/teardown.py), seen in the engine's own kill/die events."""
    teardowns = 1
    ag = await start_node(max_parallel_teardowns=teardowns)
    client = shared_cp.client()
    label = f"io.pocketkube.node={ag.node_name}"
    try:
        names = [f"mass-{i}" for i in range(8)]
        for n in names:
            await client.create(make_pod(ag.node_name, n))
        for n in names:
            await wait_pod(client, n, ready, "Ready")
        since = time.time()
        await asyncio.gather(*(client.delete("pods", "default", n, grace_period_seconds=0) for n in names))

        async def no_containers() -> bool:
            return not await asyncio.to_thread(listed, docker_client, label)

        await eventually("the force-deleted pods' containers to be removed", no_containers, timeout=30)
        evs = await asyncio.to_thread(
            lambda: list(docker_client.api.events(
                since=since, until=time.time() + 1, decode=True, filters={"type": "container", "label": label}
            ))
        )
        kill: dict[str, int] = {}
        die: dict[str, int] = {}
        for ev in evs:
            action = (ev.get("Action") or "").split(":")[0]
            if action == "kill":
                kill.setdefault(ev["id"], ev["timeNano"])
            elif action == "die":
                die.setdefault(ev["id"], ev["timeNano"])
        assert len(die) == 8 and set(kill) == set(die), evs
        # one at a time; one more only if a kill outlasted the gate's 1 s hold
        assert _max_overlap([(kill[c], die[c]) for c in die]) <= teardowns + 1  # 8 at once without the gate
    finally:
        await client.close()
