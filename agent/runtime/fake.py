"""FakeRuntime: an in-memory container runtime. A FAKE, for unit tests and
hollow-node scale benchmarks only; never used where a real engine is
expected.

It is light (a container is a small object and at most one timer), so one
process can host hundreds of hollow agents. Containers "run" programs chosen
by image, which imitate PocketKube's real test images:

  pocketkube/crash:*   exits $EXIT_CODE (1) after $CRASH_AFTER s (3)
  anything else        runs until stopped

Images: `images` is the set present locally; `pullable` the set a pull
succeeds for (default: none, as with no registry). stop() ends a container
at once with exit code 143, unless `ignore_sigterm` contains its image: then
it exits 137 after the stop timeout (on the injected clock: a FakeClock in
unit tests). exec() answers `exec_results[command[0]]`
or (0, b""); `cat /etc/resolv.conf` (unless "cat" is in exec_results)
answers the resolver file the engine would write from the container's DNS
settings (nameservers, search path, options such as ndots:5). httpGet/tcpSocket probes never touch the network: the agent asks
network_probe(), which answers `probe_results[kind]` (default: success while
the container runs).

Concurrency: single event loop; state changes happen synchronously inside
each coroutine, so every call sees a consistent world.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
from dataclasses import dataclass, field
from typing import AsyncIterator

from agent.clock import Clock, MonotonicClock, within
from agent.runtime.base import (
    ContainerConfig,
    ContainerEvent,
    ContainerNotFound,
    ContainerState,
    CreateError,
    ImageNotFound,
    ImagePullError,
    PortInUse,
    RuntimeInfo,
)

DEFAULT_IMAGES = ("pocketkube/hello:1", "pocketkube/hello:2", "pocketkube/crash:1", "pocketkube/flaky:1", "nginx:latest")


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _norm(ref: str) -> str:
    last = ref.rsplit("/", 1)[-1]
    return ref if (":" in last or "@" in ref) else ref + ":latest"


@dataclass
class _Container:
    state: ContainerState
    config: ContainerConfig
    logs: list[bytes] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


def _resolv_conf(config: ContainerConfig) -> str:
    """What Docker writes for --dns/--dns-search/--dns-opt (the fake host's
    own resolver otherwise: a documentation address, never contacted)."""
    lines = [f"nameserver {s}" for s in (config.dns_servers or ["192.0.2.53"])]
    if config.dns_search:
        lines.append("search " + " ".join(config.dns_search))
    if config.dns_options:
        lines.append("options " + " ".join(config.dns_options))
    return "\n".join(lines) + "\n"


class _FakeExec:
    def __init__(self, code: int, out: bytes) -> None:
        self._code = code
        self._out = out
        self.stdin = bytearray()
        self._stdin_closed = asyncio.Event()

    async def write(self, data: bytes) -> None:
        self.stdin += data

    async def close_stdin(self) -> None:
        self._stdin_closed.set()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        if self._out:
            yield 1, self._out

    async def exit_code(self) -> int:
        return self._code

    async def close(self) -> None:
        pass


class FakeRuntime:
    def __init__(self, images: tuple[str, ...] | list[str] = DEFAULT_IMAGES, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or MonotonicClock()
        self.images: set[str] = {_norm(i) for i in images}
        self.pullable: set[str] = set()
        # pulls_locally() answers this (a registry on the machine)
        self.local_registry = False
        self.ignore_sigterm: set[str] = set()
        self.exec_results: dict[str, tuple[int, bytes]] = {}
        # "Readiness" / "Liveness" / "Startup" -> (ok, message)
        self.probe_results: dict[str, tuple[bool, str]] = {}
        self.containers: dict[str, _Container] = {}
        self.calls: list[str] = []  # method names, for tests
        self._ids = itertools.count(1)
        self._subscribers: list[tuple[dict[str, str], asyncio.Queue[ContainerEvent]]] = []

    # ---------------------------------------------------------- internals

    def _get(self, container_id: str) -> _Container:
        c = self.containers.get(container_id)
        if c is None:
            for cid, cc in self.containers.items():
                if cid.startswith(container_id) or cc.state.name == container_id:
                    return cc
            raise ContainerNotFound(f"No such container: {container_id}")
        return c

    def _emit(self, c: _Container, action: str) -> None:
        ev = ContainerEvent(c.state.id, action, dict(c.state.labels))
        for labels, q in self._subscribers:
            if all(c.state.labels.get(k) == v for k, v in labels.items()):
                q.put_nowait(ev)

    def _exit(self, c: _Container, code: int) -> None:
        if c.state.status != "running":
            return
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        c.state.status = "exited"
        c.state.exit_code = code
        c.state.finished_at = _now()
        c.logs.append(f"exited with {code}\n".encode())
        c.stopped.set()
        self._emit(c, "die")

    # ------------------------------------------------------------ protocol

    async def info(self) -> RuntimeInfo:
        return RuntimeInfo("fake", "0.0.0-fake", "FakeOS", "0.0.0-fake", "amd64")

    async def image_id(self, ref: str) -> str | None:
        r = _norm(ref)
        return f"sha256:fake-{r}" if r in self.images else None

    async def pull(self, ref: str) -> str:
        self.calls.append("pull")
        r = _norm(ref)
        if r not in self.pullable and r not in self.images:
            repo = r.rsplit(":", 1)[0]
            raise ImagePullError(
                f"pull access denied for {repo}, repository does not exist or may require 'docker login'"
            )
        self.images.add(r)
        return f"sha256:fake-{r}"

    async def pulls_locally(self, ref: str) -> bool:
        return self.local_registry

    async def create(self, config: ContainerConfig) -> str:
        self.calls.append("create")
        if _norm(config.image) not in self.images:
            raise ImageNotFound(f"No such image: {config.image}")
        if any(c.state.name == config.name for c in self.containers.values()):
            raise CreateError(f'Conflict. The container name "/{config.name}" is already in use')
        cid = f"{next(self._ids):064x}"
        st = ContainerState(
            id=cid,
            name=config.name,
            labels=dict(config.labels),
            image=config.image,
            image_id=f"sha256:fake-{_norm(config.image)}",
            ip="",
        )
        c = _Container(st, config)
        self.containers[cid] = c
        self._emit(c, "create")
        return cid

    async def start(self, container_id: str) -> None:
        self.calls.append("start")
        c = self._get(container_id)
        if c.state.running:
            return
        for p in c.config.ports:
            for other in self.containers.values():
                if other is c or not other.state.running:
                    continue
                for q in other.config.ports:
                    if (q.host_ip, q.host_port, q.protocol) == (p.host_ip, p.host_port, p.protocol):
                        raise PortInUse(f"Bind for {p.host_ip}:{p.host_port} failed: port is already allocated")
        c.state.status = "running"
        c.state.started_at = _now()
        c.state.finished_at = None
        c.stopped = asyncio.Event()
        c.logs.append(f"started {c.config.image}\n".encode())
        if _norm(c.config.image).startswith("pocketkube/crash:"):
            after = float(c.config.env.get("CRASH_AFTER", "3"))
            code = int(c.config.env.get("EXIT_CODE", "1"))
            c.timer = asyncio.get_running_loop().call_later(after, self._exit, c, code)
        self._emit(c, "start")

    async def stop(self, container_id: str, timeout: float) -> None:
        self.calls.append("stop")
        try:
            c = self._get(container_id)
        except ContainerNotFound:
            return
        if not c.state.running:
            return
        if _norm(c.config.image) in self.ignore_sigterm:
            stopped = asyncio.ensure_future(c.stopped.wait())
            try:
                if not await within(self.clock, stopped, timeout):
                    self._exit(c, 137)
            finally:
                stopped.cancel()
        else:
            self._exit(c, 143)

    async def remove(self, container_id: str) -> None:
        self.calls.append("remove")
        try:
            c = self._get(container_id)
        except ContainerNotFound:
            return
        self._exit(c, 137)
        del self.containers[c.state.id]
        self._emit(c, "destroy")

    async def list_containers(self, labels: dict[str, str]) -> list[ContainerState]:
        return [
            ContainerState(**vars(c.state))
            for c in self.containers.values()
            if all(c.state.labels.get(k) == v for k, v in labels.items())
        ]

    async def inspect(self, container_id: str) -> ContainerState:
        return ContainerState(**vars(self._get(container_id).state))

    async def events(self, labels: dict[str, str]) -> AsyncIterator[ContainerEvent]:
        q: asyncio.Queue[ContainerEvent] = asyncio.Queue()
        entry = (dict(labels), q)
        self._subscribers.append(entry)
        try:
            while True:
                yield await q.get()
        finally:
            self._subscribers.remove(entry)

    async def logs(
        self,
        container_id: str,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: float | None = None,
    ) -> AsyncIterator[bytes]:
        c = self._get(container_id)
        lines = list(c.logs)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        for line in lines:
            yield line
        if follow:
            seen = len(c.logs)
            while c.state.running:
                stop = asyncio.ensure_future(c.stopped.wait())
                try:
                    await asyncio.wait_for(asyncio.shield(stop), 0.1)
                except TimeoutError:
                    pass
                finally:
                    stop.cancel()
                for line in c.logs[seen:]:
                    yield line
                seen = len(c.logs)

    async def exec(self, container_id: str, command: list[str], timeout: float) -> tuple[int, bytes]:
        c = self._get(container_id)
        if not c.state.running:
            raise CreateError(f"Container {container_id} is not running")
        if command == ["cat", "/etc/resolv.conf"] and "cat" not in self.exec_results:
            return 0, _resolv_conf(c.config).encode()
        return self.exec_results.get(command[0] if command else "", (0, b""))

    async def exec_stream(self, container_id: str, command: list[str], stdin: bool, tty: bool) -> _FakeExec:
        code, out = await self.exec(container_id, command, 10)
        return _FakeExec(code, out)

    async def close(self) -> None:
        for c in self.containers.values():
            if c.timer is not None:
                c.timer.cancel()

    def network_probe(self, container_id: str, kind: str) -> tuple[bool, str]:
        """The result of an httpGet/tcpSocket probe of a fake container."""
        c = self.containers.get(container_id)
        if c is None or not c.state.running:
            return False, "connect: connection refused"
        return self.probe_results.get(kind, (True, ""))

    # --------------------------------------------------------- test hooks

    def crash(self, container_id: str, code: int = 1) -> None:
        """Make a running container exit now with `code`."""
        self._exit(self._get(container_id), code)
