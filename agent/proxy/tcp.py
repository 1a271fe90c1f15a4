"""TCP forwarding with asyncio's low-level Protocol/Transport API (on uvloop
when the agent runs under it): no streams, no thread per connection.

One accepted connection = one ClientSide protocol + one BackendSide protocol
sharing the same event loop. Bytes are handed from one transport to the
other as they arrive (one write per data_received, no copies of our own).

Guarantees:
- Backend choice and retry: the Balancer gives up to `tries` distinct
  backends; a connect that is refused or not answered within
  `connect_timeout` moves on to the next one (and the failed backend is
  tried last for a while), so one dead backend costs no failed connection.
- Replay on an empty close: until the backend has sent its first byte, what
  the client sent (at most REPLAY_LIMIT bytes) is kept; if the backend then
  closes or resets without having sent anything — e.g. Docker's
  docker-proxy accepting for a container that just died — the connection
  is replayed on the next backend. A backend that answers even one byte is
  never retried.
- No backend at all: the client is reset at once (the proxy normally does
  not even listen then; see proxier.py).
- Half-close: an EOF from one side is passed on with write_eof() and the
  other direction keeps flowing; the pair is closed when both directions
  have ended or either side closes/resets.
- Backpressure: when one side's write buffer passes its high-water mark
  (pause_writing), reading from the other side is paused until it drains
  (resume_writing), so memory per connection stays bounded.

Concurrency: everything runs on the one event loop, in protocol callbacks;
the backend connect is loop.create_connection's coroutine stepped by a
_Connector from callbacks (no Task per connection); no locks needed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import struct
from typing import Any

from agent.proxy.balancer import Backend, Balancer

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 1.0
TRIES = 3
REPLAY_LIMIT = 64 * 1024
# Per-direction buffer before the other side is paused.
HIGH_WATER = 256 * 1024


class Stats:
    __slots__ = ("accepted", "retried", "failed", "refused_no_endpoints", "replayed")

    def __init__(self) -> None:
        self.accepted = 0
        self.retried = 0
        self.failed = 0
        self.refused_no_endpoints = 0
        self.replayed = 0


STATS = Stats()


class ClientSide(asyncio.Protocol):
    __slots__ = (
        "balancer", "connect_timeout", "tries", "transport", "backend", "client_ip", "candidates",
        "replay", "replay_size", "client_eof", "backend_eof", "closed", "answered", "loop",
    )

    def __init__(self, balancer: Balancer, connect_timeout: float = CONNECT_TIMEOUT, tries: int = TRIES) -> None:
        self.balancer = balancer
        self.connect_timeout = connect_timeout
        self.tries = tries
        self.transport: Any = None
        self.backend: BackendSide | None = None
        self.client_ip = ""
        self.candidates: list[Backend] = []
        # Bytes sent to the backend before its first byte (None: too many to
        # replay, or it has answered).
        self.replay: list[bytes] | None = []
        self.replay_size = 0
        self.client_eof = False
        self.backend_eof = False
        self.closed = False
        self.answered = False

    # -------------------------------------------------- client transport

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        STATS.accepted += 1
        if self.balancer.affinity_timeout is not None:  # only affinity needs it
            peer = transport.get_extra_info("peername")
            self.client_ip = peer[0] if peer else ""
        self.candidates = self.balancer.candidates(self.client_ip, self.tries)
        if not self.candidates:
            STATS.refused_no_endpoints += 1
            _reset(transport)
            self.closed = True
            return
        transport.pause_reading()
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self._connect()

    def data_received(self, data: bytes) -> None:
        if self.replay is not None:
            self.replay.append(data)
            self.replay_size += len(data)
            if self.replay_size > REPLAY_LIMIT and self.backend is not None and self.backend.transport is not None:
                self.replay = None  # too much to replay: commit to this backend
        b = self.backend
        if b is not None and b.transport is not None:
            b.transport.write(data)

    def eof_received(self) -> bool:
        self.client_eof = True
        b = self.backend
        if b is not None and b.transport is not None:
            if self.backend_eof:
                self._close()
            elif b.transport.can_write_eof():
                b.transport.write_eof()
        return True  # keep our write side open for the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        b = self.backend
        if b is not None and b.transport is not None:
            if exc is not None:
                b.transport.abort()
            else:
                b.transport.close()

    def pause_writing(self) -> None:
        b = self.backend
        if b is not None and b.transport is not None:
            b.transport.pause_reading()

    def resume_writing(self) -> None:
        b = self.backend
        if b is not None and b.transport is not None:
            b.transport.resume_reading()

    # -------------------------------------------------------- connecting

    def _connect(self) -> None:
        """Connect to the next candidate. Runs once per accepted connection,
        so it avoids a Task: loop.create_connection's coroutine is driven by
        _Connector (send, wait on the one future it yields, send again),
        which is measurably cheaper on new-connection loads."""
        if self.closed:
            return
        if not self.candidates:
            STATS.failed += 1
            _reset(self.transport)
            return
        target = self.candidates.pop(0)
        side = BackendSide(self)
        loop = asyncio.get_running_loop()
        _Connector(
            loop,
            loop.create_connection(lambda: side, target[0], target[1]),
            self.connect_timeout,
            functools.partial(self._connected, target, side),
        )

    def _connected(self, target: Backend, side: BackendSide, err: BaseException | None) -> None:
        if err is not None:
            log.debug("backend %s:%s: %s", target[0], target[1], err)
            self.balancer.failed(target)
            STATS.retried += 1
            self._connect()
            return
        if self.closed:
            if side.transport is not None:
                side.transport.close()
            return
        self.balancer.connected(self.client_ip, target)
        self.backend = side
        bt = side.transport
        bt.set_write_buffer_limits(high=HIGH_WATER)
        if self.replay:
            for chunk in self.replay:
                bt.write(chunk)
        if self.client_eof and bt.can_write_eof():
            bt.write_eof()
        else:
            self.transport.resume_reading()

    def backend_gone_silent(self) -> bool:
        """The backend ended without sending a byte: replay on the next
        candidate if we still can. True if a replay was started."""
        if self.closed or self.answered or self.replay is None or not self.candidates:
            return False
        STATS.replayed += 1
        if self.backend is not None:
            t = self.backend.transport
            self.backend.client = None
            self.backend = None
            if t is not None:
                t.abort()
        self.transport.pause_reading()
        self._connect()
        return True

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()
        b = self.backend
        if b is not None and b.transport is not None:
            b.transport.close()


class _Connector:
    """Drive one loop.create_connection() coroutine without a Task: step it,
    wait on the future it yields, step again; a timer cancels the awaited
    future after `timeout` (the coroutine then cleans up and raises
    CancelledError). `done(err)` is called once: err None on success,
    else the OSError / CancelledError (= timeout)."""

    __slots__ = ("coro", "waiting", "timer", "done")

    def __init__(self, loop: Any, coro: Any, timeout: float, done: Any) -> None:
        self.coro = coro
        self.waiting: Any = None
        self.done = done
        self.timer = loop.call_later(timeout, self._timeout)
        self._step()

    def _timeout(self) -> None:
        if self.waiting is not None:
            self.waiting.cancel()

    def _step(self, _fut: Any = None) -> None:
        self.waiting = None
        try:
            # Future.__await__ re-raises the awaited future's exception or
            # cancellation inside the coroutine, as under a Task.
            yielded = self.coro.send(None)
        except StopIteration:
            self.timer.cancel()
            self.done(None)
            return
        except BaseException as err:  # noqa: BLE001 - OSError, CancelledError (timeout)
            self.timer.cancel()
            self.done(err)
            return
        if yielded is None:  # a bare yield (sleep(0)): just step again
            asyncio.get_running_loop().call_soon(self._step)
            return
        yielded._asyncio_future_blocking = False
        self.waiting = yielded
        yielded.add_done_callback(self._step)


class BackendSide(asyncio.Protocol):
    __slots__ = ("client", "transport", "got")

    def __init__(self, client: ClientSide) -> None:
        self.client: ClientSide | None = client
        self.transport: Any = None
        self.got = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        c = self.client
        if c is None:
            return
        if not self.got:
            self.got = True
            c.answered = True
            c.replay = None
        c.transport.write(data)

    def eof_received(self) -> bool:
        c = self.client
        if c is None:
            return False
        if not self.got and c.backend is self and c.backend_gone_silent():
            return False
        c.backend_eof = True
        if c.client_eof:
            c._close()
            return False
        if c.transport.can_write_eof():
            c.transport.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        c = self.client
        if c is None or c.backend is not self:
            return
        if not self.got and c.backend_gone_silent():
            return
        if exc is not None:
            _reset(c.transport)
        else:
            c._close()

    def pause_writing(self) -> None:
        c = self.client
        if c is not None:
            c.transport.pause_reading()

    def resume_writing(self) -> None:
        c = self.client
        if c is not None and not c.closed:
            c.transport.resume_reading()


def _reset(transport: Any) -> None:
    """Close with RST (SO_LINGER 0), so the peer sees 'connection reset'
    at once rather than a clean EOF it might mistake for an answer."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


async def serve_tcp(
    host: str, port: int, balancer: Balancer, connect_timeout: float = CONNECT_TIMEOUT, reuse_port: bool = True
) -> asyncio.base_events.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: ClientSide(balancer, connect_timeout),
        host, port, reuse_address=True, reuse_port=reuse_port, backlog=1024,
    )
