"""pkctl logs / exec end to end: pkctl (a real subprocess) -> pk-controlplane
-> pk-agent -> Docker Engine, with a pod bound to the test's node."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pkapi import meta
from pkapi.client.cluster import ClusterClient
from pkapi.v1 import core_pb2
from tests.fixtures.controlplane import REPO

pytestmark = pytest.mark.integration

SCRIPT = "i=1; while true; do echo line$i; i=$((i+1)); sleep 0.2; done"


def env() -> dict[str, str]:
    e = {**os.environ, "PKCTL_CONFIG": "/nonexistent/pk-config", "PYTHONUNBUFFERED": "1"}
    e.pop("PKCTL_SERVER", None)
    return e


async def pkctl(address: str, *args: str, input: bytes | None = None, timeout: float = 20.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "--server", address, *args, cwd=REPO, env=env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"pkctl {' '.join(args)} did not finish within {timeout}s") from None
    assert proc.returncode is not None
    assert b"Traceback" not in err, err.decode()
    return proc.returncode, out.decode(), err.decode()


async def wait_running(client: ClusterClient, ns: str, name: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last = "not found"
    while time.monotonic() < deadline:
        pod = await client.get("pods", ns, name)
        statuses = pod.status.container_statuses  # type: ignore[attr-defined]
        if statuses and all(cs.state.HasField("running") for cs in statuses):
            return pod
        last = f"phase {pod.status.phase!r}"  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"pod {ns}/{name} not running after {timeout}s ({last})")


async def test_pkctl_logs_and_exec(start_controlplane: Callable[..., Awaitable[Any]],
                                   start_agent: Callable[..., Awaitable[Any]]) -> None:
    cp = await start_controlplane()
    ag = await start_agent(cp)
    async with ClusterClient(cp.address, timeout=10) as client:
        pod = core_pb2.Pod()
        pod.metadata.name = "talky"
        pod.metadata.namespace = "default"
        pod.metadata.labels["app"] = "talky"
        pod.spec.node_name = ag.node_name
        pod.spec.termination_grace_period_seconds = 1
        pod.spec.containers.add(name="main", image="pocketkube/hello:1", command=["sh", "-c", SCRIPT],
                                image_pull_policy="Never")
        side = pod.spec.containers.add(name="side", image="pocketkube/hello:1", image_pull_policy="Never")
        side.ports.add(name="http", container_port=8080, protocol="TCP")
        await client.create(pod)
        svc = meta.from_dict({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "talky"},
                              "spec": {"selector": {"app": "talky"}, "ports": [{"port": 80}]}}, core_pb2.Service)
        svc.metadata.namespace = "default"  # type: ignore[attr-defined]
        await client.create(svc)
        running = await wait_running(client, "default", "talky")
        assert running.status.port_mappings, "the agent published no port"  # type: ignore[attr-defined]

    # logs: several lines so far; --tail; a container chosen with -c
    deadline = time.monotonic() + 10
    while True:
        code, out, err = await pkctl(cp.address, "logs", "talky", "-c", "main")
        assert code == 0, err
        if "line3\n" in out or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert out.startswith("line1\nline2\nline3\n")
    code, out, err = await pkctl(cp.address, "logs", "pod/talky", "-c", "main", "--tail", "1")
    assert code == 0 and len(out.splitlines()) == 1 and out.startswith("line"), (out, err)
    # without -c, kubectl's default: the first container, said on stderr
    code, out, err = await pkctl(cp.address, "logs", "talky", "--tail", "2")
    assert code == 0 and 'Defaulted container "main" out of: main, side' in err
    code, out, err = await pkctl(cp.address, "logs", "svc/talky", "-c", "side")
    assert code == 0 and out.startswith("hello: serving talky"), (out, err)
    code, out, err = await pkctl(cp.address, "logs", "-l", "app=talky", "--all-containers", "--prefix", "--tail", "1")
    assert code == 0, err
    got = out.splitlines()
    assert len(got) == 2 and got[0].startswith("[pod/talky/main] line") and \
        got[1] == "[pod/talky/side] hello: serving talky on :8080", got
    code, out, err = await pkctl(cp.address, "logs", "talky", "-c", "nope")
    assert (code, err) == (1, "error: container nope is not valid for pod talky\n")

    # logs -f shows new lines as they are written, until Ctrl-C
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "--server", cp.address, "logs", "-f", "talky", "-c", "main",
        "--tail", "1", cwd=REPO, env=env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 15)
        n = int(first.decode().strip().removeprefix("line"))
        later = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert int(later.decode().strip().removeprefix("line")) == n + 1
    finally:
        proc.send_signal(signal.SIGINT)
        _, err_b = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 130 and b"Traceback" not in err_b, err_b

    # exec: stdout, stderr, the exit code passed through
    code, out, err = await pkctl(cp.address, "exec", "talky", "-c", "main", "--", "sh", "-c",
                                 "echo out; echo err >&2; exit 7")
    assert (code, out) == (7, "out\n")
    assert err == "err\ncommand terminated with exit code 7\n"
    code, out, err = await pkctl(cp.address, "exec", "-i", "talky", "-c", "main", "--", "cat",
                                 input=b"hello stdin\nsecond line\n")
    assert (code, out) == (0, "hello stdin\nsecond line\n"), err
    code, out, err = await pkctl(cp.address, "exec", "svc/talky", "-c", "side", "--", "hostname")
    assert (code, out) == (0, "talky\n"), err
    code, out, err = await pkctl(cp.address, "exec", "talky", "-c", "main", "--", "no-such-command")
    assert code != 0 and "command terminated with exit code" in err

    await port_forward_check(cp.address)
    code, out, err = await pkctl(cp.address, "port-forward", "talky", "9:9")
    assert code == 1 and "has no published TCP port 9" in err


async def http_get(port: int) -> bytes:
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        w.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        await w.drain()
        return await asyncio.wait_for(r.read(), 5)
    finally:
        w.close()
        await w.wait_closed()


async def port_forward_check(address: str) -> None:
    """pkctl port-forward to the named port of the pod behind svc/talky."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "--server", address, "port-forward", "svc/talky", ":http", cwd=REPO,
        env=env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        assert line.startswith("Forwarding from 127.0.0.1:") and line.endswith(" -> 8080\n"), line
        port = int(line.split(":")[1].split()[0])
        for _ in range(2):
            body = await http_get(port)
            assert body.startswith(b"HTTP/1.") and body.endswith(b"talky\n"), body
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 130 and b"Traceback" not in err, err
