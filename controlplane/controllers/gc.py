"""Garbage collector: ownerReferences decide what outlives what.

Owners and dependents: Deployment -> ReplicaSet -> Pod. Informers on all
three, indexed by owner uid. Keys are (resource, namespace, name).

- Background deletion (the default): the API server removes the owner at
  once; a dependent whose owners are all gone is then deleted. Before
  deleting, the owner's absence is confirmed with a live GET (our caches of
  different resources are not mutually ordered: a brand-new ReplicaSet may
  reach us before its brand-new Deployment).
- Foreground: the owner stays with the `foregroundDeletion` finalizer
  until its dependents are gone; we delete them (Foreground too, so pods
  go before their ReplicaSet) and then remove the finalizer.
- Orphan (`--cascade=orphan`): the owner stays with the `orphan`
  finalizer until we have removed its ownerReference from every
  dependent; then the finalizer goes and the owner with it.
So no pod outlives its Deployment unless the user asked for orphans.

Concurrency: one work queue; a key is handled by one worker at a time.
Every write is CAS on the cached resourceVersion; Conflict requeues.
"""

from __future__ import annotations

import logging
from typing import Any

from controlplane.controllers.base import Controller, SharedInformers, all_owner_uids
from pkapi.errors import ApiError, is_not_found
from pkapi.meta import copy

log = logging.getLogger(__name__)

RESOURCES = ("deployments", "replicasets", "pods")
OWNER_RESOURCE = {"Deployment": "deployments", "ReplicaSet": "replicasets"}
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers = 4

    def __init__(self, client: Any, config: Any, informers: SharedInformers) -> None:
        super().__init__()
        self.client = client
        self.caches = {r: informers.informer(r) for r in RESOURCES}
        for r, inf in self.caches.items():
            inf.add_index("owners", all_owner_uids)
            inf.add_handler(on_add=self._make_handler(r), on_update=self._make_update_handler(r),
                            on_delete=self._make_delete_handler(r))
        self.informers = list(self.caches.values())
        # uid -> (resource, namespace, name) of owners we know about
        self.by_uid: dict[str, tuple[str, str, str]] = {}

    def _make_handler(self, resource: str) -> Any:
        def on_add(obj: Any) -> None:
            md = obj.metadata
            self.by_uid[md.uid] = (resource, md.namespace, md.name)
            if md.owner_references or md.HasField("deletion_timestamp"):
                self.queue.add((resource, md.namespace, md.name))
        return on_add

    def _make_update_handler(self, resource: str) -> Any:
        on_add = self._make_handler(resource)

        def on_update(old: Any, new: Any) -> None:
            if old.metadata.resource_version != new.metadata.resource_version:
                on_add(new)
        return on_update

    def _make_delete_handler(self, resource: str) -> Any:
        def on_delete(obj: Any) -> None:
            self.by_uid.pop(obj.metadata.uid, None)
            # Its dependents may be garbage now; its owner (foreground) may
            # be able to finish.
            for r, inf in self.caches.items():
                for dep in inf.by_index("owners", obj.metadata.uid):
                    self.queue.add((r, dep.metadata.namespace, dep.metadata.name))
            for ref in obj.metadata.owner_references:
                owner = self.by_uid.get(ref.uid)
                if owner is not None:
                    self.queue.add(owner)
        return on_delete

    def dependents(self, uid: str) -> list[tuple[str, Any]]:
        return [(r, d) for r, inf in self.caches.items() for d in inf.by_index("owners", uid)]

    async def sync(self, key: Any) -> None:
        resource, ns, name = key
        obj = self.caches[resource].get(ns, name)
        if obj is None:
            return
        md = obj.metadata
        if md.HasField("deletion_timestamp"):
            if ORPHAN in md.finalizers:
                await self._orphan(resource, obj)
                return
            if FOREGROUND in md.finalizers:
                await self._foreground(resource, obj)
                return
        if md.owner_references:
            await self._check_owners(resource, obj)

    async def _owner_exists(self, ns: str, ref: Any) -> bool:
        res = OWNER_RESOURCE.get(ref.kind)
        if res is None:
            return True  # an owner kind we do not manage: leave it alone
        cached = self.caches[res].get(ns, ref.name)
        if cached is not None and cached.metadata.uid == ref.uid:
            return True
        try:
            live = await self.client.get(res, ns, ref.name)
        except ApiError as err:
            if is_not_found(err):
                return False
            raise
        return bool(live.metadata.uid == ref.uid)

    async def _check_owners(self, resource: str, obj: Any) -> None:
        md = obj.metadata
        if md.HasField("deletion_timestamp"):
            return
        for ref in md.owner_references:
            if await self._owner_exists(md.namespace, ref):
                # An owner being deleted in the foreground takes us with it.
                res = OWNER_RESOURCE.get(ref.kind)
                owner = self.caches[res].get(md.namespace, ref.name) if res else None
                if owner is not None and owner.metadata.HasField("deletion_timestamp") \
                        and FOREGROUND in owner.metadata.finalizers:
                    self.queue.add((res, md.namespace, ref.name))
                return
        policy = "Foreground" if resource != "pods" else ""
        log.info("garbage collector: deleting %s %s/%s: its owners are gone", resource, md.namespace, md.name)
        try:
            await self.client.delete(resource, md.namespace, md.name, propagation_policy=policy, uid=md.uid)
        except ApiError as err:
            if not is_not_found(err):
                raise

    async def _orphan(self, resource: str, owner: Any) -> None:
        uid = owner.metadata.uid
        for _r, dep in self.dependents(uid):
            new = copy(dep)
            refs = [ref for ref in new.metadata.owner_references if ref.uid != uid]
            del new.metadata.owner_references[:]
            new.metadata.owner_references.extend(refs)
            try:
                await self.client.update(new)
            except ApiError as err:
                if not is_not_found(err):
                    raise
        await self._remove_finalizer(resource, owner, ORPHAN)

    async def _foreground(self, resource: str, owner: Any) -> None:
        deps = self.dependents(owner.metadata.uid)
        if not deps:
            # Confirm with the API: the caches may lag behind a new dependent.
            for r in RESOURCES:
                items, _ = await self.client.list(r, owner.metadata.namespace)
                if any(ref.uid == owner.metadata.uid for o in items for ref in o.metadata.owner_references):
                    raise RuntimeError("dependents not yet in the cache")
            await self._remove_finalizer(resource, owner, FOREGROUND)
            return
        for r, dep in deps:
            if dep.metadata.HasField("deletion_timestamp"):
                continue
            try:
                await self.client.delete(r, dep.metadata.namespace, dep.metadata.name,
                                         propagation_policy="Foreground" if r != "pods" else "",
                                         uid=dep.metadata.uid)
            except ApiError as err:
                if not is_not_found(err):
                    raise

    async def _remove_finalizer(self, resource: str, owner: Any, finalizer: str) -> None:
        new = copy(owner)
        fins = [f for f in new.metadata.finalizers if f != finalizer]
        del new.metadata.finalizers[:]
        new.metadata.finalizers.extend(fins)
        try:
            await self.client.update(new)
        except ApiError as err:
            if not is_not_found(err):
                raise


def new(client: Any, config: Any, informers: SharedInformers) -> GarbageCollector:
    return GarbageCollector(client, config, informers)
