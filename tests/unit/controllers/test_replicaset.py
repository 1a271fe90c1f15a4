"""The ReplicaSet controller's sync() on the in-process API: scaling with
slow start, claim (adopt, release), deletion ranking and expectations."""

from __future__ import annotations

from controlplane.controllers.base import SharedInformers
from controlplane.controllers.replicaset import EXPECTATIONS_TTL, ReplicaSetController
from controlplane.testing import Action, FakeClock, InProcessClient, refresh
from pkapi import meta
from pkapi.v1 import core_pb2
from tests.unit.controllers.objects import pod, replicaset, set_ready

KEY = "default/web-abc"


class Env:
    """A ReplicaSetController over `client`, its informers filled by refresh()."""

    def __init__(self, client: InProcessClient) -> None:
        self.client = client
        self.informers = SharedInformers(client)
        self.clock = FakeClock()
        self.monotonic = FakeClock(5000.0)
        self.ctl = ReplicaSetController(client, None, self.informers, clock=self.clock, monotonic=self.monotonic)

    async def step(self, key: str = KEY) -> None:
        """Observe the store (as the informers' watch would), then sync."""
        await refresh(self.client, *self.informers.all())
        self.client.clear()
        await self.ctl.sync(key)

    async def pods(self) -> list[core_pb2.Pod]:
        items, _ = await self.client.list("pods", "default")
        return items  # type: ignore[return-value]


async def test_scale_up_in_slow_start_batches_then_wait_for_expectations(client: InProcessClient) -> None:
    rs = await client.create(replicaset(replicas=3))
    env = Env(client)
    await env.step()
    assert client.writes("pods") == [Action("create_batch", "pods")] * 2  # batches of 1 and 2
    pods = await env.pods()
    assert len(pods) == 3
    for p in pods:
        assert p.metadata.name.startswith("web-abc-")
        ref = meta.controller_of(p)
        assert ref is not None and (ref.kind, ref.uid) == ("ReplicaSet", rs.metadata.uid)
    assert not env.ctl.expectations.satisfied(KEY)

    # The pods' watch lags (the ReplicaSet's does not): nothing is created.
    await refresh(client, env.ctl.rss)
    client.clear()
    await env.ctl.sync(KEY)
    assert client.writes("pods") == []

    # Observed: satisfied, and nothing left to create; status counts them.
    await env.step()
    assert env.ctl.expectations.satisfied(KEY)
    assert client.writes("pods") == []
    got = await client.get("replicasets", "default", "web-abc")
    assert got.status.replicas == 3 and got.status.observed_generation == rs.metadata.generation  # type: ignore[attr-defined]


async def test_unobserved_creations_expire_after_the_ttl(client: InProcessClient) -> None:
    await client.create(replicaset(replicas=2))
    env = Env(client)
    await env.step()
    assert len(await env.pods()) == 2
    env.monotonic.advance(EXPECTATIONS_TTL - 1)
    await refresh(client, env.ctl.rss)  # the pods' watch lags
    client.clear()
    await env.ctl.sync(KEY)  # the pods' ADDED never came: still waiting
    assert client.writes("pods") == []
    env.monotonic.advance(2)
    await env.ctl.sync(KEY)  # given up waiting: the cache (no pods) is believed
    assert client.writes("pods") == [Action("create_batch", "pods")] * 2


async def test_scale_down_deletes_the_least_valuable_pods_and_expects_it(client: InProcessClient) -> None:
    rs = await client.create(replicaset(replicas=3))
    # Named so that the store's (alphabetical) order is not the deletion order.
    made = [await client.create(pod(n, owner=rs, node="n1" if n != "c-pending" else "")) for n in
            ("a-ready", "b-notready", "c-pending")]
    ready = made[0]
    set_ready(ready, since=env_now() - 100)
    await client.update_status(ready)
    scaled = await client.get("replicasets", "default", "web-abc")
    scaled.spec.replicas = 1  # type: ignore[attr-defined]
    await client.update(scaled)
    env = Env(client)
    await env.step()
    assert sorted(a.name for a in client.writes("pods")) == ["b-notready", "c-pending"]
    assert all(a.verb == "delete" for a in client.writes("pods"))
    assert not env.ctl.expectations.satisfied(KEY)
    await env.step()  # the deletions observed
    assert env.ctl.expectations.satisfied(KEY)
    left = [p for p in await env.pods() if not p.metadata.HasField("deletion_timestamp")]
    assert [p.metadata.name for p in left] == ["a-ready"]


