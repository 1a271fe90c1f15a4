"""EtcdProcess: a local etcd server run as a supervised child process.

Used by pk-controlplane when no --etcd-servers is given (the "embedded
default"), by `pkctl lab`, and by the test fixtures. Standard library only.

- Listens on loopback only: client and peer ports are chosen free on
  127.0.0.1 when 0 is passed, and then kept, so stop() + start() brings the
  same member back on the same endpoint and data (what a restart test needs).
- Data lives in <data_dir>/member (etcd's own layout); etcd's log goes to
  <data_dir>.log beside it (etcd warns about foreign files in its data
  dir), appended, so a restart keeps the earlier runs' log.
- start() returns once etcd answers /health, or raises EtcdStartError with
  the log's tail if etcd exits or the deadline passes. stop() sends SIGTERM
  to the child's PID, then SIGKILL after a grace period, and reaps it.
- If this process dies without calling stop(), the child gets SIGTERM too
  (PR_SET_PDEATHSIG via setpriv(1) when it is installed), so a crashed
  control plane does not leave an orphan etcd. Linux delivers that signal
  when the *thread* that started the child exits: call start() from the
  event loop's thread, not from asyncio.to_thread.

EtcdCluster: several members of one etcd cluster on loopback (the HA lab's
integration tests): ports chosen up front, members started together (a
member is healthy only once a quorum elected a leader), each stopped,
killed and started again on its own ports and data.

Concurrency: one EtcdProcess is driven by one task at a time; start() and
stop() must not run concurrently on the same object. Nothing here blocks the
event loop for long (health probes have 0.5 s timeouts; waits poll).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Coroutine
from typing import IO, Any

ETCD_BINARY = "/usr/bin/etcd"
_RUN_MARKER = "--- pocketkube: starting"


class EtcdStartError(RuntimeError):
    """etcd did not become healthy; the message ends with its log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on host a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As etcd (Go) binds: TIME_WAIT leftovers of our own last run do not
        # make the port busy; a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


