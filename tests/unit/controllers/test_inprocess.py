"""controlplane.testing: the in-process API (ClusterClient over the real
servicers and Registry on a MemoryStore) and informer preloading."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.testing import Action, FakeClock, InProcessClient, by_key, refresh
from pkapi import meta
from pkapi.client.informer import Informer
from pkapi.errors import ApiError
from pkapi.v1 import core_pb2


def pod(name: str, labels: dict[str, str] | None = None) -> core_pb2.Pod:
    return meta.from_dict({  # type: ignore[return-value]
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "pocketkube/hello:1"}]},
    }, core_pb2.Pod)


async def test_verbs_and_errors_are_the_servers() -> None:
    async with InProcessClient() as c:
        made = await c.create(pod("a"))
        assert made.metadata.uid and made.metadata.resource_version
        await c.create(pod("b", {"app": "db"}))
        with pytest.raises(ApiError) as e:
            await c.create(pod("a"))
        assert e.value.reason == "AlreadyExists" and e.value.message == 'pods "a" already exists'
        with pytest.raises(ApiError) as e:
            await c.get("pods", "default", "nope")
        assert e.value.reason == "NotFound"
        bad = pod("c")
        del bad.spec.containers[:]
        with pytest.raises(ApiError) as e:
            await c.create(bad)
        assert e.value.reason == "Invalid"
        items, rv = await c.list("pods", "default", label_selector="app=web")
        assert [p.metadata.name for p in items] == ["a"] and int(rv) > 0
        stale = made
        stale.metadata.labels["x"] = "1"
        await c.update(stale)
        with pytest.raises(ApiError) as e:
            await c.update(stale)  # its resourceVersion is gone now
        assert e.value.reason == "Conflict"
        [bound] = await c.bind([(made, "n1")])
        assert not isinstance(bound, ApiError) and bound.spec.node_name == "n1"  # type: ignore[attr-defined]
        results = await c.create_batch([pod("d"), pod("a")])
        assert isinstance(results[1], ApiError) and results[1].reason == "AlreadyExists"
        await c.delete("pods", "default", "b")
        assert c.writes() == [
            Action("create", "pods", "default", "a"), Action("create", "pods", "default", "b"),
            Action("create", "pods", "default", "a"), Action("create", "pods", "default", "c"),
            Action("update", "pods", "default", "a"), Action("update", "pods", "default", "a"),
            Action("bind", "pods"), Action("create_batch", "pods"), Action("delete", "pods", "default", "b"),
        ]
        assert sorted(by_key((await c.list("pods"))[0])) == ["default/a", "default/d"]


async def test_informer_runs_against_it() -> None:
    async with InProcessClient() as c:
        await c.create(pod("a"))
        inf = Informer(c, "pods")
        seen: list[str] = []
        inf.add_handler(on_add=lambda p: seen.append(p.metadata.name))
        task = asyncio.create_task(inf.run())
        try:
            await inf.wait_synced(5)
            await c.create(pod("b"))
            async with asyncio.timeout(5):  # the watch delivering b's ADDED
                while len(inf) < 2:
                    await asyncio.sleep(0.01)
            assert seen == ["a", "b"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_preload_and_refresh() -> None:
    async with InProcessClient() as c:
        inf = Informer.synced_with(c, "pods", [pod("x")])
        assert inf.synced and [p.metadata.name for p in inf.list()] == ["x"]
        events: list[str] = []
        inf.add_handler(on_add=lambda p: events.append("add " + p.metadata.name),
                        on_delete=lambda p: events.append("delete " + p.metadata.name))
        await c.create(pod("a"))
        await refresh(c, inf)  # as a relist: x is gone, a arrived
        assert [p.metadata.name for p in inf.list()] == ["a"]
        assert events == ["add x", "delete x", "add a"]
        assert inf.resource_version


def test_fake_clock() -> None:
    clock = FakeClock(100.0)
    clock.advance(2.5)
    assert clock() == 102.5
