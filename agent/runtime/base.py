"""The container runtime the agent drives: a Protocol, its data and errors.

DockerRuntime (docker.py) is the real one; FakeRuntime (fake.py) is an
in-memory fake for unit tests and hollow-node benchmarks only. One contract
test suite (tests.unit.agent.test_fake_runtime.py, run against Docker by
tests/integration/test_agent_runtime.py) pins down the behaviour both share.

Concurrency: every method is a coroutine safe to call from many tasks of one
event loop at once; implementations serialise nothing themselves, so callers
must not act on one container from two tasks at a time (the agent's pod
worker owns each pod's containers).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import AsyncIterator, Protocol, runtime_checkable

# Labels the agent puts on every container it creates; containers without
# LABEL_NODE=<this node> are never touched.
LABEL_NODE = "io.pocketkube.node"
LABEL_POD_UID = "io.pocketkube.pod.uid"
LABEL_POD_NAMESPACE = "io.pocketkube.pod.namespace"
LABEL_POD_NAME = "io.pocketkube.pod.name"
LABEL_CONTAINER = "io.pocketkube.container.name"
LABEL_ATTEMPT = "io.pocketkube.container.attempt"
LABEL_SPEC_HASH = "io.pocketkube.container.hash"
LABEL_PORTS = "io.pocketkube.ports"


class RuntimeError_(Exception):
    """Base of runtime errors; str() is the engine's message, for users."""


class RuntimeUnavailable(RuntimeError_):
    """The engine does not answer."""


class ImageNotFound(RuntimeError_):
    """The image is not present locally."""


class ImagePullError(RuntimeError_):
    """Pulling failed (unknown image, no registry reachable...)."""


class ContainerNotFound(RuntimeError_):
    pass


class PortInUse(RuntimeError_):
    """A host port to publish on is taken: allocate another and recreate."""


class CreateError(RuntimeError_):
    """The engine refused to create or start the container (bad command...)."""


@dataclass(frozen=True)
class PortBinding:
    container_port: int
    protocol: str  # "TCP" or "UDP"
    host_ip: str
    host_port: int


@dataclass
class ContainerConfig:
    name: str
    image: str
    labels: dict[str, str]
    # None: the image's ENTRYPOINT / CMD (Kubernetes' command / args).
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    hostname: str = ""
    ports: list[PortBinding] = field(default_factory=list)
    cpu_nanos: int = 0  # 0: unlimited
    memory_bytes: int = 0  # 0: unlimited
    dns_servers: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)  # resolv.conf `options`, e.g. ndots:5
    stdin: bool = False
    tty: bool = False


@dataclass
class ContainerState:
    id: str
    name: str
    labels: dict[str, str]
    image: str
    image_id: str = ""
    # created, running, paused, restarting, removing, exited, dead
    status: str = "created"
    exit_code: int = 0
    started_at: _dt.datetime | None = None
    finished_at: _dt.datetime | None = None
    oom_killed: bool = False
    error: str = ""
    # The container's address on its engine's bridge (for probes of ports
    # that are not published); "" if none.
    ip: str = ""

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    @property
    def exited(self) -> bool:
        return self.status in ("exited", "dead")


@dataclass(frozen=True)
class ContainerEvent:
    """Something happened to a container (start, die, destroy, ...)."""

    id: str
    action: str
    labels: dict[str, str]


@dataclass(frozen=True)
class RuntimeInfo:
    name: str  # "docker"
    version: str  # "20.10.24"
    os_image: str
    kernel_version: str
    architecture: str
    operating_system: str = "linux"


class ExecSession(Protocol):
    """A running `exec` with streamed output (for AgentService.Exec)."""

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(stream, data) pairs: 1 stdout, 2 stderr; ends when the command's
        output ends."""
        ...

    async def exit_code(self) -> int: ...

    async def close(self) -> None: ...


@runtime_checkable
class Runtime(Protocol):
    async def info(self) -> RuntimeInfo: ...

    async def image_id(self, ref: str) -> str | None:
        """The local image's id, None when not present."""
        ...

    async def pull(self, ref: str) -> str:
        """Pull `ref`; its id. ImagePullError with the engine's message."""
        ...

    async def pulls_locally(self, ref: str) -> bool:
        """True when a pull of `ref` asks a registry on this machine (a
        Docker Hub name on an engine with a registry mirror, a localhost
        registry's name): imagePullPolicy Always pulls such an image even
        when it is present; any other present image is used as is, as no
        pull may leave the machine."""
        ...

    async def create(self, config: ContainerConfig) -> str:
        """Create (not start); the container id. ImageNotFound, CreateError."""
        ...

    async def start(self, container_id: str) -> None:
        """PortInUse when a host port is taken; CreateError otherwise."""
        ...

    async def stop(self, container_id: str, timeout: float) -> None:
        """SIGTERM, SIGKILL after `timeout` seconds; returns once stopped.
        A stopped or vanished container is fine."""
        ...

    async def remove(self, container_id: str) -> None:
        """Force-remove; a vanished container is fine."""
        ...

    async def list_containers(self, labels: dict[str, str]) -> list[ContainerState]:
        """Every container (running or not) carrying all these labels."""
        ...

    async def inspect(self, container_id: str) -> ContainerState:
        """ContainerNotFound when gone."""
        ...

    def events(self, labels: dict[str, str]) -> AsyncIterator[ContainerEvent]:
        """Container events for containers carrying these labels, forever."""
        ...

    def logs(
        self,
        container_id: str,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: float | None = None,
    ) -> AsyncIterator[bytes]:
        """The container's stdout+stderr; with follow, until it stops."""
        ...

    async def exec(self, container_id: str, command: list[str], timeout: float) -> tuple[int, bytes]:
        """Run a command to completion (exec probes): (exit code, output).
        TimeoutError after `timeout` seconds."""
        ...

    async def exec_stream(self, container_id: str, command: list[str], stdin: bool, tty: bool) -> ExecSession:
        """Start a command with streamed I/O (pkctl exec)."""
        ...

    async def close(self) -> None: ...
