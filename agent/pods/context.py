"""PodContext: what a PodWorker may use of the node, and nothing more.

    ctx = PodContext(runtime, client, ports, teardown, hooks, node_name, node_ip,
                     event=RecorderEvents(recorder), timing=PodTiming.of(config))
    PodWorker(ctx, uid, pod)

The PodManager builds one for all its workers; a unit test builds one from
fakes (FakeRuntime, a stub client, a FakeClock). Everything in it is shared
by the node's workers: the runtime, the API client, the host-port allocator
and the TeardownGate are safe to use from many workers on one event loop;
the hooks are read only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.clock import Clock, MonotonicClock
from agent.config import AgentConfig
from agent.hooks import PodHooks
from agent.pods.ports import PortAllocator
from agent.pods.teardown import TeardownGate
from agent.runtime.base import Runtime
from pkapi.v1 import core_pb2

log = logging.getLogger(__name__)


class PodClient(Protocol):
    """The API calls a worker makes (ClusterClient has them)."""

    async def update_status(self, pod: core_pb2.Pod) -> Any: ...

    async def delete(
        self, resource: str, namespace: str, name: str, grace_period_seconds: int | None = None, uid: str = ""
    ) -> Any: ...


class EventSink(Protocol):
    def __call__(self, pod: core_pb2.Pod, type_: str, reason: str, message: str, container: str = "") -> None: ...


class RecorderEvents:
    """Events about pods through an EventRecorder (None: none), best effort;
    `container` becomes the field path spec.containers{name}, as kubelet's."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder

    def __call__(self, pod: core_pb2.Pod, type_: str, reason: str, message: str, container: str = "") -> None:
        if self.recorder is None:
            return
        field_path = f"spec.containers{{{container}}}" if container else ""
        try:
            self.recorder.event(pod, type_, reason, message, field_path=field_path)
        except Exception:  # noqa: BLE001 - events are best effort
            log.debug("event %s for %s not recorded", reason, pod.metadata.name, exc_info=True)


@dataclass(frozen=True)
class PodTiming:
    """Back-off of restarts and pulls (from the preset), and how long a
    worker with nothing to wait for sleeps before looking again."""

    backoff_initial: float = 1.0
    backoff_cap: float = 300.0
    resync_interval: float = 10.0
    # image pulls' first back-off (None: backoff_initial)
    pull_backoff_initial: float | None = None

    @classmethod
    def of(cls, config: AgentConfig) -> PodTiming:
        return cls(config.backoff_initial, config.backoff_cap, config.resync_interval, config.pull_backoff_initial)


@dataclass(frozen=True)
class PodContext:
    runtime: Runtime
    client: PodClient
    ports: PortAllocator
    teardown: TeardownGate
    hooks: PodHooks
    node_name: str
    node_ip: str
    event: EventSink
    timing: PodTiming = PodTiming()
    clock: Clock = field(default_factory=MonotonicClock)
