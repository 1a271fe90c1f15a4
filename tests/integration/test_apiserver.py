"""The API server on a real etcd, through a real pk-controlplane process."""

from __future__ import annotations

import asyncio

import pytest

from pkapi import meta
from pkapi.errors import ApiError
from pkapi.v1 import apps_pb2, core_pb2
from tests.helpers import eventually

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
    """1,000 creates by 4 concurrent writers after a list: the watch from the
    list's revision sees each exactly once, in revision order."""
    writes, writers = 1000, 4
    items, rv = await client.list("pods")
    w = client.watch("pods", resource_version=rv)

    async def writer(k: int):
        for i in range(k, writes, writers):
            await client.create(pod(f"p{i}"))

    tasks = [asyncio.ensure_future(writer(k)) for k in range(writers)]
    seen: list[str] = []
    revs: list[int] = []
    while len(seen) < writes:
        t, obj = await next_event(w, 10)
        assert t == "ADDED"
        seen.append(obj.metadata.name)
        revs.append(int(obj.metadata.resource_version))
    await asyncio.gather(*tasks)
    assert sorted(seen) == sorted(f"p{i}" for i in range(writes)) and len(set(seen)) == writes
    assert revs == sorted(revs) and revs[0] > int(rv)
    await w.aclose()


async def test_bookmarks_and_bad_resource_versions(client):
    _, rv = await client.list("pods")
    w = client.watch("pods", resource_version=rv, allow_bookmarks=True)
    t, obj = await next_event(w, 5)
    assert t == "BOOKMARK" and int(obj.metadata.resource_version) >= int(rv)
    await w.aclose()
    # (here, not in a test of its own: one control plane start less)
    for rv in ("abc", "-5"):
        w = client.watch("pods", resource_version=rv)
        with pytest.raises(ApiError) as e:
            await next_event(w)
        assert (e.value.reason, e.value.message) == ("BadRequest", f'invalid resource version "{rv}"')
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

    await eventually("namespace team to be deleted", gone)
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


SEED_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "my-web-app-service"},
    "spec": {
        "selector": {"app": "my-web-app"},
        "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
        "type": "ClusterIP",
    },
}


async def test_seed_service_allocation_survives_reapply(client):
    import json

    svc, result = await client.apply(json.dumps(SEED_SERVICE))
    assert result == "created" and svc.spec.cluster_ip.startswith("10.96.")
    _, result = await client.apply(json.dumps(SEED_SERVICE))
    assert result == "unchanged"
    got = await client.get("services", "default", "my-web-app-service")
    _, result = await client.apply(json.dumps(meta.to_dict(got)))
    assert result == "unchanged"
    # NodePort: the allocated port is kept by a re-apply that omits it
    np = json.loads(json.dumps(SEED_SERVICE))
    np["spec"]["type"] = "NodePort"
    out, result = await client.apply(json.dumps(np))
    assert result == "configured" and 30000 <= out.spec.ports[0].node_port <= 32767
    again, result = await client.apply(json.dumps(np))
    assert result == "unchanged" and again.spec.ports[0].node_port == out.spec.ports[0].node_port
    # changing the clusterIP is refused
    changed = json.loads(json.dumps(np))
    changed["spec"]["clusterIP"] = "10.96.99.99"
    with pytest.raises(ApiError, match='spec.clusterIP: Invalid value: "10.96.99.99": field is immutable'):
        await client.apply(json.dumps(changed))


async def test_watch_too_old_after_compaction_then_relist(start_controlplane, etcd_process):
    from controlplane.store.etcd import EtcdStore

    cp = await start_controlplane(etcd=etcd_process)
    async with cp.client() as c:
        for i in range(5):
            await c.create(pod(f"p{i}"))
        store = EtcdStore(etcd_process.endpoint)
        try:
            await store.compact(await store.current_revision())
        finally:
            await store.close()
        # the cache's history reaches back only to its start, so an old
        # revision goes to etcd, which has compacted it
        w = c.watch("pods", resource_version="1")
        with pytest.raises(ApiError) as e:
            await next_event(w)
        assert e.value.reason == "Expired" and "too old resource version" in e.value.message
        # relist, then watch from the list's revision: works
        items, rv = await c.list("pods")
        assert len(items) == 5
        w2 = c.watch("pods", resource_version=rv)
        fut = asyncio.ensure_future(next_event(w2))
        await c.create(pod("after"))
        t, obj = await fut
        assert (t, obj.metadata.name) == ("ADDED", "after")
        await w2.aclose()


