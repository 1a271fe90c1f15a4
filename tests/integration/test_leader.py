"""Leader election: two control planes on one etcd; exactly one runs the
controllers, and the other takes over when the leader is killed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from controlplane.leader import ELECTION_PREFIX
from controlplane.store.etcd import EtcdStore
from tests.helpers import eventually
from tests.integration.controllers_util import (
    deployment,
    pods_of,
    ready,
    start_nodes,
    wait_nodes_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def test_failover_between_two_control_planes(start_controlplane: Any) -> None:
    cp1 = await start_controlplane(controllers=True)
    cp2 = await start_controlplane(controllers=True, etcd=cp1.etcd_endpoint)
    store = EtcdStore([cp1.etcd_endpoint])
    key = ELECTION_PREFIX + "controllers"
    try:
        async def leader() -> Any:
            kv = await store.get(key)
            return kv.value.decode() if kv is not None else None

        ident = await eventually("a leader elected", leader, timeout=20)
        by_pid = {cp.process.pid: cp for cp in (cp1, cp2)}
        lead = by_pid[int(ident.rsplit("_", 1)[1])]
        follower = cp2 if lead is cp1 else cp1
        assert "is the leader" not in follower.log_tail(400)

        client = follower.client()
        nodes = await start_nodes(follower.address, 2)
        try:
            await wait_nodes_ready(client, [n.name for n in nodes])
            await client.create(deployment("one", 2))

            async def two_ready() -> Any:
                ps = await pods_of(client, "one")
                return ps if len(ps) == 2 and all(ready(p) for p in ps) else None

            await eventually("2 ready pods (one controller manager at work)", two_ready, timeout=20)
            lead.process.kill()  # no resign: the lease must expire
            lead.process.wait()
            t0 = time.monotonic()
            new_ident = await eventually("the follower elected after the leader died", lambda: _changed(leader, ident), timeout=15)
            took = time.monotonic() - t0
            assert int(new_ident.rsplit("_", 1)[1]) == follower.process.pid
            assert took < 8, f"takeover took {took:.1f}s"
            await client.create(deployment("two", 2))

            async def two_more() -> Any:
                ps = await pods_of(client, "two")
                return ps if len(ps) == 2 and all(ready(p) for p in ps) else None

            await eventually("the new leader's controllers at work", two_more, timeout=20)
            assert len(await pods_of(client, "one")) == 2  # no duplicates after the takeover
        finally:
            for n in nodes:
                await n.stop()
            await client.close()
    finally:
        await store.close()


async def _changed(get: Any, old: str) -> Any:
    cur = await get()
    return cur if cur is not None and cur != old else None
