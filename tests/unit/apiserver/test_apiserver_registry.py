"""Registry semantics over a MemoryStore (a fake store: unit test). The same
behaviour on real etcd is in tests/integration/test_apiserver.py."""

from __future__ import annotations

import pytest

from controlplane.apiserver.registry import Registry
from controlplane.store import MemoryStore
from pkapi import meta
from pkapi.errors import ApiError
from pkapi.v1 import apps_pb2, core_pb2


@pytest.fixture
async def reg():
    r = Registry(MemoryStore())
    await r.ensure_system_namespaces()
    yield r
    await r.close()


def dep(name="web", replicas=1):
    return meta.from_dict({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }, apps_pb2.Deployment)


async def test_generation_and_status_separation(reg):
    d = await reg.create(dep())
    assert d.metadata.generation == 1 and d.metadata.namespace == "default"
    d.metadata.annotations["note"] = "x"
    d = await reg.update(d)
    assert d.metadata.generation == 1
    d.spec.replicas = 2
    d.status.replicas = 7  # ignored by Update
    d = await reg.update(d)
    assert d.metadata.generation == 2 and d.status.replicas == 0
    d.status.replicas = 2
    d.spec.replicas = 9  # ignored by UpdateStatus
    d = await reg.update_status(d)
    assert d.status.replicas == 2 and d.spec.replicas == 2 and d.metadata.generation == 2
    with pytest.raises(ApiError, match="have no status"):
        await reg.update_status(core_pb2.Endpoints(metadata={"name": "x"}))


async def test_server_owned_metadata_cannot_be_overwritten(reg):
    d = await reg.create(dep())
    uid, created = d.metadata.uid, d.metadata.creation_timestamp.seconds
    d.metadata.creation_timestamp.seconds = 1
    d.metadata.generation = 99
    out = await reg.update(d)
    assert out.metadata.uid == uid and out.metadata.creation_timestamp.seconds == created
    assert out.metadata.generation == 1
    d.metadata.uid = "someone-else"
    with pytest.raises(ApiError, match="Precondition failed: UID in precondition: someone-else"):
        await reg.update(d)


async def test_apply_results_and_dry_run(reg):
    _, r = await reg.apply(dep(replicas=2), dry_run=True)
    assert r == "created"
    with pytest.raises(ApiError, match="not found"):
        await reg.get("deployments", "default", "web")
    assert (await reg.apply(dep(replicas=2)))[1] == "created"
    assert (await reg.apply(dep(replicas=2)))[1] == "unchanged"
    out, r = await reg.apply(dep(replicas=3), dry_run=True)
    assert r == "configured" and out.spec.replicas == 3
    assert (await reg.get("deployments", "default", "web")).spec.replicas == 2
    assert (await reg.apply(dep(replicas=3)))[1] == "configured"


async def test_finalizers_hold_deletion_until_removed(reg):
    d = dep()
    d.metadata.finalizers.append("example.com/hold")
    await reg.create(d)
    marked = await reg.delete("deployments", "default", "web")
    assert marked.metadata.HasField("deletion_timestamp")
    assert marked.metadata.deletion_grace_period_seconds == 0
    cur = await reg.get("deployments", "default", "web")
    cur.metadata.finalizers.append("late")
    with pytest.raises(ApiError, match="no new finalizers can be added"):
        await reg.update(cur)
    cur = await reg.get("deployments", "default", "web")
    del cur.metadata.finalizers[:]
    await reg.update(cur)
    with pytest.raises(ApiError, match="not found"):
        await reg.get("deployments", "default", "web")


async def test_terminating_namespace_refuses_new_content(reg):
    ns = core_pb2.Namespace()
    ns.metadata.name = "team"
    await reg.create(ns)
    p = core_pb2.Pod()
    p.metadata.name = "p"
    p.metadata.namespace = "team"
    p.metadata.finalizers.append("hold")  # keeps the namespace Terminating
    p.spec.containers.add(name="c", image="i:1")
    await reg.create(p)
    await reg.delete("namespaces", "", "team")
    d = dep()
    d.metadata.namespace = "team"
    with pytest.raises(ApiError, match="unable to create new content in namespace team because it is being terminated"):
        await reg.create(d)
    for name in ("default", "kube-system", "kube-node-lease"):
        with pytest.raises(ApiError, match="may not be deleted"):
            await reg.delete("namespaces", "", name)


async def test_graceful_pod_deletion(reg):
    p = core_pb2.Pod()
    p.metadata.name = "p"
    p.spec.node_name = "n1"
    p.spec.termination_grace_period_seconds = 5
    p.spec.containers.add(name="c", image="i:1")
    await reg.create(p)
    out = await reg.delete("pods", "default", "p")
    assert out.metadata.deletion_grace_period_seconds == 5
    # the agent reports status meanwhile: the pod stays
    cur = await reg.get("pods", "default", "p")
    cur.status.phase = "Running"
    await reg.update_status(cur)
    # a shorter grace wins
    out = await reg.delete("pods", "default", "p", grace_period_seconds=2)
    assert out.metadata.deletion_grace_period_seconds == 2
    await reg.delete("pods", "default", "p", grace_period_seconds=0)
    with pytest.raises(ApiError, match='pods "p" not found'):
        await reg.get("pods", "default", "p")


async def test_unknown_resource(reg):
    with pytest.raises(ApiError, match='the server could not find the requested resource "statefulsets"'):
        await reg.get("statefulsets", "default", "x")


