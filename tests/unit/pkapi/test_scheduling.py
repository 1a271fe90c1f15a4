"""Scheduler filters, scores, message wording and the schedule() pipeline."""

from pkapi import scheduling as s
from pkapi.scheduling import NodeInfo, PodInfo
from pkapi.v1 import core_pb2

GI = 1024**3


def node(name: str, cpu: int = 4000, mem: int = 8 * GI, **kw) -> NodeInfo:
    return NodeInfo(name=name, alloc_cpu=cpu, alloc_memory=mem, **kw)


def test_message_wording_from_the_issue() -> None:
    pod = PodInfo("default", "web", cpu=3000)
    busy1, busy2 = node("n2", cpu=2000), node("n3", cpu=2000)
    nodes = [node("n1", unschedulable=True), busy1, busy2]
    d = s.schedule(pod, nodes)
    assert d.node is None
    assert d.message == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."


def test_filters_each_reason() -> None:
    taint = core_pb2.Taint(key="dedicated", value="gpu", effect="NoSchedule")
    pod = PodInfo("default", "p", cpu=100, memory=GI, host_ports=frozenset({("TCP", "0.0.0.0", 8080)}),
                  node_selector={"disk": "ssd"})
    ok = node("ok", labels={"disk": "ssd"})
    assert s.filter_node(pod, ok) == []
    assert s.filter_node(pod, node("c", unschedulable=True)) == ["node(s) were unschedulable"]
    assert s.filter_node(pod, node("nr", ready=False, labels={"disk": "ssd"})) == ["node(s) were not ready"]
    assert s.filter_node(pod, node("t", taints=[taint], labels={"disk": "ssd"})) == [
        "node(s) had untolerated taint {dedicated: gpu}"]
    tolerant = PodInfo("default", "p", tolerations=[core_pb2.Toleration(key="dedicated", operator="Exists")])
    assert s.filter_node(tolerant, node("t", taints=[taint])) == []
    prefer = core_pb2.Taint(key="x", effect="PreferNoSchedule")
    assert s.filter_node(PodInfo("d", "p"), node("t", taints=[prefer])) == []
    assert s.filter_node(pod, node("sel", labels={"disk": "hdd"})) == ["node(s) didn't match Pod's node affinity/selector"]
    used = node("ports", labels={"disk": "ssd"})
    used.ports.add(("TCP", "127.0.0.1", 8080))
    assert s.filter_node(pod, used) == ["node(s) didn't have free ports for the requested pod ports"]
    udp = node("udp", labels={"disk": "ssd"})
    udp.ports.add(("UDP", "0.0.0.0", 8080))
    assert s.filter_node(pod, udp) == []
    full = node("full", cpu=50, mem=GI // 2, labels={"disk": "ssd"}, alloc_pods=0)
    assert s.filter_node(pod, full) == ["Too many pods", "Insufficient cpu", "Insufficient memory"]


def test_resource_fit_counts_requested() -> None:
    n = node("n", cpu=1000)
    n.add(PodInfo("d", "a", cpu=600))
    assert s.filter_node(PodInfo("d", "b", cpu=400), n) == []
    assert s.filter_node(PodInfo("d", "b", cpu=401), n) == ["Insufficient cpu"]
    n.remove(PodInfo("d", "a", cpu=600))
    assert s.filter_node(PodInfo("d", "b", cpu=1000), n) == []
    # no requests: always fits on resources
    assert s.filter_node(PodInfo("d", "b"), node("z", cpu=0, mem=0)) == []


def test_least_allocated_prefers_empty_nodes() -> None:
    a, b = node("a"), node("b")
    a.add(PodInfo("d", "x", cpu=2000, memory=4 * GI))
    pod = PodInfo("d", "p", cpu=100)
    assert s.least_allocated(pod, b) > s.least_allocated(pod, a)
    assert s.schedule(pod, [a, b]).node == "b"


def test_three_replicas_spread_over_three_nodes() -> None:
    nodes = [node(f"n{i}") for i in range(3)]
    placed = []
    start = 0
    for i in range(3):
        pod = PodInfo("d", f"web-{i}", owner="rs-uid")
        d = s.schedule(pod, nodes, start)
        start = d.next_start
        assert d.node is not None
        placed.append(d.node)
        next(n for n in nodes if n.name == d.node).add(pod)
    assert sorted(placed) == ["n0", "n1", "n2"]


def test_spreading_beats_load() -> None:
    a, b = node("a"), node("b")
    for i in range(3):
        b.add(PodInfo("d", f"other{i}", cpu=300))
    a.add(PodInfo("d", "web-0", owner="o"))
    assert s.schedule(PodInfo("d", "web-1", owner="o"), [a, b]).node == "b"


def test_equal_nodes_take_turns() -> None:
    nodes = [node(f"n{i}") for i in range(4)]
    got = []
    start = 0
    for i in range(4):
        d = s.schedule(PodInfo("d", f"bare{i}"), nodes, start)
        start = d.next_start
        got.append(d.node)
        next(n for n in nodes if n.name == d.node).add(PodInfo("d", f"bare{i}"))
    assert sorted(got) == ["n0", "n1", "n2", "n3"]


def test_no_nodes_and_feasible_to_find() -> None:
    assert s.schedule(PodInfo("d", "p"), []).message == "0/0 nodes are available: no nodes available to schedule pods."
    assert s.feasible_to_find(50) == 50
    assert s.feasible_to_find(100) == 100
    assert s.feasible_to_find(1000) == 420
    assert s.feasible_to_find(5000) == 500
    assert s.feasible_to_find(10000) == 500


def test_pod_and_node_info_from_messages() -> None:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = "web", "default"
    c = p.spec.containers.add(name="a")
    c.resources.requests["cpu"].string_value = "250m"
    c.resources.requests["memory"].string_value = "64Mi"
    c.ports.add(container_port=80, host_port=8080)
    c2 = p.spec.containers.add(name="b")
    c2.resources.requests["cpu"].number_value = 1
    p.metadata.owner_references.add(uid="rs1", controller=True)
    info = s.pod_info(p)
    assert (info.cpu, info.memory, info.owner) == (1250, 64 * 1024 * 1024, "rs1")
    assert info.host_ports == frozenset({("TCP", "0.0.0.0", 8080)})
    n = core_pb2.Node()
    n.metadata.name = "n1"
    n.status.allocatable["cpu"].string_value = "2"
    n.status.allocatable["memory"].string_value = "4Gi"
    n.status.allocatable["pods"].number_value = 30
    n.status.conditions.add(type="Ready", status="True")
    ni = s.node_info(n)
    assert (ni.alloc_cpu, ni.alloc_memory, ni.alloc_pods, ni.ready) == (2000, 4 * GI, 30, True)


def test_score_nodes_is_least_allocated_plus_spread() -> None:
    """score_nodes inlines the two scores for speed: same numbers as the
    reference functions on random snapshots (overcommitted nodes, zero
    capacity, request-less pods, owners or none)."""
    import random

    from pkapi.scheduling import LEAST_WEIGHT, SPREAD_WEIGHT, least_allocated, score_nodes, spread

    rng = random.Random(7)
    for _ in range(300):
        nodes = []
        for i in range(rng.randint(1, 12)):
            n = NodeInfo(f"n{i}", alloc_cpu=rng.choice([0, 500, 4000, 64000]),
                         alloc_memory=rng.choice([0, 2**30, 256 * 2**30]))
            for j in range(rng.randint(0, 30)):
                n.add(PodInfo("ns", f"p{i}-{j}", cpu=rng.choice([0, 100, 900]), memory=rng.choice([0, 2**27]),
                              owner=rng.choice(["", "a", "b"])))
            nodes.append(n)
        pod = PodInfo("ns", "x", cpu=rng.choice([0, 250, 5000]), memory=rng.choice([0, 2**28, 2**33]),
                      owner=rng.choice(["", "a", "c"]))
        max_owner = max((n.owners.get(pod.owner, 0) for n in nodes), default=0) if pod.owner else 0
        want = [LEAST_WEIGHT * least_allocated(pod, n) + SPREAD_WEIGHT * spread(pod, n, max_owner) for n in nodes]
        assert [s for s, _ in score_nodes(pod, nodes)] == want
