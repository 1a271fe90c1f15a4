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


async def test_a_leader_paused_past_its_lease_writes_nothing_when_it_wakes(start_controlplane: Any) -> None:
    """SIGSTOP the leader (its process group: the API server and its
    controllers process) for longer than its lease: the other control plane
    takes over and scales; on SIGCONT the old leader stops its controllers
    and no object the controllers own changes (its writes are refused by
    its Session's write guard before they are sent)."""
    import asyncio
    import os
    import signal

    cp1 = await start_controlplane(controllers=True, leader_lease_seconds=3)
    cp2 = await start_controlplane(controllers=True, etcd=cp1.etcd_endpoint, leader_lease_seconds=3)
    store = EtcdStore([cp1.etcd_endpoint])
    key = ELECTION_PREFIX + "controllers"

    async def leader() -> Any:
        kv = await store.get(key)
        return kv.value.decode() if kv is not None else None

    ident = await eventually("a leader elected", leader, timeout=20)
    lead = cp1 if int(ident.rsplit("_", 1)[1]) == cp1.process.pid else cp2
    other = cp2 if lead is cp1 else cp1
    client = other.client()
    nodes = await start_nodes(other.address, 1)
    paused = False
    try:
        await wait_nodes_ready(client, [n.name for n in nodes])
        await client.create(deployment("fence", 2))

        async def n_ready(n: int) -> Any:
            ps = await pods_of(client, "fence")
            return ps if len(ps) == n and all(ready(p) for p in ps) else None

        await eventually("2 ready pods", lambda: n_ready(2), timeout=20)
        os.killpg(lead.process.pid, signal.SIGSTOP)
        paused = True
        await eventually("the other control plane elected while the leader is paused",
                         lambda: _changed(leader, ident), timeout=15)
        d = await client.get("deployments", "default", "fence")
        d.spec.replicas = 3
        await client.update(d)
        await eventually("3 ready pods made by the new leader", lambda: n_ready(3), timeout=20)

        async def owned() -> dict[str, set[tuple[str, str]]]:
            out = {}
            for res in ("deployments", "replicasets", "pods", "endpoints"):
                items, _ = await client.list(res, "default")
                out[res] = {(o.metadata.name, o.metadata.resource_version) for o in items}
            return out

        before = await owned()
        log_at_resume = len(lead.log_tail(100000).splitlines())
        os.killpg(lead.process.pid, signal.SIGCONT)
        paused = False

        def woke_and_stepped_down() -> bool:
            new_lines = lead.log_tail(100000).splitlines()[log_at_resume:]
            return any("lost leadership" in ln or "lease considered lost" in ln or "expired" in ln for ln in new_lines)

        await eventually("the woken leader to step down", woke_and_stepped_down, timeout=10)
        await asyncio.sleep(2.0)  # a window for anything it still had queued
        after = await owned()
        assert after == before, f"objects changed after the old leader woke:\nbefore {before}\nafter {after}"
        assert await leader() != ident, "the woken leader took the election key back"
    finally:
        if paused:
            os.killpg(lead.process.pid, signal.SIGCONT)
        for n in nodes:
            await n.stop()
        await client.close()
        await store.close()
