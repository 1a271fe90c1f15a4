"""pkctl's printers: ages, columns, ports, endpoints, statuses, layout,
-o json/yaml, with objects built in memory (no server)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from cli import printers
from cli.printers import TableOptions, human_duration
from pkapi import meta, tables
from pkapi.v1 import apps_pb2, core_pb2
from tests.unit.pkapi import test_tables

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def stamp(ts, when: dt.datetime) -> None:
    ts.FromDatetime(when)


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "seconds,text",
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (4 * 3600 + 5 * 60, "4h5m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 59 * 60, "47h"),
        (2 * 86400, "2d"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (8 * 86400, "8d"),
        (400 * 86400, "400d"),
        (2 * 365 * 86400, "2y"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_matches_kubectl(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_age_of_unset_timestamp_is_unknown() -> None:
    assert printers.age(core_pb2.Pod().metadata.creation_timestamp, NOW) == "<unknown>"


def test_age_of_set_timestamp() -> None:
    p = core_pb2.Pod()
    stamp(p.metadata.creation_timestamp, ago(182))
    assert printers.age(p.metadata.creation_timestamp, NOW) == "3m2s"


def test_rfc1123z() -> None:
    p = core_pb2.Pod()
    stamp(p.metadata.creation_timestamp, NOW)
    assert printers.rfc1123z(p.metadata.creation_timestamp) == "Sat, 28 Nov 2026 12:00:00 +0000"


# ----------------------------------------------------------------- tabwriter


def test_tabwrite_aligns_column_blocks_like_go() -> None:
    text = "Name:\tweb\nNamespace:\tdefault\nPod Template:\n  Labels:\tapp=web\n  Containers:\tx"
    out = printers.tabwrite(text, 0, 2).splitlines()
    assert out == [
        "Name:       web",
        "Namespace:  default",
        "Pod Template:",
        "  Labels:      app=web",
        "  Containers:  x",
    ]


def test_tabwrite_nested_columns() -> None:
    out = printers.tabwrite("a\tbb\tc\naaa\tb\tcc\nx", 0, 1).splitlines()
    assert out == ["a   bb c", "aaa b  cc", "x"]


def test_table_writer_minimum_width_and_padding() -> None:
    w = printers.TableWriter()
    lines = w.render([["NAME", "AGE"], ["a", "5s"]])
    assert lines == ["NAME   AGE", "a      5s"]
    # Widths are remembered: a later, wider cell widens; a narrower keeps.
    assert w.render([["b", "1s"]]) == ["b      1s"]
    assert w.render([["longer-name", "1s"]]) == ["longer-name   1s"]


# -------------------------------------------------------------------- pods


def pod(name: str = "web-1", containers: int = 1) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = "default"
    stamp(p.metadata.creation_timestamp, ago(300))
    for i in range(containers):
        p.spec.containers.add(name=f"c{i}", image="hello:1")
    p.status.phase = "Pending"
    return p


def running(p: core_pb2.Pod, ready: bool = True) -> core_pb2.Pod:
    p.status.phase = "Running"
    for c in p.spec.containers:
        cs = p.status.container_statuses.add(name=c.name, ready=ready)
        stamp(cs.state.running.started_at, ago(200))
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    return p


def test_pod_row_running() -> None:
    p = running(pod())
    assert printers.table_row(p, NOW, TableOptions()) == ["web-1", "1/1", "Running", "0", "5m"]


def test_pod_pending_without_statuses() -> None:
    assert printers.table_row(pod(), NOW, TableOptions())[1:3] == ["0/1", "Pending"]


def test_pod_crash_loop_with_restarts_ago() -> None:
    p = pod()
    p.status.phase = "Running"
    cs = p.status.container_statuses.add(name="c0", restart_count=4)
    cs.state.waiting.reason = "CrashLoopBackOff"
    cs.last_state.terminated.exit_code = 1
    stamp(cs.last_state.terminated.finished_at, ago(42))
    row = printers.table_row(p, NOW, TableOptions())
    assert row[1:4] == ["0/1", "CrashLoopBackOff", "4 (42s ago)"]


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "ContainerCreating"])
def test_pod_waiting_reasons(reason: str) -> None:
    p = pod()
    p.status.container_statuses.add(name="c0").state.waiting.reason = reason
    assert printers.pod_status_reason(p) == reason


def test_pod_terminated_without_reason_shows_exit_code_or_signal() -> None:
    p = pod()
    p.status.container_statuses.add(name="c0").state.terminated.exit_code = 3
    assert printers.pod_status_reason(p) == "ExitCode:3"
    p.status.container_statuses[0].state.terminated.signal = 9
    assert printers.pod_status_reason(p) == "Signal:9"


def test_pod_completed_but_another_container_running() -> None:
    p = running(pod(containers=2))
    p.status.container_statuses[0].state.Clear()
    p.status.container_statuses[0].state.terminated.reason = "Completed"
    p.status.container_statuses[0].ready = False
    assert printers.pod_status_reason(p) == "Running"
    assert printers.pod_ready(p) == "1/2"


def test_pod_terminating_and_node_lost() -> None:
    p = running(pod())
    stamp(p.metadata.deletion_timestamp, ago(1))
    assert printers.pod_status_reason(p) == "Terminating"
    p.status.reason = "NodeLost"
    assert printers.pod_status_reason(p) == "Unknown"
    q = pod()
    q.status.phase = "Succeeded"
    stamp(q.metadata.deletion_timestamp, ago(1))
    assert printers.pod_status_reason(q) == "Succeeded"


def test_pod_wide_columns() -> None:
    p = running(pod())
    p.status.pod_ip = "10.0.0.2"
    p.spec.node_name = "node-1"
    opts = TableOptions(wide=True)
    assert printers.table_headers(meta.kind_of(p), opts) == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    assert printers.table_row(p, NOW, opts)[5:] == ["10.0.0.2", "node-1", "<none>", "<none>"]
    assert printers.table_row(pod(), NOW, opts)[5:7] == ["<none>", "<none>"]


# -------------------------------------------------------- deployments, rs


def deployment() -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = "web"
    d.metadata.namespace = "default"
    stamp(d.metadata.creation_timestamp, ago(4 * 3600))
    d.spec.replicas = 3
    d.spec.selector.match_labels["app"] = "web"
    d.spec.template.metadata.labels["app"] = "web"
    d.spec.template.spec.containers.add(name="web", image="hello:1")
    d.spec.template.spec.containers.add(name="side", image="busybox")
    d.status.ready_replicas = 2
    d.status.updated_replicas = 3
    d.status.available_replicas = 2
    return d


def test_deployment_row_and_wide() -> None:
    d = deployment()
    assert printers.table_row(d, NOW, TableOptions()) == ["web", "2/3", "3", "2", "4h"]
    assert printers.table_row(d, NOW, TableOptions(wide=True))[5:] == ["web,side", "hello:1,busybox", "app=web"]


def test_deployment_without_replicas_means_one() -> None:
    d = deployment()
    d.spec.ClearField("replicas")
    assert printers.table_row(d, NOW, TableOptions())[1] == "2/1"


def test_replicaset_row() -> None:
    r = apps_pb2.ReplicaSet()
    r.metadata.name = "web-abc"
    stamp(r.metadata.creation_timestamp, ago(10))
    r.spec.replicas = 3
    r.status.replicas = 3
    r.status.ready_replicas = 1
    assert printers.table_headers(meta.kind_of(r), TableOptions()) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert printers.table_row(r, NOW, TableOptions()) == ["web-abc", "3", "3", "1", "10s"]


# ----------------------------------------------------------------- services


def service(type_: str = "ClusterIP") -> core_pb2.Service:
    s = core_pb2.Service()
    s.metadata.name = "web"
    stamp(s.metadata.creation_timestamp, ago(2 * 86400))
    s.spec.type = type_
    s.spec.cluster_ip = "10.96.0.10"
    s.spec.cluster_ips.append("10.96.0.10")
    s.spec.selector["app"] = "web"
    s.spec.ports.add(port=80, protocol="TCP")
    return s


def test_service_cluster_ip_row() -> None:
    assert printers.table_row(service(), NOW, TableOptions()) == [
        "web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP", "2d"]
    assert printers.table_row(service(), NOW, TableOptions(wide=True))[-1] == "app=web"


def test_service_node_port_and_multiple_ports() -> None:
    s = service("NodePort")
    s.spec.ports[0].node_port = 30080
    s.spec.ports.add(port=53, protocol="UDP", node_port=30053)
    assert printers.service_ports(s) == "80:30080/TCP,53:30053/UDP"
    assert printers.service_external_ip(s) == "<none>"


def test_service_load_balancer_pending_then_ip() -> None:
    s = service("LoadBalancer")
    assert printers.service_external_ip(s) == "<pending>"
    s.status.load_balancer.ingress.add(ip="192.168.77.10")
    assert printers.service_external_ip(s) == "192.168.77.10"
    s.spec.external_ips.append("10.1.1.1")
    assert printers.service_external_ip(s) == "192.168.77.10,10.1.1.1"


def test_service_lb_long_list_is_truncated_unless_wide() -> None:
    s = service("LoadBalancer")
    for i in range(3):
        s.status.load_balancer.ingress.add(ip=f"192.168.77.{10 + i}")
    assert printers.service_external_ip(s) == "192.168.77.10..."
    assert printers.service_external_ip(s, wide=True) == "192.168.77.10,192.168.77.11,192.168.77.12"


def test_service_external_name_and_headless() -> None:
    s = service("ExternalName")
    s.spec.ClearField("cluster_ip")
    s.spec.ClearField("cluster_ips")
    s.spec.ClearField("ports")
    s.spec.external_name = "example.org"
    row = printers.table_row(s, NOW, TableOptions())
    assert row[1:5] == ["ExternalName", "<none>", "example.org", "<none>"]
    h = service()
    h.spec.cluster_ip = "None"
    h.spec.ClearField("cluster_ips")
    assert printers.service_cluster_ip(h) == "None"


def test_service_externalips_on_cluster_ip() -> None:
    s = service()
    s.spec.external_ips.extend(["1.2.3.4", "5.6.7.8"])
    assert printers.service_external_ip(s) == "1.2.3.4,5.6.7.8"


# ---------------------------------------------------------------- endpoints


def endpoints(*subsets: tuple[list[str], list[int]]) -> core_pb2.Endpoints:
    e = core_pb2.Endpoints()
    e.metadata.name = "web"
    stamp(e.metadata.creation_timestamp, ago(5))
    for ips, ports in subsets:
        ss = e.subsets.add()
        for ip in ips:
            ss.addresses.add(ip=ip)
        for p in ports:
            ss.ports.add(port=p, protocol="TCP")
    return e


def test_endpoints_none_and_few() -> None:
    assert printers.format_endpoints(endpoints()) == "<none>"
    assert printers.format_endpoints(endpoints((["10.0.0.2"], [40001]), (["10.0.0.3"], [40002]))) == \
        "10.0.0.2:40001,10.0.0.3:40002"


def test_endpoints_more_than_three() -> None:
    e = endpoints((["10.0.0.2"], [40001]), (["10.0.0.3"], [40002]), (["10.0.0.4"], [40003]),
                  (["10.0.0.5"], [40004]))
    assert printers.format_endpoints(e) == "10.0.0.2:40001,10.0.0.3:40002,10.0.0.4:40003 + 1 more..."
    assert printers.table_row(e, NOW, TableOptions()) == [
        "web", "10.0.0.2:40001,10.0.0.3:40002,10.0.0.4:40003 + 1 more...", "5s"]


def test_endpoints_headless_without_ports_and_ipv6() -> None:
    assert printers.format_endpoints(endpoints((["10.0.0.2", "10.0.0.3"], []))) == "10.0.0.2,10.0.0.3"
    assert printers.format_endpoints(endpoints((["fd00::1"], [80]))) == "[fd00::1]:80"


# -------------------------------------------------------------------- nodes


def node(ready: str | None = "True") -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = "node-1"
    stamp(n.metadata.creation_timestamp, ago(90))
    if ready is not None:
        n.status.conditions.add(type="Ready", status=ready)
    n.status.node_info.kubelet_version = "v0.1.0"
    n.status.addresses.add(type="InternalIP", address="10.0.0.2")
    return n


def test_node_status_values() -> None:
    assert printers.node_status(node("True")) == "Ready"
    assert printers.node_status(node("False")) == "NotReady"
    assert printers.node_status(node("Unknown")) == "NotReady"
    assert printers.node_status(node(None)) == "Unknown"
    n = node("True")
    n.spec.unschedulable = True
    assert printers.node_status(n) == "Ready,SchedulingDisabled"


def test_node_row_roles_and_wide() -> None:
    n = node()
    assert printers.table_row(n, NOW, TableOptions()) == ["node-1", "Ready", "<none>", "90s", "v0.1.0"]
    n.metadata.labels["node-role.kubernetes.io/control-plane"] = ""
    n.metadata.labels["node-role.kubernetes.io/worker"] = ""
    assert printers.node_roles(n) == "control-plane,worker"
    wide = printers.table_row(n, NOW, TableOptions(wide=True))
    assert wide[5:] == ["10.0.0.2", "<none>", "<unknown>", "<unknown>", "<unknown>"]


# ------------------------------------------------------- events, ns, leases


def test_event_row_and_wide() -> None:
    e = core_pb2.Event()
    e.metadata.name = "web.1"
    e.type = "Warning"
    e.reason = "BackOff"
    e.message = "Back-off restarting failed container\n"
    e.involved_object.kind = "Pod"
    e.involved_object.name = "web-1"
    e.count = 5
    e.source.component = "kubelet"
    stamp(e.first_timestamp, ago(600))
    stamp(e.last_timestamp, ago(30))
    assert printers.table_headers(meta.kind_of(e), TableOptions()) == ["LAST SEEN", "TYPE", "REASON", "OBJECT",
                                                                      "MESSAGE"]
    assert printers.table_row(e, NOW, TableOptions()) == [
        "30s", "Warning", "BackOff", "pod/web-1", "Back-off restarting failed container"]
    wide = printers.table_row(e, NOW, TableOptions(wide=True))
    assert wide[5] == "kubelet" and wide[7:] == ["10m", "5", "web.1"]
    # all namespaces: NAMESPACE first, even before LAST SEEN
    e.metadata.namespace = "default"
    assert printers.table_row(e, NOW, TableOptions(all_namespaces=True))[0] == "default"


def test_event_without_last_timestamp_uses_first_or_event_time() -> None:
    e = core_pb2.Event()
    stamp(e.event_time, ago(7))
    assert printers.table_row(e, NOW, TableOptions())[0] == "7s"


def test_namespace_and_lease_rows() -> None:
    ns = core_pb2.Namespace()
    ns.metadata.name = "kube-system"
    stamp(ns.metadata.creation_timestamp, ago(3))
    assert printers.table_row(ns, NOW, TableOptions()) == ["kube-system", "Active", "3s"]
    le = core_pb2.Lease()
    le.metadata.name = "node-1"
    le.spec.holder_identity = "node-1"
    assert printers.table_row(le, NOW, TableOptions()) == ["node-1", "node-1", "<unknown>"]


# ------------------------------------------------------------- table options


def test_table_options_all_namespaces_labels_kind_prefix() -> None:
    d = deployment()
    d.metadata.labels["app"] = "web"
    d.metadata.labels["tier"] = "front"
    opts = TableOptions(all_namespaces=True, kind_prefix=True, show_labels=True, label_columns=("tier",))
    kind = meta.kind_of(d)
    assert printers.table_headers(kind, opts) == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE",
                                                  "TIER", "LABELS"]
    assert printers.table_row(d, NOW, opts) == ["default", "deployment.apps/web", "2/3", "3", "2", "4h", "front",
                                                "app=web,tier=front"]


def test_cluster_scoped_kinds_get_no_namespace_column() -> None:
    n = node()
    assert printers.table_headers(meta.kind_of(n), TableOptions(all_namespaces=True))[0] == "NAME"


def test_watch_event_column() -> None:
    p = running(pod())
    opts = TableOptions(watch_events=True)
    assert printers.table_headers(meta.kind_of(p), opts)[0] == "EVENT"
    assert printers.table_row(p, NOW, opts, "MODIFIED")[:2] == ["MODIFIED", "web-1"]


def test_full_table_layout() -> None:
    lines = printers.table([running(pod("a")), running(pod("bbbbbbbbbb"))], meta.kind_by_name("Pod"), NOW,
                           TableOptions())
    assert lines == [
        "NAME         READY   STATUS    RESTARTS   AGE",
        "a            1/1     Running   0          5m",
        "bbbbbbbbbb   1/1     Running   0          5m",
    ]


# ------------------------------------------------------- structured output


def test_json_output_is_kubernetes_shaped() -> None:
    d = deployment()
    out = json.loads(printers.to_json(meta.to_dict(d)))
    assert out["apiVersion"] == "apps/v1" and out["kind"] == "Deployment"
    assert out["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert out["metadata"]["creationTimestamp"].endswith("Z")
    text = printers.to_json({"b": 1, "a": {"d": 1, "c": 2}})
    assert text == '{\n    "a": {\n        "c": 2,\n        "d": 1\n    },\n    "b": 1\n}'


def test_list_wrapper() -> None:
    assert printers.list_dict([]) == {"apiVersion": "v1", "items": [], "kind": "List",
                                      "metadata": {"resourceVersion": ""}}


def test_yaml_output_quotes_ambiguous_strings_and_round_trips() -> None:
    d = {"metadata": {"resourceVersion": "12", "creationTimestamp": "2026-11-28T12:00:00Z", "name": "web",
                      "annotations": {"x": "true", "script": "line1\nline2\n"}},
         "spec": {"containers": [{"name": "a", "args": ["-c", "80"]}]}}
    text = printers.to_yaml(d)
    assert 'resourceVersion: "12"' in text
    assert 'creationTimestamp: "2026-11-28T12:00:00Z"' in text
    assert 'x: "true"' in text
    assert "script: |" in text
    assert "  containers:\n  - args:" in text  # lists not indented under their key, as kubectl
    assert yaml.safe_load(text) == d


def test_name_output() -> None:
    assert printers.name_of(deployment()) == "deployment.apps/web"
    assert printers.name_of(service()) == "service/web"


def test_object_dict_uses_kubernetes_field_names() -> None:
    s = service("LoadBalancer")
    s.metadata.labels["clusterIp"] = "label keys stay as they are"
    s.spec.external_ips.append("1.2.3.4")
    s.spec.session_affinity_config.client_ip.timeout_seconds = 10
    d = printers.object_dict(s)
    assert d["spec"]["clusterIP"] == "10.96.0.10" and d["spec"]["clusterIPs"] == ["10.96.0.10"]
    assert d["spec"]["externalIPs"] == ["1.2.3.4"]
    assert d["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10}}
    assert d["metadata"]["labels"] == {"clusterIp": "label keys stay as they are"}
    p = running(pod())
    p.status.pod_ip = "10.0.0.2"
    p.status.pod_ips.add(ip="10.0.0.2")
    p.status.host_ip = "10.0.0.2"
    p.status.container_statuses[0].container_id = "docker://abc"
    p.status.container_statuses[0].image_id = "sha256:1"
    st = printers.object_dict(p)["status"]
    assert st["podIP"] == "10.0.0.2" and st["podIPs"] == [{"ip": "10.0.0.2"}] and st["hostIP"] == "10.0.0.2"
    assert st["containerStatuses"][0]["containerID"] == "docker://abc"
    assert st["containerStatuses"][0]["imageID"] == "sha256:1"
    n = node()
    n.status.node_info.machine_id = "m1"
    n.spec.pod_cidr = "10.244.0.0/24"
    nd = printers.object_dict(n)
    assert nd["status"]["nodeInfo"]["machineID"] == "m1" and nd["spec"]["podCIDR"] == "10.244.0.0/24"


# ------------------------------------------------- the same as server-side printing


def test_server_table_is_what_pkctl_prints() -> None:
    # pkctl -o wide prints exactly the str() of the server's cells, under the upper-cased names.
    for make, _ in test_tables.CELLS:
        obj = make()
        kind = meta.kind_of(obj)
        t = tables.table([obj], test_tables.NOW)
        opts = printers.TableOptions(wide=True)
        assert printers.table_headers(kind, opts) == [d["name"].upper() for d in t["columnDefinitions"]]
        assert printers.table_row(obj, test_tables.NOW, opts) == [str(c) for c in t["rows"][0]["cells"]]
