"""EventRecorder: records Kubernetes Events about objects, de-duplicated.

    rec = EventRecorder(client, "scheduler")
    rec.event(pod, "Normal", "Scheduled", "Successfully assigned default/web-1 to n1")

event() never blocks and never raises: it starts the write as a task and
returns it (await it if you need the Event written; otherwise it completes
in the background, and a failure is only logged, as in client-go: events
are best effort and must never stall a control loop).

Spam filter (client-go's EventSourceObjectSpamFilter): per source and
involved object a token bucket of 25 events refilled at one per 5 minutes;
an event without a token is dropped (the ReplicaSet that creates 100 pods
records 25 SuccessfulCreate events, as in Kubernetes). Pure: SpamFilter
takes the time as an argument.

De-duplication (client-go's EventCorrelator, simplified): two events with
the same event_key() - source, involved object (kind, namespace, name, uid,
apiVersion, fieldPath), type, reason and message - are one Event whose
count and lastTimestamp are bumped. The key function is pure. Writes for
one key are serialized (a lock per key), so a burst of repeats never
creates two Events; writes for different keys run concurrently (bounded).

Event objects live in the involved object's namespace ("default" for
cluster-scoped objects such as Nodes) and are named <object>.<hex nanos>.
They expire after the control plane's --event-ttl (its event GC).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from pkapi import meta
from pkapi.errors import ApiError
from pkapi.v1 import core_pb2, meta_pb2

log = logging.getLogger(__name__)

EventKey = tuple[str, ...]


def involved_reference(obj: Message, field_path: str = "") -> meta_pb2.ObjectReference:
    """The ObjectReference of obj (kind/apiVersion from the kinds registry)."""
    k = meta.kind_of(obj)
    md = obj.metadata  # type: ignore[attr-defined]
    return meta_pb2.ObjectReference(
        kind=k.kind,
        api_version=k.api_version,
        namespace=md.namespace,
        name=md.name,
        uid=md.uid,
        resource_version=md.resource_version,
        field_path=field_path,
    )


def event_key(ev: core_pb2.Event) -> EventKey:
    """Two events with equal keys are the same event repeated. Pure.
    (resourceVersion of the involved object is deliberately not part of it:
    the object changes between repeats.)"""
    io = ev.involved_object
    return (
        ev.source.component,
        ev.source.host,
        io.kind,
        io.namespace,
        io.name,
        io.field_path,
        io.uid,
        io.api_version,
        ev.type,
        ev.reason,
        ev.message,
    )


def event_namespace(ref: meta_pb2.ObjectReference) -> str:
    return ref.namespace or "default"


def new_event(
    ref: meta_pb2.ObjectReference, type_: str, reason: str, message: str, component: str, host: str, when_ns: int
) -> core_pb2.Event:
    """A fresh Event (count 1) at time when_ns (nanoseconds since epoch). Pure."""
    ev = core_pb2.Event(
        api_version="v1",
        kind="Event",
        involved_object=ref,
        reason=reason,
        message=message,
        type=type_,
        count=1,
        source=core_pb2.EventSource(component=component, host=host),
        reporting_component=component,
        reporting_instance=host,
    )
    ev.metadata.name = f"{ref.name}.{when_ns:x}"
    ev.metadata.namespace = event_namespace(ref)
    ev.first_timestamp.FromNanoseconds(when_ns - when_ns % 1_000_000_000)
    ev.last_timestamp.CopyFrom(ev.first_timestamp)
    return ev


def spam_key(ev: core_pb2.Event) -> EventKey:
    """Events about one object from one source share a token bucket. Pure."""
    io = ev.involved_object
    return (ev.source.component, ev.source.host, io.kind, io.namespace, io.name, io.uid, io.api_version)


class SpamFilter:
    """Token buckets per spam_key: `burst` tokens, refilled at `qps`. Pure
    (the caller passes the time)."""

    def __init__(self, burst: int = 25, qps: float = 1 / 300, max_keys: int = 4096) -> None:
        self.burst = burst
        self.qps = qps
        self.max_keys = max_keys
        self._buckets: OrderedDict[EventKey, tuple[float, float]] = OrderedDict()

    def allow(self, key: EventKey, now: float) -> bool:
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.qps)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok


@dataclass
class _Seen:
    event: core_pb2.Event  # as last written (count, timestamps)


async def _none() -> core_pb2.Event | None:
    return None


class EventRecorder:
    def __init__(self, client: Any, component: str, host: str = "", cache_size: int = 4096,
                 concurrency: int = 16) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.cache_size = cache_size
        self._seen: OrderedDict[EventKey, _Seen] = OrderedDict()
        self._locks: dict[EventKey, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[core_pb2.Event | None]] = set()
        self._sem: asyncio.Semaphore | None = None
        self._concurrency = concurrency
        self.spam = SpamFilter()
        self.dropped = 0

    def event(self, obj: Message, type_: str, reason: str, message: str,
              field_path: str = "") -> asyncio.Task[core_pb2.Event | None]:
        ref = involved_reference(obj, field_path)
        return self.event_ref(ref, type_, reason, message)

    def event_ref(self, ref: meta_pb2.ObjectReference, type_: str, reason: str,
                  message: str) -> asyncio.Task[core_pb2.Event | None]:
        ev = new_event(ref, type_, reason, message, self.component, self.host, time.time_ns())
        loop = asyncio.get_running_loop()
        task: asyncio.Task[core_pb2.Event | None]
        if not self.spam.allow(spam_key(ev), time.monotonic()):
            self.dropped += 1
            task = loop.create_task(_none())
        else:
            task = loop.create_task(self._record(ev))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def flush(self) -> None:
        """Wait for every pending write (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _record(self, ev: core_pb2.Event) -> core_pb2.Event | None:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self._concurrency)
        key = event_key(ev)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock, self._sem:
                return await self._write(key, ev)
        except Exception as err:  # best effort: never raise into a control loop
            log.warning("event %s %s/%s: %s", ev.reason, ev.involved_object.namespace,
                        ev.involved_object.name, err)
            return None
        finally:
            if len(self._locks) > self.cache_size:
                # Bound memory: drop idle locks (a held one stays, so writes
                # of one key stay serialized).
                for k in [k for k, lk in self._locks.items() if not lk.locked()]:
                    del self._locks[k]

    async def _write(self, key: EventKey, ev: core_pb2.Event) -> core_pb2.Event:
        seen = self._seen.get(key)
        if seen is not None:
            bumped = core_pb2.Event()
            bumped.CopyFrom(seen.event)
            bumped.metadata.resource_version = ""  # unconditional: we own this Event
            bumped.count = seen.event.count + 1
            bumped.last_timestamp.CopyFrom(ev.last_timestamp)
            bumped.involved_object.resource_version = ev.involved_object.resource_version
            try:
                out = await self.client.update(bumped)
                self._remember(key, out)
                return out  # type: ignore[no-any-return]
            except ApiError as err:
                if err.reason != "NotFound":  # expired or deleted: start again
                    raise
        out = await self.client.create(ev)
        self._remember(key, out)
        return out  # type: ignore[no-any-return]

    def _remember(self, key: EventKey, ev: core_pb2.Event) -> None:
        self._seen[key] = _Seen(ev)
        self._seen.move_to_end(key)
        while len(self._seen) > self.cache_size:
            self._seen.popitem(last=False)
