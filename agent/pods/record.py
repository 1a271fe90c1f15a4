"""ContainerRecord: what a pod worker remembers about one container of its
pod (by container name) between syncs: restart and pull back-offs, the last
pull failure and create error, the host-port bindings, the probe runners
and IP of each of its runs (ContainerProbes, by container id), and which
exits it has already counted.

Everything that is not in the runtime's view of the containers but shapes
the next decision is here (agent/pods/decide.py reads it; the worker
updates it with the methods below after acting). Pure data: no I/O; times
are monotonic floats passed in.

Concurrency: owned by one PodWorker; touched only on its task (and by its
probe callbacks, on the same event loop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from agent.pods.backoff import Backoff
from agent.runtime.base import ContainerState, PortBinding

if TYPE_CHECKING:  # the runners are the worker's; the record only holds them
    from agent.pods.probes import ContainerProbes


class PullFailure(NamedTuple):
    at: float
    message: str


@dataclass
class ContainerRecord:
    # Restarts of exited runs and retries of failed creates (first immediate).
    crash: Backoff
    # Image pulls (even the first retry waits `initial`).
    pull: Backoff
    pull_failure: PullFailure | None = None
    # (reason, message) of the last failed create/start: RunContainerError...
    create_error: tuple[str, str] | None = None
    # Host ports; None until allocated or read back from a running container.
    bindings: list[PortBinding] | None = None
    probes: dict[str, ContainerProbes] = field(default_factory=dict)
    # Exits already counted in `crash`, and CrashLoopBackOff events sent (by id).
    seen_exits: set[str] = field(default_factory=set)
    backoff_reported: set[str] = field(default_factory=set)

    @classmethod
    def new(cls, initial: float, cap: float, pull_initial: float | None = None) -> ContainerRecord:
        pull = initial if pull_initial is None else pull_initial
        return cls(Backoff(initial, cap), Backoff(pull, cap, first_immediate=False))

    def observe_exit(self, st: ContainerState, restart: bool, now: float) -> None:
        """Count an exited run once: a run that will be restarted moves the
        restart back-off on (a long run resets it: Backoff.reset_after)."""
        if st.id in self.seen_exits:
            return
        self.seen_exits.add(st.id)
        if restart:
            ran = 0.0
            if st.started_at and st.finished_at:
                ran = (st.finished_at - st.started_at).total_seconds()
            self.crash.failed(now, ran)

    def pull_failed(self, now: float, message: str) -> None:
        self.pull.failed(now)
        self.pull_failure = PullFailure(now, message)

    def pull_succeeded(self) -> None:
        self.pull.reset()
        self.pull_failure = None

    def create_failed(self, now: float, reason: str, message: str) -> None:
        self.create_error = (reason, message)
        self.crash.failed(now)

    def stop_probes(self, cid: str) -> None:
        p = self.probes.pop(cid, None)
        if p is not None:
            p.stop()

    def stop_all_probes(self) -> None:
        for cid in list(self.probes):
            self.stop_probes(cid)
