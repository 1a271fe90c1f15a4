"""Shared pieces of every controller: the worker loop and shared informers.

Worker loop (kubernetes/sample-controller's processNextWorkItem): a worker
takes a key from the controller's WorkQueue, calls `sync(key)`; success
forgets the key's backoff, an exception requeues it with exponential
backoff (a Conflict is just a requeue: sync re-reads the cache next time).
The queue never hands one key to two workers, so every object is synced
by one worker at a time while different objects proceed in parallel.
Workers start only after every informer the controller reads has synced.

SharedInformers: one Informer per (resource, namespace) for the whole
controller manager, so 10,000 pods are cached once, not once per
controller. Controllers ask for informers in their constructors; the
manager starts them all after every controller is built.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Hashable

from pkapi.client.informer import Informer
from pkapi.client.workqueue import ShutDown, WorkQueue
from pkapi.errors import ApiError, is_already_exists, is_conflict, is_not_found

log = logging.getLogger(__name__)


class SharedInformers:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._informers: dict[tuple[str, str], Informer] = {}
        self._started: set[tuple[str, str]] = set()

    def informer(self, resource: str, namespace: str = "") -> Informer:
        key = (resource, namespace)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, resource, namespace)
            self._informers[key] = inf
        return inf

    def start(self, tg: asyncio.TaskGroup) -> None:
        for key, inf in self._informers.items():
            if key not in self._started:
                self._started.add(key)
                tg.create_task(inf.run(), name=f"informer-{key[0]}")

    def all(self) -> list[Informer]:
        return list(self._informers.values())


class Controller:
    """Subclasses set `name`, build `self.queue`/informers, implement sync()."""

    name = "controller"
    workers = 2

    def __init__(self) -> None:
        self.queue = WorkQueue(name=self.name)
        self.informers: list[Informer] = []

    async def sync(self, key: Any) -> None:
        raise NotImplementedError

    async def started(self) -> None:
        """Called once after the caches synced, before the workers start."""

    async def run(self) -> None:
        try:
            for inf in self.informers:
                await inf.wait_synced(None)
            await self.started()
            async with asyncio.TaskGroup() as tg:
                for i in range(self.workers):
                    tg.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                extra = self.background()
                if extra is not None:
                    tg.create_task(extra, name=f"{self.name}-background")
        finally:
            self.queue.shutdown()

    def background(self) -> Any:
        """An optional coroutine run beside the workers (periodic checks)."""
        return None

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            await self.process(key)

    async def process(self, key: Hashable) -> None:
        try:
            await self.sync(key)
        except asyncio.CancelledError:
            self.queue.done(key)
            raise
        except ApiError as err:
            # Conflict / NotFound race with another writer: requeue quietly.
            lvl = logging.DEBUG if is_conflict(err) or is_not_found(err) or is_already_exists(err) else logging.INFO
            log.log(lvl, "%s %s: %s; requeued", self.name, key, err)
            self.queue.add_rate_limited(key)
        except Exception as err:
            log.warning("%s %s: %r; requeued", self.name, key, err, exc_info=log.isEnabledFor(logging.DEBUG))
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)
        self.queue.done(key)


def owner_uid_index(obj: Any) -> list[str]:
    """Index function: the controller owner's uid, or 'orphan/<ns>'."""
    for ref in obj.metadata.owner_references:
        if ref.HasField("controller") and ref.controller:
            return [ref.uid]
    return [f"orphan/{obj.metadata.namespace}"]


def all_owner_uids(obj: Any) -> list[str]:
    return [ref.uid for ref in obj.metadata.owner_references]


