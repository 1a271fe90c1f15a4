"""The HTTP API's pure parts: discovery documents, Status objects, paths,
content negotiation and body decoding."""

from __future__ import annotations

import pytest

from controlplane.apiserver.http import discovery, negotiate, openapi, paths
from controlplane.apiserver.http.status import cause, status
from pkapi import meta
from pkapi.errors import ApiError, field_invalid, invalid, not_found

DEPLOY = meta.kind_by_name("Deployment")
assert DEPLOY is not None


def test_aggregated_discovery_lists_every_served_kind_with_its_subresources() -> None:
    core = discovery.aggregated(core=True)
    assert core["apiVersion"] == "apidiscovery.k8s.io/v2" and core["items"][0]["metadata"] == {}
    resources = {r["resource"]: r for r in core["items"][0]["versions"][0]["resources"]}
    assert set(resources) == {"namespaces", "nodes", "pods", "services", "endpoints", "events"}
    assert resources["pods"]["shortNames"] == ["po"] and resources["pods"]["categories"] == ["all"]
    assert "categories" not in resources["events"]
    groups = discovery.aggregated(core=False, version="v2beta1")
    assert groups["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    assert [i["metadata"]["name"] for i in groups["items"]] == ["apps", "coordination.k8s.io", "discovery.k8s.io"]
    assert groups["items"][2]["versions"][0]["resources"][0]["verbs"] == ["get", "list"]
    deploy = next(r for r in groups["items"][0]["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["resource"] == "deployments" and deploy["shortNames"] == ["deploy"]
    subs = {s["subresource"]: s["responseKind"] for s in deploy["subresources"]}
    assert subs["scale"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert discovery.content_type("v2") == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def test_legacy_discovery() -> None:
    assert discovery.api_group_list()["groups"][0]["preferredVersion"] == {"groupVersion": "apps/v1",
                                                                           "version": "v1"}
    assert discovery.api_group("example.com") is None and discovery.resource_list("example.com/v1") is None
    names = {r["name"]: r for r in (discovery.resource_list("apps/v1") or {})["resources"]}
    assert names["deployments/scale"]["group"] == "autoscaling" and names["deployments/status"]["kind"] == "Deployment"


def test_status_objects_carry_kubectls_details() -> None:
    st = status(not_found("deployments.apps", "web"), DEPLOY, "web")
    assert st == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": 'deployments.apps "web" not found', "reason": "NotFound", "code": 404,
                  "details": {"name": "web", "group": "apps", "kind": "deployments"}}
    err = invalid("Deployment", "bad", [field_invalid("spec.replicas", -1, "must be greater than or equal to 0"),
                                        "spec.selector: Required value"])
    st = status(err, DEPLOY)  # a create: the name comes from the message
    assert st["code"] == 422 and st["details"]["name"] == "bad" and st["details"]["kind"] == "Deployment"
    assert st["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal to 0",
         "field": "spec.replicas"},
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"}]
    # an Invalid error made without causes still gives kubectl one
    st = status(ApiError("Invalid", 'The Node "" is invalid: metadata.name: Required value'))
    assert st["details"]["causes"] == [{"reason": "FieldValueRequired", "message": "Required value",
                                        "field": "metadata.name"}]
    assert cause("no field here")["field"] == ""
    assert status(ApiError("Expired", "too old"))["code"] == 410


@pytest.mark.parametrize("gv, segs, want", [
    ("v1", ["pods"], ("pods", "", "", "")),
    ("v1", ["namespaces", "default", "pods", "p", "status"], ("pods", "default", "p", "status")),
    ("v1", ["namespaces", "default"], ("namespaces", "", "default", "")),
    ("v1", ["namespaces", "team", "status"], ("namespaces", "", "team", "status")),
    ("apps/v1", ["namespaces", "x", "deployments", "web", "scale"], ("deployments", "x", "web", "scale")),
    ("v1", ["nodes", "n1"], ("nodes", "", "n1", "")),
])
def test_paths(gv: str, segs: list[str], want: tuple[str, str, str, str]) -> None:
    t = paths.parse(gv, segs)
    assert (t.kind.resource, t.namespace, t.name, t.subresource) == want


@pytest.mark.parametrize("gv, segs", [
    ("v1", ["widgets"]), ("v1", ["pods", "p", "portforward"]), ("v1", ["namespaces", "d", "nodes", "n"]),
    ("apps/v1", ["pods"]), ("example.com/v1", ["x"]), ("v1", ["pods", "p", "status", "more"]),
    ("v1", ["pods", "p", "scale"]),
])
def test_paths_not_served_are_not_found(gv: str, segs: list[str]) -> None:
    with pytest.raises(ApiError) as e:
        paths.parse(gv, segs)
    assert e.value.reason == "NotFound"


def test_accept_negotiation() -> None:
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    assert negotiate.wants(table, "Table", "meta.k8s.io", ("v1", "v1beta1")) == "v1"
    assert negotiate.wants("application/json", "Table", "meta.k8s.io", ("v1",)) == ""
    agg = ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    assert negotiate.wants(agg, "APIGroupDiscoveryList", "apidiscovery.k8s.io", ("v2", "v2beta1")) == "v2beta1"
    # a version not served is skipped, plain JSON after it wins
    agg3 = "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json"
    assert negotiate.wants(agg3, "APIGroupDiscoveryList", "apidiscovery.k8s.io", ("v2", "v2beta1")) == ""


def test_bodies() -> None:
    doc = negotiate.parse_document(b'{"metadata": {"name": "w"}}', "application/json; charset=utf-8")
    msg = negotiate.to_message(doc, DEPLOY)
    assert msg.metadata.name == "w"  # type: ignore[attr-defined]
    with pytest.raises(ApiError, match="json parse error") as e:
        negotiate.parse_document(b"{", None)
    assert e.value.reason == "BadRequest"
    with pytest.raises(ApiError) as e:
        negotiate.parse_document(b"x", "application/vnd.kubernetes.protobuf")
    assert e.value.reason == "UnsupportedMediaType" and "kubectl apply -f -" in e.value.message
    unknown = negotiate.parse_document(b'{"spec": {"x": 1, "replicas": 2}}', "application/json")
    with pytest.raises(ApiError, match='Deployment in version "v1" cannot be handled as a Deployment: '
                                       'strict decoding error: unknown field "spec.x"'):
        negotiate.to_message(unknown, DEPLOY)
    warnings: list[str] = []
    assert negotiate.to_message(unknown, DEPLOY, "Warn", warnings).spec.replicas == 2  # type: ignore[attr-defined]
    assert warnings == ['unknown field "spec.x"']
    assert negotiate.warning_header(warnings) == ['299 - "unknown field \\"spec.x\\""']
    with pytest.raises(ApiError, match="does not match the expected kind"):
        negotiate.to_message({"apiVersion": "apps/v1", "kind": "ReplicaSet"}, DEPLOY)
    with pytest.raises(ApiError, match="fieldValidation"):
        negotiate.field_validation("Loose")


def test_openapi_names_every_kind_with_field_validation() -> None:
    idx = openapi.index()["paths"]
    assert set(idx) == {"api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"}
    doc = openapi.document("api/v1")
    assert doc is not None
    kinds = {p["patch"]["x-kubernetes-group-version-kind"]["kind"] for p in doc["paths"].values() if "patch" in p}
    assert {"Pod", "Service", "Namespace", "ConfigMap", "Secret"} <= kinds
    assert all("fieldValidation" in [q["name"] for q in p["patch"]["parameters"]]
               for p in doc["paths"].values() if "patch" in p)
    assert openapi.document("apis/example.com/v1") is None
    assert idx["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")


def test_endpointslices_derived_from_endpoints() -> None:
    from controlplane.apiserver.http import endpointslices
    from pkapi.v1 import core_pb2

    ep = meta.from_dict({"apiVersion": "v1", "kind": "Endpoints", "metadata": {
        "name": "web", "namespace": "default", "uid": "0f6e2a1c-1111-2222-3333-444455556666", "resourceVersion": "7"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1", "nodeName": "node-1",
                                    "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}}],
                     "notReadyAddresses": [{"ip": "10.0.0.2"}], "ports": [{"name": "http", "port": 8080}]}]},
        core_pb2.Endpoints)
    [s] = endpointslices.slices_of(ep)
    assert s["metadata"]["name"] == "web-0" and s["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}] and s["addressType"] == "IPv4"
    assert [(e["addresses"], e["conditions"]["ready"]) for e in s["endpoints"]] == [(["10.0.0.1"], True),
                                                                                  (["10.0.0.2"], False)]
    assert s["endpoints"][0]["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "web-1"}
    assert endpointslices.slices_of(ep)[0]["metadata"]["uid"] == s["metadata"]["uid"]  # stable
    empty = meta.from_dict({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "none"}}, core_pb2.Endpoints)
    assert endpointslices.slices_of(empty)[0]["endpoints"] == []
    assert endpointslices.parse(["namespaces", "d", "endpointslices", "x"]) == ("d", "x")
    with pytest.raises(ApiError):
        endpointslices.parse(["namespaces", "d", "widgets"])
