"""RetryDelay: jittered exponential back-off for reconnect loops (informers,
node heartbeats, the agent's engine streams). Pure: no I/O; the randomness
is injected.

    delay = RetryDelay(0.1, 5.0)
    ...
    except ServerUnreachable:
        await asyncio.sleep(delay.next())   # 0.1-0.12, 0.2-0.24, ... 5-6 s
    delay.reset()                           # after a success

Each delay is the current step stretched by up to `jitter` of itself
(client-go's wait.Jitter), so the agents of a cluster that lost their
control plane at one instant do not all come back at the same instant.
"""

from __future__ import annotations

import random
from typing import Callable


class RetryDelay:
    def __init__(
        self, initial: float, cap: float, jitter: float = 0.2, rand: Callable[[], float] = random.random
    ) -> None:
        if initial <= 0 or cap < initial or jitter < 0:
            raise ValueError("need 0 < initial <= cap and jitter >= 0")
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self._rand = rand
        self.step = initial
        # How many delays were handed out since the last reset (0: no failure yet).
        self.failures = 0

    def next(self) -> float:
        """The delay to wait now; the next one is twice as long (up to cap)."""
        d = self.step * (1.0 + self.jitter * self._rand())
        self.step = min(self.step * 2, self.cap)
        self.failures += 1
        return d

    def reset(self) -> None:
        self.step = self.initial
        self.failures = 0
