"""Helpers for the controller integration tests: in-process hollow nodes
(real pk-agent code on a FakeRuntime, stoppable and restartable), object
factories and polling with deadlines."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from typing import Any, Callable

import pytest

from agent.config import AgentConfig
from agent.runtime.fake import FakeRuntime
from pkapi import meta
from pkapi.errors import is_conflict
from pkapi.v1 import apps_pb2
from tests.helpers import eventually


class HollowNode:
    """pk-agent's run() on a FakeRuntime in this process. stop() is an
    agent crash as far as the control plane can tell (no more heartbeats);
    start() again is the agent returning with its containers intact."""

    def __init__(self, server: str, name: str, **cfg: Any) -> None:
        self.server = server
        self.name = name
        self.runtime = FakeRuntime()
        # Its --data-dir, outside the host's /var/lib/pocketkube (the
        # default); removed by stop(), created again by the agent on start().
        self.data_dir = tempfile.mkdtemp(prefix=f"pk-hollow-{name}-")
        self.cfg = {"data_dir": self.data_dir, **cfg}
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        from agent.main import run

        config = AgentConfig(server=self.server, node_name=self.name, node_ip="127.0.0.1", agent_port=0,
                             **self.cfg)
        self.task = asyncio.create_task(run(config, runtime=self.runtime, check_port_bind=False))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


async def update_with_retry(client: Any, resource: str, namespace: str, name: str,
                            mutate: Callable[[Any], None], attempts: int = 10) -> Any:
    """Read, mutate, CAS-write; on Conflict (a controller wrote the object
    meanwhile, as Kubernetes' controllers do) read again and retry, like
    client-go's RetryOnConflict. Any other error fails at once."""
    from pkapi.errors import ApiError

    for _ in range(attempts):
        obj = await client.get(resource, namespace, name)
        mutate(obj)
        try:
            return await client.update(obj)
        except ApiError as err:
            if not is_conflict(err):
                raise
    raise AssertionError(f"{resource}/{name}: still conflicting after {attempts} attempts")


async def start_nodes(server: str, n: int, prefix: str = "") -> list[HollowNode]:
    prefix = prefix or f"n{uuid.uuid4().hex[:4]}-"
    nodes = [HollowNode(server, f"{prefix}{i}") for i in range(n)]
    for node in nodes:
        node.start()
    return nodes



def deployment(name: str, replicas: int = 3, image: str = "pocketkube/hello:1", strategy: str = "RollingUpdate",
               max_surge: Any = None, max_unavailable: Any = None, ns: str = "default",
               **spec: Any) -> apps_pb2.Deployment:
    d: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
            "strategy": {"type": strategy},
            **spec,
        },
    }
    if strategy == "RollingUpdate" and (max_surge is not None or max_unavailable is not None):
        ru: dict[str, Any] = {}
        if max_surge is not None:
            ru["maxSurge"] = max_surge
        if max_unavailable is not None:
            ru["maxUnavailable"] = max_unavailable
        d["spec"]["strategy"]["rollingUpdate"] = ru
    return meta.from_dict(d, apps_pb2.Deployment)  # type: ignore[return-value]


def ready(pod: Any) -> bool:
    c = meta.condition(pod.status.conditions, "Ready")
    return c is not None and c.status == "True"


async def pods_of(client: Any, app: str, ns: str = "default") -> list[Any]:
    items, _ = await client.list("pods", ns, label_selector=f"app={app}")
    return items


async def wait_nodes_ready(client: Any, names: list[str], timeout: float = 15.0) -> None:
    async def check() -> bool:
        items, _ = await client.list("nodes")
        ok = {n.metadata.name for n in items
              if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)}
        return set(names) <= ok
    await eventually(f"nodes {names} Ready", check, timeout=timeout)


@pytest.fixture(name="cluster")
async def cluster_fixture(start_controlplane: Any) -> Any:
    cp = await start_controlplane(controllers=True, node_grace_period=2, default_unreachable_toleration=0)
    client = cp.client()
    nodes = await start_nodes(cp.address, 3)
    await wait_nodes_ready(client, [n.name for n in nodes])

    class Cluster:
        pass

    c = Cluster()
    c.cp, c.client, c.nodes = cp, client, nodes  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        for n in nodes:
            await n.stop()
        await client.close()
