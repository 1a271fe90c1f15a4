"""A kind's rules for the registry's verbs (Kubernetes' RESTCreateStrategy,
RESTUpdateStrategy and RESTDeleteStrategy in one object).

The registry runs the steps every kind shares (server-set metadata,
pkapi.defaults, the namespace check, the CAS write and its retries) and
asks the kind's Strategy at each point where kinds differ:

    create  prepare_create -> defaults -> validate -> before_create -> write
            (create_failed if the write fails after before_create)
    update  server metadata + status from the stored object -> prepare_update
            -> defaults -> generation_changed -> validate_update
            -> before_update -> write
    status  status from the request onto the stored object -> validate_status
    apply   the manifest's fields onto the stored object -> keep_on_apply
            -> then as update
    delete  check_delete -> mark_deleted: remove now, or write the marked
            object (deletionTimestamp, finalizers) -> after_delete / after_mark

DefaultStrategy is the behaviour of a kind with no rules of its own; the
kinds in controlplane/apiserver/kinds/ extend it. A strategy holds no
per-request state: one instance serves every concurrent request of its
kind. Hooks that are not `async` do no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from google.protobuf.message import Message

from controlplane.store import Store
from pkapi import meta, validation
from pkapi.errors import ApiError
from pkapi.meta import Kind

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
POLICIES = ("Background", "Foreground", "Orphan")

# Server-computed writes retry this often on a CAS conflict before giving up.
RETRIES = 16


@dataclass(frozen=True)
class Deletion:
    """What a delete request asks for: the propagation policy (one of
    POLICIES) and the client's grace period (None: the kind's default;
    never negative)."""

    policy: str = "Background"
    grace_period_seconds: int | None = None


# A change to a copy of a stored object (Registry.patch), in place.
Change = Callable[[Message], None]


class Verbs(Protocol):
    """The registry verbs a strategy may call back (a namespace's
    finalization, node registration); the Registry is one."""

    store: Store

    async def get(self, resource: str, namespace: str, name: str) -> Message: ...

    async def create(self, msg: Message, dry_run: bool = False, default_namespace: str = "") -> Message: ...

    async def update(self, msg: Message, dry_run: bool = False, default_namespace: str = "") -> Message: ...

    async def update_status(self, msg: Message, dry_run: bool = False, default_namespace: str = "") -> Message: ...

    async def patch(
        self, resource: str, namespace: str, name: str, change: Change, dry_run: bool = False, subresource: str = ""
    ) -> Message: ...

    async def list(self, k: Kind, namespace: str) -> tuple[list[Message], int]: ...

    async def delete(self, resource: str, namespace: str, name: str) -> Message: ...


class Strategy(Protocol):
    """A kind's hooks into the registry's verbs (see module docstring)."""

    # May share create_many's one store transaction (a kind whose
    # before_create does work, as a Service's allocation, may not).
    batch_create: bool
    # An update without the client's resourceVersion may start from the
    # watch cache's copy (the CAS catches a stale one); not for a kind
    # whose before_update acts on the old object outside the store.
    guess_from_cache: bool

    def prepare_create(self, obj: Message) -> None:
        """Normalize a new object before defaulting (status a client may
        not set); server-set metadata is already there."""

    def validate(self, obj: Message) -> list[str]:
        """The causes that make a new (defaulted) object invalid."""

    async def before_create(self, obj: Message, dry_run: bool) -> None:
        """Last step before the write of a valid object (allocations); may
        change it or raise ApiError. With dry_run nothing may be kept."""

    async def create_failed(self, obj: Message) -> None:
        """The write after before_create failed: undo what it took."""

    def prepare_update(self, old: Message, new: Message) -> None:
        """Normalize an update before defaulting: `new` already has the
        stored object's server-set metadata and status."""

    def generation_changed(self, old: Message, new: Message) -> bool:
        """Whether the update moves metadata.generation on."""

    def validate_update(self, old: Message, new: Message) -> list[str]:
        """The causes that refuse the update (the new object's own and the
        fields that may not change)."""

    async def before_update(self, old: Message, new: Message, dry_run: bool) -> None:
        """Last step before the write of a valid update (allocations)."""

    def validate_status(self, new: Message) -> list[str]:
        """The causes that refuse a status update (new: the stored object
        with the request's status)."""

    def keep_on_apply(self, incoming: Message, new: Message, old: Message) -> None:
        """Apply has copied the manifest's fields onto `new`: put back the
        server-set fields the manifest omits."""

    def check_delete(self, name: str) -> None:
        """Raise ApiError to refuse deleting this object at all."""

    def mark_deleted(self, old: Message, new: Message, deletion: Deletion) -> bool:
        """Turn `new` (a copy of `old`) into the object marked for deletion;
        True: nothing is left to wait for, remove it now."""

    async def after_mark(self, obj: Message) -> None:
        """The object is marked (written, or already so)."""

    async def after_delete(self, obj: Message) -> None:
        """The object was removed from the store."""

    async def start(self) -> None:
        """The registry starts serving (objects to make, work to resume)."""

    async def close(self) -> None:
        """The registry stops: end background work."""


