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
