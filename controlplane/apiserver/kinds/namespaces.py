"""Namespaces: the system ones always exist; a deleted one is Terminating
until everything in it is gone.

Finalization: deleting a Namespace marks it (status.phase Terminating,
deletionTimestamp) and starts a task in this process that deletes every
namespaced object in it, waits until they are gone (pods bound to nodes
leave when their agent has stopped them), then removes the Namespace.
The task is idempotent (several control planes may run it for one
namespace) and resumed at start for namespaces an earlier process marked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from google.protobuf.message import Message

from controlplane.apiserver.strategy import Deletion, ResetStatusStrategy, Verbs
from controlplane.store import ConflictError, KeyNotFoundError
from pkapi import meta
from pkapi.errors import ApiError, is_already_exists, is_not_found

log = logging.getLogger(__name__)

# Namespaces that always exist and may not be deleted.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")

def _namespaces() -> meta.Kind:
    k = meta.kind_by_name("Namespace")
    assert k is not None
    return k


_KIND = _namespaces()


class NamespaceStrategy(ResetStatusStrategy):
    def __init__(self, verbs: Verbs) -> None:
        self.verbs = verbs
        self._finalizing: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def check_delete(self, name: str) -> None:
        if name in SYSTEM_NAMESPACES:
            raise ApiError("Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted')

    def mark_deleted(self, old: Message, new: Message, deletion: Deletion) -> bool:
        # Never removed at once, whatever the policy: the finalizer does it.
        new.status.phase = "Terminating"  # type: ignore[attr-defined]
        md = new.metadata  # type: ignore[attr-defined]
        if not md.HasField("deletion_timestamp"):
            meta.set_timestamp(md.deletion_timestamp)
            md.deletion_grace_period_seconds = 0
        return False

    async def after_mark(self, obj: Message) -> None:
        self.finalize(obj.metadata.name)  # type: ignore[attr-defined]

    async def start(self) -> None:
        for name in SYSTEM_NAMESPACES:
            ns: Any = _KIND.message()
            ns.metadata.name = name
            try:
                await self.verbs.get("namespaces", "", name)
                continue
            except ApiError as e:
                if not is_not_found(e):
                    raise
            try:
                await self.verbs.create(ns)
            except ApiError as e:
                if not is_already_exists(e):
                    raise
        items, _ = await self.verbs.list(_KIND, "")
        for obj in items:
            if obj.metadata.HasField("deletion_timestamp"):  # type: ignore[attr-defined]
                self.finalize(obj.metadata.name)  # type: ignore[attr-defined]

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._finalizing.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def finalize(self, name: str) -> None:
        """Start emptying and removing the (marked) namespace, unless this
        process already is."""
        if self._closed:
            return
        task = self._finalizing.get(name)
        if task is not None and not task.done():
            return
        self._finalizing[name] = asyncio.get_running_loop().create_task(self._finalize(name))

    async def _finalize(self, name: str) -> None:
        try:
            delay = 0.05
            while await self._delete_contents(name):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            # The Namespace's own delete only marks it: its removal is this
            # step's, straight from the store (Kubernetes' namespace
            # controller removing the last finalizer).
            store = self.verbs.store
            key = meta.key("namespaces", "", name)
            kv = await store.get(key)
            if kv is not None:
                try:
                    await store.delete(key, kv.mod_revision)
                except (ConflictError, KeyNotFoundError):
                    pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("finalizing namespace %s", name)
        finally:
            self._finalizing.pop(name, None)

    async def _delete_contents(self, name: str) -> int:
        """Delete what is not yet being deleted; how many objects remain."""
        remaining = 0
        for k in meta.KINDS:
            if not k.namespaced:
                continue
            items, _ = await self.verbs.list(k, name)
            for obj in items:
                remaining += 1
                md = obj.metadata  # type: ignore[attr-defined]
                if md.HasField("deletion_timestamp"):
                    continue
                try:
                    await self.verbs.delete(k.resource, name, md.name)
                except ApiError as e:
                    if not is_not_found(e):
                        log.warning("namespace %s: deleting %s/%s: %s", name, k.resource, md.name, e)
        return remaining