def env_now() -> float:
    return FakeClock()()


async def test_claim_adopts_matching_orphans_and_releases_mismatches(client: InProcessClient) -> None:
    rs = await client.create(replicaset(replicas=2))
    other = await client.create(replicaset("other", replicas=0, labels={"app": "other"}))
    await client.create(pod("orphan"))
    finished = await client.create(pod("finished"))
    finished.status.phase = "Failed"
    await client.update_status(finished)
    await client.create(pod("strayed", labels={"app": "elsewhere"}, owner=rs))
    await client.create(pod("someone-elses", owner=other))  # matches, but has a controller
    env = Env(client)
    await env.step()
    by_name = {p.metadata.name: p for p in await env.pods()}
    assert [r.uid for r in by_name["orphan"].metadata.owner_references] == [rs.metadata.uid]
    assert list(by_name["strayed"].metadata.owner_references) == []
    assert list(by_name["finished"].metadata.owner_references) == []  # inactive: never adopted
    assert [r.uid for r in by_name["someone-elses"].metadata.owner_references] == [other.metadata.uid]
    # One adopted of two wanted: one created.
    assert client.writes("pods").count(Action("create_batch", "pods")) == 1
    assert sorted(a.name for a in client.writes("pods") if a.verb == "update") == ["orphan", "strayed"]


async def test_adoption_lost_to_a_concurrent_change_is_not_an_error(client: InProcessClient) -> None:
    await client.create(replicaset(replicas=1))
    orphan = await client.create(pod("orphan"))
    env = Env(client)
    await refresh(client, *env.informers.all())
    orphan.metadata.annotations["touched"] = "yes"
    await client.update(orphan)  # the cached copy is stale now
    await env.ctl.sync(KEY)  # Conflict on the adoption: decided again next sync
    got = await client.get("pods", "default", "orphan")
    assert list(got.metadata.owner_references) == []  # type: ignore[attr-defined]


async def test_status_counts_availability_with_min_ready_seconds(client: InProcessClient) -> None:
    rs = await client.create(replicaset(replicas=2, min_ready=10))
    env = Env(client)
    for name, ready_for in (("old", 60), ("young", 5)):
        p = await client.create(pod(name, owner=rs, node="n1"))
        set_ready(p, since=env.clock() - ready_for)
        await client.update_status(p)
    await env.step()
    got = await client.get("replicasets", "default", "web-abc")
    st = got.status  # type: ignore[attr-defined]
    assert (st.replicas, st.ready_replicas, st.available_replicas) == (2, 2, 1)
    env.clock.advance(6)
    await env.step()
    got = await client.get("replicasets", "default", "web-abc")
    assert got.status.available_replicas == 2  # type: ignore[attr-defined]


async def test_a_deleted_replicaset_forgets_its_expectations(client: InProcessClient) -> None:
    await client.create(replicaset(replicas=2))
    env = Env(client)
    await env.step()
    assert not env.ctl.expectations.satisfied(KEY)
    await client.delete("replicasets", "default", "web-abc", propagation_policy="Orphan")
    items, _ = await client.list("replicasets", "default")
    if items:  # the orphan finalizer keeps it until the garbage collector runs: drop it by hand
        rs = items[0]
        del rs.metadata.finalizers[:]  # type: ignore[attr-defined]
        await client.update(rs)
    await env.step()
    assert env.ctl.expectations.satisfied(KEY)
    assert client.writes("pods") == [] and client.writes("replicasets") == []
