"""ServiceAllocator on a real etcd: two allocators (as two control planes
would have) racing for the same small ranges never hand out one value
twice, and the allocation keys really live in etcd."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from controlplane.apiserver import service_alloc as sa
from controlplane.apiserver.service_alloc import ServiceAllocator
from controlplane.config import ControlPlaneConfig
from controlplane.store.etcd import EtcdStore
from pkapi import meta
from pkapi.errors import ApiError
from pkapi.v1 import core_pb2

pytestmark = pytest.mark.integration


def svc(name: str, ns: str, type_: str = "NodePort") -> core_pb2.Service:
    return meta.from_dict({"metadata": {"name": name, "namespace": ns},
                           "spec": {"type": type_, "ports": [{"port": 80}]}}, core_pb2.Service)  # type: ignore[return-value]


async def test_two_allocators_on_etcd_never_double_allocate(etcd_process: Any) -> None:
    etcd_endpoint = etcd_process.endpoint  # an etcd of our own: the ranges start empty
    ns = f"alloc-{uuid.uuid4().hex[:6]}"
    cfg = ControlPlaneConfig(service_cidr="10.99.0.0/27", service_node_port_range=(31000, 31029),
                             lb_pool="192.0.2.200-192.0.2.203")
    s1, s2 = EtcdStore(etcd_endpoint), EtcdStore(etcd_endpoint)
    a, b = ServiceAllocator(s1, cfg), ServiceAllocator(s2, cfg)
    made: list[core_pb2.Service] = []
    try:
        svcs = [svc(f"s{i}", ns, "LoadBalancer" if i < 6 else "NodePort") for i in range(30)]
        results = await asyncio.gather(
            *((a if i % 2 else b).on_create(s, dry_run=False) for i, s in enumerate(svcs)), return_exceptions=True
        )
        assert not [r for r in results if isinstance(r, Exception)]
        made = svcs
        ips = [s.spec.cluster_ip for s in svcs]
        ports = [s.spec.ports[0].node_port for s in svcs]
        lbs = [i.ip for s in svcs for i in s.status.load_balancer.ingress]
        assert len(set(ips)) == 30 and len(set(ports)) == 30
        assert sorted(lbs) == ["192.0.2.200", "192.0.2.201", "192.0.2.202", "192.0.2.203"]  # 2 stay pending
        keys = {kv.key for kv in (await s1.list(sa.PREFIX))[0]}
        assert {sa.CLUSTER_IPS + ip for ip in ips} <= keys
        # the ranges (30 addresses, 30 ports) are full now
        with pytest.raises(ApiError) as e:
            await a.on_create(svc("x", ns, "ClusterIP"), dry_run=False)
        assert "range is full" in e.value.message
    finally:
        for s in made:
            await a.on_delete(s)
        left = [kv.key for kv in (await s1.list(sa.PREFIX))[0]]
        await s1.close()
        await s2.close()
    assert left == []  # every key released on delete
