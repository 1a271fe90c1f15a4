"""The registry: every API verb over the Store, with Kubernetes' semantics.

A write goes decode (front end) -> locate (namespace, name, generateName) ->
server-set metadata -> the kind's Strategy (controlplane/apiserver/
strategy.py: normalize, default, validate, allocate) -> CAS write. Reads
set metadata.resourceVersion from the key's mod_revision (it is never
stored inside the value). The verbs know no kind: what differs between
kinds is in their strategies (controlplane/apiserver/kinds/).

Every front end (the gRPC servicers, an HTTP API) calls these verbs and
nothing below them.

Concurrency: many requests run concurrently on one event loop (and several
control planes may share one etcd). Nothing is locked: every write is a
compare-and-swap on the mod_revision the change was computed from. A write
that carried the client's resourceVersion fails with Conflict; a write the
server computed itself (unconditional Update, Patch, Apply, Delete's
marking, node registration) re-reads and retries a few times, as
Kubernetes' GuaranteedUpdate does.
"""

from __future__ import annotations

import builtins
import random
from typing import Awaitable, Callable, Sequence

from google.protobuf.message import Message

from controlplane.apiserver.codec import decode, encode, parse_resource_version, same_stored
from controlplane.apiserver.kinds import strategies
from controlplane.apiserver.kinds.pods import bind_onto
from controlplane.apiserver.service_alloc import ServiceAllocator
from controlplane.apiserver.strategy import (
    POLICIES,
    RETRIES,
    Change,
    DefaultStrategy,
    Deletion,
    Strategy,
    has_field,
    replace_keeping_system_keys,
    uid_conflict,
)
from controlplane.apiserver.watchcache import WatchCaches
from controlplane.store import KV, ConflictError, KeyExistsError, KeyNotFoundError, Store
from pkapi import defaults, meta
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
from pkapi.v1 import api_pb2
from pkapi.validation import dns1123_subdomain

__all__ = ["RETRIES", "Registry", "parse_resource_version"]

_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _kind(name: str) -> Kind:
    k = meta.kind_by_name(name)
    assert k is not None, name
    return k


NS_KIND = _kind("Namespace")
PODS = _kind("Pod")


