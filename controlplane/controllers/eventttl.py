"""Event expiry: Events older than --event-ttl (lastTimestamp) are deleted.

Kubernetes gives each Event an etcd lease; PocketKube sweeps instead: every
ttl/10 seconds (at least 1 s, at most 60 s) one List of all Events, and a
Delete for each expired one. Events are not cached by an informer: a busy
cluster has many and only this sweep reads them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from controlplane.controllers.base import SharedInformers
from pkapi.errors import ApiError

log = logging.getLogger(__name__)


def expired(ev: Any, ttl: float, now: float) -> bool:
    """Pure: has this Event outlived the ttl?"""
    ts = ev.last_timestamp if ev.HasField("last_timestamp") else ev.metadata.creation_timestamp
    return bool(ts.seconds) and ts.seconds + ttl < now


class EventTTLController:
    name = "eventttl"

    def __init__(self, client: Any, config: Any, informers: SharedInformers | None = None) -> None:
        self.client = client
        self.ttl = float(config.event_ttl)
        self.interval = min(60.0, max(1.0, self.ttl / 10))

    async def sweep(self) -> int:
        items, _ = await self.client.list("events")
        now = time.time()
        n = 0
        for ev in items:
            if not expired(ev, self.ttl, now):
                continue
            try:
                await self.client.delete("events", ev.metadata.namespace, ev.metadata.name,
                                         resource_version=ev.metadata.resource_version)
                n += 1
            except ApiError as err:
                if err.reason not in ("NotFound", "Conflict"):
                    raise
        return n

    async def run(self) -> None:
        while True:
            try:
                n = await self.sweep()
                if n:
                    log.info("expired %d events", n)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.info("event expiry: %s", err)
            await asyncio.sleep(self.interval)


def new(client: Any, config: Any, informers: SharedInformers) -> EventTTLController:
    return EventTTLController(client, config, informers)
