"""HA on real parts: three pk-controlplanes on a three-member etcd cluster,
with hollow nodes (real pk-agent code on a FakeRuntime) and a client that
know all three control planes.

One test walks the faults in turn on one cluster (starting it costs most of
the time): the control plane every client is connected to is SIGKILLed
(reads keep answering, the informer resumes its watch from its revision on
another control plane without relisting), then the controllers' leader is
SIGKILLed (another is elected and a scale still happens), then an etcd
member is SIGKILLed (writes go on). No pod is replaced or restarted on the
way."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from typing import Any

import pytest

from controlplane.etcdproc import EtcdCluster
from controlplane.leader import ELECTION_PREFIX
from controlplane.store.etcd import EtcdStore
from pkapi.client.cluster import ClusterClient
from pkapi.client.informer import Informer
from tests.fixtures.etcd import tmp_root
from tests.helpers import eventually
from tests.integration.controllers_util import (
    deployment,
    pods_of,
    ready,
    start_nodes,
    update_with_retry,
    wait_nodes_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


@pytest.fixture
async def etcd_cluster() -> Any:
    tmp = tempfile.mkdtemp(prefix="pk-etcd3-", dir=tmp_root())
    cluster = EtcdCluster(os.path.join(tmp, "data"), size=3)
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


class Loop:
    """Reads one object every 20 ms until stopped; counts what failed."""

    def __init__(self, client: ClusterClient, name: str) -> None:
        self.client, self.name = client, name
        self.ok = 0
        self.failed: list[str] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.client.get("deployments", "default", self.name)
                self.ok += 1
            except Exception as err:  # noqa: BLE001 - every failure is counted
                self.failed.append(repr(err))
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_control_plane_leader_and_etcd_member_killed(start_controlplane: Any, etcd_cluster: EtcdCluster) -> None:
    cps = [await start_controlplane(controllers=True, etcd=etcd_cluster.endpoints) for _ in range(3)]
    servers = ",".join(cp.address for cp in cps)
    store = EtcdStore(etcd_cluster.endpoints)
    client = ClusterClient(servers, timeout=10)
    inf = Informer(client, "deployments")
    inf_task = asyncio.create_task(inf.run())
    nodes = await start_nodes(servers, 2)
    loop: Loop | None = None

    async def leader() -> Any:
        kv = await store.get(ELECTION_PREFIX + "controllers")
        if kv is None:
            return None
        pid = int(kv.value.decode().rsplit("_", 1)[1])
        return next((cp for cp in cps if cp.process is not None and cp.process.pid == pid
                     and cp.process.poll() is None), None)

    try:
        await wait_nodes_ready(client, [n.name for n in nodes], timeout=30)
        await client.create(deployment("web", 2))

        async def web_ready(n: int) -> Any:
            ps = await pods_of(client, "web")
            return ps if len(ps) == n and all(ready(p) for p in ps) else None

        before = {p.metadata.uid for p in await eventually("2 web pods Ready", lambda: web_ready(2), timeout=30)}
        await eventually("the informer synced", lambda: inf.get("default", "web") is not None, timeout=10)
        loop = Loop(client, "web")
        await eventually("the read loop answering", lambda: loop.ok > 5, timeout=10)

        # 1. The first control plane of the list (the one pick_first connected to) dies.
        first = cps[0]
        assert first.process is not None
        first.process.kill()
        first.process.wait()
        ok_at_kill = loop.ok
        await eventually("reads answered by another control plane", lambda: loop.ok > ok_at_kill + 20, timeout=15)
        await client.create(deployment("after-cp-kill", 1))
        await eventually("the informer's watch resumed on another control plane",
                         lambda: inf.get("default", "after-cp-kill") is not None, timeout=15)
        assert inf.lists == 1, "the informer relisted instead of resuming its watch from its revision"

        # 2. The controllers' leader dies (a new one is elected and acts).
        lead = await eventually("a living leader", leader, timeout=20)
        assert lead.process is not None
        lead.process.kill()
        lead.process.wait()
        survivor = await eventually("a new leader among the living", leader, timeout=20)
        assert survivor is not lead and survivor is not first

        def scale(d: Any) -> None:
            d.spec.replicas = 3

        await update_with_retry(client, "deployments", "default", "web", scale)
        await eventually("the scale to 3 done by the new leader", lambda: web_ready(3), timeout=30)

        # 3. An etcd member dies: writes go on (two of three are a quorum).
        etcd_cluster.members[0].kill()
        await client.create(deployment("after-etcd-kill", 1))
        await eventually("the write after an etcd member died is readable",
                         lambda: client.get("deployments", "default", "after-etcd-kill"), timeout=15)

        await loop.stop()
        assert not loop.failed, f"{len(loop.failed)} of {loop.ok + len(loop.failed)} reads failed: {loop.failed[:3]}"
        after = {p.metadata.uid for p in await pods_of(client, "web")}
        assert before <= after, "a pod was replaced during the failovers"
        for n in nodes:
            restarts = [c.restart_count for p in await pods_of(client, "web") if p.spec.node_name == n.name
                        for c in p.status.container_statuses]
            assert not any(restarts), f"containers restarted on {n.name}: {restarts}"
    finally:
        if loop is not None:
            await loop.stop()
        inf_task.cancel()
        await asyncio.gather(inf_task, return_exceptions=True)
        for n in nodes:
            await n.stop()
        await client.close()
        await store.close()
