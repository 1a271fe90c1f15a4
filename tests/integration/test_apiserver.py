"""The API server on a real etcd, through a real pk-controlplane process."""

from __future__ import annotations

import asyncio

import pytest

from pkapi import meta
from pkapi.errors import ApiError
from pkapi.v1 import apps_pb2, core_pb2

pytestmark = pytest.mark.integration

SEED_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "my-web-app-deployment", "labels": {"app": "my-web-app"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "my-web-app"}},
        "template": {
            "metadata": {"labels": {"app": "my-web-app"}},
            "spec": {
                "containers": [
                    {"name": "my-web-app-container", "image": "nginx:latest", "ports": [{"containerPort": 80}]}
                ]
            },
        },
    },
}


def deployment(name: str = "web", replicas: int = 1, ns: str = "default", labels: dict | None = None):
    d = dict(SEED_DEPLOYMENT)
    d = meta.from_dict(
        {
            **SEED_DEPLOYMENT,
            "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": name}},
            "spec": {
                **SEED_DEPLOYMENT["spec"],
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": SEED_DEPLOYMENT["spec"]["template"]["spec"],
                },
            },
        },
        apps_pb2.Deployment,
    )
    return d


def pod(name: str, ns: str = "default", labels: dict | None = None, node: str = "") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = ns
    p.metadata.labels.update(labels or {})
    p.spec.containers.add(name="c", image="busybox:1")
    p.spec.node_name = node
    return p


async def test_crud_and_defaults(client):
    d = await client.create(deployment("web", 2))
    assert d.metadata.uid and d.metadata.resource_version and d.metadata.generation == 1
    assert d.spec.strategy.type == "RollingUpdate"
    assert d.spec.strategy.rolling_update.max_surge.string_value == "25%"
    assert d.spec.revision_history_limit == 10
    assert d.spec.template.spec.containers[0].image_pull_policy == "Always"
    got = await client.get("deployments", "default", "web")
    assert got == d
    items, rv = await client.list("deployments", "default")
    assert [i.metadata.name for i in items] == ["web"] and int(rv) >= int(d.metadata.resource_version)
    d.spec.replicas = 5
    d2 = await client.update(d)
    assert d2.metadata.generation == 2 and int(d2.metadata.resource_version) > int(d.metadata.resource_version)
    # a stale write is a Conflict
    with pytest.raises(ApiError) as e:
        await client.update(d)
    assert e.value.reason == "Conflict"
    assert e.value.message == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    # status writes do not bump generation, spec writes ignore status
    d2.status.replicas = 4
    d3 = await client.update_status(d2)
    assert d3.status.replicas == 4 and d3.metadata.generation == 2
    d3.status.replicas = 9
    d3.metadata.labels["x"] = "y"
    d4 = await client.update(d3)
    assert d4.status.replicas == 4 and d4.metadata.generation == 2 and d4.metadata.labels["x"] == "y"
    with pytest.raises(ApiError, match='deployments.apps "web" already exists'):
        await client.create(deployment("web"))
    await client.delete("deployments", "default", "web")
    with pytest.raises(ApiError, match='deployments.apps "web" not found') as e:
        await client.get("deployments", "default", "web")
    assert e.value.reason == "NotFound"


async def test_system_namespaces_and_missing_namespace(client):
    names = {n.metadata.name for n in (await client.list("namespaces"))[0]}
    assert {"default", "kube-system", "kube-node-lease"} <= names
    with pytest.raises(ApiError, match='namespaces "nope" not found'):
        await client.create(deployment("web", ns="nope"))


async def test_concurrent_writers_conflict(client):
    await client.create(deployment("web", 1))
    base = await client.get("deployments", "default", "web")

    async def bump(i: int):
        d = apps_pb2.Deployment()
        d.CopyFrom(base)
        d.metadata.labels["writer"] = str(i)
        try:
            await client.update(d)
            return "ok"
        except ApiError as e:
            return e.reason

    results = await asyncio.gather(*(bump(i) for i in range(8)))
    assert results.count("ok") == 1 and results.count("Conflict") == 7


