"""The Store contract (tests/store_contract.py) against EtcdStore on a real
etcd, plus what only a real etcd can show: a watch surviving an etcd
restart, and unavailability surfacing as UnavailableError."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from controlplane.etcdproc import EtcdProcess
from controlplane.store import EtcdStore, UnavailableError
from tests.fixtures.etcd import EtcdFactory
from tests.store_contract import Collector, StoreContract

pytestmark = pytest.mark.integration

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def store_etcd() -> Iterator[EtcdProcess]:
    # Its own etcd: the contract compacts, which the shared one must not see.
    factory = EtcdFactory()
    try:
        yield factory.new()
    finally:
        factory.cleanup()


@pytest.fixture
async def store(store_etcd: EtcdProcess) -> AsyncIterator[EtcdStore]:
    s = EtcdStore(store_etcd.endpoint)
    yield s
    await s.close()


@pytest.fixture
def prefix() -> str:
    return f"/registry/test{next(_prefixes)}-{time.monotonic_ns()}/"


class TestEtcdStore(StoreContract):
    pass


async def test_paged_list_is_one_snapshot(store_etcd: EtcdProcess) -> None:
    """A list read in several pages reads every page at the first page's
    revision, even when writes land between the pages."""
    prefix = f"/registry/paged-{time.monotonic_ns()}/"
    writer = EtcdStore(store_etcd.endpoint)
    revs = {f"k{i:02}": await writer.create(prefix + f"k{i:02}", b"old") for i in range(10)}

    class Interleaving(EtcdStore):
        pages = 0

        async def _unary(self, what: str, method_name: str, stub: str, request: Any) -> Any:
            resp = await super()._unary(what, method_name, stub, request)
            if what.startswith("list"):
                self.pages += 1
                if self.pages == 1:
                    # After the first page: change a key on a later page, add one, delete one.
                    await writer.update(prefix + "k08", b"new", revs["k08"])
                    await writer.create(prefix + "k10", b"new")
                    await writer.delete(prefix + "k09")
            return resp

    store = Interleaving(store_etcd.endpoint, list_page_size=3)
    try:
        items, rev = await store.list(prefix)
        assert store.pages == 4
        assert [kv.key for kv in items] == [prefix + f"k{i:02}" for i in range(10)]
        assert {kv.value for kv in items} == {b"old"}
        assert rev == max(revs.values())
        items2, rev2 = await store.list(prefix)
        assert rev2 == rev + 3
        assert [kv.key.rsplit("/", 1)[1] for kv in items2] == [f"k{i:02}" for i in range(9)] + ["k10"]
    finally:
        await store.close()
        await writer.close()


async def test_watch_survives_an_etcd_restart(etcd_process: EtcdProcess) -> None:
    """Stop etcd mid-stream, restart it on the same data and ports, keep
    writing: the watch resumes with every event once, in order."""
    store = EtcdStore(etcd_process.endpoint)
    writer = EtcdStore(etcd_process.endpoint)
    prefix = "/registry/restart/"
    try:
        _, rev = await store.list(prefix)
        watch = Collector(store, prefix, rev + 1)
        expected: list[int] = []
        for i in range(100):
            expected.append(await writer.create(prefix + f"a{i}", b"before"))
        await watch.wait_until(expected[-1])
        await etcd_process.stop()
        # While etcd is down the watch keeps retrying; writes fail for good
        # only after the store's retry window.
        await etcd_process.start()
        for i in range(100):
            expected.append(await writer.create(prefix + f"b{i}", b"after"))
        # And once more, killed without warning this time.
        etcd_process.kill()
        await etcd_process.stop()
        await etcd_process.start()
        for i in range(100):
            expected.append(await writer.update(prefix + f"a{i}", b"again", expected[i]))
        events = await watch.wait_until(expected[-1])
        await watch.close()
        assert [e.mod_revision for e in events] == expected, "watch lost, duplicated or reordered events across restarts"
    finally:
        await store.close()
        await writer.close()


async def test_writes_retry_through_a_short_outage(etcd_process: EtcdProcess) -> None:
    store = EtcdStore(etcd_process.endpoint, retry_timeout=10)
    try:
        r1 = await store.create("/registry/outage/a", b"1")
        await etcd_process.stop()

        async def restart_soon() -> None:
            await asyncio.sleep(0.3)  # the outage being simulated, not a wait for a condition
            await etcd_process.start()

        restarter = asyncio.create_task(restart_soon())
        r2 = await store.update("/registry/outage/a", b"2", r1)
        await restarter
        kv = await store.get("/registry/outage/a")
        assert kv is not None and (kv.value, kv.mod_revision) == (b"2", r2)
    finally:
        await store.close()


async def test_unreachable_etcd_raises_unavailable(etcd_process: EtcdProcess) -> None:
    store = EtcdStore(etcd_process.endpoint, retry_timeout=0.5, op_timeout=0.2)
    try:
        await etcd_process.stop()
        t0 = time.monotonic()
        with pytest.raises(UnavailableError, match="unavailable"):
            await store.get("/registry/x")
        with pytest.raises(UnavailableError):
            async for _ in store.watch("/registry/", 1):
                pass
        assert time.monotonic() - t0 < 5
    finally:
        await store.close()
