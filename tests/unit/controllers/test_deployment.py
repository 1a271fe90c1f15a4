"""The Deployment controller's sync() on the in-process API: rolling
update within maxSurge/maxUnavailable, Recreate, rollback, pause and the
progress deadline (on a FakeClock). The ReplicaSet controller is played by
settle(): every ReplicaSet's pods become available at once."""

from __future__ import annotations

from typing import Any

from controlplane.controllers.base import SharedInformers
from controlplane.controllers.deployment import DeploymentController
from controlplane.testing import FakeClock, InProcessClient, refresh
from pkapi import meta, rollout
from pkapi.v1 import apps_pb2
from tests.unit.controllers.objects import deployment, pod, set_ready

KEY = "default/web"


class Env:
    def __init__(self, client: InProcessClient) -> None:
        self.client = client
        self.informers = SharedInformers(client)
        self.clock = FakeClock()
        self.ctl = DeploymentController(client, None, self.informers, clock=self.clock)

    async def step(self) -> None:
        await refresh(self.client, *self.informers.all())
        self.client.clear()
        await self.ctl.sync(KEY)

    async def rss(self) -> list[apps_pb2.ReplicaSet]:
        items, _ = await self.client.list("replicasets", "default")
        return sorted(items, key=lambda r: r.metadata.name)  # type: ignore[return-value, attr-defined]

    async def settle(self, available: bool = True) -> None:
        """The ReplicaSet controller and the nodes, instantly: status follows spec."""
        for rs in await self.rss():
            n = rs.spec.replicas
            st = rs.status
            st.replicas = st.fully_labeled_replicas = n
            st.ready_replicas = st.available_replicas = n if available else 0
            st.observed_generation = rs.metadata.generation
            await self.client.update_status(rs)

    async def get(self) -> apps_pb2.Deployment:
        return await self.client.get("deployments", "default", "web")  # type: ignore[return-value]

    async def converge(self, check: Any = None, limit: int = 30) -> int:
        """Sync and settle until a sync changes no ReplicaSet; check(rss)
        after every sync. Returns the number of steps."""
        for i in range(limit):
            await self.step()
            if check is not None:
                check(await self.rss())
            if not self.client.writes("replicasets"):
                return i + 1
            await self.settle()
        raise AssertionError(f"no steady state after {limit} syncs")

    async def set_image(self, image: str) -> None:
        d = await self.get()
        d.spec.template.spec.containers[0].image = image
        await self.client.update(d)


def condition(d: apps_pb2.Deployment, type_: str) -> tuple[str, str]:
    c = meta.condition(d.status.conditions, type_)
    assert c is not None, f"no {type_} condition"
    return c.status, c.reason


async def test_rolling_update_stays_within_surge_and_unavailable(client: InProcessClient) -> None:
    await client.create(deployment(replicas=4))  # default 25%/25%: surge 1, unavailable 1
    env = Env(client)
    await env.step()
    [first] = await env.rss()
    assert first.spec.replicas == 4 and first.metadata.annotations[rollout.REVISION] == "1"
    assert first.metadata.name == f"web-{first.metadata.labels[rollout.POD_TEMPLATE_HASH]}"
    assert condition(await env.get(), "Progressing") == ("True", "NewReplicaSetCreated")
    await env.settle()
    await env.converge()
    d = await env.get()
    assert condition(d, "Progressing") == ("True", "NewReplicaSetAvailable")
    assert condition(d, "Available") == ("True", "MinimumReplicasAvailable")

    def within_bounds(rss: list[apps_pb2.ReplicaSet]) -> None:
        total = sum(r.spec.replicas for r in rss)
        available = sum(r.status.available_replicas for r in rss)
        assert total <= 4 + 1, f"surge exceeded: {total}"
        assert available >= 4 - 1, f"too few available: {available}"

    await env.set_image("pocketkube/hello:2")
    steps = await env.converge(within_bounds)
    assert steps > 2  # it went step by step
    old, new = sorted(await env.rss(), key=lambda r: r.metadata.annotations[rollout.REVISION])
    assert old.metadata.name == first.metadata.name
    assert (old.spec.replicas, new.spec.replicas) == (0, 4)
    assert new.spec.template.spec.containers[0].image == "pocketkube/hello:2"
    d = await env.get()
    assert d.metadata.annotations[rollout.REVISION] == "2"
    assert (d.status.replicas, d.status.updated_replicas, d.status.available_replicas) == (4, 4, 4)
    assert condition(d, "Progressing") == ("True", "NewReplicaSetAvailable")

    # Rollback (what `pkctl rollout undo` writes): the old template again.
    # The ReplicaSet that has it becomes the new one, with a new revision.
    await env.set_image("pocketkube/hello:1")
    await env.converge(within_bounds)
    rss = {r.metadata.name: r for r in await env.rss()}
    assert len(rss) == 2
    back = rss[first.metadata.name]
    assert back.spec.replicas == 4 and back.metadata.annotations[rollout.REVISION] == "3"
    assert (await env.get()).metadata.annotations[rollout.REVISION] == "3"


