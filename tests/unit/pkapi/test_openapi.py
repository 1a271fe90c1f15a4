"""The OpenAPI v3 documents: what kubectl's validation and explain read,
generated from the pkapi/v1 descriptors and the .proto comments."""

from __future__ import annotations

import hashlib
import json

import pytest

from pkapi import meta, openapi
from pkapi.v1 import apps_pb2, core_pb2

GVS = ["api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"]


def schemas(gv: str) -> dict:
    return openapi.document(gv)["components"]["schemas"]


def resolve(doc: dict, prop: dict) -> dict:
    """The schema a property refers to (through allOf or items)."""
    if "items" in prop:
        prop = prop["items"]
    if "allOf" in prop:
        prop = prop["allOf"][0]
    name = prop["$ref"].removeprefix(openapi.REF)
    return doc["components"]["schemas"][name]


def test_group_versions_and_index() -> None:
    assert openapi.group_versions() == GVS
    idx = openapi.index()
    assert sorted(idx["paths"]) == GVS
    for gv, entry in idx["paths"].items():
        want = hashlib.sha512(openapi.document_json(gv)).hexdigest().upper()
        assert entry == {"serverRelativeURL": f"/openapi/v3/{gv}?hash={want}"}
    assert len({e["serverRelativeURL"] for e in idx["paths"].values()}) == 3


def test_unknown_group_version() -> None:
    with pytest.raises(KeyError):
        openapi.document("apis/batch/v1")


def test_document_is_a_copy_and_json_is_stable() -> None:
    d = openapi.document("apis/apps/v1")
    d["components"]["schemas"].clear()
    assert openapi.document("apis/apps/v1")["components"]["schemas"]
    assert json.loads(openapi.document_json("apis/apps/v1")) == openapi.document("apis/apps/v1")
    assert openapi.document("api/v1")["openapi"] == "3.0.0"


@pytest.mark.parametrize("kind", [k.kind for k in meta.KINDS])
def test_every_kind_has_a_patch_operation_kubectl_accepts(kind: str) -> None:
    # cli-runtime's query param verifier: a PATCH with the kind's GVK and a fieldValidation parameter.
    k = meta.kind_by_name(kind)
    doc = openapi.document(openapi.gv_path(k.group, k.version))
    base = "/" + openapi.gv_path(k.group, k.version)
    path = f"{base}/namespaces/{{namespace}}/{k.resource}/{{name}}" if k.namespaced else f"{base}/{k.resource}/{{name}}"
    op = doc["paths"][path]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": k.group, "version": k.version, "kind": kind}
    assert op["x-kubernetes-action"] == "patch"
    assert {"dryRun", "fieldManager", "fieldValidation", "force"} <= {p["name"] for p in op["parameters"]}
    # No requestBody: kubectl computes apply's patches from its own compiled-in types.
    assert "requestBody" not in op
    assert op["operationId"].startswith("patch")
    path_params = {p["name"] for p in doc["paths"][path]["parameters"]}
    assert path_params == ({"name", "namespace"} if k.namespaced else {"name"})


def test_operation_ids_are_kubernetes_style() -> None:
    paths = openapi.document("apis/apps/v1")["paths"]
    ops = {op["operationId"] for p in paths.values() for verb, op in p.items() if verb != "parameters"}
    assert {"patchAppsV1NamespacedDeployment", "readAppsV1NamespacedDeployment", "listAppsV1DeploymentForAllNamespaces",
            "createAppsV1NamespacedDeployment", "patchAppsV1NamespacedDeploymentScale",
            "patchAppsV1NamespacedDeploymentStatus"} <= ops
    core = openapi.document("api/v1")["paths"]
    assert core["/api/v1/nodes/{name}"]["patch"]["operationId"] == "patchCoreV1Node"
    assert openapi.document("apis/coordination.k8s.io/v1")["paths"][
        "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"]["patch"]["operationId"] \
        == "patchCoordinationV1NamespacedLease"
    scale = openapi.document("apis/apps/v1")["paths"][
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}


@pytest.mark.parametrize("kind,name", [
    ("Deployment", "io.k8s.api.apps.v1.Deployment"),
    ("ReplicaSet", "io.k8s.api.apps.v1.ReplicaSet"),
    ("Pod", "io.k8s.api.core.v1.Pod"),
    ("Service", "io.k8s.api.core.v1.Service"),
    ("Node", "io.k8s.api.core.v1.Node"),
    ("Namespace", "io.k8s.api.core.v1.Namespace"),
    ("Endpoints", "io.k8s.api.core.v1.Endpoints"),
    ("Event", "io.k8s.api.core.v1.Event"),
    ("Lease", "io.k8s.api.coordination.v1.Lease"),
])
def test_kind_schemas_named_as_kubernetes_with_gvk(kind: str, name: str) -> None:
    k = meta.kind_by_name(kind)
    s = schemas(openapi.gv_path(k.group, k.version))
    assert s[name]["x-kubernetes-group-version-kind"] == [{"group": k.group, "kind": kind, "version": k.version}]
    assert s[name]["description"]  # from the .proto comment
    assert {"apiVersion", "kind", "metadata"} <= set(s[name]["properties"])
    assert s[f"{name}List"]["x-kubernetes-group-version-kind"][0]["kind"] == f"{kind}List"
    # only the kinds get a GVK (a spec does not)
    for other, sch in s.items():
        if "x-kubernetes-group-version-kind" in sch:
            assert other.endswith(("List", kind)) or other.split(".")[-1] in ("Status", "Scale", *(x.kind for x in meta.KINDS))


