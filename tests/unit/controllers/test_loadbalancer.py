"""The LoadBalancer holder controller's sync() on the in-process API (with
the real Service allocator): holder choice and move, and the retry of a
pending Service once an address is freed."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.config import ControlPlaneConfig
from controlplane.controllers.base import SharedInformers
from controlplane.controllers.loadbalancer import LB_NODE, LB_RETRY, LoadBalancerController
from controlplane.testing import InProcessClient, refresh
from pkapi import meta
from pkapi.errors import ApiError
from pkapi.v1 import core_pb2
from tests.unit.controllers.objects import node

CONFIG = ControlPlaneConfig(lb_pool="10.99.0.1/32")  # one address


@pytest.fixture
async def client() -> Any:
    async with InProcessClient(config=CONFIG) as c:
        yield c


def lb_service(name: str) -> core_pb2.Service:
    return meta.from_dict({  # type: ignore[return-value]
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]},
    }, core_pb2.Service)


async def svc(client: InProcessClient, name: str) -> core_pb2.Service:
    return await client.get("services", "default", name)  # type: ignore[return-value]


async def test_holder_retry_and_move(client: InProcessClient) -> None:
    await client.create(node("n1"))
    await client.create(node("n2"))
    await client.create(lb_service("a"))
    await client.create(lb_service("b"))  # the pool is empty now: pending
    assert [i.ip for i in (await svc(client, "a")).status.load_balancer.ingress] == ["10.99.0.1"]
    assert list((await svc(client, "b")).status.load_balancer.ingress) == []
    informers = SharedInformers(client)
    lbc = LoadBalancerController(client, CONFIG, informers)
    await refresh(client, *informers.all())
    await lbc.sync("default/a")
    assert (await svc(client, "a")).metadata.annotations[LB_NODE] == "n1"

    # a goes: its address is free, b is sent through the allocator again.
    await client.delete("services", "default", "a")
    await refresh(client, *informers.all())
    assert lbc._retry == {"default/b"}
    client.clear()
    await lbc.sync("default/b")
    b = await svc(client, "b")
    assert b.metadata.annotations[LB_RETRY] == "1"
    assert [i.ip for i in b.status.load_balancer.ingress] == ["10.99.0.1"]
    assert lbc._retry == set()
    await refresh(client, *informers.all())
    await lbc.sync("default/b")
    assert (await svc(client, "b")).metadata.annotations[LB_NODE] == "n1"

    # The holder is no longer Ready: the address moves.
    n1 = await client.get("nodes", "", "n1")
    meta.condition(n1.status.conditions, "Ready").status = "Unknown"  # type: ignore[attr-defined, union-attr]
    await client.update_status(n1)
    await refresh(client, *informers.all())
    await lbc.sync("default/b")
    assert (await svc(client, "b")).metadata.annotations[LB_NODE] == "n2"


async def test_a_failed_retry_write_is_retried_by_the_requeued_sync(client: InProcessClient) -> None:
    await client.create(lb_service("a"))
    await client.create(lb_service("b"))
    informers = SharedInformers(client)
    lbc = LoadBalancerController(client, CONFIG, informers)
    await refresh(client, *informers.all())
    await client.delete("services", "default", "a")
    await refresh(client, *informers.all())
    stale = await svc(client, "b")
    stale.metadata.resource_version = "1"  # a cached b the store has moved past: the retry write conflicts
    informers.informer("services").preload([stale])
    with pytest.raises(ApiError, match="modified"):
        await lbc.sync("default/b")
    assert lbc._retry == {"default/b"}
    await refresh(client, *informers.all())
    await lbc.sync("default/b")
    assert (await svc(client, "b")).metadata.annotations[LB_RETRY] == "1"
