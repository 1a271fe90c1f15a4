"""Control loops on a real etcd and a real pk-controlplane (controllers on)
with in-process hollow agents (the real agent code on FakeRuntime)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers import eventually
from tests.integration.controllers_util import (  # noqa: F401 - cluster is a fixture
    cluster_fixture,
    deployment,
    pods_of,
    ready,
    update_with_retry,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_three_replicas_spread_over_three_nodes(cluster: Any) -> None:
    client = cluster.client
    await client.create(deployment("web", 3))

    async def all_ready() -> Any:
        pods = await pods_of(client, "web")
        return pods if len(pods) == 3 and all(ready(p) for p in pods) else None

    pods = await eventually("3 ready pods of web", all_ready, timeout=20)
    assert len({p.spec.node_name for p in pods}) == 3
    d = await _wait_complete(client, "web", 3)
    conds = {c.type: (c.status, c.reason) for c in d.status.conditions}
    assert conds["Available"] == ("True", "MinimumReplicasAvailable")
    assert conds["Progressing"] == ("True", "NewReplicaSetAvailable")
    rss, _ = await client.list("replicasets", "default")
    assert len(rss) == 1 and rss[0].metadata.name.startswith("web-")
    assert rss[0].metadata.annotations["deployment.kubernetes.io/revision"] == "1"


async def _wait_complete(client: Any, name: str, replicas: int, timeout: float = 20.0) -> Any:
    async def check() -> Any:
        d = await client.get("deployments", "default", name)
        st = d.status
        ok = (st.observed_generation >= d.metadata.generation and st.updated_replicas == replicas
              and st.replicas == replicas and st.available_replicas == replicas)
        return d if ok else None
    return await eventually(f"deployment {name} rollout complete with {replicas} replicas", check, timeout=timeout)


async def _set_image(client: Any, name: str, image: str) -> None:
    def mutate(d: Any) -> None:
        d.spec.template.spec.containers[0].image = image

    await update_with_retry(client, "deployments", "default", name, mutate)


async def test_rolling_update_never_exceeds_bounds(cluster: Any) -> None:
    from pkapi.client.informer import Informer

    client = cluster.client
    replicas, surge, unavail = 4, 1, 1
    await client.create(deployment("roll", replicas, max_surge=surge, max_unavailable=unavail))
    await _wait_complete(client, "roll", replicas)

    violations: list[str] = []
    rss = Informer(client, "replicasets", "default", label_selector="app=roll")
    pods = Informer(client, "pods", "default", label_selector="app=roll")
    observed = {"rs": 0, "pods": 0}

    def check_rs(*_: Any) -> None:
        observed["rs"] += 1
        total = sum(r.spec.replicas for r in rss.list())
        if total > replicas + surge:
            violations.append(f"replicasets sum to {total} > {replicas + surge}")

    def check_pods(*_: Any) -> None:
        observed["pods"] += 1
        live = [p for p in pods.list() if not p.metadata.HasField("deletion_timestamp")]
        n_ready = sum(1 for p in live if ready(p))
        if n_ready < replicas - unavail:
            violations.append(f"only {n_ready} ready pods < {replicas - unavail}")

    tasks = [asyncio.create_task(rss.run()), asyncio.create_task(pods.run())]
    try:
        await rss.wait_synced(5)
        await pods.wait_synced(5)
        rss.add_handler(on_add=check_rs, on_update=check_rs, on_delete=check_rs)
        pods.add_handler(on_add=check_pods, on_update=check_pods, on_delete=check_pods)
        await _set_image(client, "roll", "pocketkube/hello:2")
        d = await _wait_complete(client, "roll", replicas)
        await eventually("only new pods remain", lambda: _only_image(client, "roll", "pocketkube/hello:2", replicas), timeout=20)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert not violations, violations[:5]
    assert observed["rs"] >= 4 and observed["pods"] >= 8  # the checks really ran on the rollout
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"


async def _only_image(client: Any, app: str, image: str, n: int) -> bool:
    ps = [p for p in await pods_of(client, app) if not p.metadata.HasField("deletion_timestamp")]
    return len(ps) == n and all(p.spec.containers[0].image == image and ready(p) for p in ps)


async def test_recreate_never_overlaps(cluster: Any) -> None:
    from pkapi.client.informer import Informer

    client = cluster.client
    await client.create(deployment("rec", 3, strategy="Recreate"))
    await _wait_complete(client, "rec", 3)
    overlaps: list[str] = []
    pods = Informer(client, "pods", "default", label_selector="app=rec")
    seen_images: set[str] = set()

    def check(*_: Any) -> None:
        images = {p.spec.containers[0].image for p in pods.list() if p.status.phase not in ("Succeeded", "Failed")}
        seen_images.update(images)
        if len(images) > 1:
            overlaps.append(f"old and new pods together: {sorted(images)}")

    task = asyncio.create_task(pods.run())
    try:
        await pods.wait_synced(5)
        pods.add_handler(on_add=check, on_update=check, on_delete=check)
        await _set_image(client, "rec", "pocketkube/hello:2")
        await _wait_complete(client, "rec", 3)
        await eventually("only new pods remain", lambda: _only_image(client, "rec", "pocketkube/hello:2", 3), timeout=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not overlaps, overlaps[:3]
    assert seen_images == {"pocketkube/hello:1", "pocketkube/hello:2"}


async def test_stuck_rollout_hits_its_deadline(cluster: Any) -> None:
    client = cluster.client
    await client.create(deployment("stuck", 2, progressDeadlineSeconds=2))
    await _wait_complete(client, "stuck", 2)
    await _set_image(client, "stuck", "pocketkube/never-there:1")

    async def timed_out() -> Any:
        d = await client.get("deployments", "default", "stuck")
        c = next((c for c in d.status.conditions if c.type == "Progressing"), None)
        return c if c is not None and c.status == "False" else None

    c = await eventually("Progressing=False", timed_out, timeout=15)
    assert c.reason == "ProgressDeadlineExceeded"
    assert c.message.endswith("has timed out progressing.")
    # the old pods still serve: maxUnavailable 25% of 2 rounds down to 0
    pods = [p for p in await pods_of(client, "stuck") if p.spec.containers[0].image == "pocketkube/hello:1"]
    assert sum(1 for p in pods if ready(p)) == 2


async def test_dead_node_pods_replaced_and_no_duplicates_on_return(cluster: Any) -> None:
    import time

    client = cluster.client
    await client.create(deployment("ha", 3))
    await _wait_complete(client, "ha", 3)
    pods = await pods_of(client, "ha")
    victim_name = pods[0].spec.node_name
    victim = next(n for n in cluster.nodes if n.name == victim_name)
    lost = {p.metadata.name for p in pods if p.spec.node_name == victim_name}
    t0 = time.monotonic()
    await victim.stop()

    async def replaced() -> Any:
        ps = [p for p in await pods_of(client, "ha") if not p.metadata.HasField("deletion_timestamp")]
        ok = (len(ps) == 3 and all(ready(p) and p.spec.node_name != victim_name for p in ps)
              and not lost & {p.metadata.name for p in ps})
        return ps if ok else None

    await eventually("3 ready pods on live nodes", replaced, timeout=15, interval=0.05)
    elapsed = time.monotonic() - t0
    grace, toleration = 2, 0
    assert elapsed <= grace + toleration + 2, f"replacement took {elapsed:.1f}s"
    node = await client.get("nodes", "", victim_name)
    assert any(t.key == "node.kubernetes.io/unreachable" and t.effect == "NoExecute" for t in node.spec.taints)
    assert meta_cond(node, "Ready") == "Unknown"
    async def node_not_ready_event() -> Any:
        # Events are written asynchronously (batched): after the taint, not with it.
        events, _ = await client.list("events", "", field_selector=f"involvedObject.name={victim_name}")
        return "NodeNotReady" in {e.reason for e in events}

    await eventually(f"a NodeNotReady event for {victim_name}", node_not_ready_event, timeout=5)

    stale = [c for c in await victim.runtime.list_containers({}) if c.status == "running"]
    assert stale, "the stopped agent's containers should still run (as with a real crashed agent)"
    victim.start()

    async def back() -> Any:
        n = await client.get("nodes", "", victim_name)
        return n if meta_cond(n, "Ready") == "True" and not n.spec.taints else None

    await eventually(f"node {victim_name} Ready again without taints", back, timeout=15)

    async def no_duplicates() -> Any:
        cs = await victim.runtime.list_containers({})
        running = [c for c in cs if c.state == "running"] if cs and hasattr(cs[0], "state") else cs
        ps = [p for p in await pods_of(client, "ha") if not p.metadata.HasField("deletion_timestamp")]
        return len(ps) == 3 and not running

    await eventually("the returned node's replaced containers removed", no_duplicates, timeout=15)


def meta_cond(obj: Any, type_: str) -> str:
    return next((c.status for c in obj.status.conditions if c.type == type_), "")


async def test_orphan_then_adoption_and_cascading_delete(cluster: Any) -> None:
    client = cluster.client
    await client.create(deployment("orph", 2))
    await _wait_complete(client, "orph", 2)
    rs_before, _ = await client.list("replicasets", "default", label_selector="app=orph")
    pods_before = {p.metadata.name for p in await pods_of(client, "orph")}
    await client.delete("deployments", "default", "orph", propagation_policy="Orphan")

    async def orphaned() -> Any:
        rss, _ = await client.list("replicasets", "default", label_selector="app=orph")
        try:
            await client.get("deployments", "default", "orph")
            return None
        except Exception:  # noqa: BLE001 - NotFound expected once the orphan finalizer is done
            pass
        return rss if len(rss) == 1 and not rss[0].metadata.owner_references else None

    await eventually("the deployment gone and its ReplicaSet orphaned", orphaned, timeout=20)
    assert {p.metadata.name for p in await pods_of(client, "orph")} == pods_before

    await client.create(deployment("orph", 2))

    async def adopted() -> Any:
        rss, _ = await client.list("replicasets", "default", label_selector="app=orph")
        d = await client.get("deployments", "default", "orph")
        return len(rss) == 1 and rss[0].metadata.owner_references and \
            rss[0].metadata.owner_references[0].uid == d.metadata.uid

    await eventually("the ReplicaSet adopted by the new deployment", adopted, timeout=20)
    assert rs_before[0].metadata.uid == (await client.list("replicasets", "default", label_selector="app=orph"))[0][0].metadata.uid
    await _wait_complete(client, "orph", 2)
    assert {p.metadata.name for p in await pods_of(client, "orph")} == pods_before  # no new pods

    await client.delete("deployments", "default", "orph", propagation_policy="Foreground")

    async def all_gone() -> bool:
        rss, _ = await client.list("replicasets", "default", label_selector="app=orph")
        return not rss and not await pods_of(client, "orph")

    await eventually("no ReplicaSet or pod outlives its deployment (foreground)", all_gone, timeout=20)

    await client.create(deployment("bg", 2))
    await _wait_complete(client, "bg", 2)
    await client.delete("deployments", "default", "bg")

    async def bg_gone() -> bool:
        rss, _ = await client.list("replicasets", "default", label_selector="app=bg")
        return not rss and not await pods_of(client, "bg")

    await eventually("no ReplicaSet or pod outlives its deployment (background)", bg_gone, timeout=20)


async def test_scale_and_proportional_mid_rollout(cluster: Any) -> None:
    client = cluster.client
    await client.create(deployment("prop", 10, max_surge=3, max_unavailable=2))
    await _wait_complete(client, "prop", 10, timeout=30)
    await _set_image(client, "prop", "pocketkube/never-there:1")

    async def stuck() -> Any:
        rss, _ = await client.list("replicasets", "default", label_selector="app=prop")
        sizes = sorted(r.spec.replicas for r in rss)
        return rss if sizes == [5, 8] else None

    await eventually("the rollout stuck at old 8 / new 5", stuck, timeout=20)
    def scale_to_30(d: Any) -> None:
        d.spec.replicas = 30

    await update_with_retry(client, "deployments", "default", "prop", scale_to_30)

    async def scaled() -> Any:
        rss, _ = await client.list("replicasets", "default", label_selector="app=prop")
        by_image = {r.spec.template.spec.containers[0].image: r.spec.replicas for r in rss}
        return by_image if by_image == {"pocketkube/hello:1": 20, "pocketkube/never-there:1": 13} else None

    await eventually("old RS 20 and new RS 13 after scaling to 30", scaled, timeout=20)


async def test_pods_of_a_deleted_node_are_collected(cluster: Any) -> None:
    from pkapi.v1 import core_pb2

    client = cluster.client
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = "ghost-pod", "default"
    pod.spec.node_name = "ghost"  # a node that does not exist (deleted)
    pod.spec.containers.add(name="c", image="pocketkube/hello:1")
    await client.create(pod)

    async def gone() -> bool:
        items, _ = await client.list("pods", "default", field_selector="metadata.name=ghost-pod")
        return not items

    await eventually("the pod bound to a missing node deleted", gone, timeout=15)
