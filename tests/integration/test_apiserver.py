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