def uid_conflict(qualified: str, name: str, want: str, have: str) -> ApiError:
    """A precondition on metadata.uid that the stored object fails."""
    return ApiError(
        "Conflict",
        f'Operation cannot be fulfilled on {qualified} "{name}": Precondition failed: '
        f"UID in precondition: {want}, UID in object meta: {have}",
    )


def has_field(msg: Message, name: str) -> bool:
    return name in msg.DESCRIPTOR.fields_by_name


class DefaultStrategy:
    """A kind without rules of its own: pkapi.validation, generation moves
    with spec, deletion is immediate unless finalizers (or the request's
    propagation policy) keep the object."""

    batch_create = True
    guess_from_cache = True

    def prepare_create(self, obj: Message) -> None:
        pass

    def validate(self, obj: Message) -> list[str]:
        return validation.validate(obj)

    async def before_create(self, obj: Message, dry_run: bool) -> None:
        pass

    async def create_failed(self, obj: Message) -> None:
        pass

    def prepare_update(self, old: Message, new: Message) -> None:
        pass

    def generation_changed(self, old: Message, new: Message) -> bool:
        return has_field(new, "spec") and new.spec != old.spec  # type: ignore[attr-defined]

    def validate_update(self, old: Message, new: Message) -> list[str]:
        return validation.validate(new) + validation.validate_update(old, new)

    async def before_update(self, old: Message, new: Message, dry_run: bool) -> None:
        pass

    def validate_status(self, new: Message) -> list[str]:
        return validation.validate_status(new)

    def keep_on_apply(self, incoming: Message, new: Message, old: Message) -> None:
        pass

    def check_delete(self, name: str) -> None:
        pass

    def grace(self, old: Message, requested: int | None) -> int:
        """Seconds the object stays marked before it may go (0: none)."""
        return 0

    def mark_deleted(self, old: Message, new: Message, deletion: Deletion) -> bool:
        nmd = new.metadata  # type: ignore[attr-defined]
        fins = with_policy(nmd.finalizers, deletion.policy)
        grace = self.grace(old, deletion.grace_period_seconds)
        if not fins and grace == 0:
            return True
        del nmd.finalizers[:]
        nmd.finalizers.extend(fins)
        when = meta.now() + dt.timedelta(seconds=grace)
        if not nmd.HasField("deletion_timestamp") or (
            nmd.HasField("deletion_grace_period_seconds") and grace < nmd.deletion_grace_period_seconds
        ):
            meta.set_timestamp(nmd.deletion_timestamp, when)
            nmd.deletion_grace_period_seconds = grace
        return False

    async def after_mark(self, obj: Message) -> None:
        pass

    async def after_delete(self, obj: Message) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class ResetStatusStrategy(DefaultStrategy):
    """A kind whose status only the system writes: a create starts without
    one (Kubernetes' PrepareForCreate clears it)."""

    def prepare_create(self, obj: Message) -> None:
        obj.ClearField("status")


def with_policy(finalizers: Sequence[str], policy: str) -> list[str]:
    """The finalizers after a delete with this propagation policy: Orphan
    and Foreground each add theirs and drop the other's (the garbage
    collector removes them when done)."""
    fins = list(finalizers)
    if policy == "Orphan":
        fins = [f for f in fins if f != FOREGROUND]
        if ORPHAN not in fins:
            fins.append(ORPHAN)
    elif policy == "Foreground":
        fins = [f for f in fins if f != ORPHAN]
        if FOREGROUND not in fins:
            fins.append(FOREGROUND)
    return fins


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


def replace_keeping_system_keys(target: Any, manifest: Any, live: Any) -> None:
    """target := manifest, plus live's system-domain keys it omits."""
    kept = {k: v for k, v in live.items() if is_system_key(k) and k not in manifest}
    target.clear()
    target.update(manifest)
    target.update(kept)
