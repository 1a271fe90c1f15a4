"""Pure parts of the controllers: ReplicaSet status and expectations,
Deployment conditions and fenceposts, event expiry, and leader election on
the MemoryStore fake."""

from __future__ import annotations

import asyncio

from controlplane.controllers import eventttl, replicaset
from controlplane.controllers.deployment import util
from controlplane.leader import Election, Session
from controlplane.store.memory import MemoryStore
from controlplane.testing import FakeClock
from pkapi import intstr
from pkapi.v1 import apps_pb2, core_pb2


def _rs(replicas: int = 3, min_ready: int = 0) -> apps_pb2.ReplicaSet:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace, rs.metadata.uid = "web-abc", "default", "rs-uid"
    rs.metadata.generation = 4
    rs.spec.replicas = replicas
    rs.spec.min_ready_seconds = min_ready
    rs.spec.template.metadata.labels["app"] = "web"
    rs.spec.template.metadata.labels["pod-template-hash"] = "abc"
    rs.spec.template.spec.containers.add(name="c", image="pocketkube/hello:1")
    return rs


def _pod(ready_since: int | None, labels: dict[str, str]) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.labels.update(labels)
    if ready_since is not None:
        c = p.status.conditions.add(type="Ready", status="True")
        c.last_transition_time.seconds = ready_since
    return p


def test_replicaset_status() -> None:
    rs = _rs(min_ready=10)
    full = {"app": "web", "pod-template-hash": "abc"}
    pods = [_pod(100, full), _pod(195, full), _pod(None, {"app": "web"})]
    st = replicaset.calculate_status(rs, pods, now=200.0)
    assert (st.replicas, st.fully_labeled_replicas, st.ready_replicas, st.available_replicas,
            st.observed_generation) == (3, 2, 2, 1, 4)


def test_pod_from_template() -> None:
    pod = replicaset.pod_from_template(_rs())
    assert pod.metadata.generate_name == "web-abc-"
    assert pod.metadata.labels["pod-template-hash"] == "abc"
    ref = pod.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.uid, ref.controller, ref.block_owner_deletion) == (
        "ReplicaSet", "web-abc", "rs-uid", True, True)
    assert pod.spec.containers[0].image == "pocketkube/hello:1"


def test_expectations() -> None:
    e = replicaset.Expectations(ttl=60)
    assert e.satisfied("k")
    e.expect_creations("k", 2)
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert e.satisfied("k")
    e.expect_deletions("k", ["ns/a", "ns/b"])
    e.deletion_observed("k", "ns/a")
    e.deletion_observed("k", "ns/a")  # observed twice (deletionTimestamp, then gone): counted once
    assert not e.satisfied("k")
    e.deletion_observed("k", "ns/b")
    assert e.satisfied("k")
    clock = FakeClock(100.0)
    short = replicaset.Expectations(ttl=30.0, clock=clock)
    short.expect_creations("k", 5)
    clock.advance(30.0)
    assert not short.satisfied("k")
    clock.advance(0.5)
    assert short.satisfied("k")  # expired: a lost watch event cannot stall the ReplicaSet


def _deploy(replicas: int = 10, surge: str | int = "25%", unavail: str | int = "25%") -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name, d.metadata.namespace = "web", "default"
    d.metadata.generation = 2
    d.spec.replicas = replicas
    d.spec.strategy.type = "RollingUpdate"
    intstr.set_value(d.spec.strategy.rolling_update.max_surge, surge)
    intstr.set_value(d.spec.strategy.rolling_update.max_unavailable, unavail)
    d.spec.progress_deadline_seconds = 30
    return d


def test_deployment_fenceposts() -> None:
    assert util.fenceposts(_deploy(10)) == (3, 2)
    assert util.max_unavailable(_deploy(2, 0, 5)) == 2  # never more than replicas
    rec = _deploy(10)
    rec.spec.strategy.type = "Recreate"
    assert util.fenceposts(rec) == (0, 0) and util.max_unavailable(rec) == 0


def test_conditions_and_deadline() -> None:
    st = apps_pb2.DeploymentStatus()
    util.put_condition(st, "Progressing", "True", "ReplicaSetUpdated", "m1", 1000.0)
    c = st.conditions[0]
    assert (c.last_update_time.seconds, c.last_transition_time.seconds) == (1000, 1000)
    util.put_condition(st, "Progressing", "True", "ReplicaSetUpdated", "m2", 2000.0)
    assert c.message == "m1" and c.last_update_time.seconds == 1000  # same status+reason: unchanged
    util.put_condition(st, "Progressing", "True", "NewReplicaSetAvailable", "done", 3000.0)
    assert (c.last_update_time.seconds, c.last_transition_time.seconds) == (3000, 1000)
    d = _deploy(2)
    st2 = apps_pb2.DeploymentStatus()
    util.put_condition(st2, "Progressing", "True", "ReplicaSetUpdated", "", 1000.0)
    assert not util.timed_out(d, st2, 1030.0)
    assert util.timed_out(d, st2, 1031.0)
    st3 = apps_pb2.DeploymentStatus(updated_replicas=2, replicas=2, available_replicas=2, observed_generation=2)
    assert util.complete(d, st3)
    st3.observed_generation = 1
    assert not util.complete(d, st3)


def test_event_expiry() -> None:
    ev = core_pb2.Event()
    ev.last_timestamp.seconds = 1000
    assert not eventttl.expired(ev, 3600, 4599)
    assert eventttl.expired(ev, 3600, 4601)
    assert not eventttl.expired(core_pb2.Event(), 3600, 10**9)  # no timestamp: leave it


async def test_election_one_leader_and_takeover() -> None:
    # Long TTLs where the test needs a lease to live (a loaded machine may
    # stall the loop for a second); a short one only where it must expire.
    store = MemoryStore()
    s1 = await Session(store, ttl=30).start()
    s2 = await Session(store, ttl=2).start()
    s2._task.cancel()  # type: ignore[union-attr] - never renewed: it expires ~2 s from now, as if its process died
    e1, e2 = Election(s1, "test"), Election(s2, "test")
    await e1.campaign("one")
    second = asyncio.create_task(e2.campaign("two"))
    await asyncio.sleep(0.05)
    assert not second.done() and await e1.leader() == "one"  # a second campaigner waits
    await e1.resign()
    await asyncio.wait_for(second, 1.5)
    assert await e2.leader() == "two"
    s3 = await Session(store, ttl=30).start()
    third = asyncio.create_task(Election(s3, "test").campaign("three"))
    await asyncio.wait_for(third, 10)  # after s2's lease expired
    assert await Election(s3, "test").leader() == "three"
    await s1.close()
    await s3.close()
    assert await Election(s3, "test").leader() is None  # revoked with the session


async def test_session_notices_lost_lease() -> None:
    store = MemoryStore()
    s = await Session(store, ttl=1).start()
    await store.revoke(s.lease)
    await asyncio.wait_for(s.done.wait(), 2)
    assert not s.alive
    await s.close()
