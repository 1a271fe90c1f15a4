"""pk-agent on the real Docker Engine, a real etcd and a real control plane
(controllers off: pods are created already bound with spec.nodeName)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pkapi import meta
from pkapi.client.cluster import ClusterClient
from pkapi.v1 import core_pb2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


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


async def http_get(host: str, port: int, path: str = "/", timeout: float = 3.0) -> tuple[int, str]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture
async def node(start_controlplane: Any, start_agent: Any) -> Any:
    cp = await start_controlplane()
    ag = await start_agent(cp)
    client = cp.client()
    yield cp, ag, client
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
