"""End to end on ONE real HA lab (`pkctl lab up --control-planes 3`: three
etcd members, three pk-controlplanes, two nodes), its own lab beside the
e2e lab of test_lab_cluster.py. Under a request loop through a Service:
the controllers' leader is SIGKILLed (another is shown as leader and a
scale still happens), an etcd member is SIGKILLed (writes go on), then
both come back with the agents up. Through all of it no request fails and
no pod container is replaced."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_lab_cluster import (
    DEPLOY,
    NODEPORT_SVC,
    SELECTOR,
    WEB,
    engine_containers,
    live_pods,
    ready_pods,
    start_loop,
)
from tests.fixtures.lab import LabHandle, remove_stale_labs, require_root, wait

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def ha_lab(lab_images: str) -> Iterator[LabHandle]:
    require_root()
    tmp = tempfile.mkdtemp(prefix="pk-e2e-ha-")
    handle = LabHandle(f"e2e-ha-{os.getpid()}", os.path.join(tmp, "config"))
    remove_stale_labs(handle.env)
    try:
        r = handle.lab("up", "--nodes", "2", "--control-planes", "3", "--preset", "lab", "--images", lab_images,
                       check=False, timeout=180)
        if r.returncode != 0:
            raise AssertionError(f"pkctl lab up --control-planes 3 failed:\n{r.stdout}{r.stderr}")
        yield handle
    finally:
        down = handle.lab("down", check=False, timeout=120)
        Path(tmp, "config").unlink(missing_ok=True)
        os.rmdir(tmp)
        assert down.returncode == 0, f"pkctl lab down left something:\n{down.stdout}{down.stderr}"


def status(lab: LabHandle) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(lab.lab("status", "-o", "json", check=False).stdout)
    return out


def containers(lab: LabHandle) -> set[str]:
    return {c.id for n in lab.plan.nodes for c in engine_containers(lab, n.name)}


def test_leader_and_etcd_member_killed_under_load(ha_lab: LabHandle) -> None:
    lab = ha_lab
    st = status(lab)
    assert [c["name"] for c in st["controlplanes"]] == ["cp-1", "cp-2", "cp-3"]
    assert [(m["name"], m["endpoint"].startswith("http://127.0.0.1:")) for m in st["etcd"]] == [
        ("etcd-1", True), ("etcd-2", True), ("etcd-3", True)]
    assert [n["status"] for n in st["nodes"]] == ["Ready", "Ready"]
    lab.pkctl("apply", "-f", WEB)
    lab.pkctl("apply", "-f", "-", input=NODEPORT_SVC)
    wait("3 Ready replicas", lambda: len(ready_pods(lab)) == 3, 60)
    before = containers(lab)
    old = wait("a leader shown", lambda: status(lab)["leader"], 20)
    loop = start_loop(lab, "node-1", max_seconds=150)
    try:
        # 1. the leader dies: another control plane leads and acts
        out = lab.lab("kill-controlplane", old).stdout
        assert "killed" in out, f"{out}\n{lab.lab('logs', old, '--tail', '30', check=False).stdout}"
        new = wait("a new leader shown", lambda: (lambda ld: ld if ld and ld != old else None)(status(lab)["leader"]),
                   20)
        lab.pkctl("scale", f"deployment/{DEPLOY}", "--replicas", "4")
        wait("4 Ready replicas scaled by the new leader", lambda: len(ready_pods(lab)) == 4, 40)

        # 2. an etcd member dies: writes go on through the other two
        lab.lab("kill-etcd", "etcd-1")
        lab.pkctl("scale", f"deployment/{DEPLOY}", "--replicas", "3")
        wait("3 replicas again with an etcd member down", lambda: len(live_pods(lab)) == 3, 40)

        # 3. both come back with the agents up
        lab.lab("start-etcd", "etcd-1")
        lab.lab("start-controlplane", old)
        st = status(lab)
        assert st["healthy"], st
        assert st["leader"] == new, f"leadership moved again when {old} returned: {st['leader']}"
    finally:
        loop.stop()
    assert loop.failed == 0, f"requests failed through the Service: {loop.report()}"
    after = containers(lab)
    survivors = {p.status.container_statuses[0].container_id.removeprefix("docker://")
                 for p in live_pods(lab) if p.status.container_statuses}
    assert survivors <= before | after and len(before & after) >= 3, \
        f"pod containers were replaced: before {sorted(before)}, after {sorted(after)}"
    assert all(c.restart_count == 0 for p in live_pods(lab) for c in p.status.container_statuses), \
        [(p.metadata.name, [c.restart_count for c in p.status.container_statuses]) for p in live_pods(lab)]
    assert SELECTOR