async def test_watch_survives_etcd_restart(start_controlplane, etcd_process):
    cp = await start_controlplane(etcd=etcd_process)
    async with cp.client() as c:
        _, rv = await c.list("pods")
        w = c.watch("pods", resource_version=rv)
        await c.create(pod("before"))
        assert (await next_event(w))[1].metadata.name == "before"
        await etcd_process.stop()
        await etcd_process.start()

        async def create_after():
            try:
                await c.create(pod("after"))
                return True
            except ApiError as e:
                if e.reason in ("ServiceUnavailable", "AlreadyExists"):
                    return e.reason == "AlreadyExists"
                raise

        await eventually("a create to succeed after the etcd restart", create_after, timeout=15)
        t, obj = await next_event(w, 15)
        assert (t, obj.metadata.name) == ("ADDED", "after")
        await w.aclose()


async def test_pod_logs_and_exec_are_proxied_to_the_agent(client):
    """A stand-in AgentService (this test's own gRPC server on loopback)
    plays the node's agent; the API server must find it through the Node and
    relay both streams."""
    import grpc

    from pkapi.v1 import api_pb2, api_pb2_grpc

    class Agent(api_pb2_grpc.AgentServiceServicer):
        async def Logs(self, request, context):
            yield api_pb2.LogChunk(data=f"{request.namespace}/{request.pod}/{request.container}\n".encode())
            yield api_pb2.LogChunk(data=b"line 2\n")

        async def Exec(self, request_iterator, context):
            start = await request_iterator.__anext__()
            assert start.start.command == ["cat"]
            async for r in request_iterator:
                if r.WhichOneof("msg") == "stdin":
                    yield api_pb2.ExecResponse(stdout=r.stdin.upper())
                elif r.WhichOneof("msg") == "stdin_close":
                    break
            yield api_pb2.ExecResponse(exit_code=3)

    server = grpc.aio.server()
    api_pb2_grpc.add_AgentServiceServicer_to_server(Agent(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        n = core_pb2.Node()
        n.metadata.name = "n1"
        n.status.addresses.add(type="InternalIP", address="127.0.0.1")
        n.status.daemon_endpoints.kubelet_endpoint.port = port
        await client.register_node(n)
        await client.create(pod("p", node="n1"))
        chunks = [c.data async for c in client.resources.PodLogs(api_pb2.LogsRequest(namespace="default", pod="p", container="c"))]
        assert b"".join(chunks) == b"default/p/c\nline 2\n"

        async def requests():
            yield api_pb2.ExecRequest(start=api_pb2.ExecStart(namespace="default", pod="p", command=["cat"], stdin=True))
            yield api_pb2.ExecRequest(stdin=b"hello")
            yield api_pb2.ExecRequest(stdin_close=True)

        out = [r async for r in client.resources.PodExec(requests())]
        assert out[0].stdout == b"HELLO" and out[-1].exit_code == 3
        # an unbound pod has no node to ask
        await client.create(pod("unbound"))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            async for _ in client.resources.PodLogs(api_pb2.LogsRequest(namespace="default", pod="unbound")):
                pass
        assert "does not have a host assigned" in e.value.details()
        # a node whose agent does not answer: an API error, not "control plane unreachable"
        from tests.fixtures.controlplane import free_port

        dead = core_pb2.Node()
        dead.metadata.name = "n2"
        dead.status.addresses.add(type="InternalIP", address="127.0.0.1")
        dead.status.daemon_endpoints.kubelet_endpoint.port = free_port()
        await client.register_node(dead)
        await client.create(pod("on-dead", node="n2"))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            async for _ in client.resources.PodLogs(api_pb2.LogsRequest(namespace="default", pod="on-dead")):
                pass
        assert e.value.details().startswith("[ServiceUnavailable] error dialing backend")
    finally:
        await server.stop(0)


async def test_version_health_and_reflection(controlplane, client):
    import grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    v = await client.version()
    assert v.git_version.startswith("v") and v.etcd_version.startswith("3.")
    async with grpc.aio.insecure_channel(controlplane.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)

        async def reqs():
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for resp in stub.ServerReflectionInfo(reqs()):
            names = {s.name for s in resp.list_services_response.service}
            assert {"pkapi.v1.ResourceService", "pkapi.v1.NodeService", "grpc.health.v1.Health"} <= names
            break


async def test_watch_resumes_across_a_control_plane_restart(start_controlplane, etcd_process):
    """A client that watched one control plane resumes on a fresh one from
    its last resourceVersion (older than the new cache): nothing is lost.
    SIGTERM with a watch open exits cleanly (status 0) and ends the stream."""
    cp = await start_controlplane(etcd=etcd_process)
    async with cp.client() as c:
        _, rv = await c.list("pods")
        w = c.watch("pods", resource_version=rv)
        await c.create(pod("a"))
        # The watch delivered: it is open on the server when SIGTERM comes.
        t, obj = await next_event(w, 15)
        assert (t, obj.metadata.name) == ("ADDED", "a")
        rv = obj.metadata.resource_version
        pending = asyncio.ensure_future(next_event(w, 15))
        assert await cp.stop() == 0
        with pytest.raises(Exception):  # noqa: B017 - ServerUnreachable or ApiError(ServiceUnavailable)
            await pending
    other = await start_controlplane(etcd=etcd_process)
    async with other.client() as c:
        await c.create(pod("b"))
        await c.delete("pods", "default", "a")
        w = c.watch("pods", resource_version=rv)
        got = [await next_event(w) for _ in range(2)]
        assert [(t, o.metadata.name) for t, o in got] == [("ADDED", "b"), ("DELETED", "a")]
        await w.aclose()


async def test_two_control_planes_serve_one_etcd(start_controlplane, etcd_process):
    """Every control plane serves the API: a write through one is seen by a
    watch through the other, and CAS holds across them."""
    a = await start_controlplane(etcd=etcd_process)
    b = await start_controlplane(etcd=etcd_process)
    async with a.client() as ca, b.client() as cb:
        _, rv = await cb.list("pods")
        w = cb.watch("pods", resource_version=rv)
        fut = asyncio.ensure_future(next_event(w))
        created = await ca.create(pod("x"))
        t, obj = await fut
        assert (t, obj.metadata.uid) == ("ADDED", created.metadata.uid)
        stale = await cb.get("pods", "default", "x")
        created.metadata.labels["by"] = "a"
        await ca.update(created)
        stale.metadata.labels["by"] = "b"
        with pytest.raises(ApiError, match="the object has been modified"):
            await cb.update(stale)
        await w.aclose()


async def test_reapply_is_unchanged_while_controllers_run(start_controlplane):
    """The controllers annotate the Deployment (revision) and the rollout
    settles; re-applying the seed manifests is still "unchanged"."""
    import json

    cp = await start_controlplane(controllers=True)
    async with cp.client() as c:
        for m in (SEED_DEPLOYMENT, SEED_SERVICE):
            assert (await c.apply(json.dumps(m)))[1] == "created"

        async def annotated():
            d = await c.get("deployments", "default", "my-web-app-deployment")
            return "deployment.kubernetes.io/revision" in d.metadata.annotations

        await eventually("the deployment controller's revision annotation", annotated, timeout=15)
        for m in (SEED_DEPLOYMENT, SEED_SERVICE):
            assert (await c.apply(json.dumps(m)))[1] == "unchanged", m["kind"]


def _event(name: str, ns: str = "default", type_: str = "Normal") -> core_pb2.Event:
    ev = core_pb2.Event(reason="Started", message=f"Started {name}", type=type_, count=1)
    ev.metadata.name, ev.metadata.namespace = name, ns
    ev.involved_object.kind, ev.involved_object.name, ev.involved_object.namespace = "Pod", name, ns
    return ev


async def test_record_events_writes_a_batch_in_one_transaction_each_item_on_its_own(client):
    await client.create(_event("taken"))
    created, updated = await client.record_events(
        [_event("a"), _event("b"), _event("bad", type_="Loud"), _event("taken"), _event("c", ns="nosuch"),
         _event("d")],
        [_event("taken"), _event("missing")],
    )
    a, b, bad, taken, nons, d = created
    assert all(isinstance(x, core_pb2.Event) for x in (a, b, d))
    # One etcd transaction: the batch's creates share its revision.
    assert a.metadata.resource_version == b.metadata.resource_version == d.metadata.resource_version
    assert a.metadata.uid and a.metadata.uid != b.metadata.uid and a.metadata.HasField("creation_timestamp")
    assert isinstance(bad, ApiError) and bad.reason == "Invalid" and "Loud" in bad.message
    assert isinstance(taken, ApiError) and taken.reason == "AlreadyExists"
    assert isinstance(nons, ApiError) and nons.reason == "NotFound" and "nosuch" in nons.message
    up, missing = updated
    assert isinstance(up, core_pb2.Event) and int(up.metadata.resource_version) > 0
    assert isinstance(missing, ApiError) and missing.reason == "NotFound"
    items, _ = await client.list("events", "default")
    assert sorted(e.metadata.name for e in items) == ["a", "b", "d", "taken"]
    got = await client.get("events", "default", "a")
    assert got.metadata.resource_version == a.metadata.resource_version and got.message == "Started a"


async def test_event_recorder_batches_through_the_server(client):
    from pkapi.client.events import EventRecorder

    rec = EventRecorder(client, "kubelet", host="n1")
    pods = []
    for i in range(150):
        p = pod(f"rec-{i}")
        p.metadata.uid = f"uid-{i}"
        pods.append(p)
    written = await asyncio.gather(*(rec.event(p, "Normal", "Pulled", "already present") for p in pods))
    assert all(w is not None for w in written) and rec.batches == 2
    # A repeat bumps the count of the stored Event.
    again = await rec.event(pods[0], "Normal", "Pulled", "already present")
    assert again is not None and again.count == 2 and again.metadata.name == written[0].metadata.name
    items, _ = await client.list("events", "default", field_selector="involvedObject.name=rec-0")
    assert [(e.reason, e.count, e.source.host) for e in items] == [("Pulled", 2, "n1")]
    items, _ = await client.list("events", "default")
    assert len([e for e in items if e.involved_object.name.startswith("rec-")]) == 150


async def test_create_batch_each_item_on_its_own_one_revision(client):
    """CreateBatch (a ReplicaSet's slow-start batch): each item as Create
    would, on its own; the items written share one revision; generated
    names are drawn by the server; a bad item or body fails alone."""
    await client.create(pod("taken"))
    gen = pod("")
    gen.metadata.generate_name = "web-"
    bad = pod("bad")
    bad.spec.containers[0].image = ""
    out = await client.create_batch([pod("a"), gen, gen, bad, pod("taken"), pod("x", ns="nosuch"), pod("b"),
                                     pod("a")])
    a, g1, g2, bad_r, taken, nons, b, a_again = out
    assert all(isinstance(x, core_pb2.Pod) for x in (a, g1, g2, b))
    assert a.metadata.resource_version == g1.metadata.resource_version == b.metadata.resource_version
    assert g1.metadata.name.startswith("web-") and g1.metadata.name != g2.metadata.name
    assert a.status.phase == "Pending" and a.metadata.uid and a.metadata.uid != b.metadata.uid
    assert isinstance(bad_r, ApiError) and bad_r.reason == "Invalid" and "image" in bad_r.message
    assert isinstance(taken, ApiError) and taken.reason == "AlreadyExists"
    assert isinstance(nons, ApiError) and nons.reason == "NotFound" and "nosuch" in nons.message
    # The same name twice in one batch: the second is created after the batch, and exists.
    assert isinstance(a_again, ApiError) and a_again.reason == "AlreadyExists"
    items, _ = await client.list("pods", "default")
    assert sorted(p.metadata.name for p in items) == sorted(["a", "b", "taken", g1.metadata.name, g2.metadata.name])
    assert await client.create_batch([]) == []


async def test_bind_sets_node_name_once_each_item_on_its_own(client):
    """Bind (the scheduler's): spec.nodeName of unbound pods; a pod already
    bound, being deleted, gone or replaced (other uid) fails alone."""
    pods = [await client.create(pod(f"p{i}")) for i in range(4)]
    bound = await client.create(pod("bound", node="n9"))
    deleting = pod("deleting")
    deleting.metadata.finalizers.append("example.com/hold")
    deleting = await client.create(deleting)
    await client.delete("pods", "default", "deleting")
    stale = core_pb2.Pod()
    stale.CopyFrom(pods[3])
    stale.metadata.uid = "another-uid"
    missing = pod("missing")
    out = await client.bind([(pods[0], "n1"), (pods[1], "n2"), (pods[2], "n1"), (bound, "n1"), (deleting, "n1"),
                             (missing, "n1"), (stale, "n1"), (pods[3], "bad_node!")])
    p0, p1, p2, again, del_r, miss, other, bad_node = out
    assert [x.spec.node_name for x in (p0, p1, p2)] == ["n1", "n2", "n1"]
    assert p0.metadata.resource_version == p1.metadata.resource_version == p2.metadata.resource_version
    assert isinstance(again, ApiError) and again.reason == "Conflict" and 'already assigned to node "n9"' in again.message
    assert isinstance(del_r, ApiError) and del_r.reason == "Conflict" and "being deleted" in del_r.message
    assert isinstance(miss, ApiError) and miss.reason == "NotFound"
    assert isinstance(other, ApiError) and other.reason == "Conflict" and "UID in precondition" in other.message
    assert isinstance(bad_node, ApiError) and bad_node.reason == "Invalid"
    got = await client.get("pods", "default", "p0")
    assert got.spec.node_name == "n1" and got.metadata.resource_version == p0.metadata.resource_version
    assert (await client.get("pods", "default", "p3")).spec.node_name == ""
    # Binding again is a Conflict, not a move.
    (moved,) = await client.bind([(pods[0], "n2")])
    assert isinstance(moved, ApiError) and moved.reason == "Conflict"
    assert (await client.get("pods", "default", "p0")).spec.node_name == "n1"


async def test_watch_delivers_a_batch_write_in_one_message(client):
    """The events of one revision arrive in one WatchResponse (api.proto):
    a client resuming from the last event it got cannot miss part of it."""
    from pkapi.v1 import api_pb2

    _, rv = await client.list("pods", "default")
    call = client.resources.Watch(api_pb2.WatchRequest(resource="pods", namespace="default", resource_version=rv))
    try:
        await client.create(pod("first"))
        out = await client.create_batch([pod(f"w{i}") for i in range(40)])
        msgs = []
        async with asyncio.timeout(10):
            seen = 0
            while seen < 41:
                resp = await call.read()
                msgs.append([(e.type, meta.unwrap(e.object).metadata.name) for e in resp.events])
                seen += len(resp.events)
        names = [n for m in msgs for _, n in m]
        assert names == ["first"] + [f"w{i}" for i in range(40)]
        batch_rv = out[0].metadata.resource_version
        # The whole batch is in the message that holds its first event.
        i = next(k for k, m in enumerate(msgs) if any(n == "w0" for _, n in m))
        assert {n for _, n in msgs[i]} >= {f"w{k}" for k in range(40)}, msgs
        assert all(batch_rv == o.metadata.resource_version for o in out)
    finally:
        call.cancel()
