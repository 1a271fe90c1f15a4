"""The Runtime contract, run against FakeRuntime here and against the real
Docker Engine by tests/integration/test_agent_runtime.py (same class)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any, AsyncIterator

import pytest

from agent.clock import FakeClock
from agent.runtime import (
    ContainerConfig,
    ContainerNotFound,
    FakeRuntime,
    ImagePullError,
    PortBinding,
    PortInUse,
)
from tests.helpers import eventually


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])



class RuntimeContract:
    """Subclasses provide the `runtime` fixture (async, yields a Runtime)."""

    @pytest.fixture
    def labels(self) -> dict[str, str]:
        return {"io.pocketkube.node": f"contract-{uuid.uuid4().hex[:8]}"}

    @pytest.fixture
    async def cleanup(self, runtime: Any, labels: dict[str, str]) -> AsyncIterator[None]:
        yield
        for c in await runtime.list_containers(labels):
            await runtime.remove(c.id)

    def config(self, labels: dict[str, str], image: str = "pocketkube/hello:1", **kw: Any) -> ContainerConfig:
        return ContainerConfig(name=f"pkt-{uuid.uuid4().hex[:10]}", image=image, labels=dict(labels), **kw)

    async def test_images(self, runtime: Any) -> None:
        assert await runtime.image_id("pocketkube/hello:1")
        assert await runtime.image_id("pocketkube/does-not-exist:1") is None
        with pytest.raises(ImagePullError) as err:
            await runtime.pull("127.0.0.1:1/pocketkube/does-not-exist:1")
        assert str(err.value)

    async def test_lifecycle(self, runtime: Any, labels: dict[str, str], cleanup: None) -> None:
        cid = await runtime.create(self.config(labels, env={"PORT": "8080"}, hostname="h1"))
        st = await runtime.inspect(cid)
        assert st.status == "created" and labels.items() <= st.labels.items()
        await runtime.start(cid)
        st = await runtime.inspect(cid)
        assert st.running and st.started_at is not None
        assert [c.id for c in await runtime.list_containers(labels)] == [cid]
        await runtime.stop(cid, timeout=5)
        st = await runtime.inspect(cid)
        assert st.exited and st.finished_at is not None
        await runtime.stop(cid, timeout=5)  # stopping twice is fine
        await runtime.remove(cid)
        await runtime.remove(cid)  # so is removing twice
        with pytest.raises(ContainerNotFound):
            await runtime.inspect(cid)
        assert await runtime.list_containers(labels) == []

    async def test_crash_exit_code_and_events(self, runtime: Any, labels: dict[str, str], cleanup: None) -> None:
        events: list[str] = []

        async def collect() -> None:
            async for ev in runtime.events(labels):
                events.append(ev.action)

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.2)  # the subscription is asynchronous on a real engine
        try:
            cid = await runtime.create(
                self.config(labels, image="pocketkube/crash:1", env={"CRASH_AFTER": "0.3", "EXIT_CODE": "3"})
            )
            await runtime.start(cid)

            async def exited() -> bool:
                return bool((await runtime.inspect(cid)).exited)

            await eventually("the crash container to exit", exited)
            st = await runtime.inspect(cid)
            assert st.exit_code == 3
            await eventually("a die event", lambda: _true("die" in events))
            assert "start" in events
            logs = b"".join([c async for c in runtime.logs(cid)])
            assert logs
        finally:
            task.cancel()

    async def test_port_conflict(self, runtime: Any, labels: dict[str, str], cleanup: None) -> None:
        port = free_port()
        bind = [PortBinding(8080, "TCP", "127.0.0.1", port)]
        a = await runtime.create(self.config(labels, ports=bind))
        await runtime.start(a)
        b = await runtime.create(self.config(labels, ports=bind))
        with pytest.raises(PortInUse):
            await runtime.start(b)

    async def test_exec(self, runtime: Any, labels: dict[str, str], cleanup: None) -> None:
        cid = await runtime.create(self.config(labels))
        await runtime.start(cid)
        code, _ = await runtime.exec(cid, ["true"], timeout=5)
        assert code == 0
        code, _ = await runtime.exec(cid, ["false"], timeout=5)
        assert code == 1

    async def test_dns_settings_reach_resolv_conf(self, runtime: Any, labels: dict[str, str], cleanup: None) -> None:
        # A ClusterFirst pod's settings (agent.hooks.PodHooks.dns); the
        # nameserver is a documentation address: nothing is resolved here.
        cid = await runtime.create(self.config(labels, dns_servers=["192.0.2.10"],
                                               dns_search=["prod.svc.cluster.local", "svc.cluster.local"],
                                               dns_options=["ndots:5"]))
        await runtime.start(cid)
        code, out = await runtime.exec(cid, ["cat", "/etc/resolv.conf"], timeout=5)
        lines = out.decode().splitlines()
        assert code == 0
        assert "nameserver 192.0.2.10" in lines, lines
        assert "search prod.svc.cluster.local svc.cluster.local" in lines, lines
        assert "options ndots:5" in lines, lines


async def _true(v: bool) -> bool:
    return v


class TestFakeRuntime(RuntimeContract):
    @pytest.fixture
    async def runtime(self) -> AsyncIterator[FakeRuntime]:
        rt = FakeRuntime()
        rt.exec_results["false"] = (1, b"")
        yield rt
        await rt.close()

    async def test_pull_when_pullable(self, runtime: FakeRuntime) -> None:
        runtime.pullable.add("example/app:1")
        assert await runtime.image_id("example/app:1") is None
        assert await runtime.pull("example/app:1")
        assert await runtime.image_id("example/app:1")

    async def test_stubborn_container_killed_after_timeout(self) -> None:
        clock = FakeClock()
        runtime = FakeRuntime(clock=clock)
        runtime.ignore_sigterm.add("pocketkube/hello:1")
        cid = await runtime.create(self.config({"x": "y"}))
        await runtime.start(cid)
        stop = asyncio.create_task(runtime.stop(cid, timeout=0.2))
        await clock.advance(0.199)
        assert not stop.done() and (await runtime.inspect(cid)).running
        await clock.advance(0.001)
        await asyncio.wait_for(stop, 2)
        assert (await runtime.inspect(cid)).exit_code == 137

    async def test_hundreds_of_containers_are_cheap(self, runtime: FakeRuntime) -> None:
        tasks = len(asyncio.all_tasks())
        for _ in range(500):
            cid = await runtime.create(self.config({"n": "1"}))
            await runtime.start(cid)
        assert len(await runtime.list_containers({"n": "1"})) == 500
        # cheap: a running container is a small object, no task and no timer
        assert len(asyncio.all_tasks()) == tasks
        assert all(c.timer is None for c in runtime.containers.values())
