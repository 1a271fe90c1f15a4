"""Exponential back-off for container restarts and image pulls. Pure: no I/O;
times are plain floats (monotonic seconds) passed in.

Kubernetes' shape: the first restart is immediate, then initial, 2x, 4x...
capped (lab: 1 s, Kubernetes: 10 s; both capped at 5 min). A container that
ran at least `reset_after` seconds before exiting starts over.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    initial: float
    cap: float
    reset_after: float = 600.0
    # False: even the first retry waits `initial` (image pulls).
    first_immediate: bool = True
    # The delay the next failure will wait (0: the next restart is immediate).
    next_delay: float = 0.0
    # When the current wait ends, and how long it is.
    until: float = 0.0
    delay: float = 0.0

    def failed(self, now: float, ran_for: float = 0.0) -> float:
        """Record a failure at `now`; returns when the retry may happen."""
        if ran_for >= self.reset_after:
            self.next_delay = 0.0
        self.delay = self.next_delay
        self.until = now + self.delay
        if self.delay == 0 and not self.first_immediate:
            self.delay = self.initial
            self.until = now + self.delay
        self.next_delay = min(self.delay * 2, self.cap) if self.delay else self.initial
        return self.until

    def waiting(self, now: float) -> bool:
        return now < self.until

    def reset(self) -> None:
        self.next_delay = self.delay = self.until = 0.0
