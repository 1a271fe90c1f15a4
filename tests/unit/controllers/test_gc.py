"""The garbage collector's sync() on the in-process API: background,
foreground and orphan deletion, and the live check that keeps a lagging
cache from deleting a dependent whose owner exists."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.controllers.base import SharedInformers
from controlplane.controllers.gc import FOREGROUND, GarbageCollector
from controlplane.testing import Action, InProcessClient, refresh
from pkapi.errors import ApiError
from pkapi.v1 import apps_pb2
from tests.unit.controllers.objects import deployment, owner_ref, pod, replicaset


class Env:
    def __init__(self, client: InProcessClient) -> None:
        self.client = client
        self.informers = SharedInformers(client)
        self.gc = GarbageCollector(client, None, self.informers)

    async def step(self, key: tuple[str, str, str]) -> None:
        await refresh(self.client, *self.informers.all())
        self.client.clear()
        await self.gc.sync(key)


async def family(client: InProcessClient) -> tuple[Any, Any, Any]:
    """Deployment web -> ReplicaSet web-abc -> Pod web-abc-1."""
    d = await client.create(deployment())
    rs = replicaset()
    rs.metadata.owner_references.append(owner_ref(d))
    rs = await client.create(rs)
    p = await client.create(pod("web-abc-1", owner=rs))
    return d, rs, p


async def exists(client: InProcessClient, resource: str, name: str) -> bool:
    try:
        await client.get(resource, "default", name)
    except ApiError as e:
        if e.reason == "NotFound":
            return False
        raise
    return True


async def test_background_deletes_dependents_whose_owner_is_gone(client: InProcessClient) -> None:
    _, rs, _ = await family(client)
    env = Env(client)
    await client.delete("deployments", "default", "web")  # Background: gone at once
    await env.step(("replicasets", "default", "web-abc"))
    assert client.writes() == [Action("delete", "replicasets", "default", "web-abc")]
    # The ReplicaSet goes in the foreground: its pods first.
    marked: apps_pb2.ReplicaSet = await client.get("replicasets", "default", "web-abc")  # type: ignore[assignment]
    assert marked.metadata.HasField("deletion_timestamp") and FOREGROUND in marked.metadata.finalizers
    await env.step(("replicasets", "default", "web-abc"))
    assert client.writes() == [Action("delete", "pods", "default", "web-abc-1")]
    assert not await exists(client, "pods", "web-abc-1")
    await env.step(("replicasets", "default", "web-abc"))  # no dependents left: the finalizer goes
    assert not await exists(client, "replicasets", "web-abc")


async def test_an_owner_missing_only_from_the_cache_is_confirmed_live(client: InProcessClient) -> None:
    await family(client)
    env = Env(client)
    await refresh(client, env.gc.caches["replicasets"], env.gc.caches["pods"])
    env.gc.caches["deployments"].preload([])  # its watch lags behind the ReplicaSet's
    client.clear()
    await env.gc.sync(("replicasets", "default", "web-abc"))
    assert client.writes() == []
    assert Action("get", "deployments", "default", "web") in client.actions
    assert await exists(client, "replicasets", "web-abc")


async def test_an_owner_of_the_same_name_but_another_uid_is_not_the_owner(client: InProcessClient) -> None:
    await family(client)
    await client.delete("deployments", "default", "web")
    await client.create(deployment())  # same name, new uid
    env = Env(client)
    await env.step(("replicasets", "default", "web-abc"))
    assert client.writes() == [Action("delete", "replicasets", "default", "web-abc")]


async def test_orphan_removes_the_owner_reference_then_the_finalizer(client: InProcessClient) -> None:
    _, rs, _ = await family(client)
    env = Env(client)
    await client.delete("deployments", "default", "web", propagation_policy="Orphan")
    assert await exists(client, "deployments", "web")  # held by the orphan finalizer
    await env.step(("deployments", "default", "web"))
    kept = await client.get("replicasets", "default", "web-abc")
    assert list(kept.metadata.owner_references) == []  # type: ignore[attr-defined]
    assert not await exists(client, "deployments", "web")
    await env.step(("replicasets", "default", "web-abc"))  # no owner left to check: it stays
    assert await exists(client, "replicasets", "web-abc") and await exists(client, "pods", "web-abc-1")


async def test_foreground_waits_for_dependents_the_cache_has_not_seen(client: InProcessClient) -> None:
    d, _, _ = await family(client)
    env = Env(client)
    await client.delete("deployments", "default", "web", propagation_policy="Foreground")
    await refresh(client, env.gc.caches["deployments"])
    env.gc.caches["replicasets"].preload([])  # the ReplicaSet's ADDED is late
    env.gc.caches["pods"].preload([])
    with pytest.raises(RuntimeError, match="dependents not yet in the cache"):
        await env.gc.sync(("deployments", "default", "web"))
    assert await exists(client, "deployments", "web")
