"""TeardownGate: container stops and removals of deleted pods go to the
engine a few at a time, and wait while a container is being started, so
deleting many pods does not delay the start of new ones.

Why: when a container exits, the engine tears down its network (published
ports' rules, the userland proxy, the endpoint) under locks that a starting
container with published ports needs too. Thirty pods deleted at once
(`pkctl delete` of a Deployment, a bench run) sent thirty kills together
and a pod created just after waited for all of those exits: measured on
the lab machine, `docker start` of a new container took 0.9-1.5 s during 30
concurrent kills and 0.27-0.31 s when quiet; with the kills two at a time
0.33-0.54 s (the 30 teardowns took 3.0-3.6 s instead of 2.5 s); when, in
addition, no new stop is sent while a start is under way (the two already
sent finish first), 0.30-0.37 s, as on a quiet engine. Kubernetes' kubelet
does not bound this; on a small lab node the latency of new pods matters
more than how soon deleted pods' containers are gone (a force-deleted pod
is already gone from the API; a graceful one is confirmed a little later).

A slot is held while the call runs, but at most `hold` seconds: a graceful
stop waits for the process to exit on SIGTERM (up to its grace period), and
that wait costs the engine nothing, so a container that ignores SIGTERM for
30 s must not hold back every other deletion for 30 s. The call itself is
never cut short: after `hold` it goes on outside the gate. Likewise a
teardown waits for starts only until `max_defer` seconds after it was
asked for (time spent queueing for a slot counts), so a steady stream of
new pods delays a mass deletion by about max_defer, never more.

Time is read from an injected Clock (agent/clock.py), so the limits are
tested on a fake clock.

Concurrency: single event loop; any number of callers; a cancelled caller
cancels its call and frees its slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from agent.clock import Clock, MonotonicClock, within

T = TypeVar("T")

DEFAULT_LIMIT = 2
DEFAULT_HOLD = 1.0
DEFAULT_MAX_DEFER = 2.0


class TeardownGate:
    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        hold: float = DEFAULT_HOLD,
        max_defer: float = DEFAULT_MAX_DEFER,
        clock: Clock | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.clock: Clock = clock or MonotonicClock()
        self.limit = limit
        self.hold = hold
        self.max_defer = max_defer
        self._sem = asyncio.Semaphore(limit)
        self._starts = 0
        self._no_starts = asyncio.Event()
        self._no_starts.set()
        # Teardown calls sent and holding a slot (for tests and debugging).
        self.active = 0

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Around a container's create and start: teardowns not yet sent
        wait until it is done (at most max_defer)."""
        self._starts += 1
        self._no_starts.clear()
        try:
            yield
        finally:
            self._starts -= 1
            if self._starts == 0:
                self._no_starts.set()

    async def run(self, call: Awaitable[T]) -> T:
        """Await `call` (a stop or remove) once a slot is free and no start
        is under way."""
        clock = self.clock
        defer_until = clock.now() + self.max_defer
        try:
            await self._sem.acquire()
        except BaseException:
            _close(call)
            raise
        task: asyncio.Future[T] | None = None
        try:
            left = defer_until - clock.now()
            if self._starts and left > 0:
                no_starts = asyncio.ensure_future(self._no_starts.wait())
                try:
                    await within(clock, no_starts, left)
                finally:
                    no_starts.cancel()
            task = asyncio.ensure_future(call)
            self.active += 1
            await within(clock, task, self.hold)
        except BaseException:
            if task is None:
                _close(call)
            else:
                task.cancel()
            raise
        finally:
            if task is not None:
                self.active -= 1
            self._sem.release()
        return await task


def _close(call: Awaitable[object]) -> None:
    if asyncio.iscoroutine(call):
        call.close()  # never started: no "never awaited" warning
