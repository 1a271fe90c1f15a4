"""Container probes: readiness, liveness, startup.

ProbeTracker (pure) applies successThreshold/failureThreshold to a stream
of results. ProbeRunner runs one probe of one container as a task:
initialDelaySeconds, then every periodSeconds one attempt bounded by
timeoutSeconds; it calls `on_change()` whenever the tracked result flips
(the pod worker then re-syncs). A startup probe that has not succeeded yet
holds readiness and liveness back (the worker starts them only after it).

How a probe reaches the container: httpGet and tcpSocket connect to the
container port's published hostIP:hostPort on the node IP when it is
published, else to the container's address on its engine's bridge; exec
runs the command with `docker exec`. Nothing else is ever contacted (the
probe's `host` field is ignored for that reason).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from pkapi import intstr
from pkapi.v1 import core_pb2

log = logging.getLogger(__name__)

Target = Callable[[int], tuple[str, int]]  # container port -> (address, port)


@dataclass
class ProbeTracker:
    """Thresholds over results. Pure."""

    success_threshold: int
    failure_threshold: int
    result: bool
    successes: int = 0
    failures: int = 0
    attempts: int = 0

    def record(self, ok: bool) -> bool:
        """Add one result; True if `result` changed."""
        self.attempts += 1
        if ok:
            self.successes += 1
            self.failures = 0
            if not self.result and self.successes >= max(1, self.success_threshold):
                self.result = True
                return True
        else:
            self.failures += 1
            self.successes = 0
            if self.result and self.failures >= max(1, self.failure_threshold):
                self.result = False
                return True
        return False


def timing(p: core_pb2.Probe) -> tuple[float, float, float, int, int]:
    """(initial delay, period, timeout, success threshold, failure threshold)
    with Kubernetes' defaults for unset (0) fields."""
    return (
        float(p.initial_delay_seconds),
        float(p.period_seconds or 10),
        float(p.timeout_seconds or 1),
        p.success_threshold or 1,
        p.failure_threshold or 3,
    )


def resolve_port(value: Any, container: core_pb2.Container) -> int:
    """A probe port (number or name of a containerPort) as a number; 0 if a
    name matches nothing."""
    v = intstr.value(value)
    if isinstance(v, int):
        return v
    for p in container.ports:
        if p.name == v:
            return p.container_port
    if v and v.isdigit():
        return int(v)
    return 0


async def http_get(address: str, port: int, path: str, headers: list[tuple[str, str]], timeout: float) -> tuple[bool, str]:
    """One HTTP/1.0 GET; success is a status in 200..399 (Kubernetes)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (OSError, TimeoutError) as err:
        return False, f'Get "http://{address}:{port}{path}": dial tcp {address}:{port}: {err}'
    try:
        lines = [f"GET {path or '/'} HTTP/1.0", f"Host: {address}:{port}", "User-Agent: pk-probe/1.0"]
        lines += [f"{k}: {v}" for k, v in headers]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        parts = status_line.decode("latin-1").split()
        code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
        if 200 <= code < 400:
            return True, ""
        if code == 0:
            return False, f'Get "http://{address}:{port}{path}": malformed HTTP response'
        return False, f"HTTP probe failed with statuscode: {code}"
    except (OSError, TimeoutError) as err:
        return False, f'Get "http://{address}:{port}{path}": {err or "context deadline exceeded"}'
    finally:
        writer.close()


async def tcp_connect(address: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (OSError, TimeoutError) as err:
        return False, f"dial tcp {address}:{port}: {err or 'i/o timeout'}"
    writer.close()
    return True, ""


class ProbeRunner:
    """Runs one probe against one container until cancelled."""

    def __init__(
        self,
        kind: str,  # "Readiness", "Liveness", "Startup"
        probe: core_pb2.Probe,
        container: core_pb2.Container,
        container_id: str,
        runtime: Any,
        target: Target,
        initial: bool,
        on_change: Callable[[], None],
        on_failure: Callable[[str], Awaitable[None] | None] | None = None,
    ) -> None:
        self.kind = kind
        self.probe = probe
        self.container = container
        self.container_id = container_id
        self.runtime = runtime
        self.target = target
        self.on_change = on_change
        self.on_failure = on_failure
        delay, period, timeout, succ, fail = timing(probe)
        self.initial_delay, self.period, self.timeout = delay, period, timeout
        self.tracker = ProbeTracker(succ, fail, initial)
        self.last_message = ""
        self.task: asyncio.Task[None] | None = None

    @property
    def result(self) -> bool:
        return self.tracker.result

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"probe-{self.kind}-{self.container_id[:12]}")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def attempt(self) -> tuple[bool, str]:
        p = self.probe
        if p.HasField("exec"):
            try:
                code, out = await self.runtime.exec(self.container_id, list(p.exec.command), self.timeout)
            except TimeoutError:
                return False, f"command timed out after {self.timeout:g}s"
            except Exception as err:  # noqa: BLE001 - any exec failure is a probe failure
                return False, str(err)
            if code == 0:
                return True, ""
            text = out.decode(errors="replace").strip()
            return False, f"command {list(p.exec.command)!r} exited with {code}: {text}"
        if p.HasField("http_get") or p.HasField("tcp_socket"):
            # A fake runtime's containers listen nowhere: it answers network
            # probes itself (hollow nodes). Real runtimes have no such hook.
            network_probe = getattr(self.runtime, "network_probe", None)
            if network_probe is not None:
                ok, msg = network_probe(self.container_id, self.kind)
                return bool(ok), str(msg)
        if p.HasField("http_get"):
            addr, port = self.target(resolve_port(p.http_get.port, self.container))
            headers = [(h.name, h.value) for h in p.http_get.http_headers]
            return await http_get(addr, port, p.http_get.path or "/", headers, self.timeout)
        if p.HasField("tcp_socket"):
            addr, port = self.target(resolve_port(p.tcp_socket.port, self.container))
            return await tcp_connect(addr, port, self.timeout)
        return True, ""

    async def run(self) -> None:
        if self.initial_delay:
            await asyncio.sleep(self.initial_delay)
        while True:
            t0 = time.monotonic()
            try:
                ok, msg = await asyncio.wait_for(self.attempt(), self.timeout + 1)
            except TimeoutError:
                ok, msg = False, "timeout"
            if not ok:
                self.last_message = msg
                if self.on_failure is not None:
                    r = self.on_failure(msg)
                    if r is not None:
                        await r
            if self.tracker.record(ok):
                log.debug("%s probe of %s now %s", self.kind, self.container_id[:12], self.tracker.result)
                self.on_change()
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - t0)))


class ContainerProbes:
    """The probe runners of one run of a container (one container id)."""

    def __init__(self, ip: str = "") -> None:
        self.startup: ProbeRunner | None = None
        self.readiness: ProbeRunner | None = None
        self.liveness: ProbeRunner | None = None
        self.others_started = False
        # Set when liveness or startup decided the container must restart.
        self.kill_reason = ""
        # The run's own address (network probes of ports not published).
        self.ip = ip

    def all(self) -> list[ProbeRunner]:
        return [p for p in (self.startup, self.readiness, self.liveness) if p is not None]

    def stop(self) -> None:
        for p in self.all():
            p.stop()