async def test_recreate_waits_for_every_old_pod_to_be_gone(client: InProcessClient) -> None:
    await client.create(deployment(replicas=2, strategy={"type": "Recreate"}))
    env = Env(client)
    await env.step()
    await env.settle()
    [old] = await env.rss()
    straggler = await client.create(pod("old-pod", labels=dict(old.spec.template.metadata.labels), owner=old,
                                        node="n1"))
    set_ready(straggler, env.clock())
    await client.update_status(straggler)
    await env.converge()

    await env.set_image("pocketkube/hello:2")
    await env.step()
    assert [(r.metadata.name, r.spec.replicas) for r in await env.rss()] == [(old.metadata.name, 0)]
    await env.settle()
    await env.step()  # the old ReplicaSet is empty, but its pod still exists
    await env.step()
    assert len(await env.rss()) == 1
    await client.delete("pods", "default", "old-pod", grace_period_seconds=0)
    await env.step()
    new = [r for r in await env.rss() if r.metadata.name != old.metadata.name]
    assert [r.spec.replicas for r in new] == [2]  # created at full size, at once


async def test_progress_deadline_on_the_injected_clock(client: InProcessClient) -> None:
    await client.create(deployment(replicas=2, progressDeadlineSeconds=30))
    env = Env(client)
    await env.step()
    assert condition(await env.get(), "Progressing") == ("True", "NewReplicaSetCreated")
    await env.settle(available=False)  # pods that are created but never become ready
    await env.step()  # progress (2 updated replicas): lastUpdateTime is now
    assert condition(await env.get(), "Progressing") == ("True", "ReplicaSetUpdated")
    assert condition(await env.get(), "Available") == ("False", "MinimumReplicasUnavailable")
    env.clock.advance(20)
    await env.step()
    assert condition(await env.get(), "Progressing") == ("True", "ReplicaSetUpdated")  # 20 s < 30 s
    env.clock.advance(11)
    await env.step()
    d = await env.get()
    assert condition(d, "Progressing") == ("False", "ProgressDeadlineExceeded")
    c = meta.condition(d.status.conditions, "Progressing")
    assert c.message == f'ReplicaSet "{(await env.rss())[0].metadata.name}" has timed out progressing.'
    assert c.last_transition_time.seconds == int(env.clock())
    # The pods turn ready after all: the rollout completes.
    await env.settle()
    await env.step()
    assert condition(await env.get(), "Progressing") == ("True", "NewReplicaSetAvailable")


async def test_pause_stops_the_rollout_and_resume_continues(client: InProcessClient) -> None:
    await client.create(deployment(replicas=2))
    env = Env(client)
    await env.step()
    await env.settle()
    await env.converge()
    d = await env.get()
    d.spec.paused = True
    await client.update(d)
    await env.step()
    assert condition(await env.get(), "Progressing") == ("Unknown", "DeploymentPaused")
    await env.set_image("pocketkube/hello:2")
    await env.step()
    assert len(await env.rss()) == 1  # paused: no new ReplicaSet
    d = await env.get()
    d.spec.paused = False
    await client.update(d)
    await env.step()
    assert len(await env.rss()) == 2
    await env.settle()
    await env.converge()
    assert condition(await env.get(), "Progressing") == ("True", "NewReplicaSetAvailable")
