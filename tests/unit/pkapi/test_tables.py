"""Server-side printing: kube-apiserver's columns and each kind's cells, and
the meta.k8s.io/v1 Table objects, with objects built in memory."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pkapi import meta, tables
from pkapi.v1 import apps_pb2, core_pb2

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def stamp(ts, seconds_ago: float) -> None:
    ts.FromDatetime(NOW - dt.timedelta(seconds=seconds_ago))


def pod() -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = "web-1"
    p.metadata.namespace = "default"
    p.metadata.labels["app"] = "web"
    p.metadata.uid = "u-1"
    stamp(p.metadata.creation_timestamp, 300)
    p.spec.containers.add(name="web", image="hello:1")
    p.spec.containers.add(name="side", image="busybox")
    p.spec.node_name = "node-1"
    p.status.phase = "Running"
    p.status.pod_ip = "10.0.0.5"
    for c, restarts in (("web", 0), ("side", 2)):
        cs = p.status.container_statuses.add(name=c, ready=c == "web", restart_count=restarts)
        stamp(cs.state.running.started_at, 200)
    stamp(p.status.container_statuses[1].last_state.terminated.finished_at, 42)
    p.status.conditions.add(type="Ready", status="False")
    return p


def deployment() -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = "web"
    d.metadata.namespace = "default"
    stamp(d.metadata.creation_timestamp, 4 * 3600)
    d.spec.replicas = 3
    d.spec.selector.match_labels["app"] = "web"
    d.spec.template.spec.containers.add(name="web", image="hello:1")
    d.spec.template.spec.containers.add(name="side", image="busybox")
    d.status.ready_replicas = 2
    d.status.updated_replicas = 3
    d.status.available_replicas = 2
    return d


def replicaset() -> apps_pb2.ReplicaSet:
    r = apps_pb2.ReplicaSet()
    r.metadata.name = "web-abc"
    stamp(r.metadata.creation_timestamp, 59)
    r.spec.selector.match_labels["app"] = "web"
    r.spec.template.spec.containers.add(name="web", image="hello:2")
    r.status.replicas = 1
    return r


def service() -> core_pb2.Service:
    s = core_pb2.Service()
    s.metadata.name = "web"
    stamp(s.metadata.creation_timestamp, 10)
    s.spec.type = "NodePort"
    s.spec.cluster_ip = "10.96.0.10"
    s.spec.selector["app"] = "web"
    s.spec.ports.add(port=80, node_port=30080, protocol="TCP")
    s.spec.ports.add(port=53, protocol="UDP")
    return s


def endpoints() -> core_pb2.Endpoints:
    e = core_pb2.Endpoints()
    e.metadata.name = "web"
    ss = e.subsets.add()
    for ip in ("10.0.0.2", "10.0.0.3"):
        ss.addresses.add(ip=ip)
    ss.ports.add(port=8080)
    return e


def node() -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = "node-1"
    n.metadata.labels["node-role.kubernetes.io/control-plane"] = ""
    stamp(n.metadata.creation_timestamp, 90)
    n.spec.unschedulable = True
    n.status.conditions.add(type="Ready", status="True")
    n.status.node_info.kubelet_version = "v1.32.0-pk"
    n.status.node_info.os_image = "Debian"
    n.status.addresses.add(type="InternalIP", address="10.231.0.2")
    return n


def namespace() -> core_pb2.Namespace:
    ns = core_pb2.Namespace()
    ns.metadata.name = "kube-system"
    stamp(ns.metadata.creation_timestamp, 3)
    ns.status.phase = "Terminating"
    return ns


def event() -> core_pb2.Event:
    e = core_pb2.Event()
    e.metadata.name = "web-1.17"
    e.metadata.namespace = "default"
    e.type = "Warning"
    e.reason = "BackOff"
    e.message = " Back-off restarting failed container\n"
    e.involved_object.kind = "Pod"
    e.involved_object.name = "web-1"
    e.involved_object.field_path = "spec.containers{side}"
    e.count = 5
    e.source.component = "kubelet"
    e.source.host = "node-1"
    stamp(e.first_timestamp, 600)
    stamp(e.last_timestamp, 30)
    return e


def lease() -> core_pb2.Lease:
    le = core_pb2.Lease()
    le.metadata.name = "pk-controllers"
    le.spec.holder_identity = "cp-1"
    stamp(le.metadata.creation_timestamp, 7200)
    return le


# Every column's cell (wide), as kube-apiserver sends them: ints where it sends int64.
CELLS = [
    (pod, ["web-1", "1/2", "Running", "2 (42s ago)", "5m", "10.0.0.5", "node-1", "<none>", "<none>"]),
    (deployment, ["web", "2/3", 3, 2, "4h", "web,side", "hello:1,busybox", "app=web"]),
    (replicaset, ["web-abc", 1, 1, 0, "59s", "web", "hello:2", "app=web"]),
    (service, ["web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "10s", "app=web"]),
    (endpoints, ["web", "10.0.0.2:8080,10.0.0.3:8080", "<unknown>"]),
    (node, ["node-1", "Ready,SchedulingDisabled", "control-plane", "90s", "v1.32.0-pk", "10.231.0.2", "<none>",
            "Debian", "<unknown>", "<unknown>"]),
    (namespace, ["kube-system", "Terminating", "3s"]),
    (event, ["30s", "Warning", "BackOff", "pod/web-1", "spec.containers{side}", "kubelet, node-1",
             "Back-off restarting failed container", "10m", 5, "web-1.17"]),
    (lease, ["pk-controllers", "cp-1", "120m"]),
]


@pytest.mark.parametrize("make,cells", CELLS, ids=[m.__name__ for m, _ in CELLS])
def test_cells_per_kind(make, cells) -> None:
    obj = make()
    assert tables.row_cells(obj, NOW) == cells
    kind = meta.kind_of(obj).kind
    cols = tables.columns_for(kind)
    assert len(cols.columns) == len(cells)
    # Not wide: exactly the priority-0 columns' cells, in order.
    narrow = [c for c, col in zip(cells, cols.columns, strict=True) if col.priority == 0]
    assert tables.row_cells(obj, NOW, wide=False) == narrow


NAMES = {
    "Pod": ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"],
    "Deployment": ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"],
    "ReplicaSet": ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"],
    "Service": ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"],
    "Endpoints": ["Name", "Endpoints", "Age"],
    "Node": ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image", "Kernel-Version",
             "Container-Runtime"],
    "Namespace": ["Name", "Status", "Age"],
    "Event": ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"],
    "Lease": ["Name", "Holder", "Age"],
}
DEFAULT_COUNT = {"Pod": 5, "Deployment": 5, "ReplicaSet": 5, "Service": 6, "Endpoints": 3, "Node": 5, "Namespace": 3,
                 "Event": 5, "Lease": 3}


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_column_definitions_are_kube_apiservers(kind) -> None:
    defs = tables.column_definitions(kind)
    assert [d["name"] for d in defs] == NAMES[kind]
    assert sum(d["priority"] == 0 for d in defs) == DEFAULT_COUNT[kind]
    for d in defs:
        assert set(d) == {"name", "type", "format", "description", "priority"}
        assert d["type"] in ("string", "integer") and d["description"]
        assert d["priority"] in (0, 1)
    names = [d for d in defs if d["format"] == "name"]
    assert len(names) == 1 and names[0]["name"] == "Name"


def test_event_wide_columns_are_interleaved() -> None:
    defs = tables.column_definitions("Event")
    assert [d["name"] for d in defs if d["priority"] == 0] == ["Last Seen", "Type", "Reason", "Object", "Message"]


def test_replicaset_counts_are_integers() -> None:
    assert [d["type"] for d in tables.column_definitions("ReplicaSet")][1:4] == ["integer"] * 3


def test_table_of_a_list() -> None:
    p1, p2 = pod(), pod()
    p2.metadata.name = "web-2"
    t = tables.table([p1, p2], NOW, resource_version="121", continue_token="c1", remaining=4)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "121", "continue": "c1", "remainingItemCount": 4}
    assert t["columnDefinitions"] == tables.column_definitions("Pod")
    assert [r["cells"][0] for r in t["rows"]] == ["web-1", "web-2"]
    obj = t["rows"][0]["object"]
    assert obj["kind"] == "PartialObjectMetadata" and obj["apiVersion"] == "meta.k8s.io/v1"
    assert obj["metadata"]["labels"] == {"app": "web"} and obj["metadata"]["namespace"] == "default"
    assert "spec" not in obj
    json.dumps(t)  # serialisable as it is


def test_table_of_nothing_still_has_the_kinds_columns() -> None:
    t = tables.table([], NOW, kind="Deployment", resource_version="7")
    assert t["rows"] == [] and [d["name"] for d in t["columnDefinitions"]][:2] == ["Name", "Ready"]


def test_include_object() -> None:
    d = deployment()
    assert tables.table([d], NOW, include_object="Object")["rows"][0]["object"] == meta.to_dict(d)
    assert "object" not in tables.table([d], NOW, include_object="None")["rows"][0]


def test_watch_event_table_has_one_row() -> None:
    ev = tables.watch_event_table("MODIFIED", node(), NOW)
    assert ev["type"] == "MODIFIED"
    assert ev["object"]["kind"] == "Table" and len(ev["object"]["rows"]) == 1
    assert ev["object"]["rows"][0]["cells"][1] == "Ready,SchedulingDisabled"


def test_unknown_kind_gets_name_and_age() -> None:
    assert [c.name for c in tables.columns_for("Widget").columns] == ["Name", "Age"]
