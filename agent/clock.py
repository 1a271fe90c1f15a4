"""Clocks for the agent's timers: the monotonic clock, and FakeClock, a FAKE
for unit tests whose time moves only when the test says so.

    clock = MonotonicClock()
    clock.now()                         # seconds, monotonic
    await clock.sleep(0.5)
    done = await within(clock, fut, 2)  # True if fut finished within 2 s

Code that waits "at most N seconds" takes a Clock, so a unit test asserts
on the fake clock ("not done at 0.99 s, done at 1.0 s") instead of on wall
time, which a loaded machine stretches.

Concurrency: one event loop. FakeClock.advance() wakes the sleepers whose
deadline it passes, in deadline order, letting the loop run between them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


async def within(clock: Clock, fut: Awaitable[Any], timeout: float | None) -> bool:
    """Wait for `fut` at most `timeout` seconds of `clock` (None: no limit);
    True if it finished. `fut` is not cancelled when time runs out (the
    caller decides); its exception, if any, stays in it."""
    task = asyncio.ensure_future(fut)
    if task.done():
        return True
    if timeout is None:
        await asyncio.wait({task})
        return True
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
    return task.done()


# Loop iterations advance() gives the tasks it woke before it goes on: a
# woken task typically needs a few (wake, resume, await the next thing).
_SETTLE_ROUNDS = 20


_US = 1_000_000


class FakeClock:
    """A FAKE clock: now() stays put until advance(); sleep() returns once
    advance() has passed its deadline (sleep(0) just yields). Time is kept
    in whole microseconds, so advance(0.199) then advance(0.001) reaches a
    deadline 0.2 s away exactly (floats would fall short of it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._t = round(start * _US)
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._t / _US

    @property
    def sleepers(self) -> int:
        """How many sleep() calls are waiting (to know a task is asleep)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + max(1, round(seconds * _US)), next(self._seq), fut))
        await fut

    async def settle(self) -> None:
        """Let the tasks that are ready run (what a test does between steps)."""
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking each sleeper whose deadline
        is passed at its own deadline (so one that sleeps again from there
        is woken too if that is still within the step)."""
        target = self._t + round(seconds * _US)
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            at, _, fut = heapq.heappop(self._sleepers)
            self._t = max(self._t, at)
            if not fut.done():
                fut.set_result(None)
                await self.settle()
        self._t = target
        await self.settle()
