"""The lab's infrastructure without the cluster (`pkctl lab up --infra-only`):
namespaces on a bridge, containment routes, one Docker Engine per node with
the images pulled from the lab registry, the registry itself (a push from this
machine's Docker, a pull on a node, a missing name failing fast), idempotent and resumable `up`, partition and heal, and a
`down` that leaves nothing. Its own small lab, so it does not depend on the
control plane or the agent.

Routing is checked with `ip route get` (a kernel lookup: no packet is sent).
Traffic goes only to the lab's own node addresses.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import docker
import pytest

from cli.lab import engine, mounts, net, registry
from cli.lab import lab as labmod
from tests.fixtures.lab import LabHandle, remove_stale_labs, require_root, wait

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def infra_lab(lab_images: str) -> Iterator[LabHandle]:
    require_root()
    tmp = tempfile.mkdtemp(prefix="pk-e2e-infra-")
    lab = LabHandle(f"e2e-infra-{os.getpid()}", os.path.join(tmp, "config"))
    remove_stale_labs(lab.env)
    try:
        lab.lab("up", "--nodes", "2", "--infra-only", "--images", lab_images)
        yield lab
    finally:
        lab.lab("down", check=False)
        os.rmdir(tmp)


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


def engine_client(lab: LabHandle, node: str) -> docker.DockerClient:
    return docker.DockerClient(base_url=lab.plan.node(node).docker_host, timeout=30)


def test_nothing_from_the_lab_can_leave_this_machine(infra_lab: LabHandle) -> None:
    plan = infra_lab.plan
    n1 = plan.nodes[0]
    # the host never forwards a lab packet anywhere but the lab
    r = ip("route", "get", "192.0.2.99", "from", n1.ip, "iif", plan.uplink)
    assert r.returncode != 0 and "No route to host" in r.stderr, r.stdout + r.stderr
    r = ip("route", "get", "10.231.255.7", "from", n1.ip, "iif", plan.uplink)
    assert r.returncode != 0, f"another lab subnet is routed from this lab: {r.stdout}"
    # ClusterIPs: unreachable on the host, and on a node unless on its loopback
    assert ip("route", "get", "10.96.0.10").returncode != 0
    assert ip("-n", n1.netns, "route", "get", "10.96.0.10").returncode != 0
    # LoadBalancer pool and the lab subnet stay on the lab link
    lb = plan.lb_cidrs[0].split("/")[0]
    assert f"dev {plan.uplink}" in ip("route", "get", lb).stdout
    assert "dev eth0" in ip("-n", n1.netns, "route", "get", lb).stdout
    # nodes: default via the host end of the lab, and no IPv6 at all
    assert f"default via {plan.gateway} dev eth0" in ip("-n", n1.netns, "route", "show").stdout
    assert ip("-n", n1.netns, "-6", "addr", "show").stdout.strip() == ""


def test_each_node_has_its_own_engine_with_the_images(infra_lab: LabHandle) -> None:
    lab = infra_lab
    ids = set()
    for n in lab.plan.nodes:
        c = engine_client(lab, n.name)
        try:
            info = c.info()
            ids.add(info["DockerRootDir"])
            assert info["DockerRootDir"] == n.data_root
            tags = {t for img in c.images.list() for t in img.tags}
            assert {"nginx:latest", "pocketkube/hello:1", "pocketkube/hello:2"} <= tags
        finally:
            c.close()
        bridge = ip("-n", n.netns, "-4", "addr", "show", "docker0").stdout
        assert n.bip in bridge, f"{n.name} docker0: {bridge}"
    assert len(ids) == len(lab.plan.nodes), "two nodes share one engine's data"


def test_nodes_reach_each_other_and_the_host_reaches_them(infra_lab: LabHandle) -> None:
    lab = infra_lab
    n1, n2 = lab.plan.nodes
    c = engine_client(lab, n1.name)
    try:
        ctr = c.containers.run("nginx:latest", detach=True, name="infra-web",
                               ports={"80/tcp": (n1.ip, 30080)}, labels={"io.pocketkube.test": "infra"})
        try:
            url = f"http://{n1.ip}:30080/"
            body = wait("the container to answer from node-2",
                        lambda: lab.exec(n2.name, "curl", "-s", "-m", "2", url, check=False).stdout.strip(), 15)
            assert body == ctr.id[:12]
            assert subprocess.run(["curl", "-s", "-m", "2", url], capture_output=True, text=True).stdout.strip() == body
            # node-2's engine does not see node-1's container
            c2 = engine_client(lab, n2.name)
            try:
                assert c2.containers.list(all=True) == []
            finally:
                c2.close()
            # a cut link isolates the node; healing restores it
            lab.lab("partition", n1.name)
            assert lab.exec(n2.name, "curl", "-s", "-m", "1", url, check=False).returncode != 0
            assert "partitioned" in lab.lab("status", check=False).stdout
            lab.lab("heal", n1.name)
            wait("node-1 reachable again", lambda: lab.exec(n2.name, "curl", "-s", "-m", "1", url,
                                                            check=False).returncode == 0, 10)
        finally:
            ctr.remove(force=True)
    finally:
        c.close()


def test_the_registry_takes_a_push_from_this_machine_and_serves_every_node(
        infra_lab: LabHandle, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    lab = infra_lab
    st = json.loads(lab.lab("status", "-o", "json", check=False).stdout)
    reg = st["registry"]
    assert reg == lab.plan.registry and reg.startswith("localhost:")
    assert any(c["name"] == "registry" and c["pid"] for c in st["components"])
    # an image of our own, built and pushed with this machine's Docker (no daemon configuration)
    (tmp_path / "Dockerfile").write_text('FROM pocketkube/debian:bookworm\nCMD ["echo", "pushed from the host"]\n')
    tag = f"{reg}/e2e/app:{os.getpid()}"
    r = subprocess.run(["docker", "build", "-q", "-t", tag, str(tmp_path)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    assert r.returncode == 0, r.stderr
    try:
        r = subprocess.run(["docker", "push", tag], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        docker_client.images.remove(tag, noprune=True)
    for n in lab.plan.nodes:  # the same name on every node
        c = engine_client(lab, n.name)
        try:
            c.images.pull(tag)
            out = c.containers.run(tag, remove=True, labels={"io.pocketkube.test": "infra"})
            assert out.decode().strip() == "pushed from the host"
            # Docker Hub names come from the registry (the engines' mirror): present after `up`
            assert c.images.get("nginx:latest").labels["io.pocketkube.build"]
            # a name the registry lacks fails at once, by its answer
            t0 = time.monotonic()
            with pytest.raises(docker.errors.APIError, match="not found"):
                c.images.pull(f"{reg}/e2e/nothere", tag="1")
            assert time.monotonic() - t0 < 5
        finally:
            c.close()


def test_up_is_idempotent_and_resumes_a_broken_lab(infra_lab: LabHandle) -> None:
    lab = infra_lab
    r = lab.lab("up", "--infra-only")
    assert "is already up" in r.stdout
    r = lab.lab("up", "--nodes", "5", "--infra-only", check=False)
    assert r.returncode == 1 and "exists with 2 nodes" in r.stderr
    n2 = lab.plan.nodes[1]
    lab.lab("kill-node", n2.name, "--hard")
    assert engine.engine_processes(n2) == []
    r = lab.lab("up", "--infra-only")
    assert "resuming" in r.stdout
    c = engine_client(lab, n2.name)
    try:
        assert c.ping()
    finally:
        c.close()


def test_down_keep_data_keeps_the_registry_for_the_next_up(infra_lab: LabHandle) -> None:
    lab = infra_lab
    plan = lab.plan
    before = registry.manifest_config_digest(plan, "pocketkube/hello:1")
    assert before
    r = lab.lab("down", "--keep-data", check=False)
    assert r.returncode == 0 and "images kept" in r.stdout, r.stdout + r.stderr
    assert Path(plan.registry_dir).is_dir() and not registry.answers(plan)
    r = lab.lab("up", "--nodes", "2", "--infra-only", timeout=180)
    assert "images already there" in r.stdout, r.stdout
    assert registry.manifest_config_digest(plan, "pocketkube/hello:1") == before


def test_down_leaves_nothing(infra_lab: LabHandle) -> None:
    lab = infra_lab
    plan = lab.plan
    c = engine_client(lab, plan.nodes[0].name)
    try:  # something running, with its mounts, when the lab goes
        c.containers.run("nginx:latest", detach=True, labels={"io.pocketkube.test": "infra"})
    finally:
        c.close()
    assert mounts.mounts_under(plan.state_dir) or mounts.mounts_under(plan.run_dir)
    r = lab.lab("down", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert net.leftovers(plan) == []
    assert labmod.stray_processes(plan) == []
    assert mounts.mounts_under(plan.state_dir) == [] and mounts.mounts_under(plan.run_dir) == []
    assert not Path(plan.state_dir).exists() and not Path(plan.run_dir).exists()
    assert not registry.answers(plan)  # registry and its forwarder are gone with the lab
    assert not any(ln.split()[0].startswith(f"{plan.switch_ns}-") or ln.split()[0] == plan.switch_ns
                   for ln in ip("netns", "list").stdout.splitlines() if ln.strip())
