"""Each kind's strategy (controlplane/apiserver/kinds/) through the
registry's verbs, over the MemoryStore fake (a fake store: unit test), and
its pure rules on their own. The same verbs on real etcd are in
tests/integration/test_apiserver*.py and test_services*.py."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from controlplane.apiserver.kinds import leases, nodes
from controlplane.apiserver.kinds.namespaces import SYSTEM_NAMESPACES
from controlplane.apiserver.kinds.pods import PodStrategy
from controlplane.apiserver.kinds.services import keep_allocations
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.service_alloc import ServiceAllocator
from controlplane.apiserver.strategy import FOREGROUND, ORPHAN, with_policy
from controlplane.config import ControlPlaneConfig
from controlplane.store import MemoryStore
from pkapi import meta
from pkapi.errors import ApiError
from pkapi.v1 import api_pb2, apps_pb2, core_pb2


def obj(kind: type, d: dict):
    return meta.from_dict(d, kind)


def pod(name="p", node="", **spec):
    return obj(core_pb2.Pod, {"metadata": {"name": name},
                              "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}], **spec}})


def workload(kind: type, name="web"):
    return obj(kind, {"metadata": {"name": name},
                      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                               "template": {"metadata": {"labels": {"app": name}},
                                            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})


def service(name="s", type_="ClusterIP", **spec):
    return obj(core_pb2.Service, {"metadata": {"name": name},
                                  "spec": {"type": type_, "ports": [{"port": 80}], **spec}})


def node(name="n1", **spec):
    return obj(core_pb2.Node, {"metadata": {"name": name}, "spec": spec})


def namespace(name="team"):
    return obj(core_pb2.Namespace, {"metadata": {"name": name}})


@pytest.fixture
async def reg():
    store = MemoryStore()
    allocator = ServiceAllocator(store, ControlPlaneConfig(service_cidr="10.96.0.0/24"))
    r = Registry(store, allocator)
    await r.start()
    yield r
    await r.close()


# ------------------------------------------------------------------ create


@pytest.mark.parametrize("make, status, want", [
    (lambda: pod(), {"phase": "Running", "podIP": "10.0.0.9"}, {"phase": "Pending"}),
    (lambda: workload(apps_pb2.Deployment), {"replicas": 5}, {}),
    (lambda: workload(apps_pb2.ReplicaSet), {"replicas": 5}, {}),
    (lambda: service(), {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}, {"loadBalancer": {}}),
    (lambda: namespace(), {"phase": "Terminating"}, {"phase": "Active"}),  # (the default)
    # A Node is created by its agent, status and all.
    (lambda: node(), {"capacity": {"pods": "10"}}, {"capacity": {"pods": "10"}}),
], ids=["Pod", "Deployment", "ReplicaSet", "Service", "Namespace", "Node"])
async def test_create_keeps_only_the_status_the_kind_lets_a_client_set(reg, make, status, want):
    m = make()
    m.MergeFrom(meta.from_dict({"status": status}, type(m)))
    out = await reg.create(m)
    assert meta.to_dict(out).get("status", {}) == want


async def test_a_service_allocates_on_create_and_releases_when_the_write_fails(reg):
    out = await reg.create(service("a"))
    assert out.spec.cluster_ip.startswith("10.96.0.")
    again = service("a", clusterIP="10.96.0.77")
    with pytest.raises(ApiError) as e:
        await reg.create(again)
    assert e.value.reason == "AlreadyExists"
    # 10.96.0.77 was taken for the refused create and given back: another
    # Service may have it.
    other = await reg.create(service("b", clusterIP="10.96.0.77"))
    assert other.spec.cluster_ip == "10.96.0.77"


async def test_create_many_creates_services_one_by_one_with_their_allocations(reg):
    out = await reg.create_many([service("a"), pod("p"), service("b")])
    a, p, b = out
    assert isinstance(a, core_pb2.Service) and isinstance(b, core_pb2.Service) and isinstance(p, core_pb2.Pod)
    assert a.spec.cluster_ip and b.spec.cluster_ip and a.spec.cluster_ip != b.spec.cluster_ip
    # The pod went in the batch transaction; the Services each on their own.
    assert p.metadata.resource_version not in (a.metadata.resource_version, b.metadata.resource_version)


# ------------------------------------------------------------------ update


@pytest.mark.parametrize("make, change, bumps", [
    (lambda: workload(apps_pb2.Deployment), lambda m: setattr(m.spec, "replicas", 3), True),
    (lambda: workload(apps_pb2.Deployment), lambda m: m.metadata.labels.update(x="y"), False),
    (lambda: pod(), lambda m: setattr(m.spec.containers[0], "image", "nginx:2"), True),
    # A heartbeat's renewal is no new desired state (Kubernetes' Lease strategy).
    (lambda: obj(core_pb2.Lease, {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}}),
     lambda m: setattr(m.spec, "lease_duration_seconds", 9), False),
], ids=["Deployment spec", "Deployment labels", "Pod spec", "Lease spec"])
async def test_generation_moves_with_what_the_kind_counts_as_a_new_desired_state(reg, make, change, bumps):
    created = await reg.create(make())
    m = type(created)()
    m.CopyFrom(created)
    change(m)
    out = await reg.update(m)
    assert out.metadata.generation == (2 if bumps else 1)


async def test_an_update_that_omits_a_services_allocations_keeps_them(reg):
    created = await reg.create(service("np", "NodePort"))
    ip, port = created.spec.cluster_ip, created.spec.ports[0].node_port
    assert ip and port
    m = service("np", "NodePort")
    m.spec.ports[0].name = "http"
    out = await reg.update(m)
    assert (out.spec.cluster_ip, out.spec.ports[0].node_port, out.spec.ports[0].name) == (ip, port, "http")


@pytest.mark.parametrize("old_spec, new_spec, want", [
    ({"type": "ClusterIP", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ipFamilies": ["IPv4"],
      "ipFamilyPolicy": "SingleStack"},
     {"type": "ClusterIP"},
     {"type": "ClusterIP", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ipFamilies": ["IPv4"],
      "ipFamilyPolicy": "SingleStack"}),
    # A nodePort stays with the port of the same number/protocol, or name.
    ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}, {"name": "m", "port": 9, "nodePort": 30002}]},
     {"type": "NodePort", "ports": [{"port": 80}, {"name": "m", "port": 10}, {"port": 11}]},
     {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}, {"name": "m", "port": 10, "nodePort": 30002},
                                    {"port": 11}]}),
    # Not onto a ClusterIP Service, and nothing onto an ExternalName one.
    ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]},
     {"type": "ClusterIP", "ports": [{"port": 80}]},
     {"type": "ClusterIP", "ports": [{"port": 80}]}),
    ({"type": "ClusterIP", "clusterIP": "10.0.0.1"},
     {"type": "ExternalName", "externalName": "x.example"},
     {"type": "ExternalName", "externalName": "x.example"}),
], ids=["clusterIP", "nodePorts", "to ClusterIP", "to ExternalName"])
def test_keep_allocations(old_spec, new_spec, want):
    old = obj(core_pb2.Service, {"spec": old_spec})
    new = obj(core_pb2.Service, {"spec": new_spec})
    keep_allocations(old, new)
    assert meta.to_dict(new)["spec"] == want


async def test_update_status_takes_only_the_status(reg):
    created = await reg.create(pod("p"))
    m = pod("p", node="elsewhere")
    m.status.phase = "Running"
    out = await reg.update_status(m)
    assert (out.status.phase, out.spec.node_name) == ("Running", "")
    assert out.metadata.uid == created.metadata.uid


# ------------------------------------------------------------------- apply


@pytest.mark.parametrize("make, server_set, check", [
    (lambda: pod("p"), lambda m: setattr(m.spec, "node_name", "n1"), lambda o: o.spec.node_name == "n1"),
    (lambda: node("n1"), lambda m: m.spec.taints.add(key="k", effect="NoSchedule"),
     lambda o: [t.key for t in o.spec.taints] == ["k"]),
    (lambda: workload(apps_pb2.Deployment), lambda m: m.spec.template.metadata.annotations.update(
        {"kubectl.kubernetes.io/restartedAt": "t"}),
     lambda o: o.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == "t"),
], ids=["Pod nodeName", "Node taints", "Deployment restartedAt"])
async def test_apply_keeps_the_server_set_fields_a_manifest_omits(reg, make, server_set, check):
    created = await reg.create(make())
    m = type(created)()
    m.CopyFrom(created)
    server_set(m)
    await reg.update(m)
    out, result = await reg.apply(make())
    assert check(out), meta.to_dict(out)
    assert result == "unchanged"


async def test_apply_without_replicas_keeps_the_scale(reg):
    await reg.create(workload(apps_pb2.ReplicaSet))
    m = workload(apps_pb2.ReplicaSet)
    m.spec.ClearField("replicas")
    out, _ = await reg.apply(m)
    assert out.spec.replicas == 2


# ------------------------------------------------------------------ delete


@pytest.mark.parametrize("policy, before, after", [
    ("Background", ["x"], ["x"]),
    ("Orphan", ["x", FOREGROUND], ["x", ORPHAN]),
    ("Orphan", [ORPHAN], [ORPHAN]),
    ("Foreground", [ORPHAN, "x"], ["x", FOREGROUND]),
])
def test_with_policy(policy, before, after):
    assert with_policy(before, policy) == after


@pytest.mark.parametrize("node_name, phase, tgps, requested, marked, want", [
    ("n1", "Running", None, None, None, 30),  # the default
    ("n1", "Running", 5, None, None, 5),  # the pod's own
    ("n1", "Running", 5, 2, None, 2),  # the request's
    ("n1", "Running", 5, 60, 4, 4),  # never longer than one already given
    ("", "Pending", 5, 60, None, 0),  # nothing runs an unbound pod
    ("n1", "Succeeded", 5, None, None, 0),  # nor a finished one
    ("n1", "Failed", 5, None, None, 0),
])
def test_pod_grace(node_name, phase, tgps, requested, marked, want):
    p = pod(node=node_name)
    p.status.phase = phase
    if tgps is not None:
        p.spec.termination_grace_period_seconds = tgps
    if marked is not None:
        meta.set_timestamp(p.metadata.deletion_timestamp)
        p.metadata.deletion_grace_period_seconds = marked
    assert PodStrategy().grace(p, requested) == want


async def test_a_bound_pod_is_marked_with_its_grace_and_an_unbound_one_goes(reg):
    await reg.create(pod("bound", node="n1", terminationGracePeriodSeconds=7))
    await reg.create(pod("free"))
    marked = await reg.delete("pods", "default", "bound")
    assert marked.metadata.deletion_grace_period_seconds == 7 and marked.metadata.HasField("deletion_timestamp")
    assert (await reg.get("pods", "default", "bound")).metadata.deletion_grace_period_seconds == 7
    await reg.delete("pods", "default", "free")
    await reg.delete("pods", "default", "bound", grace_period_seconds=0)  # what its agent does when stopped
    for name in ("free", "bound"):
        with pytest.raises(ApiError) as e:
            await reg.get("pods", "default", name)
        assert e.value.reason == "NotFound"


async def test_deleting_a_service_gives_its_address_back(reg):
    a = await reg.create(service("a"))
    await reg.delete("services", "default", "a")
    b = await reg.create(service("b", clusterIP=a.spec.cluster_ip))
    assert b.spec.cluster_ip == a.spec.cluster_ip


@pytest.mark.parametrize("name", SYSTEM_NAMESPACES)
async def test_a_system_namespace_may_not_be_deleted(reg, name):
    with pytest.raises(ApiError) as e:
        await reg.delete("namespaces", "", name)
    assert (e.value.reason, e.value.message) == (
        "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted')


async def test_a_deleted_namespace_is_terminating_until_its_contents_are_gone(reg):
    await reg.create(namespace("team"))
    await reg.create(pod("p"), default_namespace="team")
    dry = await reg.delete("namespaces", "", "team", dry_run=True)
    assert dry.status.phase == "Terminating"
    assert (await reg.get("namespaces", "", "team")).status.phase == "Active"
    marked = await reg.delete("namespaces", "", "team", propagation_policy="Orphan")
    assert marked.status.phase == "Terminating" and not marked.metadata.finalizers
    with pytest.raises(ApiError) as e:
        await reg.create(pod("q"), default_namespace="team")
    assert e.value.reason == "Forbidden"
    deadline = asyncio.get_running_loop().time() + 5
    while True:  # the finalizer deletes the (unbound) pod, then the Namespace
        try:
            await reg.get("namespaces", "", "team")
        except ApiError as e2:
            assert e2.reason == "NotFound"
            break
        assert asyncio.get_running_loop().time() < deadline, "namespace team was not finalized within 5 s"
        await asyncio.sleep(0.02)
    with pytest.raises(ApiError):
        await reg.get("pods", "team", "p")


async def test_start_resumes_the_finalization_of_a_namespace_marked_before():
    store = MemoryStore()
    first = Registry(store)
    await first.start()
    await first.create(namespace("team"))
    await first.create(pod("bound", node="n1"), default_namespace="team")
    await first.delete("namespaces", "", "team")
    await first.close()  # stops before the bound pod is gone
    assert (await first.get("namespaces", "", "team")).status.phase == "Terminating"
    second = Registry(store)
    await second.start()
    try:
        await second.delete("pods", "team", "bound", grace_period_seconds=0)
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            try:
                await second.get("namespaces", "", "team")
            except ApiError:
                break
            assert asyncio.get_running_loop().time() < deadline, "namespace team was not finalized within 5 s"
            await asyncio.sleep(0.02)
    finally:
        await second.close()


# ------------------------------------------------------------ nodes, leases


async def test_registration_merges_into_the_stored_node(reg):
    first = node("n1", podCIDR="10.244.1.0/24")
    first.metadata.labels["kubernetes.io/hostname"] = "n1"
    first.status.conditions.add(type="Ready", status="True")
    await nodes.register(reg, first)
    # A user cordons and taints it and labels it.
    stored = await reg.get("nodes", "", "n1")
    stored.spec.unschedulable = True
    stored.spec.taints.add(key="k", effect="NoSchedule")
    stored.metadata.labels["team"] = "a"
    await reg.update(stored)
    again = node("n1", podCIDR="10.244.9.0/24")
    again.metadata.labels["kubernetes.io/hostname"] = "n1-new"
    again.status.MergeFrom(meta.from_dict({"status": {"capacity": {"pods": "110"}}}, core_pb2.Node).status)
    out = await nodes.register(reg, again)
    assert out.spec.unschedulable and [t.key for t in out.spec.taints] == ["k"]
    assert out.spec.pod_cidr == "10.244.1.0/24"  # a podCIDR once set stays
    assert dict(out.metadata.labels) == {"kubernetes.io/hostname": "n1-new", "team": "a"}
    assert meta.to_dict(out)["status"]["capacity"] == {"pods": "110"}
    # The agent reported no conditions: the stored ones stay.
    assert [(c.type, c.status) for c in out.status.conditions] == [("Ready", "True")]


async def test_registration_without_a_name_is_invalid(reg):
    with pytest.raises(ApiError) as e:
        await nodes.register(reg, node(""))
    assert e.value.reason == "Invalid" and "metadata.name: Required value" in e.value.message


class FakeClock:
    def __init__(self) -> None:
        self.t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.t


async def test_a_node_lease_is_created_then_renewed_through_the_registry(reg):
    clock = FakeClock()
    created = await leases.renew_node_lease(reg, "n1", 40, clock)
    assert (created.spec.holder_identity, created.spec.lease_duration_seconds) == ("n1", 40)
    assert created.spec.acquire_time.ToDatetime(dt.UTC) == clock.t
    clock.t += dt.timedelta(seconds=10)
    renewed = await leases.renew_node_lease(reg, "n1", 41, clock)
    assert renewed.spec.renew_time.ToDatetime(dt.UTC) == clock.t
    assert renewed.spec.acquire_time.ToDatetime(dt.UTC) == clock.t - dt.timedelta(seconds=10)
    assert renewed.spec.lease_duration_seconds == 41
    assert renewed.metadata.uid == created.metadata.uid and renewed.metadata.generation == 1
    assert int(renewed.metadata.resource_version) > int(created.metadata.resource_version)


# ------------------------------------------------------------ front-end verbs


async def test_patch_edits_the_stored_object_as_update_would(reg):
    await reg.create(workload(apps_pb2.Deployment))

    def scale(d):
        d.spec.replicas = 4
        d.status.replicas = 99  # not taken: only the status subresource writes status

    out = await reg.patch("deployments", "default", "web", scale)
    assert (out.spec.replicas, out.status.replicas, out.metadata.generation) == (4, 0, 2)
    out = await reg.patch("deployments", "", "web", lambda d: setattr(d.status, "replicas", 3), subresource="status")
    assert (out.spec.replicas, out.status.replicas, out.metadata.generation) == (4, 3, 2)
    with pytest.raises(ApiError) as e:
        await reg.patch("deployments", "default", "web", lambda d: setattr(d.spec, "replicas", -1))
    assert e.value.reason == "Invalid"
    with pytest.raises(ApiError) as e:
        await reg.patch("deployments", "default", "web", lambda d: setattr(d.metadata, "uid", "other"))
    assert e.value.reason == "Conflict"
    with pytest.raises(ApiError) as e:
        await reg.patch("deployments", "default", "nope", lambda d: None)
    assert e.value.reason == "NotFound"
    with pytest.raises(ApiError) as e:
        await reg.patch("deployments", "default", "web", lambda d: None, subresource="scale")
    assert e.value.reason == "NotFound"


async def test_patch_dry_run_writes_nothing(reg):
    created = await reg.create(workload(apps_pb2.Deployment))
    out = await reg.patch("deployments", "default", "web", lambda d: setattr(d.spec, "replicas", 5), dry_run=True)
    assert out.spec.replicas == 5
    assert (await reg.get("deployments", "default", "web")).metadata.resource_version == created.metadata.resource_version


async def test_bind_sets_the_node_once(reg):
    await reg.create(pod("p"))
    a, = await reg.bind([api_pb2.Binding(namespace="default", name="p", node="n1")])
    assert isinstance(a, core_pb2.Pod) and a.spec.node_name == "n1"
    b, = await reg.bind([api_pb2.Binding(namespace="default", name="p", node="n2")])
    assert isinstance(b, ApiError) and b.reason == "Conflict" and 'already assigned to node "n1"' in b.message
