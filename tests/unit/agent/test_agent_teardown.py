"""TeardownGate (agent/pods/teardown.py) and its use by pod workers: a burst
of pod deletions reaches the engine a few stops/removals at a time, a slow
graceful stop does not hold its slot beyond `hold`, errors and cancellation
pass through."""

from __future__ import annotations

import asyncio

import pytest

from agent.clock import FakeClock
from agent.pods.teardown import TeardownGate
from agent.pods.worker import PodWorker
from agent.runtime.fake import FakeRuntime
from pkapi import meta
from tests.helpers import eventually
from tests.unit.agent.test_agent_worker import mkpod, stub_context


class Tracker:
    """Counts calls in flight; each call ends when its event is set (or
    after `delay`)."""

    def __init__(self, delay: float | None = None) -> None:
        self.delay = delay
        self.now = 0
        self.peak = 0
        self.started = 0

    async def call(self, done: asyncio.Event | None = None) -> str:
        self.now += 1
        self.started += 1
        self.peak = max(self.peak, self.now)
        try:
            if done is not None:
                await done.wait()
            else:
                await asyncio.sleep(self.delay or 0)
            return "ok"
        finally:
            self.now -= 1



async def test_at_most_limit_calls_in_flight() -> None:
    gate = TeardownGate(limit=2, hold=10)
    t = Tracker(delay=0.01)
    results = await asyncio.gather(*(gate.run(t.call()) for _ in range(12)))
    assert results == ["ok"] * 12
    assert t.peak == 2 and gate.active == 0


async def test_a_call_outlasting_hold_frees_its_slot_and_still_completes() -> None:
    clock = FakeClock()
    gate = TeardownGate(limit=1, hold=0.05, clock=clock)
    t = Tracker()
    slow_done = asyncio.Event()
    slow = asyncio.create_task(gate.run(t.call(slow_done)))  # a stop waiting out a long grace period
    await eventually("the slow call to start", lambda: t.started == 1, interval=0.005)
    # the next one gets the slot after `hold`, not when the slow one ends
    nxt = asyncio.create_task(gate.run(t.call()))
    await clock.advance(0.049)
    assert t.started == 1 and not nxt.done()
    await clock.advance(0.001)
    assert await asyncio.wait_for(nxt, 2) == "ok"
    assert not slow.done()
    slow_done.set()
    assert await slow == "ok"
    assert gate.active == 0


async def test_errors_pass_through_and_free_the_slot() -> None:
    gate = TeardownGate(limit=1)

    async def boom() -> None:
        raise RuntimeError("engine said no")

    with pytest.raises(RuntimeError, match="engine said no"):
        await gate.run(boom())
    assert await asyncio.wait_for(gate.run(Tracker().call()), 1) == "ok"


async def test_cancelled_caller_cancels_its_call_and_frees_the_slot() -> None:
    gate = TeardownGate(limit=1, hold=10)
    t = Tracker()
    never = asyncio.Event()
    first = asyncio.create_task(gate.run(t.call(never)))
    await eventually("the first call to start", lambda: t.started == 1, interval=0.005)
    waiting = asyncio.create_task(gate.run(t.call(never)))  # queued behind it
    await asyncio.sleep(0.01)
    waiting.cancel()
    first.cancel()
    for task in (first, waiting):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert t.now == 0 and t.started == 1  # the queued call never ran
    assert await asyncio.wait_for(gate.run(Tracker().call()), 1) == "ok"


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TeardownGate(limit=0)


class SlowFake(FakeRuntime):
    """A FakeRuntime whose stop and remove take a while, counting how many
    run at once (the engine's view of a mass deletion)."""

    def __init__(self) -> None:
        super().__init__()
        self.inflight = 0
        self.peak = 0

    async def _slow(self) -> None:
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.inflight -= 1

    async def stop(self, container_id: str, timeout: float) -> None:
        await self._slow()
        await super().stop(container_id, timeout)

    async def remove(self, container_id: str) -> None:
        await self._slow()
        await super().remove(container_id)


