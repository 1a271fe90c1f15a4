"""pkctl patch against a real pk-controlplane (embedded etcd, controllers off):
the three patch types, YAML patches, no-op patches and the errors, each
with what is stored afterwards read back by another client."""

from __future__ import annotations

import json

import pytest

from pkapi.client.cluster import ClusterClient
from tests.integration import test_cli as base
from tests.integration.test_cli import Pk, api, deployment_yaml

cp = base.cp  # the module's control plane and per-test namespace fixtures
pk = base.pk

pytestmark = pytest.mark.integration


def stored(pk: Pk, resource: str, name: str) -> dict:
    from pkapi import meta

    async def get(c: ClusterClient) -> dict:
        return meta.to_dict(await c.get(resource, pk.ns, name))

    return api(pk.cp, get)


def test_patch_three_types(pk: Pk) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("web", replicas=1))
    # strategic: a new container is merged by name, the old one stays
    out = pk.ok("patch", "deployment", "web", "-p",
                '{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"hello:2"}]}}}}')
    assert out == "deployment.apps/web patched\n"
    d = stored(pk, "deployments", "web")
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["side", "web"]
    # merge (YAML accepted): labels merged, a null deletes
    assert pk.ok("patch", "deploy/web", "--type", "merge", "-p", "metadata:\n  labels:\n    tier: front\n    app: null\n") \
        == "deployment.apps/web patched\n"
    assert stored(pk, "deployments", "web")["metadata"]["labels"] == {"tier": "front"}
    # json: replace replicas, remove the sidecar
    f = pk.file("p.json", json.dumps([{"op": "replace", "path": "/spec/replicas", "value": 4},
                                      {"op": "remove", "path": "/spec/template/spec/containers/0"}]))
    assert pk.ok("patch", "deploy", "web", "--type", "json", "--patch-file", f) == "deployment.apps/web patched\n"
    d = stored(pk, "deployments", "web")
    assert d["spec"]["replicas"] == 4
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["web"]
    # --dry-run=server: checked (an invalid value fails) but not stored
    assert pk.ok("patch", "deploy", "web", "--dry-run=server", "-p", '{"spec":{"replicas":7}}') \
        == "deployment.apps/web patched (server dry run)\n"
    assert stored(pk, "deployments", "web")["spec"]["replicas"] == 4
    r = pk("patch", "deploy", "web", "--dry-run=server", "-p", '{"spec":{"replicas":-1}}')
    assert r.exit_code == 1 and "spec.replicas: Invalid value: -1" in r.stderr
    # the same patch again changes nothing and writes nothing
    rv = d["metadata"]["resourceVersion"]
    assert pk.ok("patch", "deploy", "web", "-p", '{"spec":{"replicas":4}}') == "deployment.apps/web patched (no change)\n"
    assert stored(pk, "deployments", "web")["metadata"]["resourceVersion"] == rv


def test_patch_cluster_scoped_node_cordon(pk: Pk) -> None:
    from pkapi.v1 import core_pb2

    n = core_pb2.Node()
    n.metadata.name = f"n-{pk.ns}"
    api(pk.cp, lambda c: c.create(n))
    try:
        assert pk.ok("patch", "node", n.metadata.name, "-p", '{"spec":{"unschedulable":true}}') \
            == f"node/{n.metadata.name} patched\n"
        got = api(pk.cp, lambda c: c.get("nodes", "", n.metadata.name))
        assert got.spec.unschedulable
    finally:
        api(pk.cp, lambda c: c.delete("nodes", "", n.metadata.name))


@pytest.mark.parametrize("args,message", [
    (("-p", "[1]"), "Error from server (BadRequest): error decoding patch: json: cannot unmarshal array"),
    (("--type", "json", "-p", '[{"op":"remove","path":"/spec/nope"}]'), "the server rejected our request"),
    (("--type", "json", "-p", '{"a":1}'), "Error from server (BadRequest): json: cannot unmarshal object"),
    (("-p", '{"spec":{"replicas":"many"}}'), "Error from server (BadRequest): Deployment in version \"v1\" cannot be handled"),
    (("-p", '{"spec":{"nope":1}}'), 'Error from server (BadRequest): strict decoding error: unknown field "spec.nope"'),
    (("-p", '{"metadata":{"name":"other"}}'), "does not match the name on the URL (web)"),
    (("-p", '{"metadata":{"resourceVersion":"1"}}'), "Error from server (Conflict): Operation cannot be fulfilled"),
    (("-p", "{a: [}"), 'error: unable to parse "{a: [}": error converting YAML to JSON'),
    ((), "error: must specify --patch or --patch-file containing the contents of the patch"),
    (("-p", "{}", "--patch-file", "x"), "error: cannot specify --patch and --patch-file together"),
])
def test_patch_errors_change_nothing(pk: Pk, args: tuple[str, ...], message: str) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("web"))
    before = stored(pk, "deployments", "web")
    r = pk("patch", "deploy", "web", *args)
    assert r.exit_code == 1, r.output
    assert message in r.stderr, r.stderr
    assert stored(pk, "deployments", "web") == before


def test_patch_missing_object_and_name(pk: Pk) -> None:
    r = pk("patch", "deploy", "nope", "-p", "{}")
    assert (r.exit_code, r.stderr) == (1, 'Error from server (NotFound): deployments.apps "nope" not found\n')
    r = pk("patch", "deploy", "-p", "{}")
    assert (r.exit_code, r.stderr) == (1, "error: resource(s) were provided, but no name was specified\n")


def test_patch_the_objects_a_manifest_names(pk: Pk) -> None:
    f = pk.file("web.yaml", deployment_yaml("fw") + "---\n" + deployment_yaml("fw2"))
    pk.ok("apply", "-f", f)
    out = pk.ok("patch", "-f", f, "--type", "merge", "-p", '{"spec":{"paused":true}}')
    assert out == "deployment.apps/fw patched\ndeployment.apps/fw2 patched\n"
    assert stored(pk, "deployments", "fw")["spec"]["paused"] is True
    assert stored(pk, "deployments", "fw2")["spec"]["paused"] is True
    r = pk("patch", "deploy", "fw", "-f", f, "-p", "{}")
    assert (r.exit_code, r.stderr) == (1, "error: there is no need to specify a resource type and name when "
                                          "passing -f\n")