async def test_apply_keeps_what_controllers_and_tools_own(reg):
    d = dep()
    d.metadata.annotations["team"] = "a"
    await reg.apply(d)
    live = await reg.get("deployments", "default", "web")
    live.metadata.annotations["deployment.kubernetes.io/revision"] = "1"  # the deployment controller
    live.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] = "2026-11-28T10:00:00Z"
    await reg.update(live)
    out, r = await reg.apply(d)
    assert r == "unchanged"
    assert out.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    # a user key the manifest drops is removed; system keys stay
    d2 = dep()
    out, r = await reg.apply(d2)
    assert r == "configured" and "team" not in out.metadata.annotations
    assert out.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert out.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == "2026-11-28T10:00:00Z"
    # a manifest value for a system key wins
    d2.metadata.annotations["deployment.kubernetes.io/revision"] = "7"
    out, _ = await reg.apply(d2)
    assert out.metadata.annotations["deployment.kubernetes.io/revision"] == "7"


async def test_apply_without_replicas_keeps_the_scale(reg):
    d = dep()
    d.spec.ClearField("replicas")
    assert (await reg.apply(d))[0].spec.replicas == 1
    live = await reg.get("deployments", "default", "web")
    live.spec.replicas = 5  # pkctl scale
    await reg.update(live)
    out, r = await reg.apply(d)
    assert r == "unchanged" and out.spec.replicas == 5
    d.spec.replicas = 2
    out, r = await reg.apply(d)
    assert r == "configured" and out.spec.replicas == 2


async def test_heartbeat_recreates_a_lease_deleted_under_it():
    """A node's Lease deleted between the heartbeat's read and its write
    (node deleted, namespace emptied) is created again, not a storage error."""
    from controlplane.apiserver.server import NodeServicer
    from controlplane.config import ControlPlaneConfig
    from pkapi.v1 import api_pb2

    class DeletesOnFirstUpdate(MemoryStore):  # the fake store, with the race forced
        raced = False

        async def update(self, key, value, expected_revision):
            if not self.raced:
                self.raced = True
                await self.delete(key)
            return await super().update(key, value, expected_revision)

    store = DeletesOnFirstUpdate()
    r = Registry(store)
    await r.ensure_system_namespaces()
    try:
        nodes = NodeServicer(r, ControlPlaneConfig())
        await nodes.Heartbeat(api_pb2.HeartbeatRequest(node_name="n1"), None)  # creates the Lease
        await nodes.Heartbeat(api_pb2.HeartbeatRequest(node_name="n1"), None)  # renews: the race
        assert store.raced
        lease = await r.get("leases", "kube-node-lease", "n1")
        assert lease.spec.holder_identity == "n1"
    finally:
        await r.close()


async def test_an_unexpected_exception_is_kubectls_internal_error():
    """A bug in a unary RPC reaches the client as [InternalError] in
    kubectl's wording (not gRPC's 'Unexpected <class ...>')."""
    import grpc

    from controlplane.apiserver.server import _rpc

    class Context:  # records what the servicer aborts with
        async def abort(self, code, details):
            self.got = (code, details)
            raise grpc.aio.AbortError()

    @_rpc
    async def Broken(self, request, context):
        raise KeyError("boom")

    ctx = Context()
    with pytest.raises(grpc.aio.AbortError):
        await Broken(None, None, ctx)
    assert ctx.got == (grpc.StatusCode.INTERNAL, "[InternalError] an error on the server (\"KeyError: 'boom'\") "
                       "has prevented the request from succeeding")


def _pod(name: str = "", generate: str = "") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.generate_name = name, generate
    p.spec.containers.add(name="c", image="nginx")
    return p


async def test_create_many_draws_again_for_a_generated_name_that_exists(reg, monkeypatch):
    """A generated name that is taken (by an earlier pod or by another item
    of the batch) is drawn again, one by one after the batch; a name
    repeated in the batch is created once and refused once."""
    import itertools

    from controlplane.apiserver import registry as registry_mod

    await reg.create(_pod("web-bbbbb"))
    # The draws: web-bbbbb (taken), web-bbbbb again (in the batch: the same
    # name twice), then fresh ones.
    letters = itertools.chain("bbbbb" "bbbbb", itertools.cycle("cdfghjklmn"))
    monkeypatch.setattr(registry_mod.random, "choice", lambda seq: next(letters))
    out = await reg.create_many([_pod(generate="web-"), _pod(generate="web-"), _pod("x"), _pod("x")])
    a, b, x1, x2 = out
    assert isinstance(a, core_pb2.Pod) and isinstance(b, core_pb2.Pod) and isinstance(x1, core_pb2.Pod)
    assert len({a.metadata.name, b.metadata.name, "web-bbbbb"}) == 3, (a.metadata.name, b.metadata.name)
    assert isinstance(x2, ApiError) and x2.reason == "AlreadyExists"
    pods, _ = await reg.list(meta.kind_by_resource("pods"), "default")
    assert len(pods) == 4


async def test_bind_from_a_stale_cache_reads_the_store(reg):
    """Bind judges each pod on the watch cache's copy; with no cache (or a
    stale copy) it reads the store: a pod bound meanwhile is a Conflict,
    an unbound one is bound."""
    from pkapi.v1 import api_pb2

    free = await reg.create(_pod("free"))
    taken = await reg.create(_pod("taken"))
    taken.spec.node_name = "n1"
    await reg.update(taken)
    out = await reg.bind([api_pb2.Binding(namespace="default", name="free", uid=free.metadata.uid, node="n2"),
                          api_pb2.Binding(namespace="default", name="taken", node="n2"),
                          api_pb2.Binding(namespace="default", name="free", node="bad name")])
    ok, conflict, bad = out
    assert isinstance(ok, core_pb2.Pod) and ok.spec.node_name == "n2"
    assert isinstance(conflict, ApiError) and conflict.reason == "Conflict" and '"n1"' in conflict.message
    assert isinstance(bad, ApiError) and bad.reason == "Invalid"