async def test_apply_created_configured_unchanged_and_dry_run(client):
    import json

    manifest = json.dumps(SEED_DEPLOYMENT)
    obj, result = await client.apply(manifest, dry_run=True)
    assert result == "created" and obj.metadata.name == "my-web-app-deployment"
    with pytest.raises(ApiError, match="not found"):
        await client.get("deployments", "default", "my-web-app-deployment")
    obj, result = await client.apply(manifest)
    assert result == "created"
    _, result = await client.apply(manifest)
    assert result == "unchanged"
    # what `get -o yaml` prints applies unchanged
    got = await client.get("deployments", "default", "my-web-app-deployment")
    _, result = await client.apply(json.dumps(meta.to_dict(got)))
    assert result == "unchanged"
    changed = json.loads(manifest)
    changed["spec"]["replicas"] = 5
    out, result = await client.apply(json.dumps(changed), dry_run=True)
    assert result == "configured" and out.spec.replicas == 5
    assert (await client.get("deployments", "default", "my-web-app-deployment")).spec.replicas == 3
    out, result = await client.apply(json.dumps(changed))
    assert result == "configured" and out.metadata.generation == 2
    assert out.metadata.uid == got.metadata.uid


async def test_dry_run_create_and_delete_write_nothing(client):
    _, rv0 = await client.list("pods")
    await client.create(pod("p1"), dry_run=True)
    items, rv1 = await client.list("pods")
    assert items == [] and rv1 == rv0
    await client.create(pod("p1"))
    await client.delete("pods", "default", "p1", dry_run=True)
    assert (await client.get("pods", "default", "p1")).metadata.name == "p1"


async def next_event(it, timeout=5.0):
    return await asyncio.wait_for(it.__anext__(), timeout)


async def test_watch_with_selectors(client):
    await client.create(pod("a", labels={"app": "web"}))
    items, rv = await client.list("pods", label_selector="app=web")
    assert [p.metadata.name for p in items] == ["a"]
    w = client.watch("pods", "default", resource_version=rv, label_selector="app=web", field_selector="spec.nodeName=")
    first = asyncio.ensure_future(next_event(w))
    await client.create(pod("b", labels={"app": "db"}))  # filtered out
    await client.create(pod("c", labels={"app": "web"}))
    t, obj = await first
    assert (t, obj.metadata.name) == ("ADDED", "c")
    # leaving the selector is a DELETED event for this watcher
    c = await client.get("pods", "default", "c")
    c.metadata.labels["app"] = "other"
    await client.update(c)
    t, obj = await next_event(w)
    assert (t, obj.metadata.name) == ("DELETED", "c")
    await client.delete("pods", "default", "a")
    t, obj = await next_event(w)
    assert (t, obj.metadata.name) == ("DELETED", "a")
    await w.aclose()
    # from "" : ADDED for every current object first
    w2 = client.watch("pods", "default", label_selector="app in (web,db)")
    t, obj = await next_event(w2)
    assert (t, obj.metadata.name) == ("ADDED", "b")
    await w2.aclose()


async def test_list_then_watch_misses_nothing(client):
    writes = 300
    items, rv = await client.list("pods")
    w = client.watch("pods", resource_version=rv)

    async def writer():
        for i in range(writes):
            await client.create(pod(f"p{i}"))

    task = asyncio.ensure_future(writer())
    seen = []
    while len(seen) < writes:
        t, obj = await next_event(w, 10)
        assert t == "ADDED"
        seen.append(obj.metadata.name)
    await task
    assert seen == [f"p{i}" for i in range(writes)]
    await w.aclose()


async def test_bookmarks(client):
    _, rv = await client.list("pods")
    w = client.watch("pods", resource_version=rv, allow_bookmarks=True)
    t, obj = await next_event(w, 5)
    assert t == "BOOKMARK" and int(obj.metadata.resource_version) >= int(rv)
    await w.aclose()


async def test_node_register_and_heartbeat(client):
    n = core_pb2.Node()
    n.metadata.name = "n1"
    n.metadata.labels["kubernetes.io/hostname"] = "n1"
    n.status.addresses.add(type="InternalIP", address="127.0.0.1")
    n.status.daemon_endpoints.kubelet_endpoint.port = 10250
    n.status.conditions.add(type="Ready", status="True")
    out = await client.register_node(n)
    assert out.status.addresses[0].address == "127.0.0.1"
    # a user cordons and taints the node; re-registration keeps that
    out.spec.unschedulable = True
    out.spec.taints.add(key="k", value="v", effect="NoSchedule")
    await client.update(out)
    again = await client.register_node(n)
    assert again.spec.unschedulable and again.spec.taints[0].key == "k"
    assert again.metadata.uid == out.metadata.uid
    lease1 = await client.get("leases", "kube-node-lease", "n1")
    assert lease1.spec.holder_identity == "n1"
    resp = await client.heartbeat("n1")
    assert resp.interval_ms == 1000
    lease2 = await client.get("leases", "kube-node-lease", "n1")
    assert lease2.spec.renew_time.ToNanoseconds() >= lease1.spec.renew_time.ToNanoseconds()
    assert int(lease2.metadata.resource_version) > int(lease1.metadata.resource_version)


