"""The registry: every API verb over the Store, with Kubernetes' semantics.

A write goes decode (servicer) -> locate (namespace, name, generateName) ->
server-set metadata -> default -> validate -> allocate (Services) -> CAS
write. Reads set metadata.resourceVersion from the key's mod_revision (it is
never stored inside the value).

Concurrency: many RPCs run concurrently on one event loop (and several
control planes may share one etcd). Nothing is locked: every write is a
compare-and-swap on the mod_revision the change was computed from. A write
that carried the client's resourceVersion fails with Conflict; a write the
server computed itself (unconditional Update, Apply, Delete's marking, node
registration) re-reads and retries a few times, as Kubernetes'
GuaranteedUpdate does.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import logging
import random
from typing import Any, Awaitable, Callable, Sequence

from google.protobuf.message import Message

from controlplane.apiserver.codec import decode, encode, same_stored
from controlplane.apiserver.service_alloc import ServiceAllocator
from controlplane.apiserver.watchcache import WatchCaches
from controlplane.store import ConflictError, KeyExistsError, KeyNotFoundError, Store
from pkapi import defaults, meta, validation
from pkapi.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    is_already_exists,
    is_not_found,
    not_found,
)
from pkapi.meta import Kind
from pkapi.validation import dns1123_subdomain

log = logging.getLogger(__name__)

# Namespaces that always exist and may not be deleted.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
POLICIES = ("Background", "Foreground", "Orphan")

# Server-computed writes retry this often on a CAS conflict before giving up.
RETRIES = 16

_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"

# Kinds whose status a create resets (clients may not create with status).
_RESET_STATUS = ("Deployment", "ReplicaSet", "Service", "Pod")


def _kind(name: str) -> Kind:
    k = meta.kind_by_name(name)
    assert k is not None, name
    return k


NS_KIND = _kind("Namespace")
PODS = _kind("Pod")


def _has(msg: Message, field: str) -> bool:
    return field in msg.DESCRIPTOR.fields_by_name




def parse_resource_version(rv: str) -> int:
    """A client's resourceVersion: a non-negative integer, else BadRequest."""
    try:
        n = int(rv)
    except ValueError:
        raise bad_request(f'invalid resource version "{rv}"') from None
    if n < 0:
        raise bad_request(f'invalid resource version "{rv}"')
    return n


