"""Host-port allocation for published container ports.

Ports come from --host-port-range and are remembered per (pod uid,
container, containerPort, protocol), so a restarted container keeps its
hostIP:hostPort (Service endpoints stay valid). A candidate is tried by
binding it on the node IP first, which skips ports used by anything else
on the machine (another agent sharing the address, a stray process); the
engine may still lose a race, then the worker asks for another port
(release + allocate) and recreates the container.

Concurrency: single event loop; allocate() is synchronous, so two pods never
get the same port from one allocator.
"""

from __future__ import annotations

import random
import socket


def _bindable(ip: str, port: int, protocol: str) -> bool:
    kind = socket.SOCK_DGRAM if protocol.upper() == "UDP" else socket.SOCK_STREAM
    try:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((ip, port))
        return True
    except OSError:
        return False


class PortAllocator:
    def __init__(self, node_ip: str, first: int, last: int, check_bind: bool = True) -> None:
        self.node_ip = node_ip
        self.first = first
        self.last = last
        self.check_bind = check_bind
        self.in_use: set[tuple[int, str]] = set()
        self._rand = random.Random()

    def reserve(self, port: int, protocol: str) -> None:
        """Mark a port as taken (containers found at startup)."""
        self.in_use.add((port, protocol.upper()))

    def release(self, port: int, protocol: str) -> None:
        self.in_use.discard((port, protocol.upper()))

    def allocate(self, protocol: str, avoid: set[int] | None = None) -> int:
        proto = protocol.upper()
        size = self.last - self.first + 1
        # Random start: agents sharing an address rarely pick the same port.
        start = self._rand.randrange(size)
        for i in range(size):
            port = self.first + (start + i) % size
            if (port, proto) in self.in_use or (avoid and port in avoid):
                continue
            if self.check_bind and not _bindable(self.node_ip, port, proto):
                continue
            self.in_use.add((port, proto))
            return port
        raise RuntimeError(f"no free host port in {self.first}-{self.last} on {self.node_ip}")
