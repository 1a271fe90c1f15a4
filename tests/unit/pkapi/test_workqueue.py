"""WorkQueue: de-duplication, in-flight exclusivity, delays, backoff."""

import asyncio

import pytest

from pkapi.client.workqueue import ShutDown, WorkQueue


async def test_dedup_and_fifo() -> None:
    q = WorkQueue()
    for k in ["a", "b", "a", "c", "b"]:
        q.add(k)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_in_flight_key_is_not_handed_out_twice() -> None:
    q = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")  # changed while being processed
    assert len(q) == 0
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(q.get(), 0.05)
    q.done("a")
    assert await asyncio.wait_for(q.get(), 1) == "a"
    q.done("a")
    assert len(q) == 0


async def test_done_without_readd_does_not_requeue() -> None:
    q = WorkQueue()
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0


async def test_concurrent_workers_never_share_a_key() -> None:
    q = WorkQueue()
    active: set[str] = set()
    processed: list[str] = []

    async def worker() -> None:
        while True:
            try:
                k = await q.get()
            except ShutDown:
                return
            assert k not in active
            active.add(k)
            await asyncio.sleep(0.001)
            processed.append(str(k))
            active.discard(str(k))
            q.done(k)

    tasks = [asyncio.create_task(worker()) for _ in range(4)]
    for i in range(200):
        q.add(f"k{i % 5}")
        if i % 7 == 0:
            await asyncio.sleep(0)
    while len(q) or q._processing:
        await asyncio.sleep(0.005)
    q.shutdown()
    await asyncio.gather(*tasks)
    assert set(processed) == {f"k{i}" for i in range(5)}


async def test_add_after() -> None:
    q = WorkQueue()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    q.add_after("a", 0.05)
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 1) == "a"
    assert loop.time() - t0 >= 0.045


async def test_rate_limited_backoff_and_forget() -> None:
    q = WorkQueue(base_delay=0.01, max_delay=0.04)
    assert q.backoff("a") == 0.01
    q.add_rate_limited("a")
    assert q.num_requeues("a") == 1
    assert q.backoff("a") == 0.02
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    assert q.backoff("a") == 0.04  # capped
    q.add_rate_limited("a")
    assert q.backoff("a") == 0.04
    q.forget("a")
    assert q.num_requeues("a") == 0 and q.backoff("a") == 0.01
    assert await asyncio.wait_for(q.get(), 1) == "a"


async def test_shutdown_wakes_getters_and_ignores_adds() -> None:
    q = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add_after("late", 0.01)
    q.shutdown()
    with pytest.raises(ShutDown):
        await getter
    q.add("x")
    assert len(q) == 0
    await asyncio.sleep(0.02)
    assert len(q) == 0


async def test_cancelled_getter_does_not_lose_a_wakeup() -> None:
    q = WorkQueue()
    g1 = asyncio.create_task(q.get())
    g2 = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("a")
    g1.cancel()
    done = await asyncio.wait_for(asyncio.gather(g1, g2, return_exceptions=True), 1)
    assert "a" in done
