"""Informer against a scripted fake client: list, watch, relist on Expired,
reconnect on ServerUnreachable, handlers and indexes."""

import asyncio
from typing import Any, AsyncIterator

from pkapi.client.cluster import ServerUnreachable
from pkapi.client.informer import Informer
from pkapi.errors import expired
from pkapi.v1 import core_pb2
from tests.helpers import eventually


def pod(name: str, rv: int, node: str = "") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.resource_version = name, "default", str(rv)
    p.spec.node_name = node
    return p


class ScriptedClient:
    """list() returns successive snapshots; watch() replays scripted streams,
    each ending with an exception or by staying open."""

    def __init__(self, lists: list[tuple[list[Any], str]], streams: list[tuple[list[tuple[str, Any]], Exception | None]]):
        self.lists = lists
        self.streams = streams
        self.watch_rvs: list[str] = []

    async def list(self, resource: str, namespace: str = "", label_selector: str = "",
                   field_selector: str = "") -> tuple[list[Any], str]:
        return self.lists.pop(0)

    async def watch(self, resource: str, namespace: str = "", resource_version: str = "",
                    label_selector: str = "", field_selector: str = "",
                    allow_bookmarks: bool = False) -> AsyncIterator[tuple[str, Any]]:
        self.watch_rvs.append(resource_version)
        if not self.streams:
            await asyncio.Event().wait()
        events, end = self.streams.pop(0)
        for ev in events:
            yield ev
        if end is not None:
            raise end
        await asyncio.Event().wait()



async def test_list_watch_relist_reconnect() -> None:
    client = ScriptedClient(
        lists=[([pod("a", 1), pod("b", 2)], "2"), ([pod("a", 5), pod("c", 6)], "6")],
        streams=[
            ([("MODIFIED", pod("a", 3, "n1")), ("ADDED", pod("d", 4))], ServerUnreachable("x", "down")),
            ([], expired()),
            ([("DELETED", pod("c", 7))], None),
        ],
    )
    inf = Informer(client, "pods")
    inf.add_index("node", lambda p: [p.spec.node_name] if p.spec.node_name else [])
    seen: list[str] = []
    inf.add_handler(
        on_add=lambda o: seen.append(f"add {o.metadata.name}"),
        on_update=lambda o, n: seen.append(f"update {o.metadata.name} {o.metadata.resource_version}->{n.metadata.resource_version}"),
        on_delete=lambda o: seen.append(f"delete {o.metadata.name}"),
    )
    task = asyncio.create_task(inf.run())
    try:
        await inf.wait_synced(2)
        await eventually("the last watch event", lambda: "delete c" in seen)
    finally:
        task.cancel()
    assert seen == [
        "add a", "add b",
        "update a 1->3", "add d",
        # relist after Expired: a changed, b and d vanished, c is new
        "delete b", "delete d", "update a 3->5", "add c",
        "delete c",
    ]
    # resumed from the last seen revision after the disconnect, relisted after Expired
    assert client.watch_rvs == ["2", "4", "6"]
    assert [p.metadata.name for p in inf.list()] == ["a"]
    assert inf.get("default", "a").metadata.resource_version == "5"
    assert inf.by_index("node", "n1") == []  # a lost its node in the relisted version


async def test_handler_added_late_gets_cached_objects_and_bad_handler_is_contained() -> None:
    client = ScriptedClient(lists=[([pod("a", 1)], "1")], streams=[([("ADDED", pod("b", 2, "n1"))], None)])
    inf = Informer(client, "pods")
    inf.add_handler(on_add=lambda o: 1 / 0)
    task = asyncio.create_task(inf.run())
    try:
        await inf.wait_synced(2)
        got: list[str] = []
        inf.add_handler(on_add=lambda o: got.append(o.metadata.name))
        await eventually("b in the cache", lambda: inf.get("default", "b") is not None)
        inf.add_index("node", lambda p: [p.spec.node_name])
        assert [p.metadata.name for p in inf.by_index("node", "n1")] == ["b"]
        assert got == ["a", "b"]
    finally:
        task.cancel()


async def test_wait_synced_times_out_with_a_reason() -> None:
    inf = Informer(ScriptedClient([], []), "pods")
    try:
        await inf.wait_synced(0.01)
    except TimeoutError as err:
        assert "pods" in str(err)
    else:
        raise AssertionError("expected TimeoutError")
