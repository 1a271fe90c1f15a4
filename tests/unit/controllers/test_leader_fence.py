"""A leader that was paused past its lease refuses to write (the
Session's write guard on an injected clock; the controllers' client calls
it before every write, never before a read)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.leader import LeaseLost, Session
from controlplane.store.memory import MemoryStore
from pkapi.client.cluster import ClusterClient


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_lease_not_renewed_for_two_thirds_of_its_ttl_refuses_writes() -> None:
    clock = Clock()
    session = Session(MemoryStore(), ttl=3, clock=clock)
    await session.start()
    try:
        clock.now += 1.9
        session.check()  # renewed 1.9 s ago: still the leader
        assert session.alive
        clock.now += 0.2  # 2.1 s > 3 - 3/3: a woken, paused leader
        with pytest.raises(LeaseLost, match=r"last renewal 2\.1s ago, limit 2\.0s"):
            session.check()
        assert session.done.is_set(), "a refused write must end the term"
    finally:
        await session.close()


async def test_a_lost_session_refuses_at_once() -> None:
    session = Session(MemoryStore(), ttl=3, clock=Clock())
    await session.start()
    session.done.set()
    with pytest.raises(LeaseLost):
        session.check()
    await session.close()


class Method:
    def __init__(self, name: str) -> None:
        self._method = f"/pkapi.v1.ResourceService/{name}".encode()
        self.calls = 0

    async def __call__(self, request: Any, timeout: float | None = None) -> str:
        self.calls += 1
        return "ok"


def _refuse() -> None:
    raise LeaseLost("leader lease lost")


@pytest.mark.parametrize("name", ["Create", "Update", "UpdateStatus", "Delete", "Bind", "CreateBatch", "RecordEvents"])
async def test_the_guard_runs_before_every_write(name: str) -> None:
    async with ClusterClient("127.0.0.1:1", write_guard=_refuse) as c:
        m = Method(name)
        with pytest.raises(LeaseLost):
            await c._call(m, None)
        assert m.calls == 0, "the write was sent"


@pytest.mark.parametrize("name", ["Get", "List", "Version"])
async def test_reads_pass_the_guard(name: str) -> None:
    async with ClusterClient("127.0.0.1:1", write_guard=_refuse) as c:
        assert await c._call(Method(name), None) == "ok"
