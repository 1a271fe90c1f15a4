"""Consistency under injected faults, on real etcd and a real
pk-controlplane, seen through an Informer (what agents and controllers use):

- etcd stopped for a while: a call fails with ServiceUnavailable within its
  deadline (never hangs), and the informer's watch resumes from its revision
  once etcd is back (no relist), missing nothing written after.
- compaction while the informer is disconnected (its control plane down):
  on reconnect the server answers 410 Expired, the informer relists and
  ends with exactly the objects that exist (a delete it never saw is gone).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from controlplane.store.etcd import EtcdStore
from pkapi.client.informer import Informer
from pkapi.errors import ApiError
from tests.helpers import eventually
from tests.integration.test_apiserver import pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def _informer(client: Any) -> tuple[Informer, asyncio.Task[None]]:
    inf = Informer(client, "pods", "default")
    task = asyncio.create_task(inf.run())
    await inf.wait_synced(10)
    return inf, task


async def test_etcd_down_fails_calls_in_time_and_watches_resume(start_controlplane: Any, etcd_process: Any) -> None:
    cp = await start_controlplane(etcd=etcd_process)
    async with cp.client(timeout=20) as c:
        await c.create(pod("before"))
        inf, task = await _informer(c)
        try:
            await eventually("the informer has 'before'", lambda: inf.get("default", "before"), timeout=10)
            await etcd_process.stop()
            t0 = time.monotonic()
            with pytest.raises(ApiError) as e:
                await c.create(pod("during"))
            took = time.monotonic() - t0
            assert e.value.reason == "ServiceUnavailable", e.value
            assert took < 20, f"a call with a 20 s deadline took {took:.1f} s"
            await etcd_process.start()

            async def create_after() -> bool:
                try:
                    await c.create(pod("after"))
                except ApiError as err:
                    if err.reason == "AlreadyExists":
                        return True
                    if err.reason == "ServiceUnavailable":
                        return False
                    raise
                return True

            await eventually("a create once etcd is back", create_after, timeout=20)
            await eventually("the informer sees the write made after the outage",
                             lambda: inf.get("default", "after"), timeout=20)
            assert inf.get("default", "during") is None or (await c.get("pods", "default", "during"))
            assert inf.lists == 1, f"the informer relisted {inf.lists - 1} time(s) instead of resuming its watch"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_compaction_while_disconnected_means_expired_then_relist(start_controlplane: Any,
                                                                        etcd_process: Any) -> None:
    cp = await start_controlplane(etcd=etcd_process)
    async with cp.client(timeout=10) as c:
        for name in ("keep", "gone"):
            await c.create(pod(name))
        inf, task = await _informer(c)
        store = EtcdStore(etcd_process.endpoint)
        try:
            await eventually("the informer has both pods", lambda: len(inf) == 2, timeout=10)
            await cp.stop()  # the informer is cut off; it keeps retrying
            cp2 = await start_controlplane(etcd=etcd_process)
            async with cp2.client(timeout=10) as c2:
                await c2.delete("pods", "default", "gone", grace_period_seconds=0)
                await c2.create(pod("new"))
            await cp2.stop()
            await store.compact(await store.current_revision())
            await cp.start()  # same address: the informer reconnects with its old revision
            await eventually("the informer relisted after 410 Expired", lambda: inf.lists >= 2, timeout=20)
            await eventually("the relisted cache holds exactly what exists",
                             lambda: sorted(inf.keys()) == ["default/keep", "default/new"], timeout=10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()
