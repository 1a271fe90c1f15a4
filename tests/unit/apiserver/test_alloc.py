"""ServiceAllocator against the MemoryStore fake (the same code runs on
etcd in tests/integration/test_services*.py)."""

from __future__ import annotations

import ipaddress

import pytest

from controlplane.apiserver import service_alloc as sa
from controlplane.apiserver.service_alloc import ServiceAllocator, is_dns1123_subdomain, parse_pool
from controlplane.config import ControlPlaneConfig
from controlplane.store.memory import MemoryStore
from pkapi import meta
from pkapi.errors import ApiError
from pkapi.v1 import core_pb2


def svc(name: str, type_: str = "ClusterIP", ports: list[dict] | None = None, ns: str = "default", **spec) -> core_pb2.Service:
    d = {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": type_, "ports": ports if ports is not None else [{"port": 80}], **spec},
    }
    return meta.from_dict(d, core_pb2.Service)  # type: ignore[return-value]


def make(pool: str = "", cidr: str = "10.96.0.0/16", ports: tuple[int, int] = (30000, 32767)):
    store = MemoryStore()
    cfg = ControlPlaneConfig(service_cidr=cidr, service_node_port_range=ports, lb_pool=pool)
    return store, ServiceAllocator(store, cfg)


async def stored(store: MemoryStore, s: core_pb2.Service) -> None:
    """What the API server does after on_create: store the Service."""
    await store.create(meta.key("services", s.metadata.namespace, s.metadata.name), s.SerializeToString())


async def test_automatic_cluster_ip_in_range_and_unique():
    store, a = make(cidr="10.96.0.0/28")
    seen = set()
    for i in range(14):
        s = svc(f"s{i}")
        await a.on_create(s, dry_run=False)
        assert ipaddress.ip_address(s.spec.cluster_ip) in ipaddress.ip_network("10.96.0.0/28")
        assert list(s.spec.cluster_ips) == [s.spec.cluster_ip]
        seen.add(s.spec.cluster_ip)
    assert len(seen) == 14
    with pytest.raises(ApiError) as e:
        await a.on_create(svc("full"), dry_run=False)
    assert "range is full" in e.value.message


async def test_requested_cluster_ip_taken_and_out_of_range():
    store, a = make()
    s = svc("dns", cluster_ip="10.96.0.10")
    await a.on_create(s, dry_run=False)
    await stored(store, s)
    assert s.spec.cluster_ip == "10.96.0.10"
    with pytest.raises(ApiError) as e:
        await a.on_create(svc("other", cluster_ip="10.96.0.10"), dry_run=False)
    assert e.value.reason == "Invalid"
    assert e.value.message == (
        'The Service "other" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: '
        "failed to allocate IP 10.96.0.10: provided IP is already allocated"
    )
    with pytest.raises(ApiError) as e:
        await a.on_create(svc("far", cluster_ip="10.0.0.5"), dry_run=False)
    assert e.value.message.endswith(
        "failed to allocate IP 10.0.0.5: the provided IP (10.0.0.5) is not in the valid range. "
        "The range of valid IPs is 10.96.0.0/16"
    )
    # released on delete, then free again
    await a.on_delete(s)
    s2 = svc("other", cluster_ip="10.96.0.10")
    await a.on_create(s2, dry_run=False)


async def test_headless_and_external_name():
    store, a = make()
    h = svc("h", cluster_ip="None")
    await a.on_create(h, dry_run=False)
    assert h.spec.cluster_ip == "None"
    assert (await store.list(sa.CLUSTER_IPS))[0] == []
    e = svc("ext", "ExternalName", external_name="db.example.com")
    await a.on_create(e, dry_run=False)
    assert e.spec.cluster_ip == ""
    with pytest.raises(ApiError) as err:
        await a.on_create(svc("bad", "ExternalName", external_name="Bad_Name"), dry_run=False)
    assert "spec.externalName: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain" in err.value.message
    with pytest.raises(ApiError) as err:
        await a.on_create(svc("bad", "ExternalName"), dry_run=False)
    assert "spec.externalName: Required value" in err.value.message


