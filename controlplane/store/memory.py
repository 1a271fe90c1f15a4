"""MemoryStore: an in-process fake of the Store protocol, for unit tests and
scale benchmarks only (production and integration tests use EtcdStore).

It models etcd's semantics, not just its API:
- one global revision, strictly increasing, bumped by every write (a lease
  expiry deleting several keys is one revision, as in etcd);
- every write is a compare-and-swap on the key's mod_revision;
- history is kept until compact(), so watch(prefix, start_revision) replays
  from any revision not yet compacted; a watcher that falls behind a
  compaction gets CompactedError, as an etcd watcher does;
- leases expire on the event loop's clock, deleting their keys.

Concurrency: all state lives on one event loop and every operation's
critical section has no await, so each operation is atomic. Each operation
first yields to the loop once, so that concurrent read-modify-write callers
interleave and really conflict (without it the fake would serialize them and
hide the Conflict paths that etcd exercises).

Ordering: a watch delivers events in revision order, each exactly once.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import dataclasses
import itertools
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from controlplane.store.base import (
    KV,
    CompactedError,
    ConflictError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    StoreError,
    check_update_many,
)


@dataclass
class _Lease:
    id: int
    ttl: int
    keys: set[str] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None


class MemoryStore:
    """A fake Store (see the module docstring). Not thread-safe: use it from
    one event loop."""

    def __init__(self) -> None:
        # etcd's first revision is 1 (the empty store).
        self._revision = 1
        self._compacted = 0
        self._data: dict[str, KV] = {}
        # Every event since the last compaction, in revision order.
        self._history: list[Event] = []
        # Woken on every write; each watcher waits on its own asyncio.Event.
        self._wakeups: weakref.WeakSet[asyncio.Event] = weakref.WeakSet()
        self._leases: dict[int, _Lease] = {}
        self._lease_ids = itertools.count(0x1000)
        self._closed = False

    # -- helpers -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    def _commit(self, events: list[Event]) -> None:
        self._history.extend(events)
        for wakeup in list(self._wakeups):
            wakeup.set()

    def _expect(self, key: str, expected_revision: int) -> KV:
        """The key's KV if it exists at expected_revision (0: any)."""
        old = self._data.get(key)
        if old is None:
            raise KeyNotFoundError(key)
        if expected_revision and old.mod_revision != expected_revision:
            raise ConflictError(key, old.mod_revision)
        return old

    def _remove_key(self, kv: KV, revision: int) -> Event:
        del self._data[kv.key]
        if kv.lease and kv.lease in self._leases:
            self._leases[kv.lease].keys.discard(kv.key)
        return Event("DELETE", kv.key, kv.value, revision, prev_value=kv.value)

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str) -> KV | None:
        await asyncio.sleep(0)
        self._check_open()
        return self._data.get(key)

    async def list(self, prefix: str) -> tuple[list[KV], int]:
        await asyncio.sleep(0)
        self._check_open()
        items = sorted((kv for k, kv in self._data.items() if k.startswith(prefix)), key=lambda kv: kv.key)
        return items, self._revision

    async def current_revision(self) -> int:
        await asyncio.sleep(0)
        self._check_open()
        return self._revision

    # -- writes --------------------------------------------------------------

    async def create(self, key: str, value: bytes, lease: int = 0) -> int:
        await asyncio.sleep(0)
        self._check_open()
        if key in self._data:
            raise KeyExistsError(key)
        if lease and lease not in self._leases:
            raise StoreError(f"lease {lease:x} not found")
        self._revision += 1
        rev = self._revision
        self._data[key] = KV(key, bytes(value), rev, rev, lease)
        if lease:
            self._leases[lease].keys.add(key)
        self._commit([Event("PUT", key, bytes(value), rev, prev_value=None)])
        return rev

    async def create_many(self, items: Sequence[tuple[str, bytes]]) -> builtins.list[int | None]:
        await asyncio.sleep(0)
        self._check_open()
        if len({key for key, _ in items}) != len(items):
            raise StoreError("create_many: a key is given twice")
        fresh = [key not in self._data for key, _ in items]
        if not any(fresh):
            return [None] * len(items)
        self._revision += 1
        rev = self._revision
        events = []
        for (key, value), ok in zip(items, fresh, strict=True):
            if ok:
                self._data[key] = KV(key, bytes(value), rev, rev)
                events.append(Event("PUT", key, bytes(value), rev, prev_value=None))
        self._commit(events)
        return [rev if ok else None for ok in fresh]

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        await asyncio.sleep(0)
        self._check_open()
        old = self._expect(key, expected_revision)
        self._revision += 1
        rev = self._revision
        # The key keeps its lease, like etcd's put with ignore_lease.
        self._data[key] = KV(key, bytes(value), rev, old.create_revision, old.lease)
        self._commit([Event("PUT", key, bytes(value), rev, prev_value=old.value)])
        return rev

    async def update_many(self, items: Sequence[tuple[str, bytes, int]]) -> builtins.list[int | None]:
        """See Store.update_many. All items share one revision however many
        there are: the split into several transactions is a limit of etcd's,
        which the protocol allows but does not promise at any given size."""
        check_update_many(items)  # first, as in EtcdStore: ValueError even when closed
        if not items:
            return []
        await asyncio.sleep(0)
        self._check_open()
        olds = [self._data.get(key) for key, _, _ in items]
        ok = [old is not None and old.mod_revision == expected for old, (_, _, expected) in zip(olds, items, strict=True)]
        if not any(ok):
            return [None] * len(items)
        self._revision += 1
        rev = self._revision
        events = []
        for (key, value, _), old, written in zip(items, olds, ok, strict=True):
            if written and old is not None:
                # The key keeps its lease, like etcd's put with ignore_lease.
                self._data[key] = KV(key, bytes(value), rev, old.create_revision, old.lease)
                events.append(Event("PUT", key, bytes(value), rev, prev_value=old.value))
        self._commit(events)
        return [rev if written else None for written in ok]

    async def delete(self, key: str, expected_revision: int = 0) -> int:
        await asyncio.sleep(0)
        self._check_open()
        old = self._expect(key, expected_revision)
        self._revision += 1
        self._commit([self._remove_key(old, self._revision)])
        return self._revision

    async def compact(self, revision: int) -> None:
        await asyncio.sleep(0)
        self._check_open()
        if revision <= self._compacted:
            raise CompactedError(self._compacted)
        if revision > self._revision:
            raise StoreError(f"required revision {revision} is a future revision (current {self._revision})")
        self._compacted = revision
        # etcd keeps the revisions >= the compaction revision.
        cut = bisect.bisect_left(self._history, revision, key=lambda e: e.mod_revision)
        del self._history[:cut]
        for wakeup in list(self._wakeups):
            wakeup.set()

    # -- watch ---------------------------------------------------------------

    async def watch(self, prefix: str, start_revision: int, prev_kv: bool = True) -> AsyncIterator[Event]:
        """See Store.watch. start_revision 0 means "from the next write"."""
        self._check_open()
        next_rev = start_revision if start_revision > 0 else self._revision + 1
        wakeup = asyncio.Event()
        self._wakeups.add(wakeup)
        try:
            while True:
                self._check_open()
                # Cleared before reading, so a write after this point wakes us.
                wakeup.clear()
                if next_rev < self._compacted:
                    raise CompactedError(self._compacted)
                start = bisect.bisect_left(self._history, next_rev, key=lambda e: e.mod_revision)
                batch = [e for e in self._history[start:] if e.key.startswith(prefix)]
                # Everything up to the current revision is now seen, matching or not.
                next_rev = self._revision + 1
                for i, event in enumerate(batch):
                    last = i + 1 == len(batch) or batch[i + 1].mod_revision != event.mod_revision
                    if not prev_kv or event.last_in_revision != last:
                        event = dataclasses.replace(
                            event, last_in_revision=last,
                            prev_value=event.prev_value if prev_kv else None,
                            value=b"" if event.type == "DELETE" and not prev_kv else event.value)
                    yield event
                if not batch:
                    await wakeup.wait()
        finally:
            self._wakeups.discard(wakeup)

    # -- leases --------------------------------------------------------------

    def _arm(self, lease: _Lease) -> None:
        if lease.timer is not None:
            lease.timer.cancel()
        lease.timer = asyncio.get_running_loop().call_later(lease.ttl, self._expire, lease.id)

    def _expire(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id, None)
        if lease is None or self._closed:
            return
        if lease.timer is not None:
            lease.timer.cancel()
        keys = sorted(k for k in lease.keys if k in self._data)
        if not keys:
            return
        # All of a lease's keys go in one revision, as in etcd.
        self._revision += 1
        self._commit([self._remove_key(self._data[k], self._revision) for k in keys])

    async def grant_lease(self, ttl_seconds: int) -> int:
        await asyncio.sleep(0)
        self._check_open()
        lease = _Lease(next(self._lease_ids), max(1, int(ttl_seconds)))
        self._leases[lease.id] = lease
        self._arm(lease)
        return lease.id

    async def keepalive(self, lease: int) -> bool:
        await asyncio.sleep(0)
        self._check_open()
        found = self._leases.get(lease)
        if found is None:
            return False
        self._arm(found)
        return True

    async def revoke(self, lease: int) -> None:
        await asyncio.sleep(0)
        self._check_open()
        if lease not in self._leases:
            raise StoreError(f"lease {lease:x} not found")
        self._expire(lease)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for lease in self._leases.values():
            if lease.timer is not None:
                lease.timer.cancel()
        for wakeup in list(self._wakeups):
            wakeup.set()
