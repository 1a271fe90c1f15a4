"""The scheduler on a real control plane: unschedulable wording, event,
and retry when a node appears."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pkapi import meta
from pkapi.v1 import core_pb2
from tests.helpers import eventually
from tests.integration.controllers_util import (  # noqa: F401 - cluster is a fixture
    HollowNode,
    cluster_fixture,
    update_with_retry,
    wait_nodes_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_unschedulable_message_event_and_retry(cluster: Any) -> None:
    client = cluster.client
    def cordon(node: Any) -> None:
        node.spec.unschedulable = True

    await update_with_retry(client, "nodes", "", cluster.nodes[0].name, cordon)
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = "big", "default"
    c = pod.spec.containers.add(name="c", image="pocketkube/hello:1")
    c.resources.requests["cpu"].string_value = "900"
    await client.create(pod)

    async def unschedulable() -> Any:
        p = await client.get("pods", "default", "big")
        cond = meta.condition(p.status.conditions, "PodScheduled")
        return cond if cond is not None and cond.reason == "Unschedulable" else None

    cond = await eventually("PodScheduled=False Unschedulable", unschedulable, timeout=20)
    assert cond.status == "False"
    assert cond.message == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."

    async def event() -> Any:
        evs, _ = await client.list("events", "default", field_selector="involvedObject.name=big")
        return [e for e in evs if e.reason == "FailedScheduling"]

    evs = await eventually("a FailedScheduling event", event, timeout=20)
    assert evs[0].type == "Warning" and evs[0].message == cond.message

    big = HollowNode(cluster.cp.address, "bignode", capacity_cpu="1000")
    big.start()
    try:
        await wait_nodes_ready(client, ["bignode"])

        async def bound() -> Any:
            p = await client.get("pods", "default", "big")
            return p if p.spec.node_name else None

        p = await eventually("the pod bound once a big enough node joined", bound, timeout=20)
        assert p.spec.node_name == "bignode"

        async def scheduled_event() -> Any:
            evs, _ = await client.list("events", "default", field_selector="involvedObject.name=big")
            return [e for e in evs if e.reason == "Scheduled"]

        ev = (await eventually("a Scheduled event", scheduled_event, timeout=20))[0]
        assert ev.message == "Successfully assigned default/big to bignode"
    finally:
        await big.stop()


async def test_binds_are_batched_and_spread(cluster: Any) -> None:
    """60 pods that appear at once (one CreateBatch) are bound in Bind
    calls of many pods: several share a bind revision. The pods still
    spread over the 3 nodes."""
    from pkapi.client.informer import Informer

    client = cluster.client
    ns_pods = []
    for i in range(60):
        p = core_pb2.Pod()
        p.metadata.name, p.metadata.namespace = f"b{i}", "default"
        p.metadata.labels["batch"] = "yes"
        p.spec.containers.add(name="c", image="pocketkube/hello:1")
        ns_pods.append(p)
    bind_rv: dict[str, str] = {}

    def seen(pod: Any) -> None:
        if pod.spec.node_name and pod.metadata.name not in bind_rv:
            bind_rv[pod.metadata.name] = pod.metadata.resource_version

    inf = Informer(client, "pods", "default", label_selector="batch=yes")
    inf.add_handler(on_add=seen, on_update=lambda o, n: seen(n))
    task = asyncio.create_task(inf.run())
    try:
        await inf.wait_synced(10)
        out = await client.create_batch(ns_pods)
        assert all(isinstance(p, core_pb2.Pod) for p in out)

        async def all_bound() -> Any:
            return len(bind_rv) == 60 or None

        await eventually("60 pods bound", all_bound, timeout=20)
        # Seen at the revision that bound them (an agent's status write
        # comes later and never carries the first nodeName).
        assert len(set(bind_rv.values())) < 60, "every pod was bound by its own write"
        items, _ = await client.list("pods", "default", label_selector="batch=yes")
        per_node: dict[str, int] = {}
        for p in items:
            per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 1
        assert len(per_node) == 3 and min(per_node.values()) >= 15, per_node
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
