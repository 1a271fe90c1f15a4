"""The watch cache's fan-out over a MemoryStore (a fake store: unit test)."""

from __future__ import annotations

import asyncio
import collections

import pytest

from controlplane.apiserver.registry import Registry
from controlplane.apiserver.watchcache import Filter, WatchCache
from controlplane.store import MemoryStore
from pkapi import meta, selectors
from pkapi.errors import ApiError
from pkapi.v1 import core_pb2
from tests.helpers import eventually

PODS = meta.kind_by_resource("pods")


def pod(name: str, **labels: str) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.labels.update(labels)
    p.spec.containers.add(name="c", image="i:1")
    return p


@pytest.fixture
async def env():
    store = MemoryStore()
    reg = Registry(store)
    await reg.ensure_system_namespaces()
    cache = WatchCache(store, PODS, history=50, queue_limit=10, bookmark_interval=3600)
    await cache.start()
    yield reg, cache
    await cache.stop()
    await reg.close()


_buffered: dict[int, list] = {}


async def next_event(source, timeout=5.0):
    """The next event of a Watcher (next()) or a stream generator
    (__anext__()), which give a message's events as a list."""
    buf = _buffered.setdefault(id(source), [])
    if not buf:
        get = source.next if hasattr(source, "next") else source.__anext__
        buf.extend(await asyncio.wait_for(get(), timeout))
    return buf.pop(0).event


async def drain(w, n, timeout=5.0):
    out = []
    for _ in range(n):
        ev = await next_event(w, timeout)
        out.append((ev.type, meta.unwrap(ev.object).metadata.name))
    return out



async def test_slow_watcher_is_cut_off_without_stalling_others(env):
    reg, cache = env
    fast = cache.subscribe(Filter(), cache.revision, False)
    slow = cache.subscribe(Filter(), cache.revision, False)
    got: list[str] = []

    async def consume():
        while len(got) < 50:
            ev = await next_event(fast)
            got.append(meta.unwrap(ev.object).metadata.name)

    task = asyncio.ensure_future(consume())
    for i in range(50):
        await reg.create(pod(f"p{i}"))
    await asyncio.wait_for(task, 5)
    assert got == [f"p{i}" for i in range(50)]
    with pytest.raises(ApiError) as e:
        while True:
            await next_event(slow, 1)
    assert e.value.reason == "Expired" and "too slow" in e.value.message
    assert slow not in cache.watchers and fast in cache.watchers


async def test_selector_transitions_and_replay(env):
    reg, cache = env
    start = cache.revision
    flt = Filter("default", selectors.parse_label_selector("app=web"), selectors.FieldSelectorExpr())
    w = cache.subscribe(flt, start, False)
    await reg.create(pod("a", app="web"))
    await reg.create(pod("b", app="db"))
    a = await reg.get("pods", "default", "a")
    a.metadata.labels["app"] = "api"
    await reg.update(a)
    b = await reg.get("pods", "default", "b")
    b.metadata.labels["app"] = "web"
    await reg.update(b)
    await reg.delete("pods", "default", "b")
    want = [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "b"), ("DELETED", "b")]
    assert await drain(w, 4) == want
    await eventually("cache to catch up", lambda: cache.revision >= int(b.metadata.resource_version) + 1, interval=0.005)
    # a late watcher from the same revision replays the same history
    late = cache.subscribe(flt, start, False)
    assert await drain(late, 4) == want
    # from "now" (None): ADDED for current objects only
    await reg.create(pod("c", app="web"))
    await eventually("c in the cache", lambda: "/registry/pods/default/c" in cache.objects, interval=0.005)
    now = cache.subscribe(flt, None, False)
    assert await drain(now, 1) == [("ADDED", "c")]


async def test_horizon(env):
    reg, cache = env
    first = cache.revision
    for i in range(60):
        await reg.create(pod(f"p{i}"))
    await eventually("60 pods in the cache", lambda: len(cache.objects) == 60, interval=0.005)
    assert not cache.can_serve(first)
    assert cache.can_serve(cache.revision - 10)
    # an old revision is served by a direct store watch, then by the cache
    # once that stream reaches the cache's history
    gen = cache.stream(Filter(), first, False)
    names = []
    for _ in range(60):
        ev = await next_event(gen)
        assert ev.type == "ADDED"
        names.append(meta.unwrap(ev.object).metadata.name)
    assert names == [f"p{i}" for i in range(60)]
    assert len(cache.watchers) == 1, "the stream did not move onto the cache"
    await reg.create(pod("live"))
    ev = await next_event(gen)
    assert meta.unwrap(ev.object).metadata.name == "live"
    await gen.aclose()
    assert not cache.watchers


