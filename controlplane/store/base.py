"""The Store protocol: the control plane's only way to state.

Keys are strings (`/registry/<resource>/<namespace>/<name>`), values opaque
bytes (serialized protobuf messages). Every object's resourceVersion is its
key's mod_revision. Every write is a compare-and-swap: a write based on a
stale revision raises ConflictError and changes nothing.

Implementations: EtcdStore (etcd through aetcd; production and integration
tests) and MemoryStore (a fake, in-process, for unit tests and benchmarks).
One contract test suite (tests/unit/store/test_store_contract.py and
tests/integration/test_store_etcd.py) runs against both.

Ordering: revisions are global and strictly increasing across all keys, as
in etcd. A watch delivers events in revision order, each exactly once, even
across reconnects of the underlying stream.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import AsyncIterator, Protocol, Sequence


class StoreError(Exception):
    """Base of the store's errors."""


class KeyExistsError(StoreError):
    """create() on a key that exists."""


class KeyNotFoundError(StoreError):
    """update()/delete() on a key that does not exist."""


class ConflictError(StoreError):
    """The key's mod_revision is not the expected one."""

    def __init__(self, key: str, current_revision: int) -> None:
        super().__init__(f"{key}: revision is {current_revision}")
        self.key = key
        self.current_revision = current_revision


class CompactedError(StoreError):
    """watch() from a revision etcd has compacted away: relist."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"required revision has been compacted (compacted at {compact_revision})")
        self.compact_revision = compact_revision


class UnavailableError(StoreError):
    """The store cannot be reached (after the implementation's own retries)."""


@dataclass(frozen=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int = 0


@dataclass(frozen=True)
class Event:
    type: str  # "PUT" or "DELETE"
    key: str
    # PUT: the new value; DELETE: the value the key had before deletion.
    value: bytes
    # The revision of this change.
    mod_revision: int
    # The value before this change (None on create).
    prev_value: bytes | None = None
    # The last event of its revision: a revision written by one transaction
    # may hold many keys, and a watcher that must deliver a revision whole
    # (the API server's watch cache) waits for this mark.
    last_in_revision: bool = True


def check_update_many(items: Sequence[tuple[str, bytes, int]]) -> None:
    """update_many's argument check, shared by the implementations so both
    reject the same calls with the same message, before writing anything."""
    seen: set[str] = set()
    for i, (key, _, expected) in enumerate(items):
        if expected < 1:
            raise ValueError(f"update_many: items[{i}] ({key}): expected_revision must be >= 1, got {expected} "
                             "(for an unconditional write use update(key, value, 0))")
        if key in seen:
            raise ValueError(f"update_many: items[{i}] ({key}): the key is given twice (at most once per call)")
        seen.add(key)


class Store(Protocol):
    async def get(self, key: str) -> KV | None: ...

    async def list(self, prefix: str) -> tuple[list[KV], int]:
        """All keys under prefix, sorted by key, and the store revision they
        were read at (Watch from revision+1 misses nothing)."""
        ...

    async def create(self, key: str, value: bytes, lease: int = 0) -> int:
        """Create a key that must not exist; returns the new revision."""
        ...

    async def create_many(self, items: Sequence[tuple[str, bytes]]) -> builtins.list[int | None]:
        """Create several keys that must not exist, in one transaction (for
        a batch of Events): per item the new revision, or None where the key
        already existed (that item only is not written). The items written
        share one revision, as the writes of one etcd transaction do."""
        ...

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace the value if the key's mod_revision == expected_revision
        (0: unconditional, key must exist). Returns the new revision."""
        ...

    async def update_many(self, items: Sequence[tuple[str, bytes, int]]) -> builtins.list[int | None]:
        """Replace several keys' values, each (key, value, expected_revision)
        guarded by mod_revision == expected_revision, in one transaction:
        per item the new revision, or None where the key is missing or at
        another revision (that item only is not written). The items written
        share one revision and keep their leases; a watch sees one PUT per
        written key, in item order. More items than one etcd transaction
        holds (~100, or ~1 MiB) are written in several transactions, whose
        revisions differ. Raises ValueError, writing nothing, for an
        expected_revision < 1 (no unconditional writes here) or a key given
        twice. No items: [] and no round trip."""
        ...

    async def delete(self, key: str, expected_revision: int = 0) -> int:
        """Delete the key (if expected_revision, only at that revision).
        Returns the revision of the deletion."""
        ...

    def watch(self, prefix: str, start_revision: int, prev_kv: bool = True) -> AsyncIterator[Event]:
        """Events for keys under prefix with mod_revision >= start_revision,
        in order, forever (until the consumer stops iterating). Raises
        CompactedError if start_revision was compacted. prev_kv=False: the
        events carry no previous value (prev_value None, a DELETE's value
        empty), which spares etcd a read per event - for a watcher that
        keeps the values itself."""
        ...

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None: ...

    async def grant_lease(self, ttl_seconds: int) -> int:
        """A lease id; keys created with it vanish when it expires."""
        ...

    async def keepalive(self, lease: int) -> bool:
        """Renew once; False when the lease has already expired."""
        ...

    async def revoke(self, lease: int) -> None: ...

    async def close(self) -> None: ...
