"""The node services' readiness (agent/services.py): the agent registers its
Node only once NodeContext.proxy_synced is set, which the proxy does after
its first sync, and a node without node services does at once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from agent import services
from agent.config import AgentConfig
from agent.hooks import NodeContext, PodHooks
from agent.proxy.proxier import run_proxy
from tests.unit.proxy.test_proxy import FakeWatch


class FakeClient:
    address = "127.0.0.1:1"  # never dialled: the proxy reads a FakeWatch


def ctx(**cfg: Any) -> NodeContext:
    return NodeContext(AgentConfig(node_name="n1", **cfg), FakeClient(), object(), PodHooks())


async def test_a_node_without_node_services_is_ready_at_once() -> None:
    c = ctx(node_services=False)
    assert services.node_services(c) == []
    assert c.proxy_synced.is_set()
    await asyncio.wait_for(services.wait_ready(c), 1.0)


async def test_wait_ready_gives_up_after_its_timeout_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    c = ctx()
    with caplog.at_level(logging.WARNING, logger="agent.services"):
        await services.wait_ready(c, timeout=0)
    assert "service proxy not synced" in caplog.text


async def test_the_proxy_sets_the_event_after_its_first_sync() -> None:
    c = ctx()
    task = asyncio.create_task(run_proxy(c.client, "n1", "127.0.0.1", manage_addresses=False,
                                         watch=FakeWatch(), synced=c.proxy_synced))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(services.wait_ready(c, timeout=30), 30)
        assert c.proxy_synced.is_set(), "wait_ready returned before the proxy's first sync"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
