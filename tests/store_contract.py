"""The Store contract: one suite, run against MemoryStore (tests/unit/store/
test_store_contract.py) and EtcdStore (tests/integration/test_store_etcd.py).

A subclass provides two fixtures: `store` (a Store) and `prefix` (a key
prefix no other test writes under, ending in "/").
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from controlplane.store import (
    CompactedError,
    ConflictError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    Store,
    StoreError,
)
from tests.helpers import eventually


async def collect(store: Store, prefix: str, start: int, until_revision: int, timeout: float = 20.0) -> list[Event]:
    """Watch prefix from start until an event at until_revision arrives."""
    events: list[Event] = []
    try:
        async with asyncio.timeout(timeout):
            async with contextlib.aclosing(store.watch(prefix, start)) as stream:  # type: ignore[type-var]
                async for ev in stream:
                    events.append(ev)
                    if ev.mod_revision >= until_revision:
                        break
    except TimeoutError:
        last = events[-1].mod_revision if events else None
        pytest.fail(f"watch {prefix} from {start}: no event at revision {until_revision} after {timeout}s "
                    f"({len(events)} events, last at {last})")
    return events


class Collector:
    """A watch running in a task while the test writes; wait_until(rev)
    returns once the event at rev (or later) has arrived."""

    def __init__(self, store: Store, prefix: str, start: int) -> None:
        self.events: list[Event] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(store, prefix, start))

    async def _run(self, store: Store, prefix: str, start: int) -> None:
        try:
            async with contextlib.aclosing(store.watch(prefix, start)) as stream:  # type: ignore[type-var]
                async for ev in stream:
                    self.events.append(ev)
                    self._changed.set()
        except Exception as e:
            self.error = e
            self._changed.set()

    async def wait_until(self, revision: int, timeout: float = 20.0) -> list[Event]:
        try:
            async with asyncio.timeout(timeout):
                while not (self.events and self.events[-1].mod_revision >= revision):
                    if self.error is not None:
                        raise self.error
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            last = self.events[-1].mod_revision if self.events else None
            pytest.fail(f"watch: no event at revision {revision} after {timeout}s "
                        f"({len(self.events)} events, last at {last})")
        return self.events

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class StoreContract:
    # -- get / create / update / delete --------------------------------------

    async def test_get_missing(self, store: Store, prefix: str) -> None:
        assert await store.get(prefix + "nope") is None

    async def test_create_then_get(self, store: Store, prefix: str) -> None:
        rev = await store.create(prefix + "a", b"one")
        kv = await store.get(prefix + "a")
        assert kv is not None
        assert (kv.key, kv.value, kv.mod_revision, kv.create_revision) == (prefix + "a", b"one", rev, rev)
        assert await store.current_revision() == rev

    async def test_create_existing_is_rejected_and_changes_nothing(self, store: Store, prefix: str) -> None:
        rev = await store.create(prefix + "a", b"one")
        with pytest.raises(KeyExistsError):
            await store.create(prefix + "a", b"two")
        kv = await store.get(prefix + "a")
        assert kv is not None and (kv.value, kv.mod_revision) == (b"one", rev)

    async def test_create_many_is_one_revision_and_skips_existing_keys(self, store: Store, prefix: str) -> None:
        r0 = await store.create(prefix + "b", b"old")
        got = await store.create_many([(prefix + "a", b"1"), (prefix + "b", b"new"), (prefix + "c", b"3")])
        rev = got[0]
        assert rev is not None and rev > r0 and got == [rev, None, rev]
        kvs, _ = await store.list(prefix)
        assert [(kv.key[len(prefix):], kv.value, kv.mod_revision) for kv in kvs] == [
            ("a", b"1", rev), ("b", b"old", r0), ("c", b"3", rev)]
        events = []
        async with asyncio.timeout(20), contextlib.aclosing(store.watch(prefix, r0 + 1)) as stream:  # type: ignore[type-var]
            async for ev in stream:
                events.append(ev)
                if len(events) == 2:
                    break
        assert [(e.type, e.key[len(prefix):], e.mod_revision, e.prev_value) for e in events] == [
            ("PUT", "a", rev, None), ("PUT", "c", rev, None)]

    async def test_create_many_of_existing_keys_writes_nothing(self, store: Store, prefix: str) -> None:
        r0 = await store.create(prefix + "a", b"one")
        assert await store.create_many([(prefix + "a", b"two")]) == [None]
        assert await store.create_many([]) == []
        kv = await store.get(prefix + "a")
        assert kv is not None and (kv.value, kv.mod_revision) == (b"one", r0)

    async def test_create_many_in_several_transactions(self, store: Store, prefix: str) -> None:
        # More items than one etcd transaction may hold: each is created once.
        items = [(f"{prefix}k{i:03d}", b"x" * 100) for i in range(250)]
        got = await store.create_many(items)
        assert all(r is not None for r in got) and got == sorted(got)  # type: ignore[type-var]
        kvs, _ = await store.list(prefix)
        assert [kv.key for kv in kvs] == [k for k, _ in items]
        assert [kv.mod_revision for kv in kvs] == got

    async def test_create_many_rejects_a_key_given_twice(self, store: Store, prefix: str) -> None:
        with pytest.raises(StoreError):
            await store.create_many([(prefix + "a", b"1"), (prefix + "a", b"2")])
        assert await store.get(prefix + "a") is None

    async def test_update_many_is_one_revision_and_values_are_readable(self, store: Store, prefix: str) -> None:
        lease = await store.grant_lease(60)
        before = {name: await store.create(prefix + name, b"old", lease=lease if name == "b" else 0) for name in "abc"}
        # Not in key order, so that a store writing in key order shows.
        got = await store.update_many([(prefix + n, n.encode() * 2, before[n]) for n in "cab"])
        rev = got[0]
        assert rev is not None and rev > max(before.values()) and got == [rev, rev, rev]
        assert await store.current_revision() == rev
        for n in "abc":
            kv = await store.get(prefix + n)
            assert kv is not None
            assert (kv.value, kv.mod_revision, kv.create_revision) == (n.encode() * 2, rev, before[n])
            # An update keeps the key's lease.
            assert kv.lease == (lease if n == "b" else 0)
        assert await store.update_many([]) == []
        await store.revoke(lease)

    async def test_update_many_stale_revision_fails_only_its_own_item(self, store: Store, prefix: str) -> None:
        ra = await store.create(prefix + "a", b"a1")
        rb = await store.create(prefix + "b", b"b1")
        rc = await store.create(prefix + "c", b"c1")
        ra2 = await store.update(prefix + "a", b"a2", ra)
        got = await store.update_many([(prefix + "a", b"a3", ra), (prefix + "b", b"b2", rb), (prefix + "c", b"c2", rc)])
        rev = got[1]
        assert rev is not None and rev > ra2 and got == [None, rev, rev]
        kvs, _ = await store.list(prefix)
        assert [(kv.key[len(prefix):], kv.value, kv.mod_revision) for kv in kvs] == [
            ("a", b"a2", ra2), ("b", b"b2", rev), ("c", b"c2", rev)]

    async def test_update_many_of_a_missing_key_gives_none(self, store: Store, prefix: str) -> None:
        ra = await store.create(prefix + "a", b"a1")
        got = await store.update_many([(prefix + "gone", b"x", ra), (prefix + "a", b"a2", ra)])
        rev = got[1]
        assert rev is not None and rev > ra and got == [None, rev]
        assert await store.get(prefix + "gone") is None
        # Nothing to write: no revision is used.
        assert await store.update_many([(prefix + "gone", b"x", rev), (prefix + "a", b"a3", ra)]) == [None, None]
        assert await store.current_revision() == rev
        kv = await store.get(prefix + "a")
        assert kv is not None and (kv.value, kv.mod_revision) == (b"a2", rev)

    async def test_update_many_is_one_put_event_per_written_key_in_item_order(self, store: Store, prefix: str) -> None:
        revs = {n: await store.create(prefix + n, n.encode()) for n in "abcd"}
        watch = Collector(store, prefix, max(revs.values()) + 1)
        try:
            got = await store.update_many([(prefix + "d", b"d2", revs["d"]), (prefix + "b", b"b2", revs["b"]),
                                           (prefix + "c", b"c2", revs["b"]), (prefix + "a", b"a2", revs["a"])])
            rev = got[0]
            assert rev is not None and got == [rev, rev, None, rev]
            marker = await store.create(prefix + "z", b"marker")
            events = await watch.wait_until(marker)
        finally:
            await watch.close()
        assert [(e.type, e.key[len(prefix):], e.value, e.mod_revision, e.prev_value) for e in events] == [
            ("PUT", "d", b"d2", rev, b"d"), ("PUT", "b", b"b2", rev, b"b"), ("PUT", "a", b"a2", rev, b"a"),
            ("PUT", "z", b"marker", marker, None)]
        # Only the last event of a revision is marked so (the watch cache
        # delivers a revision whole on that mark).
        assert [e.last_in_revision for e in events] == [False, False, True, True]

    @pytest.mark.parametrize("bad", ["repeated key", "expected 0", "expected -1"])
    async def test_update_many_rejects_bad_items_and_writes_nothing(self, store: Store, prefix: str, bad: str) -> None:
        ra = await store.create(prefix + "a", b"a1")
        rb = await store.create(prefix + "b", b"b1")
        # The bad item comes last: the check must come before any write.
        last = {"repeated key": (prefix + "a", b"a3", ra), "expected 0": (prefix + "c", b"c1", 0),
                "expected -1": (prefix + "c", b"c1", -1)}[bad]
        with pytest.raises(ValueError, match=r"update_many: items\[2\]"):
            await store.update_many([(prefix + "a", b"a2", ra), (prefix + "b", b"b2", rb), last])
        assert await store.current_revision() == rb
        kvs, _ = await store.list(prefix)
        assert [(kv.key[len(prefix):], kv.value, kv.mod_revision) for kv in kvs] == [("a", b"a1", ra), ("b", b"b1", rb)]

    async def test_update_many_in_several_transactions(self, store: Store, prefix: str) -> None:
        # More items than one etcd transaction may hold (128 ops): each is
        # updated once, with the result in its own place; one stale item in
        # a later chunk fails alone.
        keys = [f"{prefix}k{i:03d}" for i in range(250)]
        created = await store.create_many([(k, b"old") for k in keys])
        assert all(r is not None for r in created)
        items = [(k, b"new%d" % i, r) for i, (k, r) in enumerate(zip(keys, created, strict=True))]
        items[170] = (keys[170], b"stale", 1)
        got = await store.update_many(items)
        assert got[170] is None
        written = got[:170] + got[171:]
        assert all(r is not None for r in written) and written == sorted(written)  # type: ignore[type-var]
        assert min(written) > max(created)  # type: ignore[type-var]
        kvs, _ = await store.list(prefix)
        assert [(kv.key, kv.value) for kv in kvs] == [
            (k, b"old" if i == 170 else b"new%d" % i) for i, k in enumerate(keys)]
        assert [kv.mod_revision for kv in kvs] == [created[170] if i == 170 else r for i, r in enumerate(got)]

    async def test_update_many_splits_by_size_too(self, store: Store, prefix: str) -> None:
        # Few items, but more bytes than one etcd request may carry (1.5 MiB).
        keys = [f"{prefix}big{i}" for i in range(4)]
        created = await store.create_many([(k, b"old") for k in keys])
        got = await store.update_many([(k, bytes([65 + i]) * 600_000, r)
                                       for i, (k, r) in enumerate(zip(keys, created, strict=True))])
        assert all(r is not None for r in got) and got == sorted(got)  # type: ignore[type-var]
        kvs, _ = await store.list(prefix)
        assert [(kv.value[:1], len(kv.value), kv.mod_revision) for kv in kvs] == [
            (bytes([65 + i]), 600_000, r) for i, r in enumerate(got)]

    async def test_watch_without_prev_kv_carries_no_previous_values(self, store: Store, prefix: str) -> None:
        r1 = await store.create(prefix + "a", b"one")
        r2 = await store.update(prefix + "a", b"two", r1)
        r3 = await store.delete(prefix + "a")
        events = []
        async with asyncio.timeout(20), contextlib.aclosing(  # type: ignore[type-var]
                store.watch(prefix, r1, prev_kv=False)) as stream:
            async for ev in stream:
                events.append(ev)
                if ev.mod_revision >= r3:
                    break
        assert [(e.type, e.value, e.mod_revision, e.prev_value) for e in events] == [
            ("PUT", b"one", r1, None), ("PUT", b"two", r2, None), ("DELETE", b"", r3, None)]
        # The default still carries them.
        with_prev = await collect(store, prefix, r2, r3)
        assert [(e.type, e.value, e.prev_value) for e in with_prev] == [("PUT", b"two", b"one"), ("DELETE", b"two", b"two")]

    async def test_update_with_current_revision(self, store: Store, prefix: str) -> None:
        r1 = await store.create(prefix + "a", b"one")
        r2 = await store.update(prefix + "a", b"two", r1)
        assert r2 > r1
        kv = await store.get(prefix + "a")
        assert kv is not None
        assert (kv.value, kv.mod_revision, kv.create_revision) == (b"two", r2, r1)

    async def test_stale_update_is_a_conflict_and_changes_nothing(self, store: Store, prefix: str) -> None:
        r1 = await store.create(prefix + "a", b"one")
        r2 = await store.update(prefix + "a", b"two", r1)
        with pytest.raises(ConflictError) as err:
            await store.update(prefix + "a", b"three", r1)
        assert err.value.current_revision == r2
        assert err.value.key == prefix + "a"
        kv = await store.get(prefix + "a")
        assert kv is not None and (kv.value, kv.mod_revision) == (b"two", r2)

    async def test_unconditional_update(self, store: Store, prefix: str) -> None:
        await store.create(prefix + "a", b"one")
        rev = await store.update(prefix + "a", b"two", 0)
        kv = await store.get(prefix + "a")
        assert kv is not None and (kv.value, kv.mod_revision) == (b"two", rev)

    async def test_update_missing(self, store: Store, prefix: str) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.update(prefix + "nope", b"x", 0)
        with pytest.raises(KeyNotFoundError):
            await store.update(prefix + "nope", b"x", 5)
        assert await store.get(prefix + "nope") is None

    async def test_delete(self, store: Store, prefix: str) -> None:
        r1 = await store.create(prefix + "a", b"one")
        r2 = await store.delete(prefix + "a", r1)
        assert r2 > r1
        assert await store.get(prefix + "a") is None
        with pytest.raises(KeyNotFoundError):
            await store.delete(prefix + "a")

    async def test_stale_delete_is_a_conflict(self, store: Store, prefix: str) -> None:
        r1 = await store.create(prefix + "a", b"one")
        r2 = await store.update(prefix + "a", b"two", r1)
        with pytest.raises(ConflictError) as err:
            await store.delete(prefix + "a", r1)
        assert err.value.current_revision == r2
        assert await store.get(prefix + "a") is not None
        await store.delete(prefix + "a")
        assert await store.get(prefix + "a") is None

    async def test_recreate_after_delete(self, store: Store, prefix: str) -> None:
        await store.create(prefix + "a", b"one")
        await store.delete(prefix + "a")
        rev = await store.create(prefix + "a", b"again")
        kv = await store.get(prefix + "a")
        assert kv is not None and (kv.value, kv.create_revision) == (b"again", rev)

    async def test_revisions_are_global_and_strictly_increasing(self, store: Store, prefix: str) -> None:
        revs = [await store.create(prefix + f"k{i}", b"v") for i in range(5)]
        revs.append(await store.update(prefix + "k0", b"w", revs[0]))
        revs.append(await store.delete(prefix + "k1"))
        assert revs == sorted(set(revs))
        assert await store.current_revision() == revs[-1]

    # -- list ----------------------------------------------------------------

    async def test_list_is_sorted_prefix_bounded_and_returns_the_revision(self, store: Store, prefix: str) -> None:
        for name in ["c", "a", "b"]:
            await store.create(prefix + "items/" + name, name.encode())
        # A sibling whose name extends the prefix string must not leak into an
        # exact-directory listing ("items/" vs "itemsX/").
        await store.create(prefix + "itemsX/z", b"z")
        items, rev = await store.list(prefix + "items/")
        assert [kv.key for kv in items] == [prefix + "items/" + n for n in "abc"]
        assert [kv.value for kv in items] == [b"a", b"b", b"c"]
        assert rev == await store.current_revision()
        assert rev >= max(kv.mod_revision for kv in items)
        empty, rev2 = await store.list(prefix + "none/")
        assert empty == [] and rev2 == rev

    # -- CAS under concurrency -----------------------------------------------

    async def test_concurrent_increments_lose_nothing(self, store: Store, prefix: str) -> None:
        key = prefix + "counter"
        await store.create(key, b"0")
        successes = conflicts = 0

        async def worker() -> None:
            nonlocal successes, conflicts
            for _ in range(8):
                kv = await store.get(key)
                assert kv is not None
                try:
                    await store.update(key, str(int(kv.value) + 1).encode(), kv.mod_revision)
                    successes += 1
                except ConflictError:
                    conflicts += 1

        await asyncio.gather(*(worker() for _ in range(16)))
        kv = await store.get(key)
        assert kv is not None
        assert successes + conflicts == 16 * 8
        assert int(kv.value) == successes
        # 16 writers that all read before writing must collide.
        assert conflicts > 0

    # -- watch ---------------------------------------------------------------

    async def test_list_then_watch_misses_nothing_across_1000_writes(self, store: Store, prefix: str) -> None:
        p = prefix + "many/"
        for i in range(10):
            await store.create(p + f"pre{i}", b"x")
        _, rev = await store.list(p)
        expected: list[int] = []

        async def writer(w: int) -> None:
            # 10 writers x 100 writes: creates, updates and deletes.
            key = p + f"w{w}"
            r = await store.create(key, b"0")
            expected.append(r)
            for i in range(1, 99):
                r = await store.update(key, str(i).encode(), r)
                expected.append(r)
            expected.append(await store.delete(key, r))

        watch = Collector(store, p, rev + 1)
        try:
            await asyncio.gather(*(writer(w) for w in range(10)))
            assert len(expected) == 1000
            events = list(await watch.wait_until(max(expected)))
        finally:
            await watch.close()
        revs = [e.mod_revision for e in events]
        assert revs == sorted(expected), "watch from list revision + 1 missed, duplicated or reordered events"
        assert sum(e.type == "DELETE" for e in events) == 10

    async def test_concurrent_watch_sees_writes_live(self, store: Store, prefix: str) -> None:
        rev = await store.current_revision()
        watch = Collector(store, prefix, rev + 1)
        try:
            revs = [await store.create(prefix + f"live{i}", b"v") for i in range(50)]
            events = await watch.wait_until(revs[-1])
            assert [e.mod_revision for e in events] == revs
        finally:
            await watch.close()

    async def test_watch_replays_history_and_orders_events(self, store: Store, prefix: str) -> None:
        r1 = await store.create(prefix + "b", b"1")
        r2 = await store.create(prefix + "a", b"2")
        r3 = await store.update(prefix + "b", b"3", r1)
        await store.create(prefix.rstrip("/") + "-other/x", b"not mine")
        r4 = await store.delete(prefix + "a", r2)
        events = await collect(store, prefix, r1, until_revision=r4)
        assert [(e.type, e.key, e.value, e.mod_revision, e.prev_value) for e in events] == [
            ("PUT", prefix + "b", b"1", r1, None),
            ("PUT", prefix + "a", b"2", r2, None),
            ("PUT", prefix + "b", b"3", r3, b"1"),
            ("DELETE", prefix + "a", b"2", r4, b"2"),
        ]
        # From the middle of history.
        later = await collect(store, prefix, r3, until_revision=r4)
        assert [e.mod_revision for e in later] == [r3, r4]

    async def test_delete_event_carries_the_previous_value(self, store: Store, prefix: str) -> None:
        r1 = await store.create(prefix + "gone", b"last words")
        r2 = await store.update(prefix + "gone", b"final words", r1)
        r3 = await store.delete(prefix + "gone", r2)
        events = await collect(store, prefix, r3, until_revision=r3)
        assert len(events) == 1
        ev = events[0]
        assert (ev.type, ev.key, ev.value, ev.prev_value, ev.mod_revision) == (
            "DELETE", prefix + "gone", b"final words", b"final words", r3)

    # -- compaction ----------------------------------------------------------

    async def test_compacted_watch_raises_then_relist_and_watch_works(self, store: Store, prefix: str) -> None:
        r1 = await store.create(prefix + "a", b"1")
        r = r1
        for i in range(2, 6):
            r = await store.update(prefix + "a", str(i).encode(), r)
        await store.compact(r)
        with pytest.raises(CompactedError) as err:
            await collect(store, prefix, r1, until_revision=r)
        assert err.value.compact_revision >= r
        # Relist, then watch from the list's revision + 1.
        items, rev = await store.list(prefix)
        assert [(kv.key, kv.value) for kv in items] == [(prefix + "a", b"5")]
        r_new = await store.update(prefix + "a", b"6", r)
        events = await collect(store, prefix, rev + 1, until_revision=r_new)
        assert [(e.value, e.mod_revision) for e in events] == [(b"6", r_new)]

    async def test_compacting_an_old_revision_again_is_an_error(self, store: Store, prefix: str) -> None:
        r = await store.create(prefix + "a", b"1")
        await store.compact(r)
        with pytest.raises(StoreError):
            await store.compact(r)

    # -- leases --------------------------------------------------------------

    async def test_lease_expiry_deletes_keys_with_a_delete_event(self, store: Store, prefix: str) -> None:
        lease = await store.grant_lease(1)
        r1 = await store.create(prefix + "leased", b"v", lease=lease)
        await store.create(prefix + "kept", b"v")
        kv = await store.get(prefix + "leased")
        assert kv is not None and kv.lease == lease

        async def gone() -> bool:
            return await store.get(prefix + "leased") is None

        await eventually("the leased key to vanish after its lease expired", gone, timeout=15)
        assert await store.get(prefix + "kept") is not None
        assert await store.keepalive(lease) is False
        rev = await store.current_revision()
        events = await collect(store, prefix + "leased", r1, until_revision=rev)
        assert [e.type for e in events] == ["PUT", "DELETE"]
        assert events[1].prev_value == b"v"

    async def test_keepalive_keeps_and_revoke_deletes(self, store: Store, prefix: str) -> None:
        lease = await store.grant_lease(1)
        r1 = await store.create(prefix + "leased", b"v", lease=lease)
        # An update keeps the key's lease.
        await store.update(prefix + "leased", b"w", r1)
        kv = await store.get(prefix + "leased")
        assert kv is not None and kv.lease == lease
        for _ in range(5):
            assert await store.keepalive(lease) is True
            await asyncio.sleep(0.3)  # 1.5 s in all, longer than the 1 s TTL: keepalive must be what keeps it
        assert await store.get(prefix + "leased") is not None
        await store.revoke(lease)
        assert await store.get(prefix + "leased") is None
        assert await store.keepalive(lease) is False

    async def test_create_with_unknown_lease_fails(self, store: Store, prefix: str) -> None:
        with pytest.raises(StoreError):
            await store.create(prefix + "x", b"v", lease=0x7777_7777)
        assert await store.get(prefix + "x") is None

    # -- close ---------------------------------------------------------------

    async def test_close_ends_watches_with_a_store_error(self, store: Store, prefix: str) -> None:
        rev = await store.create(prefix + "a", b"1")
        watch = Collector(store, prefix, rev)
        await watch.wait_until(rev)
        await store.close()
        async with asyncio.timeout(5):
            while watch.error is None:
                await watch._changed.wait()
                watch._changed.clear()
        assert isinstance(watch.error, StoreError) and "closed" in str(watch.error)
        with pytest.raises(StoreError):
            await store.get(prefix + "a")
        await watch.close()

    # -- more edges ----------------------------------------------------------

    async def test_revoking_a_lease_deletes_its_keys_in_one_revision(self, store: Store, prefix: str) -> None:
        lease = await store.grant_lease(30)
        r1 = await store.create(prefix + "x", b"1", lease=lease)
        await store.create(prefix + "y", b"2", lease=lease)
        watch_all = Collector(store, prefix, r1)
        await store.revoke(lease)
        rev = await store.current_revision()
        # A watch starting at the revoke's revision gets both deletes, not half.
        watch_rev = Collector(store, prefix, rev)
        try:
            marker = await store.create(prefix + "z", b"3")
            for watch in (watch_all, watch_rev):
                got = [e for e in await watch.wait_until(marker) if e.mod_revision >= rev]
                assert sorted((e.type, e.key, e.mod_revision, e.prev_value) for e in got) == [
                    ("DELETE", prefix + "x", rev, b"1"),
                    ("DELETE", prefix + "y", rev, b"2"),
                    ("PUT", prefix + "z", marker, None),
                ]
        finally:
            await watch_all.close()
            await watch_rev.close()

    async def test_watch_from_zero_starts_at_the_next_write(self, store: Store, prefix: str) -> None:
        await store.create(prefix + "old", b"1")
        stream = store.watch(prefix, 0)
        first = asyncio.ensure_future(anext(stream))  # type: ignore[arg-type]
        revs = []
        try:
            async with asyncio.timeout(10):
                # The watch starts inside the first anext(), at some point
                # among these writes; it must deliver one of them, never "old".
                while not first.done():
                    revs.append(await store.create(prefix + f"new{len(revs)}", b"2"))
                    await asyncio.sleep(0.01)
                ev = await first
        finally:
            if not first.done():
                first.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first
            await stream.aclose()  # type: ignore[attr-defined]
        assert ev.key != prefix + "old"
        assert ev.mod_revision in revs and ev.key == prefix + f"new{revs.index(ev.mod_revision)}"
