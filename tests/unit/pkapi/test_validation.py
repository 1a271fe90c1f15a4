import json

import pytest

from pkapi import decode, defaults, validation
from pkapi.errors import invalid
from pkapi.v1 import core_pb2

DEP = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
       "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}


def load(d):
    msg = decode.decode_json(json.dumps(d))
    defaults.apply(msg)
    return msg


def test_valid_objects():
    assert validation.validate(load(DEP)) == []
    svc = load({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    assert validation.validate(svc) == []


def test_several_causes_kubectl_format():
    d = json.loads(json.dumps(DEP))
    d["spec"]["replicas"] = -1
    d["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    causes = validation.validate(load(d))
    assert causes == ["spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                      "spec.template.spec.containers[0].image: Required value"]
    assert invalid("Deployment", "web", causes).message == (
        'The Deployment "web" is invalid: \n'
        "* spec.replicas: Invalid value: -1: must be greater than or equal to 0\n"
        "* spec.template.spec.containers[0].image: Required value")


def test_selector_expressions():
    d = json.loads(json.dumps(DEP))
    d["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}
    assert validation.validate(load(d)) == []
    d["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "In"}]}
    assert validation.validate(load(d)) == [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"]


@pytest.mark.parametrize("name,ok", [("web", True), ("a.b.c", True), ("Web", False), ("-a", False), ("a" * 253, True)])
def test_subdomain_names(name, ok):
    d = json.loads(json.dumps(DEP))
    d["metadata"]["name"] = name
    assert (validation.validate(load(d)) == []) is ok


@pytest.mark.parametrize("name,ok", [("web", True), ("a.b", False), ("1web", False), ("a" * 63, True), ("a" * 64, False)])
def test_service_names(name, ok):
    svc = load({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}})
    assert (validation.validate(svc) == []) is ok


def test_immutable_fields():
    old = load(DEP)
    new = load(DEP)
    new.spec.selector.match_labels["x"] = "y"
    new.spec.template.metadata.labels["x"] = "y"
    assert validation.validate(new) == []
    [cause] = validation.validate_update(old, new)
    assert cause.startswith("spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{")
    assert cause.endswith(": field is immutable")
    s1, s2 = core_pb2.Service(), core_pb2.Service()
    s1.spec.cluster_ip, s2.spec.cluster_ip = "10.96.0.1", "10.96.0.2"
    assert validation.validate_update(s1, s2) == ['spec.clusterIP: Invalid value: "10.96.0.2": field is immutable']
    p1, p2 = core_pb2.Pod(), core_pb2.Pod()
    p1.spec.node_name, p2.spec.node_name = "n1", "n2"
    assert validation.validate_update(p1, p2) == ['spec.nodeName: Invalid value: "n2": field is immutable']
    p1.metadata.deletion_timestamp.seconds = 1
    p2.CopyFrom(p1)
    p2.metadata.finalizers.append("x")
    assert "no new finalizers can be added" in validation.validate_update(p1, p2)[0]


def test_status_values():
    p = core_pb2.Pod()
    p.status.phase = "Sleeping"
    assert validation.validate_status(p) == [
        'status.phase: Unsupported value: "Sleeping": supported values: "Pending", "Running", "Succeeded", "Failed", "Unknown"']


def test_label_keys():
    assert validation.qualified_name("example.com/app") == []
    assert validation.qualified_name("app") == []
    assert validation.qualified_name("/app") == ["prefix part must be non-empty"]
    assert validation.qualified_name("bad key") != []


def _pod_with(**spec):
    return load({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                 "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}})


def test_dns_config_kubernetes_rules():
    ok = _pod_with(dnsPolicy="None", dnsConfig={"nameservers": ["10.0.0.10", "fd00::a"], "searches": ["a.b.", "."],
                                                "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]})
    assert validation.validate(ok) == []
    assert validation.validate(_pod_with(dnsPolicy="None")) == [
        "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]
    assert validation.validate(_pod_with(dnsPolicy="None", dnsConfig={"searches": ["x"]})) == [
        "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"]
    causes = validation.validate(_pod_with(dnsConfig={
        "nameservers": ["1.1.1.1", "1.0.0.1", "10.0.0.1", "dns.example"], "searches": ["Bad_Name"],
        "options": [{"value": "3"}]}))
    assert causes[0].startswith("spec.dnsConfig.nameservers: Invalid value: ") and \
        causes[0].endswith("must not have more than 3 nameservers")
    assert causes[1] == 'spec.dnsConfig.nameservers[3]: Invalid value: "dns.example": must be valid IP address'
    assert causes[2].startswith('spec.dnsConfig.searches[0]: Invalid value: "Bad_Name": ')
    assert causes[3] == "spec.dnsConfig.options[0]: Required value: must not be empty"
    assert len(causes) == 4, causes
    many = _pod_with(dnsConfig={"searches": [f"s{i}.example" for i in range(33)]})
    assert [c for c in validation.validate(many) if "search paths" in c]