def test_explain_deployment_spec_strategy_walk() -> None:
    # What `kubectl explain deployment.spec.strategy` follows and prints.
    doc = openapi.document("apis/apps/v1")
    dep = doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    spec = resolve(doc, dep["properties"]["spec"])
    strategy_prop = spec["properties"]["strategy"]
    assert strategy_prop["description"] == "The deployment strategy to use to replace existing pods with new ones."
    assert strategy_prop["x-kubernetes-patch-strategy"] == "retainKeys"
    strategy = resolve(doc, strategy_prop)
    assert strategy["description"].startswith("DeploymentStrategy describes")
    assert strategy["properties"]["type"]["enum"] == ["Recreate", "RollingUpdate"]
    ru = strategy["properties"]["rollingUpdate"]
    assert resolve(doc, ru)["properties"]["maxSurge"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]
    assert spec["required"] == ["selector", "template"]


def test_properties_are_the_message_fields_by_json_name() -> None:
    s = schemas("api/v1")
    for msg, name in ((core_pb2.ServiceSpec, "io.k8s.api.core.v1.ServiceSpec"),
                      (core_pb2.PodStatus, "io.k8s.api.core.v1.PodStatus"),
                      (core_pb2.Container, "io.k8s.api.core.v1.Container")):
        assert set(s[name]["properties"]) == {f.json_name for f in msg.DESCRIPTOR.fields}
    assert "clusterIP" in s["io.k8s.api.core.v1.ServiceSpec"]["properties"]
    assert "podIPs" in s["io.k8s.api.core.v1.PodStatus"]["properties"]
    d = schemas("apis/apps/v1")["io.k8s.api.apps.v1.DeploymentSpec"]
    assert set(d["properties"]) == {f.json_name for f in apps_pb2.DeploymentSpec.DESCRIPTOR.fields}


def test_types_and_formats() -> None:
    s = schemas("api/v1")
    pod_spec = s["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert pod_spec["terminationGracePeriodSeconds"] == {
        "type": "integer", "format": "int32", "description": pod_spec["terminationGracePeriodSeconds"]["description"]}
    assert pod_spec["nodeSelector"]["type"] == "object"
    assert pod_spec["nodeSelector"]["additionalProperties"] == {"type": "string"}
    md = s["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert md["creationTimestamp"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time"}]
    assert s["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == "date-time"
    assert md["labels"]["additionalProperties"] == {"type": "string"}
    port = s["io.k8s.api.core.v1.ServicePort"]["properties"]
    assert port["targetPort"]["allOf"][0]["$ref"].endswith("intstr.IntOrString")
    assert s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    res = s["io.k8s.api.core.v1.ResourceRequirements"]["properties"]
    assert res["limits"]["additionalProperties"]["$ref"].endswith("resource.Quantity")
    assert s["io.k8s.api.core.v1.NodeStatus"]["properties"]["capacity"]["additionalProperties"]["$ref"].endswith(
        "resource.Quantity")
    assert port["port"]["type"] == "integer" and s["io.k8s.api.core.v1.ServiceSpec"]["properties"][
        "publishNotReadyAddresses"]["type"] == "boolean"


def test_patch_strategies_match_the_servers_merge() -> None:
    s = schemas("api/v1")
    pod_spec = s["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert (pod_spec["containers"]["x-kubernetes-patch-strategy"], pod_spec["containers"]["x-kubernetes-patch-merge-key"]) \
        == ("merge", "name")
    assert "x-kubernetes-patch-strategy" not in pod_spec["tolerations"]
    c = s["io.k8s.api.core.v1.Container"]["properties"]
    assert c["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert c["env"]["x-kubernetes-patch-merge-key"] == "name"
    assert s["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "port"
    md = s["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert md["finalizers"]["x-kubernetes-patch-strategy"] == "merge"
    assert md["ownerReferences"]["x-kubernetes-patch-merge-key"] == "uid"


@pytest.mark.parametrize("gv", GVS)
def test_every_reference_resolves_in_its_document(gv: str) -> None:
    doc = openapi.document(gv)
    names = set(doc["components"]["schemas"])
    refs: list[str] = []

    def walk(x):
        if isinstance(x, dict):
            if "$ref" in x:
                refs.append(x["$ref"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    assert refs
    missing = {r for r in refs if r.removeprefix(openapi.REF) not in names}
    assert not missing


def test_every_served_field_of_the_workload_kinds_is_described() -> None:
    # explain shows "<no description>" otherwise: every field of these messages has a .proto comment.
    doc = openapi.document("apis/apps/v1")
    for name in ("io.k8s.api.apps.v1.DeploymentSpec", "io.k8s.api.apps.v1.DeploymentStatus",
                 "io.k8s.api.apps.v1.DeploymentStrategy", "io.k8s.api.apps.v1.RollingUpdateDeployment",
                 "io.k8s.api.apps.v1.ReplicaSetSpec", "io.k8s.api.apps.v1.ReplicaSetStatus",
                 "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.api.core.v1.PodTemplateSpec"):
        s = doc["components"]["schemas"][name]
        assert s.get("description"), name
        undocumented = [p for p, v in s["properties"].items() if not v.get("description")]
        assert not undocumented, (name, undocumented)