async def test_indexed_watchers_see_objects_enter_and_leave_their_value(env):
    """Watchers indexed by a field=value requirement (spec.nodeName=n1,
    status.phase=Running) get ADDED when a pod takes that value and DELETED
    when it leaves it; other values' watchers, != watchers and unindexed
    watchers behave as without the index."""
    reg, cache = env
    start = cache.revision

    def sub(sel: str):
        return cache.subscribe(Filter(fields=selectors.parse_field_selector(sel)), start, False)

    n1, n2, neq, running = sub("spec.nodeName=n1"), sub("spec.nodeName=n2"), sub("spec.nodeName!=n1"), \
        sub("status.phase=Running")
    everyone = cache.subscribe(Filter(), start, False)
    p = await reg.create(pod("a"))
    p.spec.node_name = "n1"
    p = await reg.update(p)
    p.status.phase = "Running"
    p = await reg.update_status(p)
    p.status.phase = "Succeeded"
    p = await reg.update_status(p)
    await reg.delete("pods", "default", "a", grace_period_seconds=0)
    await eventually("5 events for the unfiltered watcher", lambda: everyone.pending() == 5, interval=0.005)
    assert await drain(n1, 4) == [("ADDED", "a"), ("MODIFIED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert await drain(neq, 2) == [("ADDED", "a"), ("DELETED", "a")]
    assert await drain(running, 2) == [("ADDED", "a"), ("DELETED", "a")]
    assert n1.pending() == 0 and n2.pending() == 0 and running.pending() == 0 and neq.pending() == 0
    for w in (n1, n2, running):
        cache.unsubscribe(w)
    assert not cache._indexed and not cache._index_fields


async def test_events_are_served_without_a_cache():
    """Events are watched straight from the store (Kubernetes' watch-cache
    size 0 for events): current ones first without a revision, then live
    changes, filtered; from a revision, only what came after it."""
    from controlplane.apiserver.watchcache import UncachedWatch, WatchCaches

    store = MemoryStore()
    reg = Registry(store)
    await reg.ensure_system_namespaces()
    caches = WatchCaches(store)
    reg.caches = caches
    try:
        kind = meta.kind_by_resource("events")
        await caches.start_all()
        c = await caches.get(kind)
        assert isinstance(c, UncachedWatch) and not c.objects

        def event(name: str, pod_name: str) -> core_pb2.Event:
            ev = core_pb2.Event(reason="Scheduled", message="m", type="Normal", count=1)
            ev.metadata.name, ev.metadata.namespace = name, "default"
            ev.involved_object.kind, ev.involved_object.name, ev.involved_object.namespace = "Pod", pod_name, "default"
            return ev

        first = await reg.create(event("e1", "a"))
        flt = Filter(fields=selectors.parse_field_selector("involvedObject.name=a"))
        live = c.stream(flt, None, False)
        since = c.stream(Filter(), int(first.metadata.resource_version), False)
        assert (await next_event(live)).type == "ADDED"
        await reg.create(event("e2", "b"))
        await reg.create(event("e3", "a"))
        ev = await next_event(live)
        assert (ev.type, meta.unwrap(ev.object).metadata.name) == ("ADDED", "e3")
        names = [meta.unwrap((await next_event(since)).object).metadata.name for _ in range(2)]
        assert names == ["e2", "e3"]
        await live.aclose()
        await since.aclose()
        assert reg._cached(kind, "default", "e1") is None
    finally:
        await caches.stop()
        await reg.close()


async def test_deleted_event_is_the_last_state_at_the_deletion_revision(env):
    """The cache's store watch carries no previous values (prev_kv off): a
    DELETED event is the cached object, at the deletion's revision."""
    reg, cache = env
    w = cache.subscribe(Filter(), cache.revision, False)
    created = await reg.create(pod("gone", app="x"))
    out = await reg.delete("pods", "default", "gone", grace_period_seconds=0)
    evs = [await next_event(w) for _ in range(2)]
    assert [e.type for e in evs] == ["ADDED", "DELETED"]
    deleted = meta.unwrap(evs[1].object)
    assert deleted.metadata.resource_version == out.metadata.resource_version
    assert int(deleted.metadata.resource_version) > int(created.metadata.resource_version)
    assert deleted.metadata.labels["app"] == "x" and deleted.metadata.uid == created.metadata.uid
    # The cached ADDED event was not changed by the copy.
    assert meta.unwrap(evs[0].object).metadata.resource_version == created.metadata.resource_version
    cache.unsubscribe(w)


async def test_a_revision_of_many_objects_is_one_group_never_split(env):
    """A batch create writes many pods at one revision: each watcher gets
    them as one group, and a stream message holds whole groups only
    (MAX_EVENTS_PER_MESSAGE), so a client resuming from the last event it
    got never misses the rest of a revision."""
    from controlplane.apiserver import watchcache

    reg, cache = env
    cache.queue_limit = 10_000
    cache.history = collections.deque(cache.history, maxlen=1_000)
    start = cache.revision
    w = cache.subscribe(Filter(), start, False)
    w.limit = 10_000
    web = Filter("default", selectors.parse_label_selector("app=web"), selectors.FieldSelectorExpr())
    only_web = cache.subscribe(web, start, False)
    only_web.limit = 10_000
    await reg.create(pod("solo"))
    out = await reg.create_many([pod(f"b{i}", app="web" if i % 2 else "db") for i in range(30)])
    assert len({o.metadata.resource_version for o in out}) == 1
    await eventually("31 events queued", lambda: w.pending() == 31, interval=0.005)
    msg = await w.next()  # both revisions fit in one message
    assert [e.event.type for e in msg] == ["ADDED"] * 31
    assert [meta.unwrap(e.event.object).metadata.name for e in msg] == ["solo"] + [f"b{i}" for i in range(30)]
    web_msg = await only_web.next()  # the filtered watcher: its part of the revision, together
    assert [meta.unwrap(e.event.object).metadata.name for e in web_msg] == [f"b{i}" for i in range(1, 30, 2)]
    # Messages are cut between revisions, never inside one.
    old = watchcache.MAX_EVENTS_PER_MESSAGE
    watchcache.MAX_EVENTS_PER_MESSAGE = 20
    try:
        await reg.create(pod("solo2"))
        await reg.create_many([pod(f"c{i}") for i in range(30)])
        await reg.create(pod("solo3"))
        await eventually("32 events queued", lambda: w.pending() == 32, interval=0.005)
        sizes = [len(await asyncio.wait_for(w.next(), 5)) for _ in range(3)]
        assert sizes == [1, 30, 1], sizes
        # A late watcher's replay of the history is grouped by revision too.
        late = cache.subscribe(Filter(), start, False)
        replay = [len(await asyncio.wait_for(late.next(), 5)) for _ in range(5)]
        assert replay == [1, 30, 1, 30, 1], replay
    finally:
        watchcache.MAX_EVENTS_PER_MESSAGE = old


async def test_peek_gives_a_copy_of_the_cached_object_and_its_revision():
    """WatchCaches.peek: the cached object (the caller's own copy) at its
    revision; None for an uncached kind, a cache not started, a miss."""
    from controlplane.apiserver.watchcache import WatchCaches

    store = MemoryStore()
    caches = WatchCaches(store)
    reg = Registry(store, caches=caches)
    await reg.ensure_system_namespaces()
    try:
        created = await reg.create(pod("a"))
        assert caches.peek(PODS, "default", "a") is None  # not started yet
        await caches.start_all()
        got = caches.peek(PODS, "default", "a")
        assert got is not None
        msg, rev = got
        assert (msg.metadata.uid, rev) == (created.metadata.uid, int(created.metadata.resource_version))
        msg.metadata.labels["mutated"] = "yes"
        again = caches.peek(PODS, "default", "a")
        assert again is not None and "mutated" not in again[0].metadata.labels
        assert caches.peek(PODS, "default", "b") is None
        assert caches.peek(PODS, "other", "a") is None
        assert caches.peek(meta.kind_by_resource("events"), "default", "a") is None
    finally:
        await caches.stop()
        await reg.close()
