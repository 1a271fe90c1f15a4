"""UDP forwarding: one listening socket per Service address, one connected
socket towards a backend per client address ("session"), as Kubernetes'
old userspace proxy did.

A datagram from a new client picks a backend from the Balancer (affinity
and round robin as for TCP) and opens a session; replies from the backend
are sent back to the client from the listening socket, so the client sees
the Service address answering. A session idle for SESSION_IDLE seconds is
closed. A backend that reports an error (ICMP port unreachable arrives as
ConnectionRefusedError on the connected socket) is marked failed and the
session is dropped, so the client's next datagram goes to another backend.

Concurrency: one event loop; datagrams that arrive while a session's socket
is being opened are queued (bounded) and sent when it is ready.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agent.proxy.balancer import Backend, Balancer

log = logging.getLogger(__name__)

SESSION_IDLE = 30.0
MAX_QUEUED = 64


class _Session(asyncio.DatagramProtocol):
    def __init__(self, listener: UdpListener, client: tuple[str, int], backend: Backend) -> None:
        self.listener = listener
        self.client = client
        self.backend = backend
        self.transport: Any = None
        self.queue: list[bytes] | None = []
        self.last = time.monotonic()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        for d in self.queue or ():
            transport.sendto(d)
        self.queue = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.last = time.monotonic()
        if self.listener.transport is not None:
            self.listener.transport.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        self.listener.balancer.failed(self.backend)
        self.listener.drop(self.client)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.listener.sessions.get(self.client) is self:
            del self.listener.sessions[self.client]

    def send(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.transport is not None:
            self.transport.sendto(data)
        elif self.queue is not None and len(self.queue) < MAX_QUEUED:
            self.queue.append(data)


class UdpListener(asyncio.DatagramProtocol):
    def __init__(self, balancer: Balancer) -> None:
        self.balancer = balancer
        self.transport: Any = None
        self.sessions: dict[tuple[str, int], _Session] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._sweeper = asyncio.get_running_loop().call_later(SESSION_IDLE / 2, self._sweep)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        client = (addr[0], addr[1])
        s = self.sessions.get(client)
        if s is None:
            cands = self.balancer.candidates(client[0], 1)
            if not cands:
                return
            s = _Session(self, client, cands[0])
            self.sessions[client] = s
            self.balancer.connected(client[0], cands[0])
            asyncio.get_running_loop().create_task(self._open(s))
        s.send(data)

    async def _open(self, s: _Session) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: s, remote_addr=s.backend)
        except OSError as err:
            log.debug("udp backend %s: %s", s.backend, err)
            self.balancer.failed(s.backend)
            self.sessions.pop(s.client, None)

    def drop(self, client: tuple[str, int]) -> None:
        s = self.sessions.pop(client, None)
        if s is not None and s.transport is not None:
            s.transport.close()

    def _sweep(self) -> None:
        now = time.monotonic()
        for client, s in list(self.sessions.items()):
            if now - s.last > SESSION_IDLE:
                self.drop(client)
        if self.transport is not None:
            self._sweeper = asyncio.get_running_loop().call_later(SESSION_IDLE / 2, self._sweep)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._sweeper is not None:
            self._sweeper.cancel()
        for client in list(self.sessions):
            self.drop(client)


async def serve_udp(host: str, port: int, balancer: Balancer, reuse_port: bool = True) -> Any:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: UdpListener(balancer), local_addr=(host, port), reuse_port=reuse_port
    )
    return transport
