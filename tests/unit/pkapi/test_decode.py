import json

import pytest

from pkapi import decode, manifest, meta
from pkapi.errors import ApiError
from pkapi.v1 import apps_pb2, core_pb2

DEP = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "creationTimestamp": "2026-11-28T10:00:00Z"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"limits": {"cpu": "500m", "memory": 1024}}}]},
        },
    },
}


def err(text: str) -> str:
    with pytest.raises(ApiError) as e:
        decode.decode_json(text)
    return e.value.message


def test_decodes_kubernetes_json():
    d = decode.decode_json(json.dumps(DEP))
    assert isinstance(d, apps_pb2.Deployment)
    assert d.spec.replicas == 2 and d.spec.strategy.rolling_update.max_surge.number_value == 1
    assert d.metadata.creation_timestamp.seconds > 0


def test_kubernetes_initialisms_and_round_trip():
    svc = decode.decode_json(json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"clusterIP": "10.96.0.10", "externalIPs": ["1.2.3.4"], "ports": [{"port": 80}],
                 "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}},
    }))
    assert svc.spec.cluster_ip == "10.96.0.10" and svc.spec.external_ips == ["1.2.3.4"]
    assert svc.spec.session_affinity_config.client_ip.timeout_seconds == 5
    # what MessageToDict prints parses back
    assert decode.decode_json(json.dumps(meta.to_dict(svc))) == svc


def test_unknown_and_duplicate_fields_all_reported():
    text = ('{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x","name":"y"},'
            '"spec":{"unknownField":1,"replicas":1,"template":{"spec":{"containers":[{},{"bogus":1}]}}}}')
    assert err(text) == ('strict decoding error: duplicate field "metadata.name", unknown field "spec.unknownField", '
                         'unknown field "spec.template.spec.containers[1].bogus"')


@pytest.mark.parametrize(
    "patch,want",
    [
        ({"replicas": "three"}, "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
        ({"replicas": True}, "cannot unmarshal bool into Go struct field DeploymentSpec.spec.replicas of type int32"),
        ({"replicas": 2**40}, "cannot unmarshal number 1099511627776 into Go struct field DeploymentSpec.spec.replicas of type int32"),
        ({"paused": "yes"}, "cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool"),
        ({"selector": []}, "cannot unmarshal array into Go struct field DeploymentSpec.spec.selector of type v1.LabelSelector"),
        ({"selector": {"matchLabels": ["a"]}}, "cannot unmarshal array into Go struct field LabelSelector.spec.selector.matchLabels of type map[string]string"),
    ],
)
def test_type_errors(patch, want):
    d = json.loads(json.dumps(DEP))
    d["spec"].update(patch)
    msg = err(json.dumps(d))
    assert msg.startswith('Deployment in version "v1" cannot be handled as a Deployment: json: ')
    assert want in msg


def test_nulls_are_absent_and_timestamps_checked():
    d = json.loads(json.dumps(DEP))
    d["status"] = None
    d["spec"]["replicas"] = None
    out = decode.decode_json(json.dumps(d))
    assert not out.spec.HasField("replicas")
    d["metadata"]["creationTimestamp"] = "yesterday"
    assert 'parsing time "yesterday"' in err(json.dumps(d))


def test_kind_errors():
    assert err('{"apiVersion":"apps/v1","kind":"StatefulSet"}') == 'no matches for kind "StatefulSet" in version "apps/v1"'
    assert err('{"apiVersion":"v1"}').startswith("Object 'Kind' is missing in")
    assert err("[1]").startswith("the object must be a JSON object")
    assert err("{nope").startswith("couldn't get version/kind; json parse error")


def test_manifest_multi_document_and_lists():
    text = """
apiVersion: v1
kind: Pod
metadata: {name: a, annotations: {when: 2026-11-28T10:00:00Z}}
---
# only a comment
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: b}}
- {apiVersion: v1, kind: Pod, metadata: {name: c, labels: {1: 2}}}
"""
    docs = manifest.documents(text, "x.yaml")
    assert [d.data["metadata"]["name"] for d in docs] == ["a", "b", "c"]
    assert docs[0].data["metadata"]["annotations"]["when"] == "2026-11-28T10:00:00Z"  # a string, not a datetime
    assert docs[2].data["metadata"]["labels"] == {"1": 2}


def test_manifest_errors():
    with pytest.raises(manifest.ManifestError, match='line 3: mapping key "a" already defined at line 2'):
        manifest.load_all("x:\n  a: 1\n  a: 2\n")
    with pytest.raises(manifest.ManifestError, match=r"^error converting YAML to JSON: yaml: line 2: "):
        manifest.load_all("a: [1, 2\nb: c: d\n")
    with pytest.raises(manifest.ManifestError, match=r'error validating "f.yaml": error validating data: \[kind not set\]'):
        manifest.documents("apiVersion: v1\nmetadata: {name: x}\n", "f.yaml")
    with pytest.raises(manifest.ManifestError, match="a document must be a mapping"):
        manifest.documents("- a\n- b\n", "f.yaml")


def test_value_fields_keep_both_shapes():
    p = decode.decode_json(json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i",
                                 "readinessProbe": {"httpGet": {"port": "http"}},
                                 "livenessProbe": {"tcpSocket": {"port": 8080}}}]},
    }))
    assert isinstance(p, core_pb2.Pod)
    assert p.spec.containers[0].readiness_probe.http_get.port.string_value == "http"
    assert p.spec.containers[0].liveness_probe.tcp_socket.port.number_value == 8080


def test_nesting_beyond_the_stack_is_bad_request_not_a_crash():
    deep = "[" * 100_000 + "]" * 100_000
    free_form = ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":'
                 + '{"a":' * 5000 + "1" + "}" * 5000 + "}")
    for text in (deep, free_form):
        with pytest.raises(ApiError) as e:
            decode.decode_json(text)
        assert (e.value.reason, e.value.message) == (
            "BadRequest", "couldn't get version/kind; json parse error: exceeded max depth")
    with pytest.raises(manifest.ManifestError, match="^error converting YAML to JSON: yaml: exceeded max depth$"):
        manifest.load_all("a: " + "[" * 5000 + "]" * 5000)
