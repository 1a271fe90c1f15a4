"""Backend choice for one Service port: round robin, ClientIP affinity, and
a short penalty for a backend that just failed.

Pure apart from reading a clock passed in (no I/O), so every rule is unit
tested directly. One Balancer per (Service, port); the proxy replaces its
backend list in place when Endpoints change, keeping the rotation and the
affinity table (entries for backends that vanished are dropped lazily).

Concurrency: used from one event loop only; no method awaits.
"""

from __future__ import annotations

import time
from typing import Callable

Backend = tuple[str, int]  # (ip, port)

# A backend whose connect failed is tried last for this long, so one dead
# node costs one retry, not one per new connection.
FAIL_PENALTY = 2.0


class Balancer:
    def __init__(
        self,
        backends: list[Backend] | tuple[Backend, ...] = (),
        affinity_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backends: list[Backend] = list(backends)
        self.affinity_timeout = affinity_timeout  # None: no session affinity
        self.clock = clock
        self._next = 0
        self._affinity: dict[str, tuple[Backend, float]] = {}
        self._failed: dict[Backend, float] = {}

    def update(self, backends: list[Backend] | tuple[Backend, ...], affinity_timeout: float | None) -> None:
        new = list(backends)
        if new != self.backends:
            self.backends = new
            self._next = self._next % len(new) if new else 0
        if affinity_timeout != self.affinity_timeout:
            self.affinity_timeout = affinity_timeout
            self._affinity.clear()

    def __bool__(self) -> bool:
        return bool(self.backends)

    def candidates(self, client_ip: str, limit: int = 3) -> list[Backend]:
        """The backends to try for one new connection, in order (at most
        `limit`, distinct). Advances the round robin by one."""
        n = len(self.backends)
        if n == 0:
            return []
        if self.affinity_timeout is None and not self._failed:
            # The common case, once per accepted connection: keep it short.
            first = self._next
            self._next = (first + 1) % n
            bs = self.backends
            return [bs[(first + i) % n] for i in range(min(n, limit))]
        now = self.clock()
        order: list[Backend] = []
        if self.affinity_timeout is not None:
            hit = self._affinity.get(client_ip)
            if hit is not None and hit[1] > now and hit[0] in self.backends:
                order.append(hit[0])
        start = self._next
        self._next = (self._next + 1) % n
        rotation = [self.backends[(start + i) % n] for i in range(n)]
        if self._failed:
            healthy = [b for b in rotation if self._failed.get(b, 0.0) <= now]
            rotation = healthy + [b for b in rotation if b not in healthy]
        for b in rotation:
            if len(order) >= limit:
                break
            if b not in order:
                order.append(b)
        return order[:limit]

    def connected(self, client_ip: str, backend: Backend) -> None:
        """A connection to backend succeeded: remember affinity, clear penalty."""
        self._failed.pop(backend, None)
        if self.affinity_timeout is not None:
            self._affinity[client_ip] = (backend, self.clock() + self.affinity_timeout)
            if len(self._affinity) > 65536:
                self._expire()

    def failed(self, backend: Backend) -> None:
        self._failed[backend] = self.clock() + FAIL_PENALTY
        if len(self._failed) > 4096:
            now = self.clock()
            self._failed = {b: t for b, t in self._failed.items() if t > now}

    def _expire(self) -> None:
        now = self.clock()
        self._affinity = {k: v for k, v in self._affinity.items() if v[1] > now}
