"""imagePullPolicy against a real registry: Debian's docker-registry on
127.0.0.1 (a free port, data in a temporary directory), pk-agent on the real
Docker Engine, a real control plane. Images are pocketkube/hello:1 pushed
as localhost:PORT/<unique>/app:1, so each test decides what is present."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from typing import Any, Iterator

import docker
import pytest

from tests.integration import test_agent as agent_tests
from tests.integration.test_agent import cstatus, make_pod, ready, wait_pod, waiting_reason

# the agent tests' fixtures: a control plane for the module, an agent per test
shared_cp = agent_tests.shared_cp
start_node = agent_tests.start_node
node = agent_tests.node

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    """A docker-registry on 127.0.0.1; yields "localhost:PORT"."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed (Debian package docker-registry: make setup)")
    tmp = tempfile.mkdtemp(prefix="pk-registry-")
    port = _free_port()
    with open(f"{tmp}/config.yml", "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/data\n"
                f"http:\n  addr: 127.0.0.1:{port}\n")
    log = open(f"{tmp}/log", "wb")
    proc = subprocess.Popen([binary, "serve", f"{tmp}/config.yml"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"docker-registry did not answer on 127.0.0.1:{port}: {open(f'{tmp}/log').read()}")
                time.sleep(0.1)
        yield f"localhost:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def pushed(registry: str, docker_client: docker.DockerClient) -> Iterator[str]:
    """pocketkube/hello:1 pushed as REGISTRY/<unique>/app:1, not present
    locally under that name; every local copy removed at teardown."""
    repo = f"{registry}/pk-pull-{uuid.uuid4().hex[:8]}/app"
    docker_client.images.get("pocketkube/hello:1").tag(repo, "1")
    for line in docker_client.api.push(repo, tag="1", stream=True, decode=True):
        assert "error" not in line, line
    docker_client.images.remove(f"{repo}:1", noprune=True)
    yield f"{repo}:1"
    for img in docker_client.images.list(name=repo):
        for t in img.tags:
            if t.startswith(f"{repo}:"):  # (the image is pocketkube/hello:1 too)
                docker_client.images.remove(t, force=True, noprune=True)


async def reasons_of(client: Any, name: str) -> dict[str, tuple[int, str]]:
    """reason -> (count, message) of the pod's events."""
    evs, _ = await client.list("events", "default")
    return {e.reason: (e.count, e.message) for e in evs if e.involved_object.name == name}


async def until_events(client: Any, name: str, want: set[str], timeout: float = 15.0) -> dict[str, tuple[int, str]]:
    deadline = time.monotonic() + timeout
    while True:
        got = await reasons_of(client, name)
        if want <= got.keys():
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for events {sorted(want)} of {name}; got {got}")
        await asyncio.sleep(0.1)


def container(image: str, policy: str) -> list[dict[str, Any]]:
    return [{"name": "main", "image": image, "imagePullPolicy": policy, "ports": [{"containerPort": 8080}]}]


async def test_if_not_present_pulls_an_absent_image_then_uses_it(node: Any, pushed: str) -> None:
    cp, ag, client = node
    await client.create(make_pod(ag.node_name, "inp1", container(pushed, "IfNotPresent")))
    await wait_pod(client, "inp1", ready, "Ready with the pulled image")
    ev = await until_events(client, "inp1", {"Pulling", "Pulled"})
    assert ev["Pulled"][1].startswith(f'Successfully pulled image "{pushed}" in ')
    await client.create(make_pod(ag.node_name, "inp2", container(pushed, "IfNotPresent")))
    await wait_pod(client, "inp2", ready, "Ready with the present image")
    ev = await until_events(client, "inp2", {"Pulled"})
    assert ev["Pulled"][1] == f'Container image "{pushed}" already present on machine'
    assert "Pulling" not in ev


async def test_always_pulls_a_present_image_again(node: Any, pushed: str, docker_client: docker.DockerClient) -> None:
    cp, ag, client = node
    docker_client.images.pull(pushed)  # present before the pod
    await client.create(make_pod(ag.node_name, "alw", container(pushed, "Always")))
    await wait_pod(client, "alw", ready, "Ready")
    ev = await until_events(client, "alw", {"Pulling", "Pulled"})
    assert ev["Pulled"][1].startswith(f'Successfully pulled image "{pushed}" in '), ev


async def test_never_does_not_pull(node: Any, pushed: str) -> None:
    cp, ag, client = node
    await client.create(make_pod(ag.node_name, "nev", container(pushed, "Never")))
    pod = await wait_pod(client, "nev", lambda p: waiting_reason(p) == "ErrImageNeverPull", "ErrImageNeverPull")
    assert cstatus(pod).state.waiting.message == (  # type: ignore[union-attr]
        f'Container image "{pushed}" is not present with pull policy of Never')
    assert "Pulling" not in await reasons_of(client, "nev")


async def test_a_missing_tag_is_err_image_pull_then_image_pull_back_off(node: Any, pushed: str) -> None:
    cp, ag, client = node
    image = pushed.rsplit(":", 1)[0] + ":nothere"
    await client.create(make_pod(ag.node_name, "miss", container(image, "IfNotPresent")))
    seen: dict[str, str] = {}

    async def both() -> bool:
        pod = await client.get("pods", "default", "miss")
        r = waiting_reason(pod)
        if r:
            seen[r] = cstatus(pod).state.waiting.message  # type: ignore[union-attr]
        return {"ErrImagePull", "ImagePullBackOff"} <= seen.keys()

    deadline = time.monotonic() + 20
    while not await both():
        assert time.monotonic() < deadline, f"ErrImagePull then ImagePullBackOff; seen {seen}"
        await asyncio.sleep(0.05)
    assert "not found" in seen["ErrImagePull"], seen
    assert seen["ImagePullBackOff"].startswith(f'Back-off pulling image "{image}": ErrImagePull: '), seen
    ev = await until_events(client, "miss", {"Pulling", "Failed", "BackOff"})
    assert ev["Pulling"][1] == f'Pulling image "{image}"'
    # kubelet's image back-off: the next pull 10 s after the failure (then 20 s, 40 s... 5 min)
    t_failed = time.monotonic()
    assert ev["Pulling"][0] == 1, ev["Pulling"]
    deadline = time.monotonic() + 25
    while (await reasons_of(client, "miss"))["Pulling"][0] < 2:
        assert time.monotonic() < deadline, "no second pull within 25 s"
        await asyncio.sleep(0.2)
    assert time.monotonic() - t_failed >= 8.5  # (the failure was seen a little after it happened)
    pod = await client.get("pods", "default", "miss")
    assert pod.status.phase == "Pending"  # type: ignore[attr-defined]