async def test_node_ports_requested_automatic_conflict_range_and_all_causes():
    store, a = make()
    s = svc("web", "NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81}])
    await a.on_create(s, dry_run=False)
    await stored(store, s)
    assert s.spec.ports[0].node_port == 30080
    assert 30000 <= s.spec.ports[1].node_port <= 32767 and s.spec.ports[1].node_port != 30080
    bad = svc("web2", "NodePort", ports=[{"port": 80, "nodePort": 30080}, {"port": 81, "nodePort": 80}])
    with pytest.raises(ApiError) as e:
        await a.on_create(bad, dry_run=False)
    assert e.value.causes == [
        "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated",
        "spec.ports[1].nodePort: Invalid value: 80: provided port is not in the valid range. "
        "The range of valid ports is 30000-32767",
    ]
    # a failed create allocated nothing (its cluster IP was rolled back)
    kvs, _ = await store.list(sa.CLUSTER_IPS)
    assert [kv.key for kv in kvs] == [sa.CLUSTER_IPS + s.spec.cluster_ip]


async def test_dry_run_allocates_nothing():
    store, a = make(pool="192.168.77.10/32")
    s = svc("web", "LoadBalancer")
    await a.on_create(s, dry_run=True)
    assert s.spec.cluster_ip and s.spec.ports[0].node_port
    assert s.status.load_balancer.ingress[0].ip == "192.168.77.10"
    assert (await store.list(sa.PREFIX))[0] == []


async def test_type_change_releases_and_keeps():
    store, a = make()
    s = svc("web", "NodePort", ports=[{"port": 80, "nodePort": 30080}])
    await a.on_create(s, dry_run=False)
    await stored(store, s)
    # an update that omits clusterIP and nodePort keeps both
    new = svc("web", "NodePort", ports=[{"port": 80}])
    await a.on_update(s, new, dry_run=False)
    assert new.spec.cluster_ip == s.spec.cluster_ip and new.spec.ports[0].node_port == 30080
    # clusterIP is immutable
    with pytest.raises(ApiError) as e:
        await a.on_update(s, svc("web", "NodePort", cluster_ip="10.96.5.5"), dry_run=False)
    assert "may not change once set" in e.value.message
    # to ClusterIP: the node port is dropped; once stored it can be reused
    back = svc("web", "ClusterIP", ports=[{"port": 80, "nodePort": 30080}])
    await a.on_update(s, back, dry_run=False)
    assert back.spec.ports[0].node_port == 0
    kv = await store.get(meta.key("services", "default", "web"))
    await store.update(kv.key, back.SerializeToString(), kv.mod_revision)
    sa.UNCONFIRMED_GRACE, old = -1.0, sa.UNCONFIRMED_GRACE
    try:
        other = svc("other", "NodePort", ports=[{"port": 80, "nodePort": 30080}])
        await a.on_create(other, dry_run=False)
        assert other.spec.ports[0].node_port == 30080
    finally:
        sa.UNCONFIRMED_GRACE = old


async def test_young_unconfirmed_allocation_is_never_stolen():
    store, a = make()
    await a.on_create(svc("inflight", "NodePort", ports=[{"port": 80, "nodePort": 30001}]), dry_run=False)
    # not stored yet (write in flight): still refused
    with pytest.raises(ApiError):
        await a.on_create(svc("x", "NodePort", ports=[{"port": 80, "nodePort": 30001}]), dry_run=False)


async def test_load_balancer_pool_and_pending():
    store, a = make(pool="192.168.77.10-192.168.77.11")
    got = []
    for i in range(3):
        s = svc(f"lb{i}", "LoadBalancer")
        await a.on_create(s, dry_run=False)
        await stored(store, s)
        got.append([x.ip for x in s.status.load_balancer.ingress])
    assert got == [["192.168.77.10"], ["192.168.77.11"], []]
    # kept across an update
    s0 = svc("lb0", "LoadBalancer")
    s0.status.load_balancer.ingress.add(ip="192.168.77.10")
    new = svc("lb0", "LoadBalancer")
    await a.on_update(s0, new, dry_run=False)
    assert [x.ip for x in new.status.load_balancer.ingress] == ["192.168.77.10"]
    await a.on_delete(s0)
    pending = svc("lb2", "LoadBalancer")
    assert await a.retry_pending_lb(pending)
    assert pending.status.load_balancer.ingress[0].ip == "192.168.77.10"


async def test_two_allocators_on_one_store_never_double_allocate():
    import asyncio

    store = MemoryStore()
    cfg = ControlPlaneConfig(service_cidr="10.96.0.0/27", service_node_port_range=(30000, 30031))
    a, b = ServiceAllocator(store, cfg), ServiceAllocator(store, cfg)
    svcs = [svc(f"s{i}", "NodePort") for i in range(28)]
    await asyncio.gather(*((a if i % 2 else b).on_create(s, dry_run=False) for i, s in enumerate(svcs)))
    ips = [s.spec.cluster_ip for s in svcs]
    ports = [s.spec.ports[0].node_port for s in svcs]
    assert len(set(ips)) == 28 and len(set(ports)) == 28


def test_pure_helpers():
    assert parse_pool("") == []
    assert parse_pool("10.0.0.1/32") == ["10.0.0.1"]
    assert parse_pool("10.0.0.0/30") == ["10.0.0.1", "10.0.0.2"]
    assert parse_pool("10.0.0.5-10.0.0.7") == ["10.0.0.5", "10.0.0.6", "10.0.0.7"]
    assert is_dns1123_subdomain("db.example.com") and is_dns1123_subdomain("example.com.")
    assert not is_dns1123_subdomain("-x.com") and not is_dns1123_subdomain("A.com") and not is_dns1123_subdomain("")
