"""EventRecorder: records Kubernetes Events about objects, de-duplicated.

    rec = EventRecorder(client, "scheduler")
    rec.event(pod, "Normal", "Scheduled", "Successfully assigned default/web-1 to n1")

event() never blocks and never raises: it queues the event and returns a
future of the Event as written (await it if you need the Event written;
otherwise it completes in the background, and a failure is only logged, as
in client-go: events are best effort and must never stall a control loop).

Batching: one writer task per recorder sends the queue in RecordEvents
RPCs of up to `max_batch` events (the API server writes a batch's creates
in one etcd transaction). The first event of a quiet spell waits `linger`
seconds (50 ms) for company - a pod's Pulled, Created and Started, a
scheduler's burst of Scheduled - and events recorded while a batch is in
flight go out together in the next. A busy ReplicaSet controller, scheduler
or agent thus costs one RPC and one etcd transaction per batch rather than
per event: events were over half of the control plane's writes per pod.

Spam filter (client-go's EventSourceObjectSpamFilter): per source and
involved object a token bucket of 25 events refilled at one per 5 minutes;
an event without a token is dropped (the ReplicaSet that creates 100 pods
records 25 SuccessfulCreate events, as in Kubernetes). Pure: SpamFilter
takes the time as an argument.

De-duplication (client-go's EventCorrelator, simplified): two events with
the same event_key() - source, involved object (kind, namespace, name, uid,
apiVersion, fieldPath), type, reason and message - are one Event whose
count and lastTimestamp are bumped. The key function is pure. Repeats
that arrive while the key is still queued fold into one write (count += n);
batches are sent one after another, so a repeat's update always follows
its Event's create and a burst of repeats never creates two Events.

Event objects live in the involved object's namespace ("default" for
cluster-scoped objects such as Nodes) and are named <object>.<hex nanos>.
They expire after the control plane's --event-ttl (its event GC).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from pkapi import meta
from pkapi.errors import ApiError, is_not_found
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


@dataclass
class _Queued:
    """Occurrences of one event key waiting to be written."""

    key: EventKey
    first: core_pb2.Event  # the first occurrence, count 1
    last: core_pb2.Event  # the latest (its timestamp and object version win)
    repeats: int = 1
    futures: list[asyncio.Future[core_pb2.Event | None]] = field(default_factory=list)

    def resolve(self, value: core_pb2.Event | None) -> None:
        for f in self.futures:
            if not f.done():
                f.set_result(value)


class EventRecorder:
    def __init__(self, client: Any, component: str, host: str = "", cache_size: int = 4096,
                 max_batch: int = 100, linger: float = 0.05) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.cache_size = cache_size
        self.max_batch = max_batch
        self.linger = linger
        self._seen: OrderedDict[EventKey, _Seen] = OrderedDict()
        self._queue: OrderedDict[EventKey, _Queued] = OrderedDict()
        self._writer: asyncio.Task[None] | None = None
        # Set by flush(): the writer stops lingering.
        self._hurry = asyncio.Event()
        self.spam = SpamFilter()
        self.dropped = 0
        self.batches = 0  # RecordEvents calls made (tests, benchmarks)

    def event(self, obj: Message, type_: str, reason: str, message: str,
              field_path: str = "") -> asyncio.Future[core_pb2.Event | None]:
        ref = involved_reference(obj, field_path)
        return self.event_ref(ref, type_, reason, message)

    def event_ref(self, ref: meta_pb2.ObjectReference, type_: str, reason: str,
                  message: str) -> asyncio.Future[core_pb2.Event | None]:
        ev = new_event(ref, type_, reason, message, self.component, self.host, time.time_ns())
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[core_pb2.Event | None] = loop.create_future()
        if not self.spam.allow(spam_key(ev), time.monotonic()):
            self.dropped += 1
            fut.set_result(None)
            return fut
        key = event_key(ev)
        q = self._queue.get(key)
        if q is None:
            q = self._queue[key] = _Queued(key, ev, ev)
        else:
            q.repeats += 1
            q.last = ev
        q.futures.append(fut)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_queue(), name=f"events-{self.component}")
        return fut

    async def flush(self) -> None:
        """Write every queued event now, without the linger, and wait until
        they are written (tests, shutdown)."""
        self._hurry.set()
        try:
            while self._writer is not None and not self._writer.done():
                await asyncio.wait([self._writer])
        finally:
            self._hurry.clear()

    async def _write_queue(self) -> None:
        if self.linger > 0 and not self._hurry.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.linger):
                    await self._hurry.wait()
        while self._queue:
            batch: list[_Queued] = []
            while self._queue and len(batch) < self.max_batch:
                batch.append(self._queue.popitem(last=False)[1])
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                for q in batch:
                    q.resolve(None)
                raise
            except Exception as err:  # best effort: never raise into a control loop
                for q in batch:
                    q.resolve(None)
                log.warning("%d events (%s about %s/%s...) not recorded: %s", len(batch), batch[0].first.reason,
                            batch[0].first.involved_object.namespace, batch[0].first.involved_object.name, err)

    async def _write(self, batch: list[_Queued]) -> None:
        creates: list[tuple[_Queued, core_pb2.Event]] = []
        updates: list[tuple[_Queued, core_pb2.Event]] = []
        for q in batch:
            seen = self._seen.get(q.key)
            if seen is None:
                ev = q.first
                ev.count = q.repeats
                ev.last_timestamp.CopyFrom(q.last.last_timestamp)
                ev.involved_object.resource_version = q.last.involved_object.resource_version
                creates.append((q, ev))
            else:
                bumped = meta.copy(seen.event)
                bumped.metadata.resource_version = ""  # unconditional: we own this Event
                bumped.count = seen.event.count + q.repeats
                bumped.last_timestamp.CopyFrom(q.last.last_timestamp)
                bumped.involved_object.resource_version = q.last.involved_object.resource_version
                updates.append((q, bumped))
        self.batches += 1
        created, updated = await self.client.record_events([e for _, e in creates], [e for _, e in updates])
        again = []
        for (q, _), res in zip(updates, updated, strict=True):
            if is_not_found(res):
                # Expired or deleted: record it afresh.
                self._seen.pop(q.key, None)
                again.append(q)
            else:
                self._done(q, res)
        for (q, _), res in zip(creates, created, strict=True):
            self._done(q, res)
        if again:
            await self._write(again)

    def _done(self, q: _Queued, res: core_pb2.Event | ApiError) -> None:
        if isinstance(res, ApiError):
            log.warning("event %s %s/%s: %s", q.first.reason, q.first.involved_object.namespace,
                        q.first.involved_object.name, res.message)
            q.resolve(None)
            return
        self._seen[q.key] = _Seen(res)
        self._seen.move_to_end(q.key)
        while len(self._seen) > self.cache_size:
            self._seen.popitem(last=False)
        q.resolve(res)
