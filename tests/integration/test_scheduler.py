"""The scheduler on a real control plane: unschedulable wording, event,
and retry when a node appears."""

from __future__ import annotations

from typing import Any

import pytest

from pkapi import meta
from pkapi.v1 import core_pb2
from tests.integration.controllers_util import (  # noqa: F401 - cluster is a fixture
    HollowNode,
    cluster_fixture,
    eventually,
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

    cond = await eventually(unschedulable, "PodScheduled=False Unschedulable")
    assert cond.status == "False"
    assert cond.message == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."

    async def event() -> Any:
        evs, _ = await client.list("events", "default", field_selector="involvedObject.name=big")
        return [e for e in evs if e.reason == "FailedScheduling"]

    evs = await eventually(event, "a FailedScheduling event")
    assert evs[0].type == "Warning" and evs[0].message == cond.message

    big = HollowNode(cluster.cp.address, "bignode", capacity_cpu="1000")
    big.start()
    try:
        await wait_nodes_ready(client, ["bignode"])

        async def bound() -> Any:
            p = await client.get("pods", "default", "big")
            return p if p.spec.node_name else None

        p = await eventually(bound, "the pod bound once a big enough node joined")
        assert p.spec.node_name == "bignode"

        async def scheduled_event() -> Any:
            evs, _ = await client.list("events", "default", field_selector="involvedObject.name=big")
            return [e for e in evs if e.reason == "Scheduled"]

        ev = (await eventually(scheduled_event, "a Scheduled event"))[0]
        assert ev.message == "Successfully assigned default/big to bignode"
    finally:
        await big.stop()