@pytest.mark.parametrize("limit", [1, 2])
async def test_mass_force_delete_reaches_the_engine_a_few_at_a_time(limit: int) -> None:
    rt = SlowFake()
    m = stub_context(rt, teardown=TeardownGate(limit))
    workers = [PodWorker(m, f"u-{i}", mkpod(uid=f"u-{i}")) for i in range(10)]
    for w in workers:
        assert not await w.sync()
    assert len(rt.containers) == 10
    for w in workers:
        w.pod = None  # force-deleted: gone from the API
    assert all(await asyncio.gather(*(w.sync() for w in workers)))
    assert rt.containers == {}
    assert 1 <= rt.peak <= limit


async def test_graceful_deletions_each_stop_within_the_gate() -> None:
    rt = SlowFake()
    m = stub_context(rt)
    pods = [mkpod(uid=f"u-{i}", terminationGracePeriodSeconds=5) for i in range(6)]
    workers = [PodWorker(m, f"u-{i}", p) for i, p in enumerate(pods)]
    for w in workers:
        assert not await w.sync()
    for p in pods:
        meta.set_timestamp(p.metadata.deletion_timestamp)
    assert all(await asyncio.wait_for(asyncio.gather(*(w.sync() for w in workers)), 5))
    assert rt.containers == {} and rt.peak <= m.teardown.limit
    assert len(m.client.deletes) == 6  # each confirmed at grace 0


async def test_teardowns_wait_while_a_start_is_under_way() -> None:
    gate = TeardownGate(limit=2, hold=10, max_defer=10)
    t = Tracker(delay=0)
    with gate.starting():
        pending = [asyncio.create_task(gate.run(t.call())) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert t.started == 0 and not any(p.done() for p in pending)
    assert await asyncio.wait_for(asyncio.gather(*pending), 2) == ["ok"] * 3


async def test_a_teardown_waits_for_starts_at_most_max_defer() -> None:
    clock = FakeClock()
    gate = TeardownGate(limit=1, hold=10, max_defer=0.1, clock=clock)
    t = Tracker(delay=0)
    with gate.starting():  # a start that never ends (or a stream of them)
        first = asyncio.create_task(gate.run(t.call()))
        await clock.advance(0.099)
        assert t.started == 0 and not first.done()
        await clock.advance(0.001)
        assert await asyncio.wait_for(first, 2) == "ok"
        # a batch queued for the one slot: deferral counts from the request,
        # so ten teardowns take about max_defer, not 10 x max_defer
        batch = asyncio.gather(*(gate.run(t.call()) for _ in range(10)))
        await clock.advance(0.099)
        assert t.started == 1 and not batch.done()
        await clock.advance(0.001)
        assert await asyncio.wait_for(batch, 2) == ["ok"] * 10
        assert clock.now() - 1000.0 == pytest.approx(0.2)  # time moved only as the test said
        assert t.peak == 1


async def test_cancelled_while_deferred_frees_the_slot() -> None:
    gate = TeardownGate(limit=1, hold=10, max_defer=10)
    t = Tracker(delay=0)
    with gate.starting():
        waiting = asyncio.create_task(gate.run(t.call()))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert t.started == 0 and gate.active == 0
    assert await asyncio.wait_for(gate.run(t.call()), 1) == "ok"


class SlowStartFake(SlowFake):
    """Starts take a while too, and every call is logged in order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    async def start(self, container_id: str) -> None:
        self.log.append("start-begin")
        await asyncio.sleep(0.1)
        await super().start(container_id)
        self.log.append("start-end")

    async def stop(self, container_id: str, timeout: float) -> None:
        self.log.append("stop")
        await super().stop(container_id, timeout)


async def test_a_new_pod_starts_before_deleted_pods_are_stopped() -> None:
    rt = SlowStartFake()
    m = stub_context(rt)
    old = [PodWorker(m, f"u-{i}", mkpod(uid=f"u-{i}")) for i in range(4)]
    for w in old:
        assert not await w.sync()
    rt.log.clear()
    new = PodWorker(m, "u-new", mkpod(uid="u-new"))
    starting = asyncio.create_task(new.sync())
    await eventually("the new pod's start", lambda: "start-begin" in rt.log, interval=0.005)
    for w in old:
        w.pod = None  # force-deleted while the new pod starts
    assert all(await asyncio.wait_for(asyncio.gather(*(w.sync() for w in old)), 5))
    assert not await starting
    # no stop went to the engine during the start
    assert rt.log.index("start-end") < rt.log.index("stop"), rt.log
    assert len(rt.containers) == 1
