"""EventRecorder: pure key function and de-duplication by count."""

import asyncio
from typing import Any

from pkapi.client.events import EventRecorder, event_key, involved_reference, new_event
from pkapi.errors import ApiError, not_found
from pkapi.v1 import core_pb2


def _pod(name: str = "web-1", ns: str = "default", uid: str = "u1") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, ns, uid
    p.metadata.resource_version = "7"
    return p


class FakeEventsClient:
    """Records create/update of Events as an API server would store them."""

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], core_pb2.Event] = {}
        self.creates = 0
        self.updates = 0
        self.calls: list[tuple[int, int]] = []  # (creates, updates) per RecordEvents

    async def create(self, ev: core_pb2.Event) -> core_pb2.Event:
        await asyncio.sleep(0.001)
        k = (ev.metadata.namespace, ev.metadata.name)
        if k in self.store:
            raise ApiError("AlreadyExists", "exists")
        self.creates += 1
        out = core_pb2.Event()
        out.CopyFrom(ev)
        self.store[k] = out
        return out

    async def update(self, ev: core_pb2.Event) -> core_pb2.Event:
        await asyncio.sleep(0.001)
        k = (ev.metadata.namespace, ev.metadata.name)
        if k not in self.store:
            raise not_found("events", ev.metadata.name)
        self.updates += 1
        out = core_pb2.Event()
        out.CopyFrom(ev)
        self.store[k] = out
        return out

    async def record_events(self, create: list[core_pb2.Event], update: list[core_pb2.Event]) -> tuple[list, list]:
        """As the API server's RecordEvents: each write on its own."""
        self.calls.append((len(create), len(update)))

        async def one(fn: Any, ev: core_pb2.Event) -> Any:
            try:
                return await fn(ev)
            except ApiError as e:
                return e

        return ([await one(self.create, e) for e in create], [await one(self.update, e) for e in update])


def test_event_key_ignores_time_and_object_version() -> None:
    ref = involved_reference(_pod())
    a = new_event(ref, "Normal", "Scheduled", "m", "scheduler", "", 1_000_000_000_123)
    ref2 = involved_reference(_pod())
    ref2.resource_version = "99"
    b = new_event(ref2, "Normal", "Scheduled", "m", "scheduler", "", 5_000_000_000_000)
    assert event_key(a) == event_key(b)
    assert a.metadata.name != b.metadata.name


def test_event_key_distinguishes_what_matters() -> None:
    ref = involved_reference(_pod())
    base = new_event(ref, "Normal", "Scheduled", "m", "scheduler", "", 1)
    variants = [
        new_event(ref, "Warning", "Scheduled", "m", "scheduler", "", 1),
        new_event(ref, "Normal", "Pulled", "m", "scheduler", "", 1),
        new_event(ref, "Normal", "Scheduled", "other", "scheduler", "", 1),
        new_event(ref, "Normal", "Scheduled", "m", "kubelet", "", 1),
        new_event(ref, "Normal", "Scheduled", "m", "scheduler", "n1", 1),
        new_event(involved_reference(_pod(uid="u2")), "Normal", "Scheduled", "m", "scheduler", "", 1),
        new_event(involved_reference(_pod(name="web-2")), "Normal", "Scheduled", "m", "scheduler", "", 1),
        new_event(involved_reference(_pod(ns="other")), "Normal", "Scheduled", "m", "scheduler", "", 1),
    ]
    keys = {event_key(v) for v in variants}
    assert event_key(base) not in keys and len(keys) == len(variants)


def test_new_event_shape() -> None:
    node = core_pb2.Node()
    node.metadata.name = "n1"
    ev = new_event(involved_reference(node), "Normal", "NodeNotReady", "Node n1 status is now: NodeNotReady",
                   "node-controller", "", 1_700_000_000_500_000_000)
    assert ev.metadata.namespace == "default"  # cluster-scoped objects' events
    assert ev.metadata.name == f"n1.{1_700_000_000_500_000_000:x}"
    assert ev.involved_object.kind == "Node" and ev.involved_object.api_version == "v1"
    assert ev.count == 1 and ev.first_timestamp.seconds == 1_700_000_000
    assert ev.last_timestamp == ev.first_timestamp


async def test_repeats_bump_count_concurrently_without_duplicates() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "scheduler")
    pod = _pod()
    tasks = [rec.event(pod, "Warning", "FailedScheduling", "0/3 nodes are available") for _ in range(5)]
    rec.event(pod, "Normal", "Scheduled", "assigned")
    await asyncio.gather(*tasks)
    await rec.flush()
    assert client.creates == 2
    failed = [e for e in client.store.values() if e.reason == "FailedScheduling"]
    assert len(failed) == 1 and failed[0].count == 5


async def test_expired_event_is_created_again() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "c")
    pod = _pod()
    await rec.event(pod, "Normal", "X", "m")
    client.store.clear()  # event GC removed it
    ev = await rec.event(pod, "Normal", "X", "m")
    assert ev is not None and ev.count == 1 and client.creates == 2


async def test_failures_are_swallowed() -> None:
    class Broken:
        async def record_events(self, create: Any, update: Any) -> Any:
            raise ApiError("InternalError", "boom")

    rec = EventRecorder(Broken(), "c")
    assert await rec.event(_pod(), "Normal", "X", "m") is None


