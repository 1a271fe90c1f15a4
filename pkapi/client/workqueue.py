"""WorkQueue: the de-duplicating, rate-limited queue between informer event
handlers and controller workers (client-go's workqueue, in asyncio).

Guarantees (all methods run on the one event loop that uses the queue):
- A key waiting in the queue is held once: adding it again is a no-op, so a
  burst of watch events for one object costs one sync.
- A key handed out by get() is "in flight" until done(key). It is never handed
  to a second worker meanwhile; a key added while in flight is queued again
  when done() is called, so the newest state is always synced after the
  current sync finishes (nothing lost, nothing processed twice at once).
- Keys come out in FIFO order of their (first) add.
- add_after(key, delay) adds later; add_rate_limited(key) adds after an
  exponential backoff per key (base * 2^failures, capped) that forget(key)
  resets after a successful sync.
- shutdown() wakes every waiting get() with ShutDown; later adds are ignored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Hashable


class ShutDown(Exception):
    """get() on a queue that has been shut down."""


class WorkQueue:
    def __init__(self, base_delay: float = 0.005, max_delay: float = 30.0, name: str = "") -> None:
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()  # queued or waiting to be re-queued at done()
        self._processing: set[Hashable] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._failures: dict[Hashable, int] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: Hashable) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # done() re-queues it
        self._queue.append(key)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    async def get(self) -> Hashable:
        """The next key; it is in flight until done(key). Raises ShutDown."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                # A wake-up meant for us must not be lost with us.
                if fut.done() and not fut.cancelled() and self._queue:
                    self._wake_one()
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        if self._queue:
            self._wake_one()
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wake_one()

    def add_after(self, key: Hashable, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            self.add(key)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def backoff(self, key: Hashable) -> float:
        """The delay the next add_rate_limited(key) would use."""
        n = self._failures.get(key, 0)
        return float(min(self.base_delay * (2**n), self.max_delay))  # int ** int is typed Any

    def add_rate_limited(self, key: Hashable) -> None:
        delay = self.backoff(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def shutdown(self) -> None:
        self._shutting_down = True
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
