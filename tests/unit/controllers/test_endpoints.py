"""The Endpoints controller's pure part: compute_subsets and friends."""

from __future__ import annotations

from controlplane.controllers.endpoints import compute_subsets, pod_ready, resolve_host_port
from pkapi import meta
from pkapi.v1 import core_pb2


def pod(name, host_ip="127.0.0.2", ready=True, mappings=(), labels=None, ports=(), node="n1", phase="Running"):
    d = {
        "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}", "labels": labels or {"app": "web"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": list(ports)}]},
        "status": {
            "phase": phase,
            "hostIP": host_ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "portMappings": [
                {"containerName": "c", "name": n, "containerPort": cp, "protocol": pr, "hostPort": hp}
                for n, cp, pr, hp in mappings
            ],
        },
    }
    return meta.from_dict(d, core_pb2.Pod)


def svc(ports, selector=None):
    return meta.from_dict(
        {"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": selector or {"app": "web"}, "ports": ports}},
        core_pb2.Service,
    )


def test_numeric_target_port_groups_by_host_port():
    s = svc([{"port": 80, "targetPort": 8080}])
    pods = [
        pod("a", "127.0.0.2", mappings=[("", 8080, "TCP", 32001)]),
        pod("b", "127.0.0.3", mappings=[("", 8080, "TCP", 32002)]),
        pod("c", "127.0.0.4", ready=False, mappings=[("", 8080, "TCP", 32001)]),
        pod("d", "127.0.0.5", mappings=[("", 9999, "TCP", 32005)]),  # does not expose 8080
        pod("e", "127.0.0.6", labels={"app": "other"}, mappings=[("", 8080, "TCP", 32006)]),
        pod("f", "", mappings=[]),  # not placed yet
    ]
    subsets = compute_subsets(s, pods)
    got = [([a.ip for a in x.addresses], [a.ip for a in x.not_ready_addresses], [p.port for p in x.ports]) for x in subsets]
    assert got == [(["127.0.0.2"], ["127.0.0.4"], [32001]), (["127.0.0.3"], [], [32002])]
    a = subsets[0].addresses[0]
    assert a.node_name == "n1" and a.target_ref.kind == "Pod" and a.target_ref.name == "a"


def test_named_multiport():
    s = svc([{"name": "http", "port": 80, "targetPort": "web"}, {"name": "metrics", "port": 9100, "targetPort": "m"}])
    p = pod(
        "a",
        ports=[{"name": "web", "containerPort": 8080}, {"name": "m", "containerPort": 9100}],
        mappings=[("web", 8080, "TCP", 31000), ("m", 9100, "TCP", 31001)],
    )
    # a mapping without a name still resolves through the pod spec
    q = pod("b", "127.0.0.3", ports=[{"name": "web", "containerPort": 8080}], mappings=[("", 8080, "TCP", 31500)])
    subsets = compute_subsets(s, [p, q])
    got = sorted(([(x.name, x.port) for x in ss.ports], [a.ip for a in ss.addresses]) for ss in subsets)
    assert got == [([("http", 31000), ("metrics", 31001)], ["127.0.0.2"]), ([("http", 31500)], ["127.0.0.3"])]


def test_default_target_port_and_udp():
    s = svc([{"port": 53, "protocol": "UDP"}])
    p = pod("a", mappings=[("", 53, "TCP", 31000), ("", 53, "UDP", 31001)])
    assert resolve_host_port(p, s.spec.ports[0]) == 31001


def test_readiness_rules():
    assert pod_ready(pod("a"))
    assert not pod_ready(pod("a", ready=False))
    assert not pod_ready(pod("a", phase="Failed"))
    p = pod("a")
    meta.set_timestamp(p.metadata.deletion_timestamp)
    assert not pod_ready(p)
    s = svc([{"port": 80}])
    s.spec.publish_not_ready_addresses = True
    sub = compute_subsets(s, [pod("x", ready=False, mappings=[("", 80, "TCP", 30500)])])
    assert [a.ip for a in sub[0].addresses] == ["127.0.0.2"]


def test_empty_selector_matches_nothing():
    s = svc([{"port": 80}], selector={})
    s.spec.selector.clear()
    assert compute_subsets(s, [pod("a", mappings=[("", 80, "TCP", 30500)])]) == []


def test_lb_choose_holder():
    from controlplane.controllers.loadbalancer import choose_holder

    assert choose_holder("n2", ["n1", "n2"], {"n2": 5}) == "n2"  # a Ready holder keeps it
    assert choose_holder("n3", ["n1", "n2"], {"n1": 2, "n2": 1}) == "n2"  # least loaded
    assert choose_holder("", ["n2", "n1"], {}) == "n1"  # ties by name
    assert choose_holder("n1", [], {}) == ""
