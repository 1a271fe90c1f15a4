"""kubectl explain and kubectl patch against a real pk-controlplane's HTTPS
API (the kubectl binaries of test_http_api.py): the OpenAPI documents of
pkapi.openapi and the patch engines of pkapi.patch as real clients use them."""

from __future__ import annotations

import json

import pytest

from tests.integration import test_http_api as base
from tests.integration.test_http_api import DEPLOY, Kubectl, run

pytestmark = pytest.mark.integration

cp = base.cp  # a control plane with controllers, and one kubectl per binary, as test_http_api.py
kubectl = base.kubectl


async def test_explain_reads_the_proto_comments(kubectl: Kubectl) -> None:
    out = await run(kubectl, "explain", "deployment.spec.strategy")
    assert "KIND:       Deployment" in out and "GROUP:      apps" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "The deployment strategy to use to replace existing pods with new ones." in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "enum: Recreate, RollingUpdate" in out
    out = await run(kubectl, "explain", "pods.spec.containers.ports")
    assert "containerPort\t<integer> -required-" in out
    out = await run(kubectl, "explain", "svc.spec.ports.targetPort")
    assert "FIELD: targetPort <IntOrString>" in out
    out = await run(kubectl, "explain", "lease")
    assert "GROUP:      coordination.k8s.io" in out and "Lease defines a lease concept." in out
    out = await run(kubectl, "explain", "deployment", "--recursive")
    assert "maxSurge\t<IntOrString>" in out and "ownerReferences\t<[]OwnerReference>" in out
    err = await run(kubectl, "explain", "deployment.spec.nope", ok=False)
    assert 'field "nope" does not exist' in err


async def test_kubectl_patch_strategic_merge_cases(kubectl: Kubectl) -> None:
    await run(kubectl, "apply", "-f", "-", input=DEPLOY % {"name": "sm", "replicas": 0})

    async def containers() -> list[dict]:
        d = json.loads(await run(kubectl, "get", "deployment", "sm", "-o", "json"))
        return d["spec"]["template"]["spec"]["containers"]

    # A new container is merged by name, ahead of the existing one (the docs' patch-demo).
    out = await run(kubectl, "patch", "deployment", "sm", "-p",
                    '{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"pocketkube/hello:2"}]}}}}')
    assert out == "deployment.apps/sm patched\n"
    assert [c["name"] for c in await containers()] == ["side", "c"]
    # $patch: delete removes one by its merge key; a null deletes a label.
    await run(kubectl, "patch", "deployment", "sm", "-p",
              '{"metadata":{"labels":{"app":null}},'
              '"spec":{"template":{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}}}')
    assert [c["name"] for c in await containers()] == ["c"]
    d = json.loads(await run(kubectl, "get", "deployment", "sm", "-o", "json"))
    assert "app" not in d["metadata"].get("labels", {})
    # $retainKeys: Recreate drops rollingUpdate (as kubectl apply sends it).
    await run(kubectl, "patch", "deployment", "sm", "-p",
              '{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}')
    d = json.loads(await run(kubectl, "get", "deployment", "sm", "-o", "json"))
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    # The same patch again: no change, nothing written.
    out = await run(kubectl, "patch", "deployment", "sm", "-p",
                    '{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}')
    assert out == "deployment.apps/sm patched (no change)\n"
    # Malformed directives and JSON patches that do not apply: Kubernetes' errors, nothing written.
    err = await run(kubectl, "patch", "deployment", "sm", "-p", '{"spec":{"strategy":{"$patch":"frob"}}}', ok=False)
    assert err.startswith("Error from server (BadRequest): ") and "unknown patch type: frob" in err
    err = await run(kubectl, "patch", "deployment", "sm", "--type=json",
                    "-p", '[{"op":"test","path":"/spec/replicas","value":7}]', ok=False)
    assert err.startswith(("The Deployment \"sm\" is invalid", "The request is invalid")), err  # 422 Invalid
    after = json.loads(await run(kubectl, "get", "deployment", "sm", "-o", "json"))
    assert after["metadata"]["resourceVersion"] == d["metadata"]["resourceVersion"]


TWO = """apiVersion: apps/v1
kind: Deployment
metadata: {name: ap}
spec:
  replicas: 0
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1}}
  selector: {matchLabels: {app: ap}}
  template:
    metadata: {labels: {app: ap}}
    spec:
      containers:
      - {name: a, image: pocketkube/hello:1, env: [{name: FOO, value: "1"}, {name: BAR, value: "2"}]}
      - {name: b, image: pocketkube/hello:1}
"""

CHANGED = """apiVersion: apps/v1
kind: Deployment
metadata: {name: ap}
spec:
  replicas: 0
  strategy: {type: Recreate}
  selector: {matchLabels: {app: ap}}
  template:
    metadata: {labels: {app: ap}}
    spec:
      containers:
      - {name: c, image: pocketkube/hello:2}
      - {name: a, image: pocketkube/hello:1, env: [{name: BAR, value: "3"}], ports: [{containerPort: 8080}]}
"""


async def test_kubectl_apply_three_way_patches(kubectl: Kubectl) -> None:
    # kubectl apply computes a strategic merge patch with $setElementOrder, $patch: delete for the removed
    # container, $retainKeys for the strategy and nulls for removed fields; the server must merge it to
    # exactly the new manifest.
    assert await run(kubectl, "apply", "-f", "-", input=TWO) == "deployment.apps/ap created\n"
    assert await run(kubectl, "apply", "-f", "-", input=CHANGED) == "deployment.apps/ap configured\n"
    d = json.loads(await run(kubectl, "get", "deployment", "ap", "-o", "json"))
    cs = d["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["c", "a"]
    assert cs[1]["env"] == [{"name": "BAR", "value": "3"}]
    assert cs[1]["ports"][0]["containerPort"] == 8080
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    assert await run(kubectl, "apply", "-f", "-", input=CHANGED) == "deployment.apps/ap unchanged\n"
    # and back: the removed container returns, in the manifest's order
    assert await run(kubectl, "apply", "-f", "-", input=TWO) == "deployment.apps/ap configured\n"
    d = json.loads(await run(kubectl, "get", "deployment", "ap", "-o", "json"))
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["a", "b"]
    assert d["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "FOO", "value": "1"},
                                                                     {"name": "BAR", "value": "2"}]
    assert d["spec"]["strategy"]["type"] == "RollingUpdate" and d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 1