class EtcdProcess:
    """One single-member etcd cluster on loopback (see module docstring)."""

    def __init__(
        self,
        data_dir: str,
        client_port: int = 0,
        peer_port: int = 0,
        *,
        name: str = "pocketkube",
        binary: str = ETCD_BINARY,
        auto_compaction_retention: str = "1h",
        extra_args: list[str] | None = None,
        log_path: str = "",
        initial_cluster: str = "",
        cluster_token: str = "",
    ) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.log_path = os.path.abspath(log_path) if log_path else self.data_dir.rstrip("/") + ".log"
        self.name = name
        self.binary = binary
        self.auto_compaction_retention = auto_compaction_retention
        self.extra_args = list(extra_args or [])
        # Members of a multi-member cluster ("a=http://127.0.0.1:P,...");
        # empty: a cluster of this member alone.
        self.initial_cluster = initial_cluster
        self.cluster_token = cluster_token
        self._fixed_ports = bool(client_port or peer_port)
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        while self.peer_port == self.client_port:
            self.peer_port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._served = False
        self._log: IO[bytes] | None = None

    # -- properties ----------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The client URL, "http://127.0.0.1:PORT"."""
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    # -- command line --------------------------------------------------------

    def command(self) -> list[str]:
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        cmd = [
            self.binary,
            "--name", self.name,
            "--data-dir", self.data_dir,
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", self.initial_cluster or f"{self.name}={peer}",
            "--initial-cluster-state", "new",
            "--initial-cluster-token", self.cluster_token or f"pocketkube-{self.peer_port}",
            # One member, no peers to wait for: a short election timeout makes
            # a (re)start take ~0.1 s instead of ~1 s; ticks are cheap alone.
            # Several: etcd's defaults, so that a loaded machine's late
            # heartbeats do not make the members elect again and again.
            "--heartbeat-interval", "100" if self.initial_cluster else "10",
            "--election-timeout", "1000" if self.initial_cluster else "100",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]
        if self.auto_compaction_retention:
            cmd += ["--auto-compaction-mode", "periodic",
                    "--auto-compaction-retention", self.auto_compaction_retention]
        cmd += self.extra_args
        setpriv = shutil.which("setpriv")
        if setpriv:
            cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
        return cmd

    def log_tail(self, lines: int = 20) -> str:
        """The current run's log: all of it if short, else its first lines
        (where etcd states why it refuses to start) and its last lines."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 256 * 1024))
                text = f.read().decode("utf-8", "replace")
        except OSError as e:
            return f"(no log: {e})"
        run = text.rsplit(_RUN_MARKER, 1)[-1].splitlines()[1:]
        if len(run) <= lines + 10:
            return "\n".join(run)
        return "\n".join([*run[:10], f"... ({len(run) - 10 - lines} lines)", *run[-lines:]])

    # -- start ---------------------------------------------------------------

    def _spawn(self) -> None:
        if self.running:
            raise RuntimeError(f"etcd already running (pid {self.pid})")
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # etcd warns about (and 3.5 rejects) wider modes
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        if not os.access(self.binary, os.X_OK):
            raise EtcdStartError(f"etcd binary {self.binary} not found or not executable "
                                 "(Debian/Ubuntu: apt-get install etcd-server)")
        # A health probe must not be answered by someone else's etcd on our port.
        busy = [p for p in (self.client_port, self.peer_port) if not _port_free(p)]
        if busy and self._may_repick():
            self.client_port, self.peer_port = free_port(), free_port()
            busy = [p for p in (self.client_port, self.peer_port) if not _port_free(p)]
        if busy:
            raise EtcdStartError(f"etcd cannot start on {self.endpoint}: port {busy[0]} on 127.0.0.1 is in use")
        # Our own ports only: drop ETCD_* settings inherited from the environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._log.write(f"{_RUN_MARKER} etcd on {self.endpoint} at {time.ctime()}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            close_fds=True,
            # Own process group: a terminal's Ctrl-C goes to the control plane,
            # which then stops etcd in order (after its own shutdown).
            start_new_session=True,
        )

    def _died_message(self, why: str) -> str:
        return f"etcd {why} (endpoint {self.endpoint}, data {self.data_dir}); last lines of {self.log_path}:\n{self.log_tail()}"

    def _may_repick(self) -> bool:
        # Ports we chose may change until etcd first served on them; after
        # that clients know the endpoint, and a restart must keep it.
        return not self._fixed_ports and not self._served

    def _repick_ports(self) -> bool:
        """After a failed start with ports we chose, pick new ones if another
        process took ours in the meantime (the free_port race)."""
        if not self._may_repick() or (_port_free(self.client_port) and _port_free(self.peer_port)):
            return False
        self.client_port, self.peer_port = free_port(), free_port()
        return True

    async def start(self, timeout: float = 20.0) -> None:
        """Start etcd and wait until it is healthy (see module docstring)."""
        for _attempt in range(3):
            self._spawn()
            deadline = time.monotonic() + timeout
            while True:
                if not self.running:
                    self._reap()
                    if self._repick_ports():
                        break  # retry on new ports
                    raise EtcdStartError(self._died_message(f"exited with code {self.returncode}"))
                if await _healthy(self.client_port):
                    self._served = True
                    return
                if time.monotonic() > deadline:
                    await self.stop()
                    raise EtcdStartError(self._died_message(f"not healthy after {timeout}s"))
                await asyncio.sleep(0.05)
        raise EtcdStartError(self._died_message("could not get free ports"))

    def start_blocking(self, timeout: float = 20.0) -> None:
        """start() for callers without an event loop (session test fixtures):
        on a private loop in this thread (the parent-death signal follows
        the thread that starts etcd)."""
        _run_private(self.start(timeout))

    # -- stop ----------------------------------------------------------------

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.poll()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.kill(self._proc.pid, sig)
            except ProcessLookupError:
                pass

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after grace seconds; returns once reaped."""
        if self._proc is None:
            return
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self._proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._proc.poll() is None:
            self._signal(signal.SIGKILL)
            while self._proc.poll() is None:
                await asyncio.sleep(0.02)
        self._reap()

    def stop_blocking(self, grace: float = 5.0) -> None:
        """stop() for callers without an event loop."""
        _run_private(self.stop(grace))

    def kill(self) -> None:
        """SIGKILL without waiting (a crash, for tests); stop() reaps."""
        self._signal(signal.SIGKILL)

    async def wait(self) -> int:
        """Until etcd exits (for a supervisor); returns its exit code."""
        while self._proc is not None and self._proc.poll() is None:
            await asyncio.sleep(0.2)
        return self.returncode if self.returncode is not None else 0

    async def __aenter__(self) -> EtcdProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class EtcdCluster:
    """`size` etcd members on loopback forming one cluster (see the module
    docstring): members etcd-1..etcd-N under data_root/etcd-i."""

    def __init__(self, data_root: str, size: int = 3, auto_compaction_retention: str = "") -> None:
        ports: set[int] = set()
        while len(ports) < 2 * size:
            ports.add(free_port())
        it = iter(sorted(ports))
        pairs = [(next(it), next(it)) for _ in range(size)]
        initial = ",".join(f"etcd-{i + 1}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(pairs))
        token = f"pocketkube-{pairs[0][1]}"
        self.members = [
            EtcdProcess(os.path.join(data_root, f"etcd-{i + 1}"), client, peer, name=f"etcd-{i + 1}",
                        auto_compaction_retention=auto_compaction_retention, initial_cluster=initial,
                        cluster_token=token)
            for i, (client, peer) in enumerate(pairs)
        ]

    @property
    def endpoints(self) -> str:
        """Every member's client URL, comma-separated (--etcd-servers)."""
        return ",".join(m.endpoint for m in self.members)

    def member(self, name: str) -> EtcdProcess:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"no etcd member {name} (members: {', '.join(m.name for m in self.members)})")

    async def start(self, timeout: float = 30.0) -> None:
        """Start every member that is not running; returns once each is healthy."""
        await asyncio.gather(*(m.start(timeout) for m in self.members if not m.running))

    async def stop(self, grace: float = 5.0) -> None:
        await asyncio.gather(*(m.stop(grace) for m in self.members))

    async def __aenter__(self) -> EtcdCluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _run_private(coro: Coroutine[Any, Any, None]) -> None:
    """Run coro to completion on a new event loop that is never made this
    thread's current loop (asyncio.run would reset a test framework's)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


# -- health probes: GET /health on the client port ----------------------------

_HEALTH_REQUEST = b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"


def _is_healthy_response(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n", 1)[0] and b'"health":"true"' in body.replace(b" ", b"")


async def _healthy(port: int) -> bool:
    try:
        async with asyncio.timeout(0.5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(_HEALTH_REQUEST)
                data = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    return _is_healthy_response(data)
