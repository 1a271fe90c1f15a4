"""pkctl expose (and the Service errors it surfaces) against a real
pk-controlplane (its own embedded etcd, controllers off)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from cli.main import cli
from pkapi import intstr, meta
from pkapi.client.cluster import ClusterClient
from pkapi.v1 import apps_pb2
from tests.fixtures.controlplane import ControlPlane

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cp() -> Iterator[ControlPlane]:
    work = tempfile.mkdtemp(prefix="pk-svc-cli-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    plane = ControlPlane(work, None, False, {"service_cidr": "10.98.0.0/16"})
    try:
        asyncio.run(plane.start())
        yield plane
    finally:
        asyncio.run(plane.stop())
        shutil.rmtree(work, ignore_errors=True)


def pkctl(cp: ControlPlane, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["-s", cp.address, *args], catch_exceptions=False)
    return r.exit_code, r.output


def get(cp: ControlPlane, resource: str, name: str):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with ClusterClient(cp.address) as c:
            return await c.get(resource, "default", name)

    return asyncio.run(go())


def deploy(cp: ControlPlane, name: str, ports: list[dict]) -> None:
    d = meta.from_dict({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name, "team": "a"}},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "pocketkube/hello:1", "ports": ports}]}}},
    }, apps_pb2.Deployment)

    async def go() -> None:
        async with ClusterClient(cp.address) as c:
            await c.create(d)

    asyncio.run(go())


def test_expose_deployment_like_kubectl(cp: ControlPlane) -> None:
    deploy(cp, "web", [{"name": "http", "containerPort": 8080}])
    code, out = pkctl(cp, "expose", "deployment", "web", "--port", "80", "--target-port", "http", "--type", "NodePort")
    assert (code, out) == (0, "service/web exposed\n")
    svc = get(cp, "services", "web")
    assert dict(svc.spec.selector) == {"app": "web"} and dict(svc.metadata.labels) == {"app": "web", "team": "a"}
    p = svc.spec.ports[0]
    assert (p.port, p.protocol, intstr.value(p.target_port), svc.spec.type) == (80, "TCP", "http", "NodePort")
    assert 30000 <= p.node_port <= 32767 and svc.spec.cluster_ip.startswith("10.98.")

    # again: AlreadyExists, as kubectl prints it
    code, out = pkctl(cp, "expose", "deployment/web", "--port", "80")
    assert code == 1 and 'Error from server (AlreadyExists): services "web" already exists' in out

    # --name, ports taken from the template, a second name
    deploy(cp, "multi", [{"containerPort": 8080}, {"containerPort": 9100, "protocol": "UDP"}])
    code, out = pkctl(cp, "expose", "deploy", "multi", "--name", "multi-svc")
    assert (code, out) == (0, "service/multi-svc exposed\n")
    svc = get(cp, "services", "multi-svc")
    assert [(p.name, p.port, p.protocol) for p in svc.spec.ports] == [("port-1", 8080, "TCP"), ("port-2", 9100, "UDP")]


def test_expose_errors(cp: ControlPlane, tmp_path: pathlib.Path) -> None:
    code, out = pkctl(cp, "expose", "deployment", "nope", "--port", "80")
    assert code == 1 and 'Error from server (NotFound): deployments.apps "nope" not found' in out
    deploy(cp, "noports", [])
    code, out = pkctl(cp, "expose", "deployment", "noports")
    assert code == 1 and "couldn't find port via --port flag or introspection" in out
    deploy(cp, "np", [{"containerPort": 8080}])
    code, out = pkctl(cp, "expose", "deployment", "np", "--port", "80", "--type", "NodePort", "--name", "np1")
    assert code == 0
    np1 = get(cp, "services", "np1").spec.ports[0].node_port
    # a nodePort conflict through apply: kubectl's wording, nothing created
    manifest = f"""
apiVersion: v1
kind: Service
metadata: {{name: np2}}
spec:
  type: NodePort
  selector: {{app: np}}
  ports: [{{port: 80, nodePort: {np1}}}]
"""
    path = str(tmp_path / "np2.yaml")
    with open(path, "w") as f:
        f.write(manifest)
    code, out = pkctl(cp, "apply", "-f", path)
    assert code == 1
    assert f'The Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: {np1}: provided port is already allocated' in out
    code, out = pkctl(cp, "expose", "deployment", "np", "--port", "80", "--type", "Bogus", "--name", "np3")
    assert code == 1 and 'spec.type: Unsupported value: "Bogus"' in out, out
