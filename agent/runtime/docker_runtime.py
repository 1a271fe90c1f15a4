"""DockerRuntime: the Runtime protocol on a real Docker Engine (docker SDK).

Blocking SDK calls run in worker threads (asyncio.to_thread). Long-lived
streams (events, followed logs, exec output) each get a dedicated daemon
thread that feeds an asyncio.Queue, so they never starve the shared pool
that short calls use; cancelling the consumer closes the HTTP response and
ends the thread.

The engine is chosen by `docker_host` (--docker-host), so several agents
with their own engines can share one machine.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import platform
import socket
import struct
import threading
from typing import Any, AsyncIterator, Callable, Iterator

import docker
import docker.errors
import requests.exceptions

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
    RuntimeUnavailable,
)
from pkapi.imageref import hub_path, local_registry, split_ref

log = logging.getLogger(__name__)

_END = object()


def _parse_time(s: str | None) -> _dt.datetime | None:
    # Docker: "2026-11-28T15:20:01.123456789Z"; "0001-01-01T00:00:00Z" = never.
    if not s or s.startswith("0001-"):
        return None
    base, _, frac = s.rstrip("Z").partition(".")
    t = _dt.datetime.fromisoformat(base).replace(tzinfo=_dt.UTC)
    if frac:
        t = t.replace(microsecond=int(frac[:6].ljust(6, "0")))
    return t


def _state_from_inspect(d: dict[str, Any]) -> ContainerState:
    st = d.get("State") or {}
    cfg = d.get("Config") or {}
    net = d.get("NetworkSettings") or {}
    ip = net.get("IPAddress") or ""
    if not ip:
        for n in (net.get("Networks") or {}).values():
            if n.get("IPAddress"):
                ip = n["IPAddress"]
                break
    return ContainerState(
        id=d["Id"],
        name=d.get("Name", "").lstrip("/"),
        labels=dict(cfg.get("Labels") or {}),
        image=cfg.get("Image", ""),
        image_id=d.get("Image", ""),
        status=st.get("Status", "created"),
        exit_code=int(st.get("ExitCode") or 0),
        started_at=_parse_time(st.get("StartedAt")),
        finished_at=_parse_time(st.get("FinishedAt")),
        oom_killed=bool(st.get("OOMKilled")),
        error=st.get("Error") or "",
        ip=ip,
    )


def _convert(err: Exception) -> Exception:
    if isinstance(err, docker.errors.NotFound):
        return ContainerNotFound(_explain(err))
    if isinstance(err, (requests.exceptions.ConnectionError, docker.errors.DockerException)) and not isinstance(
        err, docker.errors.APIError
    ):
        return RuntimeUnavailable(str(err))
    return err


def _explain(err: docker.errors.APIError) -> str:
    return str(err.explanation or err)





def mirror_host(info: dict[str, Any]) -> str:
    """host:port of the engine's first registry mirror (`docker info`'s
    RegistryConfig.Mirrors, e.g. "http://10.231.0.1:5100/"), or ""."""
    mirrors = ((info.get("RegistryConfig") or {}).get("Mirrors")) or []
    if not mirrors:
        return ""
    url = str(mirrors[0])
    return url.split("://", 1)[-1].rstrip("/")


class _Stream:
    """Runs a blocking iterator in a daemon thread, delivering its items to an
    asyncio queue; close() asks the producer to stop (by closing its
    response) and is safe from the loop thread."""

    def __init__(self, open_: Callable[[], Iterator[Any]], closer: Callable[[Any], None] | None = None) -> None:
        self._open = open_
        self._closer = closer
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._source: Any = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # loop closed
            pass

    def _run(self) -> None:
        try:
            self._source = self._open()
            if self._closed:
                self._close_source()
                return
            for item in self._source:
                if self._closed:
                    break
                self._put(item)
        except Exception as err:  # noqa: BLE001 - delivered to the consumer
            if not self._closed:
                self._put(err)
        finally:
            self._put(_END)

    def _close_source(self) -> None:
        src = self._source
        if src is None:
            return
        try:
            if self._closer is not None:
                self._closer(src)
            elif hasattr(src, "close"):
                src.close()
        except Exception:  # noqa: BLE001 - best effort from another thread
            pass

    def close(self) -> None:
        self._closed = True
        self._close_source()

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if isinstance(item, Exception):
                    raise _convert(item)
                yield item
        finally:
            self.close()


class _DockerExec:
    def __init__(self, rt: DockerRuntime, exec_id: str, sock: Any, tty: bool) -> None:
        self._rt = rt
        self._id = exec_id
        self._sock = sock
        self._raw: socket.socket = getattr(sock, "_sock", sock)
        self._tty = tty

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._raw.sendall, data)

    async def close_stdin(self) -> None:
        try:
            await asyncio.to_thread(self._raw.shutdown, socket.SHUT_WR)
        except OSError:
            pass

    def _frames(self) -> Iterator[tuple[int, bytes]]:
        raw = self._raw
        if self._tty:
            while True:
                data = raw.recv(65536)
                if not data:
                    return
                yield 1, data
        buf = b""
        while True:
            while len(buf) < 8:
                chunk = raw.recv(65536)
                if not chunk:
                    return
                buf += chunk
            stream, size = struct.unpack(">BxxxL", buf[:8])
            buf = buf[8:]
            while len(buf) < size:
                chunk = raw.recv(65536)
                if not chunk:
                    return
                buf += chunk
            data, buf = buf[:size], buf[size:]
            yield (2 if stream == 2 else 1), data

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        stream = _Stream(self._frames, closer=lambda _src: self._shutdown())
        async for item in stream:
            yield item

    def _shutdown(self) -> None:
        try:
            self._raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    async def exit_code(self) -> int:
        # The exit code is recorded a moment after the output closes.
        for _ in range(50):
            d = await asyncio.to_thread(self._rt.api.exec_inspect, self._id)
            if not d.get("Running") and d.get("ExitCode") is not None:
                return int(d["ExitCode"])
            await asyncio.sleep(0.02)
        return int(d.get("ExitCode") or 0)

    async def close(self) -> None:
        self._shutdown()
        try:
            self._sock.close()
        except OSError:
            pass


class DockerRuntime:
    def __init__(self, docker_host: str = "unix:///var/run/docker.sock", timeout: int = 60) -> None:
        self.docker_host = docker_host
        # The pool must be as large as the agent's thread pool, or concurrent
        # calls queue for a connection (and urllib3 warns it dropped one).
        self.client = docker.DockerClient(base_url=docker_host, timeout=timeout, max_pool_size=64)
        self.api = self.client.api
        self._mirror: str | None = None  # the engine's Docker Hub mirror (see pull)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as err:
            if isinstance(err, docker.errors.APIError):
                raise
            raise RuntimeUnavailable(f"cannot reach the Docker Engine at {self.docker_host}: {err}") from None

    async def info(self) -> RuntimeInfo:
        v = await self._call(self.api.version)
        i = await self._call(self.api.info)
        return RuntimeInfo(
            name="docker",
            version=v.get("Version", ""),
            os_image=i.get("OperatingSystem", ""),
            kernel_version=i.get("KernelVersion", platform.release()),
            architecture={"x86_64": "amd64", "aarch64": "arm64"}.get(i.get("Architecture", ""), i.get("Architecture", "")),
            operating_system=i.get("OSType", "linux"),
        )

    async def image_id(self, ref: str) -> str | None:
        try:
            d = await self._call(self.api.inspect_image, ref)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.NotFound:
            return None
        return str(d["Id"])

    async def _hub_mirror(self) -> str:
        """The engine's first Docker Hub mirror as host:port ("" for none),
        read once."""
        if self._mirror is None:
            info = await self._call(self.api.info)
            self._mirror = mirror_host(info)
        return self._mirror

    async def pull(self, ref: str) -> str:
        """Pull ref. A Docker Hub name on an engine with a registry mirror (a
        lab node) is pulled from the mirror by the mirror's own name, then
        tagged as ref: the engine never turns to Docker Hub (which it would
        after the mirror's "not found", resolving its names first), so a name
        the mirror lacks fails at once with the registry's answer."""
        repo, tag = split_ref(ref)
        path = hub_path(repo)
        mirror = await self._hub_mirror() if path is not None else ""
        src = f"{mirror}/{path}" if mirror else repo
        try:
            await self._call(self.api.pull, src, tag=tag)
        except docker.errors.APIError as err:
            raise ImagePullError(_explain(err).replace(f"{src}:{tag}", ref).replace(src, repo)) from None
        if mirror:
            sep = "@" if tag.startswith("sha256:") else ":"
            if sep == ":":
                await self._call(self.api.tag, f"{src}:{tag}", repo, tag)
                await self._call(self.api.remove_image, f"{src}:{tag}", noprune=True)
            else:
                return str((await self._call(self.api.inspect_image, f"{src}@{tag}"))["Id"])
        got = await self.image_id(ref)
        if got is None:
            raise ImagePullError(f"pulled {ref} but the image is not present")
        return got

    async def pulls_locally(self, ref: str) -> bool:
        repo, _ = split_ref(ref)
        if hub_path(repo) is not None:
            return bool(await self._hub_mirror())
        host = repo.split("/", 1)[0]
        return host == await self._hub_mirror() or local_registry(host)

    async def create(self, config: ContainerConfig) -> str:
        port_bindings: dict[str, list[tuple[str, int]]] = {}
        exposed: list[str] = []
        for p in config.ports:
            key = f"{p.container_port}/{p.protocol.lower()}"
            exposed.append(key)
            port_bindings.setdefault(key, []).append((p.host_ip, p.host_port))
        host_config = self.api.create_host_config(
            port_bindings=port_bindings or None,
            nano_cpus=config.cpu_nanos or None,
            mem_limit=config.memory_bytes or None,
            dns=config.dns_servers or None,
            dns_search=config.dns_search or None,
            dns_opt=config.dns_options or None,
            init=False,
        )
        entrypoint: Any = config.command if config.command is not None else None
        cmd: Any = config.args if config.args is not None else None
        if config.command is not None and config.args is None:
            cmd = []  # Kubernetes: command without args ignores the image's CMD
        try:
            d = await self._call(
                self.api.create_container,
                image=config.image,
                name=config.name,
                command=cmd,
                entrypoint=entrypoint,
                environment=[f"{k}={v}" for k, v in config.env.items()],
                working_dir=config.working_dir or None,
                hostname=config.hostname or None,
                labels=config.labels,
                ports=[(int(k.split("/")[0]), k.split("/")[1]) for k in exposed] or None,
                host_config=host_config,
                stdin_open=config.stdin,
                tty=config.tty,
            )
        except docker.errors.ImageNotFound as err:
            raise ImageNotFound(_explain(err)) from None
        except docker.errors.APIError as err:
            if err.status_code == 404 and "image" in _explain(err).lower():
                raise ImageNotFound(_explain(err)) from None
            raise CreateError(_explain(err)) from None
        return str(d["Id"])

    async def start(self, container_id: str) -> None:
        try:
            await self._call(self.api.start, container_id)
        except docker.errors.NotFound as err:
            raise ContainerNotFound(_explain(err)) from None
        except docker.errors.APIError as err:
            msg = _explain(err)
            if "port is already allocated" in msg or "address already in use" in msg:
                raise PortInUse(msg) from None
            raise CreateError(msg) from None

    async def stop(self, container_id: str, timeout: float) -> None:
        # The SDK's HTTP timeout must outlast the stop timeout.
        t = max(0, int(round(timeout)))
        try:
            await self._call(self.api.stop, container_id, timeout=t)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            if "is not running" not in _explain(err):
                raise

    async def remove(self, container_id: str) -> None:
        try:
            await self._call(self.api.remove_container, container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            if "already in progress" not in _explain(err):
                raise

    async def list_containers(self, labels: dict[str, str]) -> list[ContainerState]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        summaries = await self._call(self.api.containers, all=True, filters=filters)
        out: list[ContainerState] = []
        for s in summaries:
            try:
                out.append(await self.inspect(s["Id"]))
            except ContainerNotFound:
                pass
        return out

    async def inspect(self, container_id: str) -> ContainerState:
        try:
            d = await self._call(self.api.inspect_container, container_id)
        except docker.errors.NotFound as err:
            raise ContainerNotFound(_explain(err)) from None
        return _state_from_inspect(d)

    async def events(self, labels: dict[str, str]) -> AsyncIterator[ContainerEvent]:
        filters = {"type": ["container"], "label": [f"{k}={v}" for k, v in labels.items()]}
        stream = _Stream(lambda: self.api.events(decode=True, filters=filters))
        async for ev in stream:
            actor = ev.get("Actor") or {}
            attrs = actor.get("Attributes") or {}
            yield ContainerEvent(
                id=ev.get("id") or actor.get("ID", ""),
                action=(ev.get("Action") or ev.get("status") or "").split(":")[0],
                labels={k: v for k, v in attrs.items() if k.startswith("io.pocketkube.")},
            )

    async def logs(
        self,
        container_id: str,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: float | None = None,
    ) -> AsyncIterator[bytes]:
        kwargs: dict[str, Any] = {"stream": True, "follow": follow, "timestamps": timestamps}
        kwargs["tail"] = "all" if tail is None else tail
        if since is not None:
            kwargs["since"] = int(since)
        stream = _Stream(lambda: self.api.logs(container_id, **kwargs))
        async for chunk in stream:
            yield chunk

    async def exec(self, container_id: str, command: list[str], timeout: float) -> tuple[int, bytes]:
        async def run() -> tuple[int, bytes]:
            try:
                e = await self._call(self.api.exec_create, container_id, command, stdout=True, stderr=True)
                out = await self._call(self.api.exec_start, e["Id"])
                d = await self._call(self.api.exec_inspect, e["Id"])
            except docker.errors.NotFound as err:
                raise ContainerNotFound(_explain(err)) from None
            except docker.errors.APIError as err:
                return 126, _explain(err).encode()
            return int(d.get("ExitCode") or 0), bytes(out or b"")

        return await asyncio.wait_for(run(), timeout)

    async def exec_stream(self, container_id: str, command: list[str], stdin: bool, tty: bool) -> _DockerExec:
        try:
            e = await self._call(
                self.api.exec_create, container_id, command, stdout=True, stderr=True, stdin=stdin, tty=tty
            )
            sock = await self._call(self.api.exec_start, e["Id"], socket=True, tty=tty)
        except docker.errors.NotFound as err:
            raise ContainerNotFound(_explain(err)) from None
        except docker.errors.APIError as err:
            raise CreateError(_explain(err)) from None
        return _DockerExec(self, e["Id"], sock, tty)

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)
