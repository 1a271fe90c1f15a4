"""Hollow agents: many in-process agents on FakeRuntime against one real
control plane (what the scale benchmark builds on)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pkapi import meta
from pkapi.v1 import core_pb2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

N = 100


async def test_hundred_hollow_agents_register_and_run_pods(start_controlplane: Any, hollow_agents: Any) -> None:
    cp = await start_controlplane()
    names = [(await hollow_agents(cp.address, node_name=f"hollow-{i:03d}"))[0] for i in range(N)]
    client = cp.client()
    try:
        deadline = time.monotonic() + 60
        while True:
            nodes, _ = await client.list("nodes")
            if len(nodes) >= N:
                break
            assert time.monotonic() < deadline, f"only {len(nodes)} of {N} hollow nodes registered"
            await asyncio.sleep(0.2)
        for i, name in enumerate(names[:20]):
            pod = meta.from_dict(
                {
                    "metadata": {"name": f"h{i}", "namespace": "default"},
                    "spec": {"nodeName": name, "containers": [{"name": "c", "image": "pocketkube/hello:1",
                                                                 "ports": [{"containerPort": 8080}]}]},
                },
                core_pb2.Pod,
            )
            await client.create(pod)
        while True:
            pods, _ = await client.list("pods", "default")
            ready = [p for p in pods if (c := meta.condition(p.status.conditions, "Ready")) and c.status == "True"]  # type: ignore[attr-defined]
            if len(ready) == 20:
                break
            assert time.monotonic() < deadline, f"{len(ready)} of 20 hollow pods Ready"
            await asyncio.sleep(0.2)
    finally:
        await client.close()


async def test_an_agent_that_stops_writes_its_queued_events(start_controlplane: Any, tmp_path: Any) -> None:
    """The agent's event recorder lingers 50 ms before a write; an agent
    stopped in that moment writes what it queued before closing its
    client. Stopped as soon as its pod is seen Running, the agent has
    queued the pod's Pulled/Created/Started events only a moment before."""
    from agent.config import AgentConfig
    from agent.main import run
    from agent.runtime.fake import FakeRuntime
    from pkapi.client.informer import Informer

    cp = await start_controlplane()
    client = cp.client()
    config = AgentConfig(server=cp.address, node_name="stopper", node_ip="127.0.0.1", agent_port=0,
                         data_dir=str(tmp_path / "agent"))
    agent = asyncio.create_task(run(config, runtime=FakeRuntime(), check_port_bind=False))
    running = asyncio.Event()
    pods = Informer(client, "pods", "default")
    pods.add_handler(on_update=lambda o, n: n.status.phase == "Running" and running.set())
    watch = asyncio.create_task(pods.run())
    try:
        await pods.wait_synced(10)
        deadline = time.monotonic() + 30
        while not (await client.list("nodes"))[0]:
            assert time.monotonic() < deadline, "the agent did not register"
            await asyncio.sleep(0.05)
        pod = core_pb2.Pod()
        pod.metadata.name, pod.metadata.namespace = "quick", "default"
        pod.spec.node_name = "stopper"
        pod.spec.containers.add(name="c", image="pocketkube/hello:1")
        await client.create(pod)
        await asyncio.wait_for(running.wait(), 30)
        agent.cancel()
        await asyncio.gather(agent, return_exceptions=True)
        evs, _ = await client.list("events", "default", field_selector="involvedObject.name=quick")
        assert {"Pulled", "Created", "Started"} <= {e.reason for e in evs}, [e.reason for e in evs]
    finally:
        agent.cancel()
        watch.cancel()
        await asyncio.gather(agent, watch, return_exceptions=True)
        await client.close()