async def test_generate_name(client):
    p = pod("")
    p.metadata.generate_name = "web-"
    out = await client.create(p)
    assert out.metadata.name.startswith("web-") and len(out.metadata.name) == 9


async def wait_for(cond, timeout=10.0, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        last = await cond()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_namespace_deletion_deletes_contents(client):
    ns = core_pb2.Namespace()
    ns.metadata.name = "team"
    await client.create(ns)
    await client.create(deployment("web", ns="team"))
    await client.create(pod("p", ns="team"))
    out = await client.delete("namespaces", "", "team")
    assert out.status.phase == "Terminating" and out.metadata.HasField("deletion_timestamp")

    async def gone():
        items, _ = await client.list("namespaces")
        return "team" not in {n.metadata.name for n in items}

    await wait_for(gone, what="namespace team to be deleted")
    assert (await client.list("deployments", "team"))[0] == []
    assert (await client.list("pods", "team"))[0] == []
    with pytest.raises(ApiError, match="forbidden: this namespace may not be deleted"):
        await client.delete("namespaces", "", "default")


async def test_propagation_and_grace(client):
    await client.create(deployment("fg"))
    out = await client.delete("deployments", "default", "fg", propagation_policy="Foreground")
    assert list(out.metadata.finalizers) == ["foregroundDeletion"] and out.metadata.HasField("deletion_timestamp")
    out = await client.delete("deployments", "default", "fg")  # deleting again keeps the mark
    assert out.metadata.HasField("deletion_timestamp")
    # the garbage collector removes the finalizer: the object goes
    cur = await client.get("deployments", "default", "fg")
    del cur.metadata.finalizers[:]
    await client.update(cur)
    with pytest.raises(ApiError, match="not found"):
        await client.get("deployments", "default", "fg")

    await client.create(deployment("or"))
    out = await client.delete("deployments", "default", "or", propagation_policy="Orphan")
    assert list(out.metadata.finalizers) == ["orphan"]
    with pytest.raises(ApiError, match="Unsupported value"):
        await client.delete("deployments", "default", "or", propagation_policy="Sometimes")

    # a bound pod gets a grace period; the agent's grace-0 delete removes it
    await client.create(pod("bound", node="n1"))
    out = await client.delete("pods", "default", "bound")
    assert out.metadata.deletion_grace_period_seconds == 30
    assert (await client.get("pods", "default", "bound")).metadata.HasField("deletion_timestamp")
    await client.delete("pods", "default", "bound", grace_period_seconds=0)
    with pytest.raises(ApiError, match='pods "bound" not found'):
        await client.get("pods", "default", "bound")
    # an unbound pod goes at once
    await client.create(pod("free"))
    await client.delete("pods", "default", "free")
    with pytest.raises(ApiError, match="not found"):
        await client.get("pods", "default", "free")
    # preconditions
    p = await client.create(pod("pre"))
    with pytest.raises(ApiError, match="Precondition failed: UID in precondition: x"):
        await client.delete("pods", "default", "pre", uid="x")
    with pytest.raises(ApiError, match="Precondition failed: ResourceVersion in precondition: 1,"):
        await client.delete("pods", "default", "pre", resource_version="1")
    await client.delete("pods", "default", "pre", uid=p.metadata.uid, resource_version=p.metadata.resource_version)


async def test_embedded_etcd_starts_and_stops_with_the_control_plane(start_controlplane):
    import psutil

    cp = await start_controlplane(embedded=True)
    children = psutil.Process(cp.process.pid).children(recursive=True)
    etcds = [c for c in children if "etcd" in c.name()]
    assert len(etcds) == 1, children
    async with cp.client() as c:
        await c.create(pod("p"))
        assert (await c.get("pods", "default", "p")).metadata.name == "p"
    assert await cp.stop() == 0
    gone, alive = psutil.wait_procs(etcds, timeout=5)
    assert not alive, f"etcd left running: {alive}"
    # data persists under --data-dir: a restart sees the pod
    await cp.start()
    async with cp.client() as c:
        assert (await c.get("pods", "default", "p")).metadata.name == "p"