class Registry:
    """Kubernetes' API semantics over a Store (see module docstring).

    `allocator` allocates Services' IPs and ports (none: Services get
    none); `caches` are the server's watch caches (none: every read is
    the store's)."""

    def __init__(
        self, store: Store, allocator: ServiceAllocator | None = None, caches: WatchCaches | None = None
    ) -> None:
        self.store = store
        self.allocator = allocator
        # Namespaces being emptied by this process (see finalize_namespace).
        self._finalizing: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        # The watch caches, when the server has them: a read-only shortcut,
        # never the truth (they may be started after the registry).
        self.caches = caches

    # -------------------------------------------------------------- helpers

    def kind(self, resource: str) -> Kind:
        k = meta.kind_by_resource(resource) or meta.lookup(resource)
        if k is None:
            raise ApiError("NotFound", f'the server could not find the requested resource "{resource}"')
        return k

    @staticmethod
    def locate(msg: Message, default_namespace: str = "") -> tuple[Kind, str, str]:
        k = meta.kind_of(msg)
        md = msg.metadata  # type: ignore[attr-defined]
        if k.namespaced:
            if not md.namespace:
                md.namespace = default_namespace or "default"
        else:
            md.namespace = ""
        return k, md.namespace, md.name

    async def _get_kv(self, k: Kind, ns: str, name: str) -> tuple[Message, int] | None:
        kv = await self.store.get(meta.key(k.resource, ns if k.namespaced else "", name))
        if kv is None:
            return None
        return decode(k, kv.value, kv.mod_revision), kv.mod_revision

    def _cached(self, k: Kind, ns: str, name: str) -> tuple[Message, int] | None:
        """The watch cache's copy (see WatchCaches.peek), or None."""
        return None if self.caches is None else self.caches.peek(k, ns, name)

    async def _check_namespace(self, k: Kind, ns: str, name: str) -> None:
        # A namespace in the cache exists (or existed a moment ago, which
        # the create's own races allow anyway); only a miss asks etcd.
        got = self._cached(NS_KIND, "", ns) or await self._get_kv(NS_KIND, "", ns)
        if got is None:
            raise not_found("namespaces", ns)
        nsobj = got[0]
        if nsobj.metadata.HasField("deletion_timestamp"):  # type: ignore[attr-defined]
            raise ApiError(
                "Forbidden",
                f'{k.qualified} "{name}" is forbidden: unable to create new content in namespace {ns} '
                "because it is being terminated",
            )

    # ---------------------------------------------------------------- reads

    async def get(self, resource: str, namespace: str, name: str) -> Message:
        k = self.kind(resource)
        got = await self._get_kv(k, (namespace or "default") if k.namespaced else "", name)
        if got is None:
            raise not_found(k.qualified, name)
        return got[0]

    async def list(self, k: Kind, namespace: str) -> tuple[list[Message], int]:
        kvs, rev = await self.list_raw(k, namespace)
        return [decode(k, kv.value, kv.mod_revision) for kv in kvs], rev

    async def list_raw(self, k: Kind, namespace: str) -> tuple[Sequence[Any], int]:
        """The stored KVs (values not decoded) and the revision they were read at."""
        prefix = f"/registry/{k.resource}/"
        if k.namespaced and namespace:
            prefix += f"{namespace}/"
        return await self.store.list(prefix)

    # --------------------------------------------------------------- create

    async def create(self, msg: Message, dry_run: bool = False, default_namespace: str = "") -> Message:
        msg = meta.copy(msg)
        k, ns, _ = self.locate(msg, default_namespace)
        md = msg.metadata  # type: ignore[attr-defined]
        generated = not md.name and bool(md.generate_name)
        for _attempt in range(8 if generated else 1):
            if generated:
                md.name = md.generate_name + "".join(random.choice(_GEN_CHARS) for _ in range(5))
            try:
                return await self._create_once(k, msg, dry_run)
            except ApiError as e:
                if not (generated and is_already_exists(e)):
                    raise
        raise ApiError("AlreadyExists", f'{k.qualified} "{md.name}" already exists (generateName)')

    def _prepare_create(self, k: Kind, msg: Message) -> None:
        """Server-set metadata, status reset, defaults and validation of a
        new object (in place)."""
        md = msg.metadata  # type: ignore[attr-defined]
        md.uid = meta.new_uid()
        meta.set_timestamp(md.creation_timestamp)
        md.resource_version = ""
        md.ClearField("deletion_timestamp")
        md.ClearField("deletion_grace_period_seconds")
        md.generation = 1
        if k.kind in _RESET_STATUS:
            msg.ClearField("status")
            if k.kind == "Pod":
                msg.status.phase = "Pending"  # type: ignore[attr-defined]
        if k.kind == "Namespace":
            msg.ClearField("status")
        defaults.apply(msg)
        causes = validation.validate(msg)
        if causes:
            raise invalid(k.kind, md.name or md.generate_name, causes)

    async def _create_once(self, k: Kind, msg: Message, dry_run: bool) -> Message:
        md = msg.metadata  # type: ignore[attr-defined]
        self._prepare_create(k, msg)
        if k.namespaced:
            await self._check_namespace(k, md.namespace, md.name)
        allocated = False
        if k.kind == "Service" and self.allocator is not None:
            await self.allocator.on_create(msg, dry_run)  # type: ignore[arg-type]
            allocated = not dry_run
        if dry_run:
            return msg
        key = meta.key(k.resource, md.namespace, md.name)
        try:
            rev = await self.store.create(key, encode(msg))
        except KeyExistsError:
            if allocated:
                await self._release(msg)
            raise already_exists(k.qualified, md.name) from None
        except BaseException:
            if allocated:
                await self._release(msg)
            raise
        md.resource_version = str(rev)
        return msg

    async def create_many(
        self, msgs: Sequence[Message], default_namespace: str = "", only: str = ""
    ) -> builtins.list[Message | ApiError]:
        """Create several objects, each as create() would, in one store
        transaction: per item the stored object or the ApiError that refused
        it (invalid, a namespace that does not exist, a name that exists).
        The items written share one resourceVersion. `only`: a kind every
        item must be (else BadRequest for that item). Services (they
        allocate), a name repeated in the batch and generated names that
        collide are created one by one after the batch."""
        results: list[Message | ApiError | None] = [None] * len(msgs)
        todo: list[tuple[int, Kind, Message, str, bool]] = []
        keys: set[str] = set()
        singles: list[int] = []
        for i, m in enumerate(msgs):
            msg = meta.copy(m)
            k, ns, name = self.locate(msg, default_namespace)
            if only and k.kind != only:
                results[i] = bad_request(f"{k.qualified} is not {'an' if only[0] in 'AEIOU' else 'a'} {only}")
                continue
            md = msg.metadata  # type: ignore[attr-defined]
            generated = not name and bool(md.generate_name)
            if generated:
                name = md.name = md.generate_name + "".join(random.choice(_GEN_CHARS) for _ in range(5))
            key = meta.key(k.resource, ns, name)
            if not name or key in keys or k.kind == "Service":
                singles.append(i)
                continue
            try:
                self._prepare_create(k, msg)
                if k.namespaced:
                    await self._check_namespace(k, ns, name)
            except ApiError as e:
                results[i] = e
                continue
            keys.add(key)
            todo.append((i, k, msg, key, generated))
        revs = await self.store.create_many([(key, encode(msg)) for _, _, msg, key, _ in todo]) if todo else []
        for (i, k, msg, _, generated), rev in zip(todo, revs, strict=True):
            if rev is not None:
                msg.metadata.resource_version = str(rev)  # type: ignore[attr-defined]
                results[i] = msg
            elif generated:
                singles.append(i)  # a generated name that exists: create() draws again
            else:
                results[i] = already_exists(k.qualified, msg.metadata.name)  # type: ignore[attr-defined]
        for i in sorted(singles):
            try:
                results[i] = await self.create(msgs[i], default_namespace=default_namespace)
            except ApiError as e:
                results[i] = e
        return results  # type: ignore[return-value]

    async def create_events(self, events: Sequence[Message]) -> builtins.list[Message | ApiError]:
        """create_many for Events (RecordEvents)."""
        return await self.create_many(events, only="Event")

    async def _release(self, svc: Message) -> None:
        if self.allocator is None:
            return
        try:
            await self.allocator.on_delete(svc)  # type: ignore[arg-type]
        except Exception:  # the allocator's repair loop reclaims leaks
            log.exception("releasing the allocations of %s", meta.ns_name(svc))

    # --------------------------------------------------------------- update

    async def _guaranteed_update(
        self,
        k: Kind,
        ns: str,
        name: str,
        mutate: Callable[[Message], Awaitable[Message]],
        precondition_rv: str = "",
        dry_run: bool = False,
        read: tuple[Message, int] | None = None,
    ) -> tuple[Message, Message | None]:
        """Read, mutate, CAS-write; retry on conflict unless the client gave
        a resourceVersion. `read`: the object and revision the caller has
        just read, used for the first attempt (the CAS catches anything
        newer). Returns (result, old) where old is None when the mutation
        changed nothing (no write)."""
        key = meta.key(k.resource, ns, name)
        for attempt in range(RETRIES):
            got = read if attempt == 0 else None
            guessed = False
            if got is None and attempt == 0 and (precondition_rv or k.kind != "Service"):
                # The value of a key at a given mod_revision never changes, so
                # a cached object at the client's revision is exactly what
                # etcd holds at that revision; the CAS catches anything newer.
                # Without a client revision the cached object is a guess too:
                # if stale, the CAS fails and the retry reads etcd (one etcd
                # round trip per unconditional write instead of two).
                # (Not for Services: their allocator acts on the old object.)
                got = self._cached(k, ns, name)
                if got is not None and precondition_rv and str(got[1]) != precondition_rv:
                    got = None
                guessed = got is not None and not precondition_rv
            if got is None:
                got = await self._get_kv(k, ns, name)
            if got is None:
                raise not_found(k.qualified, name)
            old, rev = got
            if precondition_rv and precondition_rv != str(rev):
                raise conflict(k.qualified, name)
            try:
                new = await mutate(meta.copy(old))
            except ApiError:
                if guessed:
                    continue  # judged against a possibly stale object: read etcd
                raise
            if same_stored(new, old):
                if guessed:
                    continue  # "nothing to write" needs the current object: read etcd
                return old, None
            if dry_run:
                return new, old
            nmd = new.metadata  # type: ignore[attr-defined]
            try:
                if (
                    nmd.HasField("deletion_timestamp")
                    and not nmd.finalizers
                    and not (nmd.HasField("deletion_grace_period_seconds") and nmd.deletion_grace_period_seconds > 0)
                ):
                    # The last finalizer went: the object is gone (Kubernetes
                    # deletes during update in this case).
                    drev = await self.store.delete(key, rev)
                    await self._after_delete(k, new)
                    nmd.resource_version = str(drev)
                    return new, old
                nrev = await self.store.update(key, encode(new), rev)
            except ConflictError:
                if precondition_rv:
                    raise conflict(k.qualified, name) from None
                continue
            except KeyNotFoundError:
                raise not_found(k.qualified, name) from None
            nmd.resource_version = str(nrev)
            return new, old
        raise conflict(k.qualified, name)

    def _prepare_update(self, k: Kind, old: Message, new: Message) -> None:
        """Server-owned metadata and status come from the stored object."""
        omd, nmd = old.metadata, new.metadata  # type: ignore[attr-defined]
        nmd.name, nmd.namespace = omd.name, omd.namespace
        nmd.uid = omd.uid
        nmd.creation_timestamp.CopyFrom(omd.creation_timestamp)
        nmd.generation = omd.generation
        if omd.HasField("deletion_timestamp"):
            nmd.deletion_timestamp.CopyFrom(omd.deletion_timestamp)
        else:
            nmd.ClearField("deletion_timestamp")
        if omd.HasField("deletion_grace_period_seconds"):
            nmd.deletion_grace_period_seconds = omd.deletion_grace_period_seconds
        else:
            nmd.ClearField("deletion_grace_period_seconds")
        if _has(new, "status"):
            if old.HasField("status"):
                new.status.CopyFrom(old.status)  # type: ignore[attr-defined]
            else:
                new.ClearField("status")
        if k.kind == "Service":
            # An update that omits clusterIP/nodePorts keeps the allocated
            # ones (Kubernetes' patchAllocatedValues).
            _keep_service_allocations(old, new)
        defaults.apply(new)
        if _has(new, "spec") and new.spec != old.spec:  # type: ignore[attr-defined]
            nmd.generation = omd.generation + 1

    async def _validated_update(self, k: Kind, old: Message, new: Message, dry_run: bool) -> Message:
        causes = validation.validate(new) + validation.validate_update(old, new)
        if causes:
            raise invalid(k.kind, new.metadata.name, causes)  # type: ignore[attr-defined]
        if k.kind == "Service" and self.allocator is not None and not same_stored(old, new):
            await self.allocator.on_update(old, new, dry_run)  # type: ignore[arg-type]
        return new

    async def bind(self, bindings: Sequence[Any]) -> builtins.list[Message | ApiError]:
        """Set spec.nodeName of unbound pods (api_pb2.Binding: namespace,
        name, uid, node), each on its own: per item the bound pod or the
        ApiError (NotFound; Conflict when the pod is another one of that
        name, is being deleted or is already bound; Invalid node name).
        Each pod is read from the watch cache and written with a CAS on
        that revision, all in one store transaction (one shared
        resourceVersion); a pod the cache had stale is bound again on its
        own from etcd."""
        results: list[Message | ApiError | None] = [None] * len(bindings)
        todo: list[tuple[int, str, Message, int]] = []
        singles: list[int] = []
        keys: set[str] = set()
        for i, b in enumerate(bindings):
            ns = b.namespace or "default"
            key = meta.key("pods", ns, b.name)
            bad = dns1123_subdomain(b.node) if b.node else ["Required value"]
            if not b.name or bad:
                results[i] = invalid("Binding", b.name, [f'target.name: Invalid value: "{b.node}": {bad[0]}'
                                                         if b.node else "target.name: Required value"])
                continue
            got = self._cached(PODS, ns, b.name)
            if got is None or key in keys:
                singles.append(i)
                continue
            pod, rev = got
            try:
                _bind_onto(pod, b)
            except ApiError:
                singles.append(i)  # judged on a possibly stale copy: read etcd
                continue
            keys.add(key)
            todo.append((i, key, pod, rev))
        revs = await self.store.update_many([(key, encode(pod), rev) for _, key, pod, rev in todo]) if todo else []
        for (i, _, pod, _), new_rev in zip(todo, revs, strict=True):
            if new_rev is None:
                singles.append(i)
            else:
                pod.metadata.resource_version = str(new_rev)  # type: ignore[attr-defined]
                results[i] = pod
        for i in sorted(singles):
            b = bindings[i]

            async def mutate(old: Message, b: Any = b) -> Message:
                _bind_onto(old, b)
                return old

            try:
                results[i], _ = await self._guaranteed_update(PODS, b.namespace or "default", b.name, mutate)
            except ApiError as e:
                results[i] = e
        return results  # type: ignore[return-value]

    async def update(self, msg: Message, dry_run: bool = False, default_namespace: str = "") -> Message:
        incoming = meta.copy(msg)
        k, ns, name = self.locate(incoming, default_namespace)
        if not name:
            raise invalid(k.kind, "", ["metadata.name: Required value: name is required"])

        async def mutate(old: Message) -> Message:
            _check_uid(k, incoming, old)
            new = meta.copy(incoming)
            self._prepare_update(k, old, new)
            return await self._validated_update(k, old, new, dry_run)

        out, _ = await self._guaranteed_update(
            k, ns, name, mutate, incoming.metadata.resource_version, dry_run  # type: ignore[attr-defined]
        )
        return out

    async def update_status(self, msg: Message, dry_run: bool = False, default_namespace: str = "") -> Message:
        incoming = meta.copy(msg)
        k, ns, name = self.locate(incoming, default_namespace)
        if not _has(incoming, "status"):
            raise ApiError("MethodNotAllowed", f"{k.qualified} have no status")

        async def mutate(old: Message) -> Message:
            _check_uid(k, incoming, old)
            new = meta.copy(old)
            new.status.CopyFrom(incoming.status)  # type: ignore[attr-defined]
            causes = validation.validate_status(new)
            if causes:
                raise invalid(k.kind, name, causes)
            return new

        out, _ = await self._guaranteed_update(
            k, ns, name, mutate, incoming.metadata.resource_version, dry_run  # type: ignore[attr-defined]
        )
        return out

    # ---------------------------------------------------------------- apply

    async def apply(self, msg: Message, dry_run: bool = False, default_namespace: str = "") -> tuple[Message, str]:
        """kubectl apply: create, or replace what the manifest owns (spec or
        the kind's data fields, labels, annotations) keeping server-set
        fields (status, clusterIP, nodePorts, nodeName, ...). The result is
        "unchanged" when the defaulted object equals the stored one."""
        incoming = meta.copy(msg)
        k, ns, name = self.locate(incoming, default_namespace)
        if not name:
            raise invalid(k.kind, "", ["metadata.name: Required value: name or generateName is required"])
        for _attempt in range(RETRIES):
            got = await self._get_kv(k, ns, name)
            if got is None:
                try:
                    return await self.create(incoming, dry_run), "created"
                except ApiError as e:
                    if is_already_exists(e):
                        continue  # a concurrent create: apply onto it
                    raise

            async def mutate(old: Message) -> Message:
                new = meta.copy(old)
                _apply_onto(k, incoming, new, old)
                self._prepare_update(k, old, new)
                return await self._validated_update(k, old, new, dry_run)

            try:
                out, old = await self._guaranteed_update(k, ns, name, mutate, "", dry_run, read=got)
            except ApiError as e:
                if is_not_found(e):
                    continue  # deleted meanwhile: create it
                raise
            return out, ("unchanged" if old is None else "configured")
        raise conflict(k.qualified, name)

    # --------------------------------------------------------------- delete

    async def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        propagation_policy: str = "",
        grace_period_seconds: int | None = None,
        precondition_uid: str = "",
        precondition_rv: str = "",
        dry_run: bool = False,
    ) -> Message:
        k = self.kind(resource)
        ns = namespace if k.namespaced else ""
        if k.namespaced and not ns:
            ns = "default"
        policy = propagation_policy or "Background"
        if policy not in POLICIES:
            raise bad_request(
                f'Unsupported value: "{policy}": supported values: "Background", "Foreground", "Orphan"'
            )
        if grace_period_seconds is not None and grace_period_seconds < 0:
            grace_period_seconds = 0
        if k.kind == "Namespace" and name in SYSTEM_NAMESPACES:
            raise ApiError("Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted')
        key = meta.key(k.resource, ns, name)
        for _attempt in range(RETRIES):
            got = await self._get_kv(k, ns, name)
            if got is None:
                raise not_found(k.qualified, name)
            old, rev = got
            omd = old.metadata  # type: ignore[attr-defined]
            if precondition_uid and precondition_uid != omd.uid:
                raise _uid_conflict(k, name, precondition_uid, omd.uid)
            if precondition_rv and precondition_rv != str(rev):
                raise ApiError(
                    "Conflict",
                    f'Operation cannot be fulfilled on {k.qualified} "{name}": Precondition failed: '
                    f"ResourceVersion in precondition: {precondition_rv}, ResourceVersion in object meta: {rev}",
                )
            new = meta.copy(old)
            nmd = new.metadata  # type: ignore[attr-defined]
            if k.kind == "Namespace":
                new.status.phase = "Terminating"  # type: ignore[attr-defined]
                if not nmd.HasField("deletion_timestamp"):
                    meta.set_timestamp(nmd.deletion_timestamp)
                    nmd.deletion_grace_period_seconds = 0
                if dry_run:
                    return new
                if not same_stored(new, old):
                    try:
                        nrev = await self.store.update(key, encode(new), rev)
                    except ConflictError:
                        continue
                    nmd.resource_version = str(nrev)
                self.start_namespace_finalizer(name)
                return new
            fins = list(nmd.finalizers)
            if policy == "Orphan":
                fins = [f for f in fins if f != FOREGROUND]
                if ORPHAN not in fins:
                    fins.append(ORPHAN)
            elif policy == "Foreground":
                fins = [f for f in fins if f != ORPHAN]
                if FOREGROUND not in fins:
                    fins.append(FOREGROUND)
            grace = 0
            if k.kind == "Pod":
                spec, status = old.spec, old.status  # type: ignore[attr-defined]
                if grace_period_seconds is not None:
                    grace = grace_period_seconds
                elif spec.HasField("termination_grace_period_seconds"):
                    grace = spec.termination_grace_period_seconds
                else:
                    grace = defaults.DEFAULT_GRACE
                # Nothing runs an unbound or finished pod: no grace needed.
                if not spec.node_name or status.phase in ("Succeeded", "Failed"):
                    grace = 0
                if nmd.HasField("deletion_timestamp") and nmd.HasField("deletion_grace_period_seconds"):
                    grace = min(grace, nmd.deletion_grace_period_seconds)
            if not fins and grace == 0:
                if dry_run:
                    return old
                try:
                    drev = await self.store.delete(key, rev)
                except ConflictError:
                    continue
                except KeyNotFoundError:
                    raise not_found(k.qualified, name) from None
                await self._after_delete(k, old)
                omd.resource_version = str(drev)
                return old
            del nmd.finalizers[:]
            nmd.finalizers.extend(fins)
            when = meta.now() + dt.timedelta(seconds=grace)
            if not nmd.HasField("deletion_timestamp") or (
                nmd.HasField("deletion_grace_period_seconds") and grace < nmd.deletion_grace_period_seconds
            ):
                meta.set_timestamp(nmd.deletion_timestamp, when)
                nmd.deletion_grace_period_seconds = grace
            if dry_run or same_stored(new, old):
                return new
            try:
                nrev = await self.store.update(key, encode(new), rev)
            except ConflictError:
                continue
            except KeyNotFoundError:
                raise not_found(k.qualified, name) from None
            nmd.resource_version = str(nrev)
            return new
        raise conflict(k.qualified, name)

    async def _after_delete(self, k: Kind, old: Message) -> None:
        if k.kind == "Service":
            await self._release(old)

    # ----------------------------------------------------------- namespaces

    async def ensure_system_namespaces(self) -> None:
        ns_kind = NS_KIND
        for name in SYSTEM_NAMESPACES:
            if await self._get_kv(ns_kind, "", name) is not None:
                continue
            ns: Any = ns_kind.message()
            ns.metadata.name = name
            try:
                await self.create(ns)
            except ApiError as e:
                if not is_already_exists(e):
                    raise

    def start_namespace_finalizer(self, name: str) -> None:
        if self._closed:
            return
        task = self._finalizing.get(name)
        if task is not None and not task.done():
            return
        self._finalizing[name] = asyncio.get_running_loop().create_task(self._finalize_namespace(name))

    async def resume_namespace_finalizers(self) -> None:
        """Namespaces another (or an earlier) process marked Terminating."""
        items, _ = await self.list(NS_KIND, "")
        for ns in items:
            if ns.metadata.HasField("deletion_timestamp"):  # type: ignore[attr-defined]
                self.start_namespace_finalizer(ns.metadata.name)  # type: ignore[attr-defined]

    async def _finalize_namespace(self, name: str) -> None:
        """Delete everything in the namespace, wait until it is gone (pods
        bound to nodes leave when their agent has stopped them), then delete
        the Namespace. Idempotent: several control planes may run it."""
        try:
            delay = 0.05
            while True:
                remaining = 0
                for k in meta.KINDS:
                    if not k.namespaced:
                        continue
                    items, _ = await self.list(k, name)
                    for obj in items:
                        remaining += 1
                        md = obj.metadata  # type: ignore[attr-defined]
                        if md.HasField("deletion_timestamp"):
                            continue
                        try:
                            await self.delete(k.resource, name, md.name)
                        except ApiError as e:
                            if not is_not_found(e):
                                log.warning("namespace %s: deleting %s/%s: %s", name, k.resource, md.name, e)
                if remaining == 0:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            key = meta.key("namespaces", "", name)
            kv = await self.store.get(key)
            if kv is not None:
                try:
                    await self.store.delete(key, kv.mod_revision)
                except (ConflictError, KeyNotFoundError):
                    pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("finalizing namespace %s", name)
        finally:
            self._finalizing.pop(name, None)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._finalizing.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _bind_onto(pod: Any, b: Any) -> None:
    """Kubernetes' binding checks, then spec.nodeName (in place)."""
    md = pod.metadata
    if b.uid and md.uid != b.uid:
        raise _uid_conflict(PODS, md.name, b.uid, md.uid)
    if md.HasField("deletion_timestamp"):
        raise conflict(PODS.qualified, md.name, f"pod {md.name} is being deleted, cannot be assigned to a host")
    if pod.spec.node_name:
        raise conflict(PODS.qualified, md.name, f'pod {md.name} is already assigned to node "{pod.spec.node_name}"')
    pod.spec.node_name = b.node


def _check_uid(k: Kind, incoming: Message, old: Message) -> None:
    """An update computed from a deleted-and-recreated object must not land
    on the new one (Kubernetes checks metadata.uid as a precondition)."""
    iuid, ouid = incoming.metadata.uid, old.metadata.uid  # type: ignore[attr-defined]
    if iuid and iuid != ouid:
        raise _uid_conflict(k, old.metadata.name, iuid, ouid)  # type: ignore[attr-defined]


def _uid_conflict(k: Kind, name: str, want: str, have: str) -> ApiError:
    return ApiError(
        "Conflict",
        f'Operation cannot be fulfilled on {k.qualified} "{name}": Precondition failed: '
        f"UID in precondition: {want}, UID in object meta: {have}",
    )


# ------------------------------------------------------------------ apply


def _apply_onto(k: Kind, incoming: Message, new: Message, old: Message) -> None:
    """Copy what a manifest owns from `incoming` onto `new` (a copy of the
    stored object), keeping server-set fields."""
    imd, nmd = incoming.metadata, new.metadata  # type: ignore[attr-defined]
    omd = old.metadata  # type: ignore[attr-defined]
    _replace_keeping_system_keys(nmd.labels, imd.labels, omd.labels)
    _replace_keeping_system_keys(nmd.annotations, imd.annotations, omd.annotations)
    if imd.owner_references:
        del nmd.owner_references[:]
        nmd.owner_references.extend(imd.owner_references)
    for f in incoming.DESCRIPTOR.fields:
        if f.name in ("api_version", "kind", "metadata", "status"):
            continue
        new.ClearField(f.name)
        if f.is_repeated:
            getattr(new, f.name).extend(getattr(incoming, f.name))
        elif f.message_type is not None:
            if incoming.HasField(f.name):
                getattr(new, f.name).CopyFrom(getattr(incoming, f.name))
        else:
            setattr(new, f.name, getattr(incoming, f.name))
    if k.kind in ("Deployment", "ReplicaSet"):
        # A manifest without replicas leaves the scale to `scale` (kubectl's
        # three-way merge does the same when replicas was never applied).
        if not incoming.spec.HasField("replicas") and old.spec.HasField("replicas"):  # type: ignore[attr-defined]
            new.spec.replicas = old.spec.replicas  # type: ignore[attr-defined]
        # `rollout restart` stamps kubectl.kubernetes.io/restartedAt on the
        # template; re-applying the manifest must not undo it (a rollout).
        _replace_keeping_system_keys(
            new.spec.template.metadata.annotations,  # type: ignore[attr-defined]
            incoming.spec.template.metadata.annotations,  # type: ignore[attr-defined]
            old.spec.template.metadata.annotations,  # type: ignore[attr-defined]
        )
    if k.kind == "Service":
        _keep_service_allocations(old, new)
    elif k.kind == "Pod":
        if not new.spec.node_name:  # type: ignore[attr-defined]
            new.spec.node_name = old.spec.node_name  # type: ignore[attr-defined]
    elif k.kind == "Node":
        # Registration and controllers own the taints the manifest omits.
        if not new.spec.taints:  # type: ignore[attr-defined]
            new.spec.taints.extend(old.spec.taints)  # type: ignore[attr-defined]


# Label/annotation domains that controllers and tools own. kubectl's
# three-way merge keeps live keys the manifest never set; without a
# last-applied record, apply keeps keys in these domains the manifest omits
# (deployment.kubernetes.io/revision, pocketkube.io/lb-node, ...) and
# replaces everything else, so re-applying a manifest is "unchanged" while
# controllers run.
SYSTEM_DOMAINS = ("kubernetes.io", "k8s.io", "pocketkube.io")


def is_system_key(key: str) -> bool:
    prefix, slash, _ = key.rpartition("/")
    return bool(slash) and any(prefix == d or prefix.endswith("." + d) for d in SYSTEM_DOMAINS)


def _replace_keeping_system_keys(target: Any, manifest: Any, live: Any) -> None:
    kept = {k: v for k, v in live.items() if is_system_key(k) and k not in manifest}
    target.clear()
    target.update(manifest)
    target.update(kept)


def _keep_service_allocations(old: Any, new: Any) -> None:
    o, n = old.spec, new.spec
    if n.type == "ExternalName":
        return  # an ExternalName Service has no clusterIP or ports to keep
    if not n.cluster_ip and o.cluster_ip:
        n.cluster_ip = o.cluster_ip
        if not n.cluster_ips:
            n.cluster_ips.extend(o.cluster_ips)
    if not n.ip_families and o.ip_families:
        n.ip_families.extend(o.ip_families)
    if not n.ip_family_policy and o.ip_family_policy:
        n.ip_family_policy = o.ip_family_policy
    if n.type in ("NodePort", "LoadBalancer") and o.type in ("NodePort", "LoadBalancer"):
        for p in n.ports:
            if p.node_port:
                continue
            for q in o.ports:
                if (q.port, q.protocol or "TCP") == (p.port, p.protocol or "TCP") or (p.name and q.name == p.name):
                    p.node_port = q.node_port
                    break