def test_spam_filter_token_bucket() -> None:
    from pkapi.client.events import SpamFilter

    f = SpamFilter(burst=3, qps=0.5)
    k = ("c", "", "Pod", "default", "a", "u", "v1")
    assert [f.allow(k, 0.0) for _ in range(4)] == [True, True, True, False]
    assert f.allow(("c", "", "Pod", "default", "b", "u2", "v1"), 0.0)  # another object has its own bucket
    assert not f.allow(k, 1.0)  # 0.5 token
    assert f.allow(k, 2.0)  # refilled to one
    assert not f.allow(k, 2.0)
    assert [f.allow(k, 100.0) for _ in range(4)] == [True, True, True, False]  # capped at burst


async def test_recorder_drops_spam_about_one_object() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "replicaset-controller")
    rs = _pod("rs")
    for i in range(30):
        rec.event(rs, "Normal", "SuccessfulCreate", f"Created pod: p{i}")
    await rec.flush()
    assert client.creates == 25 and rec.dropped == 5


async def test_a_burst_goes_out_in_batches() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "kubelet", max_batch=100)
    futs = [rec.event(_pod(f"p{i}", uid=f"u{i}"), "Normal", "Started", "Started container web") for i in range(250)]
    written = await asyncio.gather(*futs)
    assert client.calls == [(100, 0), (100, 0), (50, 0)]
    assert all(w is not None and w.count == 1 for w in written)
    assert len(client.store) == 250


async def test_a_repeat_sent_while_its_create_is_in_flight_updates_it() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "c", linger=0)
    first = rec.event(_pod(), "Warning", "BackOff", "Back-off restarting failed container")
    await asyncio.sleep(0)  # the writer has sent the first batch; the create is in flight
    assert client.calls == [(1, 0)]
    again = rec.event(_pod(), "Warning", "BackOff", "Back-off restarting failed container")
    assert (await first).count == 1  # type: ignore[union-attr]
    assert (await again).count == 2  # type: ignore[union-attr]
    assert client.calls == [(1, 0), (0, 1)] and len(client.store) == 1


async def test_an_item_refused_by_the_server_fails_alone() -> None:
    class Refusing(FakeEventsClient):
        async def create(self, ev: core_pb2.Event) -> core_pb2.Event:
            if ev.involved_object.name == "bad":
                raise ApiError("Invalid", "refused")
            return await super().create(ev)

    client = Refusing()
    rec = EventRecorder(client, "c")
    bad = rec.event(_pod("bad", uid="ub"), "Normal", "X", "m")
    ok = rec.event(_pod("good", uid="ug"), "Normal", "X", "m")
    assert await bad is None
    good = await ok
    assert good is not None and good.involved_object.name == "good"
    assert client.calls == [(2, 0)] and list(client.store) == [("default", good.metadata.name)]
    # The recorder goes on: the refused key is not remembered as written.
    assert await rec.event(_pod("bad", uid="ub"), "Normal", "X", "m") is None
    assert client.calls == [(2, 0), (1, 0)]


async def test_update_of_an_expired_event_creates_it_again_in_the_same_flush() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "c")
    await rec.event(_pod(), "Normal", "X", "m")
    client.store.clear()
    ev = await rec.event(_pod(), "Normal", "X", "m")
    assert ev is not None and ev.count == 1
    assert client.calls == [(1, 0), (0, 1), (1, 0)]


async def test_events_recorded_within_the_linger_go_out_together() -> None:
    client = FakeEventsClient()
    rec = EventRecorder(client, "kubelet", linger=0.05)
    pod = _pod()
    futs = [rec.event(pod, "Normal", "Pulled", "present")]
    await asyncio.sleep(0.01)  # the pod's next steps, a moment later
    futs.append(rec.event(pod, "Normal", "Created", "Created container web"))
    await asyncio.sleep(0.01)
    futs.append(rec.event(pod, "Normal", "Started", "Started container web"))
    await asyncio.gather(*futs)
    assert client.calls == [(3, 0)]
    # Without a linger the first goes at once, alone.
    rec0 = EventRecorder(client, "kubelet", linger=0)
    futs = [rec0.event(pod, "Normal", "Killing", "Stopping container web")]
    await asyncio.sleep(0.01)
    futs.append(rec0.event(pod, "Normal", "Killing", "Stopping container other"))
    await asyncio.gather(*futs)
    assert client.calls[1:] == [(1, 0), (1, 0)]


async def test_flush_writes_at_once_without_the_linger() -> None:
    """flush() (an agent stopping) does not wait out the linger; events
    recorded after it linger again."""
    client = FakeEventsClient()
    rec = EventRecorder(client, "kubelet", linger=30)
    fut = rec.event(_pod(), "Normal", "Killing", "Stopping container web")
    await asyncio.wait_for(rec.flush(), 2)
    assert fut.done() and fut.result() is not None and client.calls == [(1, 0)]
    later = rec.event(_pod("web-2", uid="u2"), "Normal", "Killing", "Stopping container web")
    await asyncio.sleep(0.05)
    assert not later.done() and client.calls == [(1, 0)]
    await asyncio.wait_for(rec.flush(), 2)
    assert later.done() and client.calls == [(1, 0), (1, 0)]
