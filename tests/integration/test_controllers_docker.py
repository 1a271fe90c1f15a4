"""The core control-loop scenario once with real pk-agent processes on the
real Docker Engine: replicas really run, a node's agent is killed, its pods
are replaced by containers really started on the other nodes, and when the
agent comes back it removes the containers of the replaced pods."""

from __future__ import annotations

import asyncio
from typing import Any

import docker
import pytest

from agent.runtime.base import LABEL_NODE
from tests.helpers import eventually
from tests.integration.controllers_util import deployment, pods_of, ready

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_replicas_run_and_dead_agent_pods_replaced(start_controlplane: Any, start_agent: Any,
                                                          docker_host: str) -> None:
    cp = await start_controlplane(controllers=True, node_grace_period=2, default_unreachable_toleration=0)
    agents = [await start_agent(cp) for _ in range(3)]
    client = cp.client()
    engine = docker.DockerClient(base_url=docker_host, timeout=30)
    try:
        await client.create(deployment("real", 3))

        async def running() -> Any:
            ps = [p for p in await pods_of(client, "real") if not p.metadata.HasField("deletion_timestamp")]
            return ps if len(ps) == 3 and all(ready(p) for p in ps) else None

        pods = await eventually("3 ready pods in real containers", running, timeout=40)
        assert len({p.spec.node_name for p in pods}) == 3

        def containers(node: str) -> list[Any]:
            return engine.containers.list(filters={"label": f"{LABEL_NODE}={node}", "status": "running"}, ignore_removed=True)

        victim = next(a for a in agents if a.node_name == pods[0].spec.node_name)
        assert await asyncio.to_thread(containers, victim.node_name), "the pod's container really runs"
        await victim.kill()

        async def replaced() -> Any:
            ps = [p for p in await pods_of(client, "real") if not p.metadata.HasField("deletion_timestamp")]
            ok = len(ps) == 3 and all(ready(p) and p.spec.node_name != victim.node_name for p in ps)
            return ps if ok else None

        ps = await eventually("3 ready pods on the live nodes", replaced, timeout=30)
        for node in {p.spec.node_name for p in ps}:
            assert await asyncio.to_thread(containers, node)
        await victim.start()

        async def cleaned() -> bool:
            return not await asyncio.to_thread(containers, victim.node_name)

        await eventually("the returned agent removing the replaced pods' containers", cleaned, timeout=30)
        assert len([p for p in await pods_of(client, "real") if not p.metadata.HasField("deletion_timestamp")]) == 3
    finally:
        engine.close()
        await client.close()
