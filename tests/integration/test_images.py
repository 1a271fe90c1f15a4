"""The images `make images` builds (images/build.sh), on the real Docker
Engine: what they contain and how they answer, and that a second build
changes nothing. Every request is made inside the container (127.0.0.1)."""

from __future__ import annotations

import os
import subprocess
from typing import Iterator

import docker
import pytest

from tests.fixtures.docker import ROOT, TEST_IMAGES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
LABEL = "io.pocketkube.test=images"


@pytest.fixture
def run(docker_client: docker.DockerClient) -> Iterator:  # type: ignore[type-arg]
    started = []

    def start(image: str, **kw: object) -> docker.models.containers.Container:
        c = docker_client.containers.run(image, detach=True, labels={"io.pocketkube.test": "images"}, **kw)
        started.append(c)
        return c

    yield start
    for c in started:
        c.remove(force=True)


def sh(c: docker.models.containers.Container, script: str, tries: int = 50) -> str:
    """The output of `sh -c script` in c, retried (0.1 s apart, at most
    `tries` times) until it exits 0: the server may still be starting."""
    for _ in range(tries):
        r = c.exec_run(["sh", "-c", script])
        if r.exit_code == 0:
            return str(r.output.decode())
        subprocess.run(["sleep", "0.1"], check=True)
    raise AssertionError(f"`{script}` in {c.image.tags} kept failing: {r.output.decode()!r}")


def test_the_images_exist_with_a_build_label(docker_client: docker.DockerClient) -> None:
    for ref in (*TEST_IMAGES, "pocketkube/debian:bookworm"):
        img = docker_client.images.get(ref)
        assert img.labels.get("io.pocketkube.build"), ref
        # each image under 100 MB (they share the base layer)
        assert img.attrs["Size"] < 100_000_000, (ref, img.attrs["Size"])
    # the seed's example update names an image that does not exist: no tag may pretend it does
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get("nginx:1.23")


def test_nginx_latest_is_debians_nginx(run) -> None:  # type: ignore[no-untyped-def]
    c = run("nginx:latest")
    headers = sh(c, "curl -sSI http://127.0.0.1:80/")
    assert "Server: nginx/" in headers, headers
    assert sh(c, "curl -sS http://127.0.0.1/").strip() == c.id[:12]  # the page names the pod (hostname)
    assert sh(c, "curl -sS http://127.0.0.1/healthz").strip() == "ok"
    assert "Status: install ok installed" in sh(c, "dpkg -s nginx-light")
    # its log goes to the container's output
    assert "GET /healthz" in c.logs().decode()


@pytest.mark.parametrize("image,body", [("pocketkube/hello:1", ""), ("pocketkube/hello:2", "v2 ")])
def test_hello_answers_as_before_and_has_curl(run, image: str, body: str) -> None:  # type: ignore[no-untyped-def]
    c = run(image)
    assert sh(c, "curl -sS http://127.0.0.1:8080/") == f"{body}{c.id[:12]}\n"
    assert sh(c, "curl -sS http://127.0.0.1:8080/healthz") == "ok\n"
    # the usual tools, resolving names through glibc (no static busybox)
    for tool in ("curl", "wget", "nslookup", "nc", "ps", "ip", "bash"):
        assert sh(c, f"command -v {tool}", tries=1).strip(), tool
    assert sh(c, "wget -qO- http://localhost:8080/healthz") == "ok\n"
    c2 = run(image, environment={"PORT": "9090"})
    assert sh(c2, "curl -sS http://127.0.0.1:9090/healthz") == "ok\n"


def test_crash_exits_with_its_code(docker_client: docker.DockerClient) -> None:
    c = docker_client.containers.run("pocketkube/crash:1", detach=True, labels={"io.pocketkube.test": "images"},
                                     environment={"EXIT_CODE": "7", "CRASH_AFTER": "0"})
    try:
        assert c.wait(timeout=30)["StatusCode"] == 7
        assert "crash: started on" in c.logs().decode()
    finally:
        c.remove(force=True)


def test_flaky_loses_its_healthz(run) -> None:  # type: ignore[no-untyped-def]
    c = run("pocketkube/flaky:1", environment={"HEALTHY_FOR": "1"})
    assert sh(c, "curl -sS http://127.0.0.1:8080/") == f"{c.id[:12]}\n"
    # after HEALTHY_FOR s, /healthz answers 404 (retried until it does)
    sh(c, "! curl -sf -o /dev/null http://127.0.0.1:8080/healthz")
    assert sh(c, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/healthz") == "404"


def test_a_second_build_changes_nothing(docker_client: docker.DockerClient) -> None:
    before = {ref: docker_client.images.get(ref).id for ref in TEST_IMAGES}
    tar = ROOT / "images/out/images.tar"
    mtime = tar.stat().st_mtime_ns
    r = subprocess.run([str(ROOT / "images/build.sh")], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, DOCKER_HOST=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "built" not in r.stdout and "mmdebstrap" not in r.stdout, r.stdout
    assert {ref: docker_client.images.get(ref).id for ref in TEST_IMAGES} == before
    assert tar.stat().st_mtime_ns == mtime
