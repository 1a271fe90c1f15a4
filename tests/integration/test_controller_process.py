"""The controller manager as pk-controlplane's supervised child process:
it does the controllers' work, is restarted when it dies, stops with a
graceful stop, and dies with its parent (SIGKILL of pk-controlplane)."""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest

from tests.helpers import eventually
from tests.integration.controllers_util import deployment, pods_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _manager_children(pid: int) -> list[psutil.Process]:
    out = []
    for c in psutil.Process(pid).children(recursive=True):
        try:
            if "controlplane.controllers" in c.cmdline():
                out.append(c)
        except psutil.Error:
            pass
    return out


async def _the_child(pid: int) -> psutil.Process:
    """The one controller-manager child (started just after the API serves)."""
    async def one() -> Any:
        kids = _manager_children(pid)
        assert len(kids) <= 1, f"more than one controller-manager child: {kids}"
        return kids[0] if kids else None

    return await eventually(f"a controller-manager child of pk-controlplane {pid}", one, timeout=10)


async def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_child_restarted_and_dies_with_parent(start_controlplane: Any) -> None:
    cp = await start_controlplane(controllers=True)
    client = cp.client()
    try:
        first = await _the_child(cp.process.pid)
        await client.create(deployment("before", 2))

        async def created(app: str) -> Any:
            return len(await pods_of(client, app)) == 2

        await eventually("the child's ReplicaSet controller creating 2 pods", lambda: created("before"), timeout=20)

        first.kill()  # a crash: the supervisor restarts it (after a 1 s backoff)

        async def restarted() -> Any:
            now = [k for k in _manager_children(cp.process.pid) if k.pid != first.pid]
            return now[0] if now else None

        second = await eventually("a new controller-manager child after the first was killed", restarted, timeout=15)
        await client.create(deployment("after", 2))
        await eventually("the restarted child's controllers creating 2 pods", lambda: created("after"), timeout=20)
        assert "controller manager (pid" in cp.log_tail(400)

        cp.process.kill()  # no graceful stop: the child must not outlive its parent
        cp.process.wait()
        t0 = time.monotonic()
        await eventually("the controller-manager child exiting after its parent died", lambda: _gone(second), timeout=10)
        assert time.monotonic() - t0 < 5
    finally:
        await client.close()


async def test_graceful_stop_stops_child(start_controlplane: Any) -> None:
    cp = await start_controlplane(controllers=True)
    child = await _the_child(cp.process.pid)
    assert await cp.stop() == 0
    await eventually("the controller-manager child stopped with pk-controlplane", lambda: _gone(child), timeout=5)


async def test_in_process_option_has_no_child(start_controlplane: Any) -> None:
    cp = await start_controlplane(controllers=True, controllers_process=False)
    client = cp.client()
    try:
        assert _manager_children(cp.process.pid) == []
        await client.create(deployment("inproc", 2))

        async def created() -> Any:
            return len(await pods_of(client, "inproc")) == 2

        await eventually("in-process controllers creating 2 pods", created, timeout=20)
    finally:
        await client.close()
