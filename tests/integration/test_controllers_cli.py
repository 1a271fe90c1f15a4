"""pkctl rollout/scale/set image/cordon/uncordon/drain against a real
control plane with controllers and hollow nodes."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest

from pkapi.v1 import core_pb2
from tests.helpers import eventually
from tests.integration.controllers_util import (  # noqa: F401 - cluster is a fixture
    cluster_fixture,
    deployment,
    pods_of,
    ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def pkctl(server: str, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import main; main()", "--server", server, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PKCTL_CONFIG": "/nonexistent"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_rollout_set_image_history_undo_pause(cluster: Any) -> None:
    s, client = cluster.cp.address, cluster.client
    d = deployment("web", 2)
    d.metadata.annotations["kubernetes.io/change-cause"] = "first"
    await client.create(d)
    code, out, _ = await pkctl(s, "rollout", "status", "deployment/web", "--timeout", "20s")
    assert code == 0 and out.strip().endswith('deployment "web" successfully rolled out'), out

    code, out, err = await pkctl(s, "set", "image", "deployment/web", "main=pocketkube/hello:2")
    assert (code, out) == (0, "deployment.apps/web image updated\n"), err
    code, out, err = await pkctl(s, "set", "image", "deployment/web", "nope=x:1")
    assert (code, err) == (1, 'error: unable to find container named "nope"\n')
    code, out, _ = await pkctl(s, "rollout", "status", "deployment/web", "--timeout", "20s")
    assert code == 0 and "successfully rolled out" in out, out

    code, out, _ = await pkctl(s, "rollout", "history", "deployment/web")
    lines = out.splitlines()
    assert lines[0].strip() == "deployment.apps/web"
    assert lines[1].split() == ["REVISION", "CHANGE-CAUSE"]
    assert [ln.split()[0] for ln in lines[2:] if ln.strip()] == ["1", "2"]
    assert lines[2].split()[1] == "first"
    code, out, _ = await pkctl(s, "rollout", "history", "deployment/web", "--revision", "2")
    assert code == 0 and "with revision #2" in out and "pocketkube/hello:2" in out

    before = await client.get("deployments", "default", "web")
    code, _, err = await pkctl(s, "rollout", "undo", "deployment/web", "--to-revision", "9")
    assert (code, err) == (1, "error: unable to find specified revision 9 in history\n")
    after = await client.get("deployments", "default", "web")
    assert after.metadata.resource_version == before.metadata.resource_version  # nothing changed

    code, out, _ = await pkctl(s, "rollout", "pause", "deployment/web")
    assert (code, out) == (0, "deployment.apps/web paused\n")
    code, _, err = await pkctl(s, "rollout", "undo", "deployment/web")
    assert code == 1 and "you cannot rollback a paused deployment; resume it first" in err
    code, out, _ = await pkctl(s, "rollout", "resume", "deployment/web")
    assert (code, out) == (0, "deployment.apps/web resumed\n")
    code, _, err = await pkctl(s, "rollout", "resume", "deployment/web")
    assert (code, err) == (1, 'error: deployments.apps "web" is not paused\n')

    code, out, err = await pkctl(s, "rollout", "undo", "deployment/web", "--to-revision", "1")
    assert (code, out) == (0, "deployment.apps/web rolled back\n"), err
    code, out, _ = await pkctl(s, "rollout", "status", "deployment/web", "--timeout", "20s")
    assert code == 0, out
    d = await client.get("deployments", "default", "web")
    assert d.spec.template.spec.containers[0].image == "pocketkube/hello:1"
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"

    async def old_pods_back() -> bool:
        ps = [p for p in await pods_of(client, "web") if not p.metadata.HasField("deletion_timestamp")]
        return len(ps) == 2 and all(p.spec.containers[0].image == "pocketkube/hello:1" and ready(p) for p in ps)

    await eventually("pods back on the revision 1 template", old_pods_back, timeout=20)
    code, out, _ = await pkctl(s, "rollout", "history", "deployment/web")
    assert [ln.split()[0] for ln in out.splitlines()[2:] if ln.strip()] == ["2", "3"]

    code, out, _ = await pkctl(s, "rollout", "restart", "deployment/web")
    assert (code, out) == (0, "deployment.apps/web restarted\n")
    code, out, _ = await pkctl(s, "rollout", "status", "deployment/web", "--timeout", "20s")
    assert code == 0, out


async def test_rollout_status_fails_on_deadline_and_scale(cluster: Any) -> None:
    s, client = cluster.cp.address, cluster.client
    # Progress while waiting: a rollout that cannot finish (its image never
    # runs) is reported as waiting, and --timeout ends the wait. The status
    # is awaited first, so the first line pkctl prints is known.
    await client.create(deployment("slow", 1, image="pocketkube/never-there:1"))

    async def observed() -> Any:
        d = await client.get("deployments", "default", "slow")
        st = d.status
        return d if st.observed_generation >= d.metadata.generation and st.updated_replicas == 1 else None

    await eventually("deployment slow observed with its new ReplicaSet", observed, timeout=20)
    code, out, err = await pkctl(s, "rollout", "status", "deployment/slow", "--timeout", "1s")
    assert (code, err) == (1, "error: timed out waiting for the condition\n"), (out, err)
    assert out.startswith('Waiting for deployment "slow" rollout to finish: 0 of 1 updated replicas are available...')

    # A rollout past its progress deadline fails at once, once the controller
    # has said so in the Progressing condition.
    await client.create(deployment("bad", 1, image="pocketkube/never-there:1", progressDeadlineSeconds=1))

    async def exceeded() -> Any:
        d = await client.get("deployments", "default", "bad")
        return any(c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded" for c in d.status.conditions)

    await eventually("deployment bad's Progressing condition to say ProgressDeadlineExceeded", exceeded, timeout=20)
    code, out, err = await pkctl(s, "rollout", "status", "deployment/bad", "--timeout", "30s")
    assert (code, err) == (1, 'error: deployment "bad" exceeded its progress deadline\n'), (out, err)

    code, _, err = await pkctl(s, "scale", "deployment/bad", "--replicas", "3", "--current-replicas", "2")
    assert (code, err) == (1, "error: Expected replicas to be 2, was 1\n")
    code, out, _ = await pkctl(s, "scale", "deployment/bad", "--replicas", "0", "--current-replicas", "1")
    assert (code, out) == (0, "deployment.apps/bad scaled\n")
    d = await client.get("deployments", "default", "bad")
    assert d.spec.replicas == 0


async def test_rollout_status_follows_the_deployment_by_watch(cluster: Any) -> None:
    """rollout status watches: it prints the progress of a rollout it
    started waiting on and ends when it completes; a Deployment deleted
    while it waits ends it with kubectl's "object has been deleted"."""
    s, client = cluster.cp.address, cluster.client
    await client.create(deployment("stuck", 1, image="pocketkube/never-there:1"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import main; main()", "--server", s, "rollout", "status",
        "deployment/stuck", "--timeout", "60s", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PKCTL_CONFIG": "/nonexistent"})
    try:
        assert proc.stdout is not None and proc.stderr is not None
        # The first line is printed from the first read, before the watch.
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert first.decode().startswith("Waiting for deployment"), first
        await client.delete("deployments", "default", "stuck")
        out_b, err_b = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (proc.returncode, err_b.decode()) == (1, "error: object has been deleted\n"), (out_b, err_b)

    # A rollout that completes while pkctl waits: each new line once, then done.
    await client.create(deployment("grow", 3))
    code, out, err = await pkctl(s, "rollout", "status", "deployment/grow", "--timeout", "60s")
    lines = out.splitlines()
    assert code == 0 and lines[-1] == 'deployment "grow" successfully rolled out', (out, err)
    assert len(lines) == len(set(lines)), lines


async def test_cordon_drain_uncordon(cluster: Any) -> None:
    s, client = cluster.cp.address, cluster.client
    await client.create(deployment("dr", 3))

    async def spread() -> Any:
        ps = await pods_of(client, "dr")
        return ps if len(ps) == 3 and all(ready(p) for p in ps) else None

    pods = await eventually("3 ready pods", spread, timeout=20)
    node = pods[0].spec.node_name
    bare = core_pb2.Pod()
    bare.metadata.name, bare.metadata.namespace = "bare", "default"
    bare.spec.node_name = node
    bare.spec.containers.add(name="c", image="pocketkube/hello:1")
    await client.create(bare)

    code, out, _ = await pkctl(s, "cordon", node)
    assert (code, out) == (0, f"node/{node} cordoned\n")
    code, out, _ = await pkctl(s, "cordon", node)
    assert (code, out) == (0, f"node/{node} already cordoned\n")

    code, out, err = await pkctl(s, "drain", node, "--timeout", "30s")
    assert code == 1
    assert "cannot delete Pods declare no controller (use --force to override): default/bare" in err
    assert "There are pending nodes to be drained:" in err
    assert len(await pods_of(client, "dr")) == 3  # nothing evicted

    code, out, err = await pkctl(s, "drain", node, "--force", "--timeout", "30s")
    assert code == 0, (out, err)
    assert out.splitlines()[-1] == f"node/{node} drained"
    assert "Warning: deleting Pods that declare no controller: default/bare" in err
    ps = [p for p in await pods_of(client, "dr") if not p.metadata.HasField("deletion_timestamp")]
    assert len(ps) == 3 and all(p.spec.node_name != node and ready(p) for p in ps)  # replaced, elsewhere

    code, out, _ = await pkctl(s, "uncordon", node)
    assert (code, out) == (0, f"node/{node} uncordoned\n")
    n = await client.get("nodes", "", node)
    assert not n.spec.unschedulable