class Registry:
    """Kubernetes' API semantics over a Store (see module docstring).

    `allocator` allocates Services' IPs and ports (none: Services get
    none); `caches` are the server's watch caches, which some writes read
    first as a guess their CAS checks (none: every read is the store's).
    Watches are the caches' (WatchCaches.watch)."""

    def __init__(
        self, store: Store, allocator: ServiceAllocator | None = None, caches: WatchCaches | None = None
    ) -> None:
        self.store = store
        # The watch caches, when the server has them: a read-only shortcut,
        # never the truth (they may be started after the registry).
        self.caches = caches
        self.strategies = strategies(self, allocator)
        self._default: Strategy = DefaultStrategy()

    def strategy(self, k: Kind) -> Strategy:
        return self.strategies.get(k.kind, self._default)

    async def start(self) -> None:
        """Before serving: every kind's start (the system namespaces exist,
        namespaces an earlier process marked are finalized)."""
        for s in self.strategies.values():
            await s.start()

    # The name callers used before start().
    ensure_system_namespaces = start

    async def close(self) -> None:
        for s in self.strategies.values():
            await s.close()

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

    @staticmethod
    def _where(k: Kind, namespace: str) -> str:
        """The namespace a request for one object of this kind means."""
        return (namespace or "default") if k.namespaced else ""

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
        got = await self._get_kv(k, self._where(k, namespace), name)
        if got is None:
            raise not_found(k.qualified, name)
        return got[0]

    async def list(self, k: Kind, namespace: str) -> tuple[list[Message], int]:
        kvs, rev = await self.list_raw(k, namespace)
        return [decode(k, kv.value, kv.mod_revision) for kv in kvs], rev

    async def list_raw(self, k: Kind, namespace: str) -> tuple[Sequence[KV], int]:
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

    def _prepare_create(self, k: Kind, s: Strategy, msg: Message) -> None:
        """Server-set metadata, the kind's normalization, defaults and
        validation of a new object (in place)."""
        md = msg.metadata  # type: ignore[attr-defined]
        md.uid = meta.new_uid()
        meta.set_timestamp(md.creation_timestamp)
        md.resource_version = ""
        md.ClearField("deletion_timestamp")
        md.ClearField("deletion_grace_period_seconds")
        md.generation = 1
        s.prepare_create(msg)
        defaults.apply(msg)
        causes = s.validate(msg)
        if causes:
            raise invalid(k.kind, md.name or md.generate_name, causes)

    async def _create_once(self, k: Kind, msg: Message, dry_run: bool) -> Message:
        md = msg.metadata  # type: ignore[attr-defined]
        s = self.strategy(k)
        self._prepare_create(k, s, msg)
        if k.namespaced:
            await self._check_namespace(k, md.namespace, md.name)
        await s.before_create(msg, dry_run)
        if dry_run:
            return msg
        key = meta.key(k.resource, md.namespace, md.name)
        try:
            rev = await self.store.create(key, encode(msg))
        except KeyExistsError:
            await s.create_failed(msg)
            raise already_exists(k.qualified, md.name) from None
        except BaseException:
            await s.create_failed(msg)
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
        item must be (else BadRequest for that item). Kinds whose strategy
        may not batch (Services: they allocate), a name repeated in the
        batch and generated names that collide are created one by one
        after the batch."""
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
            s = self.strategy(k)
            md = msg.metadata  # type: ignore[attr-defined]
            generated = not name and bool(md.generate_name)
            if generated:
                name = md.name = md.generate_name + "".join(random.choice(_GEN_CHARS) for _ in range(5))
            key = meta.key(k.resource, ns, name)
            if not name or key in keys or not s.batch_create:
                singles.append(i)
                continue
            try:
                self._prepare_create(k, s, msg)
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
        s = self.strategy(k)
        for attempt in range(RETRIES):
            got = read if attempt == 0 else None
            guessed = False
            if got is None and attempt == 0 and (precondition_rv or s.guess_from_cache):
                # The value of a key at a given mod_revision never changes, so
                # a cached object at the client's revision is exactly what
                # etcd holds at that revision; the CAS catches anything newer.
                # Without a client revision the cached object is a guess too:
                # if stale, the CAS fails and the retry reads etcd (one etcd
                # round trip per unconditional write instead of two).
                # (Not for kinds whose strategy acts on the old object
                # outside the store, as a Service's allocator.)
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
                    await s.after_delete(new)
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

    def _prepare_update(self, s: Strategy, old: Message, new: Message) -> None:
        """Server-owned metadata and status come from the stored object,
        then the kind's normalization and defaults."""
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
        if has_field(new, "status"):
            if old.HasField("status"):
                new.status.CopyFrom(old.status)  # type: ignore[attr-defined]
            else:
                new.ClearField("status")
        s.prepare_update(old, new)
        defaults.apply(new)
        if s.generation_changed(old, new):
            nmd.generation = omd.generation + 1

    async def _validated_update(self, k: Kind, s: Strategy, old: Message, new: Message, dry_run: bool) -> Message:
        causes = s.validate_update(old, new)
        if causes:
            raise invalid(k.kind, new.metadata.name, causes)  # type: ignore[attr-defined]
        await s.before_update(old, new, dry_run)
        return new

    def _status_onto(self, k: Kind, s: Strategy, incoming: Message, old: Message) -> Message:
        """The stored object with the request's status, validated."""
        new = meta.copy(old)
        new.status.CopyFrom(incoming.status)  # type: ignore[attr-defined]
        causes = s.validate_status(new)
        if causes:
            raise invalid(k.kind, old.metadata.name, causes)  # type: ignore[attr-defined]
        return new

    async def bind(self, bindings: Sequence[api_pb2.Binding]) -> builtins.list[Message | ApiError]:
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
                bind_onto(pod, b)
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

            async def mutate(old: Message, b: api_pb2.Binding = b) -> Message:
                bind_onto(old, b)
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
        s = self.strategy(k)

        async def mutate(old: Message) -> Message:
            _check_uid(k, incoming, old)
            new = meta.copy(incoming)
            self._prepare_update(s, old, new)
            return await self._validated_update(k, s, old, new, dry_run)

        out, _ = await self._guaranteed_update(
            k, ns, name, mutate, incoming.metadata.resource_version, dry_run  # type: ignore[attr-defined]
        )
        return out

    async def update_status(self, msg: Message, dry_run: bool = False, default_namespace: str = "") -> Message:
        incoming = meta.copy(msg)
        k, ns, name = self.locate(incoming, default_namespace)
        if not has_field(incoming, "status"):
            raise ApiError("MethodNotAllowed", f"{k.qualified} have no status")
        s = self.strategy(k)

        async def mutate(old: Message) -> Message:
            _check_uid(k, incoming, old)
            return self._status_onto(k, s, incoming, old)

        out, _ = await self._guaranteed_update(
            k, ns, name, mutate, incoming.metadata.resource_version, dry_run  # type: ignore[attr-defined]
        )
        return out

    async def patch(
        self, resource: str, namespace: str, name: str, change: Change, dry_run: bool = False, subresource: str = ""
    ) -> Message:
        """Read-modify-write (PATCH): `change` edits a copy of the stored
        object in place (or raises ApiError to refuse); the result is
        written as update() (subresource "status": as update_status())
        would write it, and on a conflict with another writer the object is
        read and `change` run again. A change of metadata.uid is a Conflict."""
        k = self.kind(resource)
        ns = self._where(k, namespace)
        s = self.strategy(k)
        if subresource not in ("", "status"):
            raise ApiError("NotFound", f'the server could not find the requested resource "{resource}/{subresource}"')
        if subresource == "status" and not has_field(k.message(), "status"):
            raise ApiError("MethodNotAllowed", f"{k.qualified} have no status")

        async def mutate(old: Message) -> Message:
            edited = meta.copy(old)
            change(edited)
            _check_uid(k, edited, old)
            if subresource == "status":
                return self._status_onto(k, s, edited, old)
            self._prepare_update(s, old, edited)
            return await self._validated_update(k, s, old, edited, dry_run)

        out, _ = await self._guaranteed_update(k, ns, name, mutate, "", dry_run)
        return out

    # ---------------------------------------------------------------- apply

    async def apply(self, msg: Message, dry_run: bool = False, default_namespace: str = "") -> tuple[Message, str]:
        """kubectl apply: create, or replace what the manifest owns (spec or
        the kind's data fields, labels, annotations) keeping server-set
        fields (status, and what the kind's strategy keeps: clusterIP,
        nodePorts, nodeName, ...). The result is "unchanged" when the
        defaulted object equals the stored one."""
        incoming = meta.copy(msg)
        k, ns, name = self.locate(incoming, default_namespace)
        if not name:
            raise invalid(k.kind, "", ["metadata.name: Required value: name or generateName is required"])
        s = self.strategy(k)
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
                _apply_onto(incoming, new, old)
                s.keep_on_apply(incoming, new, old)
                self._prepare_update(s, old, new)
                return await self._validated_update(k, s, old, new, dry_run)

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
        """Delete, or mark for deletion: preconditions, then the kind's
        strategy marks the object (deletionTimestamp, the policy's
        finalizers, a grace period) or lets it go now."""
        k = self.kind(resource)
        ns = self._where(k, namespace)
        policy = propagation_policy or "Background"
        if policy not in POLICIES:
            raise bad_request(
                f'Unsupported value: "{policy}": supported values: "Background", "Foreground", "Orphan"'
            )
        if grace_period_seconds is not None and grace_period_seconds < 0:
            grace_period_seconds = 0
        s = self.strategy(k)
        s.check_delete(name)
        deletion = Deletion(policy, grace_period_seconds)
        key = meta.key(k.resource, ns, name)
        for _attempt in range(RETRIES):
            got = await self._get_kv(k, ns, name)
            if got is None:
                raise not_found(k.qualified, name)
            old, rev = got
            omd = old.metadata  # type: ignore[attr-defined]
            if precondition_uid and precondition_uid != omd.uid:
                raise uid_conflict(k.qualified, name, precondition_uid, omd.uid)
            if precondition_rv and precondition_rv != str(rev):
                raise ApiError(
                    "Conflict",
                    f'Operation cannot be fulfilled on {k.qualified} "{name}": Precondition failed: '
                    f"ResourceVersion in precondition: {precondition_rv}, ResourceVersion in object meta: {rev}",
                )
            new = meta.copy(old)
            if s.mark_deleted(old, new, deletion):
                if dry_run:
                    return old
                try:
                    drev = await self.store.delete(key, rev)
                except ConflictError:
                    continue
                except KeyNotFoundError:
                    raise not_found(k.qualified, name) from None
                await s.after_delete(old)
                omd.resource_version = str(drev)
                return old
            if dry_run:
                return new
            if not same_stored(new, old):
                try:
                    nrev = await self.store.update(key, encode(new), rev)
                except ConflictError:
                    continue
                except KeyNotFoundError:
                    raise not_found(k.qualified, name) from None
                new.metadata.resource_version = str(nrev)  # type: ignore[attr-defined]
            await s.after_mark(new)
            return new
        raise conflict(k.qualified, name)


def _check_uid(k: Kind, incoming: Message, old: Message) -> None:
    """An update computed from a deleted-and-recreated object must not land
    on the new one (Kubernetes checks metadata.uid as a precondition)."""
    iuid, ouid = incoming.metadata.uid, old.metadata.uid  # type: ignore[attr-defined]
    if iuid and iuid != ouid:
        raise uid_conflict(k.qualified, old.metadata.name, iuid, ouid)  # type: ignore[attr-defined]


def _apply_onto(incoming: Message, new: Message, old: Message) -> None:
    """Copy what a manifest owns from `incoming` onto `new` (a copy of the
    stored object), keeping server-set fields."""
    imd, nmd = incoming.metadata, new.metadata  # type: ignore[attr-defined]
    omd = old.metadata  # type: ignore[attr-defined]
    replace_keeping_system_keys(nmd.labels, imd.labels, omd.labels)
    replace_keeping_system_keys(nmd.annotations, imd.annotations, omd.annotations)
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
