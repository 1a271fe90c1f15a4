"""A pk-agent stopped cleanly removes its service proxy's share lock file
(/run/pocketkube/proxy-<cluster>-<netns>.lock) when it was the cluster's
last proxy in this network namespace, and keeps it while another agent of
the cluster still runs here."""

from __future__ import annotations

import os
from typing import Any

import pytest

from agent.proxy import addresses
from agent.proxy.sharelock import lock_path


def exists(path: str) -> bool:  # a stat on /run: instant
    return os.path.exists(path)


pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.mark.skipif(not addresses.can_manage(), reason="the proxy manages addresses (and its lock) only as root with ip")
async def test_the_last_agent_of_a_cluster_removes_the_lock_file(start_controlplane: Any, start_agent: Any) -> None:
    cp = await start_controlplane()
    path = lock_path(addresses.SVC_LABEL_PREFIX + addresses.cluster_tag(cp.address))
    a = await start_agent(cp)
    b = await start_agent(cp)
    # Ready means the proxy's first sync is done, and it locks before that.
    assert exists(path), f"no lock file {path} while two agents run\n{a.log_tail()}"
    assert await a.stop() == 0
    assert exists(path), f"{path} removed while an agent of the cluster still runs"
    assert await b.stop() == 0
    assert not exists(path), f"{path} left by the cluster's last agent\n{b.log_tail()}"
