"""One pair of informers (Services, Endpoints) per agent process, shared by
the proxy and the cluster DNS so the node opens two watches, not four.

Concurrency: get() may be called from several tasks of one event loop; the
informers' run() tasks are started once and live until the loop ends (or
the caller cancels the task returned by start()).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pkapi.client.informer import Informer


class ServiceWatch:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.services = Informer(client, "services")
        self.endpoints = Informer(client, "endpoints")
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.get_running_loop().create_task(self.services.run()),
                asyncio.get_running_loop().create_task(self.endpoints.run()),
            ]

    async def wait_synced(self, timeout: float | None = None) -> None:
        await self.services.wait_synced(timeout)
        await self.endpoints.wait_synced(timeout)

    def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._tasks = []


_shared: dict[int, ServiceWatch] = {}


def shared(client: Any) -> ServiceWatch:
    """The process's ServiceWatch for this client (created and started on
    first use)."""
    w = _shared.get(id(client))
    if w is None or w.client is not client:
        w = ServiceWatch(client)
        _shared[id(client)] = w
    w.start()
    return w
