"""kubectl's client-side rollout logic and three-way apply against a real
pk-controlplane (controllers on) through its HTTPS API, with the kubectl
binaries of test_http_api.py: `rollout history|undo --to-revision` read the
deployment controller's revision and change-cause annotations, and
`pkctl apply` and `kubectl apply` can be mixed on one object because both
write kubectl.kubernetes.io/last-applied-configuration the same way."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.integration import test_http_api as base
from tests.integration.test_cli_logs_exec import pkctl
from tests.integration.test_http_api import DEPLOY, Kubectl, run

pytestmark = pytest.mark.integration

cp = base.cp  # a control plane with controllers, and one kubectl per binary, as test_http_api.py
kubectl = base.kubectl

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


async def revisions(k: Kubectl, name: str, want: int, timeout: float = 30) -> dict[str, dict[str, Any]]:
    """{revision: ReplicaSet} of the Deployment once it has `want` ReplicaSets
    with a revision each, and the Deployment's revision is the highest."""
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        rss = json.loads(await run(k, "get", "rs", "-l", f"app={name}", "-o", "json"))["items"]
        d = json.loads(await run(k, "get", "deploy", name, "-o", "json"))
        by = {rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", ""): rs for rs in rss}
        seen = (sorted(by), d["metadata"].get("annotations", {}), json.dumps([r["spec"]["template"] for r in rss]), json.dumps(d["spec"]["template"]))
        if len(rss) == want and "" not in by and \
                d["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision") == max(by, key=int):
            return by
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name}: not {want} ReplicaSets with revisions within {timeout} s: {seen}")


async def test_rollout_history_change_cause_and_undo_to_revision(kubectl: Kubectl) -> None:
    await run(kubectl, "apply", "-f", "-", input=DEPLOY % {"name": "hist", "replicas": 0})
    await run(kubectl, "annotate", "deployment/hist", "kubernetes.io/change-cause=first version")
    await revisions(kubectl, "hist", 1)
    await run(kubectl, "set", "image", "deployment/hist", "c=pocketkube/hello:2")
    await run(kubectl, "annotate", "--overwrite", "deployment/hist", "kubernetes.io/change-cause=hello 2")
    deadline = time.monotonic() + 30
    while True:  # the controller copies the Deployment's change-cause onto the new ReplicaSet
        by = await revisions(kubectl, "hist", 2)
        if by["2"]["metadata"]["annotations"].get("kubernetes.io/change-cause") == "hello 2":
            break
        assert time.monotonic() < deadline, f"change-cause not on revision 2 within 30 s: {by['2']['metadata']}"
        await asyncio.sleep(0.2)
    assert by["1"]["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first version"
    out = await run(kubectl, "rollout", "history", "deployment/hist")
    assert [ln.split(None, 1) for ln in out.splitlines()[1:] if ln.strip()] == [
        ["REVISION", "CHANGE-CAUSE"], ["1", "first version"], ["2", "hello 2"]]
    out = await run(kubectl, "rollout", "history", "deployment/hist", "--revision=1")
    assert "revision #1" in out and "pocketkube/hello:1" in out and "first version" in out
    err = await run(kubectl, "rollout", "undo", "deployment/hist", "--to-revision=9", ok=False)
    assert err.splitlines()[-1] == "error: unable to find specified revision 9 in history"
    out = await run(kubectl, "rollout", "undo", "deployment/hist", "--to-revision=1")
    assert out.strip() == "deployment.apps/hist rolled back"
    by = await revisions(kubectl, "hist", 2)
    # undo reuses revision 1's ReplicaSet and gives it the next revision
    assert sorted(by) == ["2", "3"]
    assert by["3"]["spec"]["template"]["spec"]["containers"][0]["image"] == "pocketkube/hello:1"
    assert by["3"]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    d = json.loads(await run(kubectl, "get", "deploy", "hist", "-o", "json"))
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "pocketkube/hello:1"
    # kubectl's undo copies the ReplicaSet's change-cause onto the Deployment
    assert d["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first version"
    out = await run(kubectl, "rollout", "history", "deployment/hist")
    assert [ln.split(None, 1) for ln in out.splitlines()[1:] if ln.strip()] == [
        ["REVISION", "CHANGE-CAUSE"], ["2", "hello 2"], ["3", "first version"]]
    out = await run(kubectl, "rollout", "undo", "deployment/hist")  # back to the previous: revision 2
    by = await revisions(kubectl, "hist", 2)
    assert sorted(by) == ["3", "4"] and by["4"]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "pocketkube/hello:2"


MIX = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: mix
  labels: {app: mix%(extra)s}
spec:
  replicas: 0
  selector: {matchLabels: {app: mix}}
  template:
    metadata: {labels: {app: mix}}
    spec: {containers: [{name: c, image: "pocketkube/hello:1"}]}
"""


async def test_pkctl_apply_and_kubectl_apply_mix(kubectl: Kubectl, cp: Any, tmp_path: Any) -> None:
    both = tmp_path / "both.yaml"
    both.write_text(MIX % {"extra": ", tier: web"})
    one = tmp_path / "one.yaml"
    one.write_text(MIX % {"extra": ""})
    code, out, err = await pkctl(cp.address, "apply", "-f", str(both))
    assert (code, out, err) == (0, "deployment.apps/mix created\n", "")
    d = json.loads(await run(kubectl, "get", "deploy", "mix", "-o", "json"))
    pk_last = d["metadata"]["annotations"][LAST_APPLIED]
    assert json.loads(pk_last)["metadata"] == {"annotations": {}, "labels": {"app": "mix", "tier": "web"},
                                               "name": "mix", "namespace": "default"}
    # kubectl finds the same last-applied configuration it would write: nothing to patch
    assert (await run(kubectl, "apply", "-f", str(both))).strip() == "deployment.apps/mix unchanged"
    # kubectl's three-way patch removes what pkctl applied and the file no longer has
    assert (await run(kubectl, "apply", "-f", str(one))).strip() == "deployment.apps/mix configured"
    d = json.loads(await run(kubectl, "get", "deploy", "mix", "-o", "json"))
    assert d["metadata"]["labels"] == {"app": "mix"}
    kubectl_last = d["metadata"]["annotations"][LAST_APPLIED]
    # and pkctl, after kubectl, finds the object as its file says, annotation included
    code, out, err = await pkctl(cp.address, "apply", "-f", str(one))
    assert (code, out, err) == (0, "deployment.apps/mix unchanged\n", "")
    code, out, err = await pkctl(cp.address, "apply", "-f", str(both))
    assert (code, out, err) == (0, "deployment.apps/mix configured\n", "")
    d = json.loads(await run(kubectl, "get", "deploy", "mix", "-o", "json"))
    assert d["metadata"]["labels"] == {"app": "mix", "tier": "web"}
    assert d["metadata"]["annotations"][LAST_APPLIED] == pk_last != kubectl_last
