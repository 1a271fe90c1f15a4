"""The scheduler's per-pod sync on the in-process API: bind, assume before
the bind returns, Unschedulable with kube-scheduler's wording, retry when a
node appears, and a failed bind undoing its assumption."""

from __future__ import annotations

from controlplane.controllers.base import SharedInformers
from controlplane.scheduler.scheduler import Scheduler
from controlplane.testing import InProcessClient, refresh
from pkapi import meta
from pkapi.v1 import core_pb2
from tests.unit.controllers.objects import node, pod


class Env:
    def __init__(self, client: InProcessClient) -> None:
        self.client = client
        self.informers = SharedInformers(client)
        self.sched = Scheduler(client, self.informers.informer("pods"), self.informers.informer("nodes"))

    async def schedule(self, *names: str, observe: bool = True) -> None:
        if observe:
            await refresh(self.client, *self.informers.all())
        self.client.clear()
        for n in names:
            await self.sched.sync(f"default/{n}")
        await self.sched.binds_sent()

    async def pod(self, name: str) -> core_pb2.Pod:
        return await self.client.get("pods", "default", name)  # type: ignore[return-value]


async def test_binds_to_the_node_that_fits_and_records_scheduled(client: InProcessClient) -> None:
    await client.create(node("small", cpu="1"))
    await client.create(node("big", cpu="4"))
    await client.create(pod("p", cpu="2"))
    env = Env(client)
    await env.schedule("p")
    assert (await env.pod("p")).spec.node_name == "big"
    await env.sched.recorder.flush()
    evs, _ = await client.list("events", "default")
    assert [(e.reason, e.message) for e in evs] == [("Scheduled", "Successfully assigned default/p to big")]


async def test_a_decision_is_charged_before_its_bind_returns(client: InProcessClient) -> None:
    await client.create(node("n1", cpu="1"))
    for n in ("a", "b"):
        await client.create(pod(n, cpu="600m"))
    env = Env(client)
    await refresh(client, *env.informers.all())
    await env.sched.sync("default/a")  # decided; its bind not sent yet
    await env.sched.sync("default/b")
    await env.sched.binds_sent()
    assert (await env.pod("a")).spec.node_name == "n1"
    b = await env.pod("b")
    assert b.spec.node_name == ""
    cond = meta.condition(b.status.conditions, "PodScheduled")
    assert (cond.status, cond.reason, cond.message) == (
        "False", "Unschedulable", "0/1 nodes are available: 1 Insufficient cpu.")
    assert "default/b" in env.sched.unschedulable

    # A node appears: the unschedulable pods go back to the queue.
    await client.create(node("n2", cpu="1"))
    await refresh(client, *env.informers.all())
    assert env.sched.unschedulable == set()
    await env.schedule("b")
    assert (await env.pod("b")).spec.node_name == "n2"


async def test_a_bind_that_fails_undoes_its_assumption(client: InProcessClient) -> None:
    await client.create(node("n1", cpu="1"))
    await client.create(pod("gone", cpu="600m"))
    await client.create(pod("taken", cpu="300m"))
    env = Env(client)
    await refresh(client, *env.informers.all())
    await client.delete("pods", "default", "gone")  # the cache has not seen it go
    taken = await env.pod("taken")
    await client.bind([(taken, "elsewhere")])  # bound meanwhile (by another scheduler)
    await env.schedule("gone", "taken", observe=False)
    assert env.sched.charged == {} and env.sched.assumed == set()
    assert env.sched.snapshot["n1"].req_cpu == 0
    assert (await env.pod("taken")).spec.node_name == "elsewhere"


async def test_pods_for_another_scheduler_or_already_bound_are_left_alone(client: InProcessClient) -> None:
    await client.create(node("n1"))
    other = pod("other")
    other.spec.scheduler_name = "my-scheduler"
    await client.create(other)
    await client.create(pod("placed", node="n1"))
    env = Env(client)
    await env.schedule("other", "placed")
    assert env.client.writes("pods") == []
    assert (await env.pod("other")).spec.node_name == ""
