"""The watch cache: one store watch per resource, fanned out to many
filtered client watches.

    store.watch(/registry/pods/) ──▶ WatchCache("pods")
                                       │ decode once, keep current objects
                                       │ and a bounded history of events
                                       ├──▶ Watcher (ns, labels, fields) ─▶ gRPC stream
                                       ├──▶ Watcher ...
                                       └──▶ Watcher ...

Ordering and delivery: the cache applies store events in revision order and
pushes them to every matching watcher synchronously (no await), so every
watcher sees a gap-free, duplicate-free, ordered stream. A watcher that
starts at revision R is first given the buffered events after R (or, with no
R, an ADDED event for each current object), registered in the same step, so
nothing falls between the replay and the live events.

Whole revisions: one store revision may hold many objects (a batch create
or bind writes them in one transaction). A watcher is given a revision's
events together, as one group, once the store marks the revision's last
event; a group is never split across stream messages. A client resumes
from the resourceVersion of the last event it received, so it must never
have received only part of a revision: it would miss the rest.

Filtering follows Kubernetes: an update that makes an object match a
watcher's selectors is delivered as ADDED, one that makes it stop matching
as DELETED.

Fan-out cost: a watcher whose field selector requires `field=value` (the
agents' spec.nodeName=<node>) is indexed by that pair, so a change is
matched only against the watchers indexed by its old and new values of
that field plus the unindexed ones (Kubernetes' watch-cache indexers):
a hundred node watches cost two lookups per pod change, not a hundred
filter evaluations.

Back-pressure: each watcher has a bounded queue. A watcher whose client
reads too slowly is cut off with Expired (the client relists and watches
again); it never stalls the cache or the other watchers.

Events are not cached (as Kubernetes' default watch-cache size 0 for
events): they are most of the writes of a busy cluster and few watch them,
so decoding and keeping each one cost the control plane CPU and memory for
nothing. Each watch of events is its own store watch (after a store list
when it gives no revision); Get and CAS read etcd.

A watch from a revision older than the cache's history is served by its
own store watch (etcd keeps history until compaction); a compacted
revision gives Expired ("too old resource version").
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, Iterable, Iterator, Mapping

from google.protobuf.message import Message

from controlplane.apiserver.codec import decode, parse_resource_version
from controlplane.store import CompactedError, Store, UnavailableError
from pkapi import meta, selectors
from pkapi.errors import ApiError, bad_request, expired
from pkapi.meta import Kind
from pkapi.v1 import api_pb2

log = logging.getLogger(__name__)

# A stream message holds whole revisions, up to this many events (more only
# when one revision alone is larger).
MAX_EVENTS_PER_MESSAGE = 500
# Events per message of a watch's initial ADDED events (no revision ties them).
INITIAL_CHUNK = 100


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class WireEvent:
    """One watch event as every watcher gets it: the WatchEvent and, made
    on first use and shared, its encoding as one item of WatchResponse's
    repeated field 1 (tag, length, bytes). A stream message is the
    concatenation of its events' frames, so an event is serialized once
    however many watchers it goes to."""

    __slots__ = ("event", "_frame")

    def __init__(self, event: api_pb2.WatchEvent) -> None:
        self.event = event
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            body = self.event.SerializeToString()
            self._frame = b"\x0a" + _varint(len(body)) + body
        return self._frame


@dataclass
class Entry:
    """An object as the cache holds it: decoded once, with what filters need."""

    msg: Message
    namespace: str
    labels: Mapping[str, str]
    fields: dict[str, str]
    _wire: dict[str, WireEvent] = field(default_factory=dict)

    def at(self, revision: int) -> Entry:
        """This object as of a later revision (its deletion's): a copy whose
        resourceVersion is that revision."""
        msg = meta.copy(self.msg)
        msg.metadata.resource_version = str(revision)  # type: ignore[attr-defined]
        return Entry(msg, self.namespace, self.labels, self.fields)

    def event(self, type_: str) -> WireEvent:
        # One event per (object, type), shared by every watcher.
        ev = self._wire.get(type_)
        if ev is None:
            ev = WireEvent(api_pb2.WatchEvent(type=type_, object=meta.wrap(self.msg)))
            self._wire[type_] = ev
        return ev


def make_entry(kind: Kind, value: bytes, revision: int) -> Entry:
    msg = decode(kind, value, revision)
    md = msg.metadata  # type: ignore[attr-defined]
    return Entry(msg, md.namespace, md.labels, selectors.object_fields(msg))


@dataclass
class Change:
    revision: int
    old: Entry | None  # None on create
    new: Entry | None  # None on delete


@dataclass
class Filter:
    namespace: str = ""
    labels: selectors.LabelSelectorExpr = field(default_factory=selectors.LabelSelectorExpr)
    fields: selectors.FieldSelectorExpr = field(default_factory=selectors.FieldSelectorExpr)

    def matches(self, e: Entry | None) -> bool:
        if e is None:
            return False
        if self.namespace and e.namespace != self.namespace:
            return False
        return self.labels.matches(e.labels) and self.fields.matches(e.fields)

    def translate(self, ch: Change) -> WireEvent | None:
        old_m, new_m = self.matches(ch.old), self.matches(ch.new)
        if ch.new is None:
            return ch.old.event("DELETED") if old_m and ch.old is not None else None
        if new_m:
            return ch.new.event("MODIFIED" if old_m else "ADDED")
        if old_m:
            return ch.new.event("DELETED")
        return None


def parse_selectors(kind: Kind, namespace: str, label: str, field: str) -> Filter:
    """The filter of a list or watch request (BadRequest for selectors
    that do not parse or name a field the kind cannot be selected by)."""
    try:
        lsel = selectors.parse_label_selector(label)
    except selectors.SelectorError as e:
        raise bad_request(f"unable to parse requirement: {e}") from None
    try:
        fsel = selectors.parse_field_selector(field)
    except selectors.SelectorError as e:
        raise bad_request(str(e)) from None
    selectors.check_field_selector(kind.kind, fsel)
    return Filter(namespace if kind.namespaced else "", lsel, fsel)


def _added_chunks(flt: Filter, entries: Iterable[Entry]) -> Iterator[list[WireEvent]]:
    """A watch's initial ADDED events for the entries flt matches, in
    messages of INITIAL_CHUNK."""
    chunk: list[WireEvent] = []
    for e in entries:
        if flt.matches(e):
            chunk.append(e.event("ADDED"))
            if len(chunk) >= INITIAL_CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


_CLOSED = object()


class Watcher:
    """One client's watch: a bounded queue of event groups (each a whole
    revision, or a chunk of initial events) the cache pushes into."""

    def __init__(self, flt: Filter, min_revision: int, bookmarks: bool, limit: int) -> None:
        self.filter = flt
        self.min_revision = min_revision
        self.bookmarks = bookmarks
        self.limit = limit
        self._groups: collections.deque[Any] = collections.deque()
        self._count = 0  # events queued
        self._ready = asyncio.Event()
        self.error: ApiError | None = None
        self.closed = False

    def push(self, events: list[WireEvent], force: bool = False) -> None:
        """Queue one group (this watcher's own list: next() may extend it)."""
        if self.closed or not events:
            return
        if not force and self._count + len(events) > self.limit:
            self.cut_off(expired("watcher too slow: the event queue is full; watch again"))
            return
        self._groups.append(events)
        self._count += len(events)
        self._ready.set()

    def cut_off(self, err: ApiError) -> None:
        if self.closed:
            return
        self.closed = True
        self.error = err
        self._groups.clear()
        self._count = 0
        self._groups.append(_CLOSED)
        self._ready.set()

    async def next(self) -> list[WireEvent]:
        """The next message's events: every queued group that fits in
        MAX_EVENTS_PER_MESSAGE, at least one."""
        while not self._groups:
            self._ready.clear()
            await self._ready.wait()
        first = self._groups.popleft()
        if first is _CLOSED:
            assert self.error is not None
            raise self.error
        out: list[WireEvent] = first
        self._count -= len(out)
        groups = self._groups
        while groups and groups[0] is not _CLOSED and len(out) + len(groups[0]) <= MAX_EVENTS_PER_MESSAGE:
            g = groups.popleft()
            out.extend(g)
            self._count -= len(g)
        return out

    def pending(self) -> int:
        return self._count


class WatchCache:
    """One resource's cache (see module docstring)."""

    def __init__(
        self,
        store: Store,
        kind: Kind,
        history: int = 10_000,
        queue_limit: int = 1_000,
        bookmark_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.kind = kind
        self.prefix = f"/registry/{kind.resource}/"
        self.objects: dict[str, Entry] = {}
        self.history: collections.deque[Change] = collections.deque(maxlen=history)
        # The cache can replay every change after this revision.
        self.horizon = 0
        # The revision the cache reflects (last change or the initial list).
        self.revision = 0
        self.queue_limit = queue_limit
        self.bookmark_interval = bookmark_interval
        self.watchers: set[Watcher] = set()
        # Fan-out index (see module docstring): (field, value) -> watchers
        # whose field selector requires field=value; the rest are unindexed.
        self._indexed: dict[tuple[str, str], set[Watcher]] = {}
        self._index_fields: collections.Counter[str] = collections.Counter()
        self._unindexed: set[Watcher] = set()
        # The events of the revision being applied, per watcher, until the
        # store marks its last event (see module docstring).
        self._pending: dict[Watcher, list[WireEvent]] = {}
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._relist()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"watchcache-{self.kind.resource}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for w in list(self.watchers):
            w.cut_off(ApiError("ServiceUnavailable", "the API server is shutting down"))

    async def _relist(self) -> None:
        kvs, rev = await self.store.list(self.prefix)
        self.objects = {kv.key: make_entry(self.kind, kv.value, kv.mod_revision) for kv in kvs}
        self.history.clear()
        self.horizon = rev
        self.revision = rev
        self.ready.set()

    async def _run(self) -> None:
        backoff = 0.1
        bookmarks = asyncio.get_running_loop().create_task(self._bookmarks())
        try:
            while True:
                try:
                    # No prev_kv: the cache holds every old value itself.
                    async for ev in self.store.watch(self.prefix, self.revision + 1, prev_kv=False):
                        self._apply(ev.type, ev.key, ev.value, ev.mod_revision, ev.last_in_revision)
                        backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except CompactedError:
                    log.warning("watch cache %s: fell behind a compaction; relisting", self.kind.resource)
                except UnavailableError as e:
                    # etcd away for a while: the cache is whole up to
                    # self.revision, so its watch resumes from the next one
                    # (a compaction meanwhile raises CompactedError above)
                    # and its watchers stay connected.
                    log.warning("watch cache %s: %s; resuming from revision %d", self.kind.resource, e,
                                self.revision + 1)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                except Exception as e:  # the store retries itself; this is the last resort
                    log.warning("watch cache %s: store watch failed (%s); relisting", self.kind.resource, e)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                # Events may be lost: every watcher must relist.
                self._pending.clear()
                for w in list(self.watchers):
                    w.cut_off(expired("the watch cache was reset; relist"))
                    self._remove(w)
                try:
                    await self._relist()
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.warning("watch cache %s: relist failed: %s", self.kind.resource, e)
        finally:
            bookmarks.cancel()

    def _apply(self, type_: str, key: str, value: bytes, revision: int, last: bool = True) -> None:
        """Apply one store event; `last`: the last of its revision, which
        gives the watchers the revision's events (see module docstring)."""
        old = self.objects.get(key)
        if type_ == "PUT":
            new: Entry | None = make_entry(self.kind, value, revision)
            self.objects[key] = new  # type: ignore[assignment]
        else:
            self.objects.pop(key, None)
            new = None
            if old is None:
                if last:
                    self._flush()
                return
            # The DELETED event carries the object at the deletion revision.
            old = make_entry(self.kind, value, revision) if value else old.at(revision)
        ch = Change(revision, old, new)
        if len(self.history) == self.history.maxlen:
            self.horizon = self.history[0].revision
        self.history.append(ch)
        self.revision = revision
        pending = self._pending
        # A revision of one event (most are) goes straight to the watchers.
        direct = last and not pending
        for w in self._candidates(old, new):
            if revision <= w.min_revision:
                continue
            ev = w.filter.translate(ch)
            if ev is None:
                continue
            if direct:
                w.push([ev])
                if w.closed:
                    self._remove(w)
            elif w in pending:
                pending[w].append(ev)
            else:
                pending[w] = [ev]
        if last:
            self._flush()

    def _flush(self) -> None:
        """Give each watcher the applied revision's events, as one group."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        for w, evs in pending.items():
            w.push(evs)
            if w.closed:
                self._remove(w)

    @staticmethod
    def _index_key(flt: Filter) -> tuple[str, str] | None:
        for r in flt.fields.requirements:
            if r.op == "=":
                return r.field, r.value
        return None

    def _add(self, w: Watcher) -> None:
        self.watchers.add(w)
        ik = self._index_key(w.filter)
        if ik is None:
            self._unindexed.add(w)
        else:
            self._indexed.setdefault(ik, set()).add(w)
            self._index_fields[ik[0]] += 1

    def _remove(self, w: Watcher) -> None:
        if w not in self.watchers:
            return
        self.watchers.discard(w)
        ik = self._index_key(w.filter)
        if ik is None:
            self._unindexed.discard(w)
            return
        ws = self._indexed.get(ik)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del self._indexed[ik]
        self._index_fields[ik[0]] -= 1
        if self._index_fields[ik[0]] <= 0:
            del self._index_fields[ik[0]]

    def _candidates(self, old: Entry | None, new: Entry | None) -> list[Watcher]:
        """The watchers a change can match: the unindexed ones and those
        indexed by the old or new object's value of their field."""
        out = list(self._unindexed)
        for f in self._index_fields:
            vals = {e.fields.get(f, "") for e in (old, new) if e is not None}
            for v in vals:
                ws = self._indexed.get((f, v))
                if ws:
                    out.extend(ws)
        return out

    async def _bookmarks(self) -> None:
        while True:
            await asyncio.sleep(self.bookmark_interval)
            # A bookmark never passes events not yet given to the watcher.
            self._flush()
            for w in list(self.watchers):
                if w.bookmarks and w.pending() == 0:
                    w.push([self.bookmark(max(self.revision, w.min_revision))])

    def bookmark(self, revision: int) -> WireEvent:
        msg = self.kind.message()
        msg.metadata.resource_version = str(revision)  # type: ignore[attr-defined]
        return WireEvent(api_pb2.WatchEvent(type="BOOKMARK", object=meta.wrap(msg)))

    def can_serve(self, revision: int | None) -> bool:
        return revision is None or revision >= self.horizon

    def subscribe(self, flt: Filter, revision: int | None, bookmarks: bool) -> Watcher:
        """A watcher primed with the initial events; no await between the
        snapshot and the registration (see module docstring)."""
        if revision is None:
            w = Watcher(flt, self.revision, bookmarks, self.queue_limit)
            for chunk in _added_chunks(flt, self.objects.values()):
                w.push(chunk, force=True)
        else:
            w = Watcher(flt, revision, bookmarks, self.queue_limit)
            group: list[WireEvent] = []
            group_rev = 0
            for ch in self.history:
                if ch.revision > revision:
                    ev = flt.translate(ch)
                    if ev is not None:
                        if ch.revision != group_rev:
                            w.push(group, force=True)
                            group, group_rev = [], ch.revision
                        group.append(ev)
            w.push(group, force=True)
        w.limit = w.pending() + self.queue_limit
        self._add(w)
        return w

    def unsubscribe(self, w: Watcher) -> None:
        self._remove(w)
        w.closed = True

    async def direct(self, flt: Filter, revision: int) -> AsyncGenerator[tuple[list[WireEvent], int], None]:
        """A watch older than the cache's history: its own store watch.
        Yields (this filter's events of one whole revision, maybe none,
        revision) for every store revision, so the caller knows how far
        the stream has come."""
        group: list[WireEvent] = []
        try:
            async for ev in self.store.watch(self.prefix, revision + 1):
                old = make_entry(self.kind, ev.prev_value, ev.mod_revision) if ev.prev_value else None
                if ev.type == "PUT":
                    ch = Change(ev.mod_revision, old, make_entry(self.kind, ev.value, ev.mod_revision))
                else:
                    ch = Change(ev.mod_revision, make_entry(self.kind, ev.value, ev.mod_revision), None)
                out = flt.translate(ch)
                if out is not None:
                    group.append(out)
                if ev.last_in_revision:
                    yield group, ev.mod_revision
                    group = []
        except CompactedError:
            raise expired(
                f"too old resource version: {revision} ({await self.store.current_revision()})"
            ) from None

    async def stream(
        self, flt: Filter, revision: int | None, bookmarks: bool
    ) -> AsyncGenerator[list[WireEvent], None]:
        """One client's watch, from `revision` (None: current state first),
        as the events of each stream message.

        Within the history it is served by the cache. Older, it starts on
        its own store watch and moves onto the cache as soon as that stream
        reaches a revision the cache's history covers: every change up to
        that revision came from the store, every later one comes from the
        cache, so nothing is lost or repeated across the switch."""
        if not self.can_serve(revision):
            assert revision is not None
            gen = self.direct(flt, revision)
            try:
                async for evs, rev in gen:
                    if evs:
                        yield evs
                    revision = rev
                    if self.can_serve(rev):
                        break
                else:
                    return
            finally:
                await gen.aclose()
        w = self.subscribe(flt, revision, bookmarks)
        try:
            while True:
                yield await w.next()
        finally:
            self.unsubscribe(w)


class UncachedWatch(WatchCache):
    """A kind without a cache (see module docstring): every watch is served
    by its own store watch; `objects` stays empty, so nothing reads it."""

    async def start(self) -> None:
        self.ready.set()

    async def stop(self) -> None:
        return None

    def can_serve(self, revision: int | None) -> bool:
        return False

    async def stream(
        self, flt: Filter, revision: int | None, bookmarks: bool
    ) -> AsyncGenerator[list[WireEvent], None]:
        if revision is None:
            kvs, revision = await self.store.list(self.prefix)
            for chunk in _added_chunks(flt, (make_entry(self.kind, kv.value, kv.mod_revision) for kv in kvs)):
                yield chunk
        gen = self.direct(flt, revision)
        try:
            async for evs, _ in gen:
                if evs:
                    yield evs
        finally:
            await gen.aclose()


# Kinds served without a watch cache (see module docstring).
UNCACHED = ("events",)


class WatchCaches:
    """The caches of every kind, started lazily on first watch."""

    def __init__(self, store: Store, **options: Any) -> None:
        self.store = store
        self.options = options
        self.caches: dict[str, WatchCache] = {}
        self._starting: dict[str, asyncio.Task[WatchCache]] = {}

    def peek(self, kind: Kind, namespace: str, name: str) -> tuple[Message, int] | None:
        """The object as its kind's cache holds it now (a copy, the
        caller's own) and its revision, or None (not cached, not started,
        or an uncached kind). The cache may lag the store: callers use it
        only where a stale answer is detected (a CAS on that revision) or
        harmless."""
        c = self.caches.get(kind.resource)
        if c is None:
            return None
        e = c.objects.get(meta.key(kind.resource, namespace, name))
        if e is None:
            return None
        msg = meta.copy(e.msg)
        return msg, int(msg.metadata.resource_version)  # type: ignore[attr-defined]

    async def get(self, kind: Kind) -> WatchCache:
        c = self.caches.get(kind.resource)
        if c is not None:
            return c
        t = self._starting.get(kind.resource)
        if t is None:
            t = asyncio.get_running_loop().create_task(self._start(kind))
            self._starting[kind.resource] = t
        return await asyncio.shield(t)

    async def watch(
        self, kind: Kind, flt: Filter, resource_version: str = "", allow_bookmarks: bool = False
    ) -> AsyncGenerator[list[WireEvent], None]:
        """A client's watch (every front end's): the changes to the objects
        `flt` matches, each item whole revisions (WireEvent.event is the
        WatchEvent). resource_version "" or "0": ADDED for every current
        object first; one not a number: BadRequest; one older than the
        cache and the store keep: Expired (raised by the stream). The
        caller closes the stream (aclose) when done."""
        rv: int | None = None
        if resource_version not in ("", "0"):
            rv = parse_resource_version(resource_version)
        cache = await self.get(kind)
        return cache.stream(flt, rv, allow_bookmarks)

    async def start_all(self) -> None:
        """Start every kind's cache now (reads and CAS shortcuts use them)."""
        await asyncio.gather(*(self.get(k) for k in meta.KINDS))

    async def _start(self, kind: Kind) -> WatchCache:
        try:
            cls = UncachedWatch if kind.resource in UNCACHED else WatchCache
            c = cls(self.store, kind, **self.options)
            await c.start()
            self.caches[kind.resource] = c
            return c
        finally:
            self._starting.pop(kind.resource, None)

    async def stop(self) -> None:
        for t in list(self._starting.values()):
            t.cancel()
        for c in list(self.caches.values()):
            await c.stop()
