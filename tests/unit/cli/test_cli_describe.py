"""pkctl describe's reports, from objects built in memory (pure)."""

from __future__ import annotations

import datetime as dt

from google.protobuf import struct_pb2

from cli import describe
from pkapi.v1 import apps_pb2, core_pb2

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def stamp(ts, seconds_ago: float) -> None:
    ts.FromDatetime(NOW - dt.timedelta(seconds=seconds_ago))


def event(reason: str, message: str, count: int = 1, first: float = 60, last: float = 60,
          type_: str = "Normal") -> core_pb2.Event:
    e = core_pb2.Event(reason=reason, message=message, count=count, type=type_)
    e.source.component = "kubelet"
    stamp(e.first_timestamp, first)
    stamp(e.last_timestamp, last)
    return e


def lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def norm(text: str) -> list[str]:
    """Lines with runs of spaces collapsed (content, not column widths)."""
    return [" ".join(line.split()) for line in lines(text)]


def test_events_section_none_and_table() -> None:
    w = describe.Writer()
    w.kv(0, "Name", "x")
    describe.events_section(w, [], NOW)
    assert lines(w.text()) == ["Name:    x", "Events:  <none>"]
    w = describe.Writer()
    describe.events_section(w, [event("BackOff", "Back-off restarting", count=5, first=600, last=30, type_="Warning"),
                                event("Pulled", "Image present", first=700, last=700)], NOW)
    assert lines(w.text()) == [
        "Events:",
        "  Type     Reason   Age                From     Message",
        "  ----     ------   ----               ----     -------",
        "  Normal   Pulled   11m                kubelet  Image present",
        "  Warning  BackOff  30s (x5 over 10m)  kubelet  Back-off restarting",
    ]


def pod() -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = "web-1"
    p.metadata.namespace = "default"
    p.metadata.labels["app"] = "web"
    p.metadata.labels["pod-template-hash"] = "abc"
    p.metadata.owner_references.add(kind="ReplicaSet", name="web-abc", uid="u1", controller=True)
    p.spec.node_name = "node-1"
    c = p.spec.containers.add(name="web", image="hello:1")
    c.ports.add(container_port=8080, protocol="TCP")
    c.env.add(name="MODE", value="test")
    c.env.add(name="POD_NAME").value_from.field_ref.field_path = "metadata.name"
    c.resources.limits["cpu"].CopyFrom(struct_pb2.Value(string_value="500m"))
    c.resources.limits["memory"].CopyFrom(struct_pb2.Value(string_value="128Mi"))
    c.liveness_probe.http_get.path = "/healthz"
    c.liveness_probe.http_get.port.CopyFrom(struct_pb2.Value(number_value=8080))
    c.liveness_probe.period_seconds = 10
    c.liveness_probe.timeout_seconds = 1
    c.liveness_probe.success_threshold = 1
    c.liveness_probe.failure_threshold = 3
    c.readiness_probe.exec.command.extend(["cat", "/tmp/ready"])
    st = p.status
    st.phase = "Running"
    st.host_ip = "10.0.0.2"
    st.pod_ip = "10.0.0.2"
    stamp(st.start_time, 300)
    cs = st.container_statuses.add(name="web", ready=True, restart_count=2, image="hello:1",
                                   container_id="docker://abc")
    stamp(cs.state.running.started_at, 100)
    cs.last_state.terminated.exit_code = 137
    cs.last_state.terminated.reason = "Error"
    stamp(cs.last_state.terminated.started_at, 200)
    stamp(cs.last_state.terminated.finished_at, 101)
    st.conditions.add(type="Ready", status="True")
    st.port_mappings.add(container_name="web", container_port=8080, protocol="TCP", host_ip="10.0.0.2",
                         host_port=40001)
    p.spec.tolerations.add(key="node.kubernetes.io/unreachable", operator="Exists", effect="NoExecute",
                           toleration_seconds=0)
    return p


def test_describe_pod() -> None:
    text = describe.describe_pod(pod(), [event("Started", "Started container web")], NOW)
    ls = lines(text)
    assert ls[0] == "Name:             web-1"
    assert "Node:             node-1/10.0.0.2" in ls
    assert "Labels:           app=web" in ls
    assert "                  pod-template-hash=abc" in ls  # continuation aligned under the value
    assert "Controlled By:  ReplicaSet/web-abc" in ls
    assert "Status:           Running" in ls
    ls = norm(text)
    for want in (
        "Container ID: docker://abc",
        "Port: 8080/TCP",
        "Host Port: 10.0.0.2:40001/TCP",
        "State: Running",
        "Last State: Terminated",
        "Reason: Error",
        "Exit Code: 137",
        "Ready: True",
        "Restart Count: 2",
        "cpu: 500m",
        "memory: 128Mi",
        "Liveness: http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3",
        "Readiness: exec [cat /tmp/ready] delay=0s timeout=0s period=0s #success=0 #failure=0",
        "MODE: test",
        "POD_NAME: (v1:metadata.name)",
        "web 8080/TCP 10.0.0.2:40001",
        "Ready True",
        "Tolerations: node.kubernetes.io/unreachable:NoExecute op=Exists for 0s",
    ):
        assert want in ls, f"{want!r} not in:\n{text}"
    assert ls[-1].split()[:2] == ["Normal", "Started"]


def test_describe_terminating_pod() -> None:
    p = pod()
    stamp(p.metadata.deletion_timestamp, 5)
    p.metadata.deletion_grace_period_seconds = 30
    text = describe.describe_pod(p, None, NOW)
    assert "Status:                    Terminating (lasts 5s)" in text
    assert "Termination Grace Period:  30s" in text
    assert "Events" not in text


def deployment() -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = "web"
    d.metadata.namespace = "default"
    d.metadata.uid = "d1"
    d.spec.replicas = 3
    d.spec.selector.match_labels["app"] = "web"
    d.spec.template.metadata.labels["app"] = "web"
    d.spec.template.spec.containers.add(name="web", image="hello:2")
    d.spec.strategy.type = "RollingUpdate"
    d.spec.strategy.rolling_update.max_surge.CopyFrom(struct_pb2.Value(number_value=1))
    d.spec.strategy.rolling_update.max_unavailable.CopyFrom(struct_pb2.Value(string_value="0%"))
    d.status.replicas = 4
    d.status.updated_replicas = 1
    d.status.available_replicas = 3
    d.status.unavailable_replicas = 1
    d.status.conditions.add(type="Available", status="True", reason="MinimumReplicasAvailable")
    d.status.conditions.add(type="Progressing", status="True", reason="ReplicaSetUpdated")
    return d


def rs(name: str, revision: int, replicas: int, current: int) -> apps_pb2.ReplicaSet:
    r = apps_pb2.ReplicaSet()
    r.metadata.name = name
    r.metadata.annotations["deployment.kubernetes.io/revision"] = str(revision)
    r.spec.replicas = replicas
    r.status.replicas = current
    return r


def test_describe_deployment_with_replica_sets() -> None:
    text = describe.describe_deployment(deployment(), [rs("web-2", 2, 1, 1), rs("web-1", 1, 3, 3),
                                                       rs("web-0", 0, 0, 0)], [], NOW)
    assert "Replicas:               3 desired | 1 updated | 4 total | 3 available | 1 unavailable" in text
    assert "RollingUpdateStrategy:  0% max unavailable, 1 max surge" in text
    assert "OldReplicaSets:  web-1 (3/3 replicas created)" in text
    assert "NewReplicaSet:   web-2 (1/1 replicas created)" in text
    assert "  Progressing    True    ReplicaSetUpdated" in text
    assert "      Image:        hello:2" in text
    assert text.rstrip().endswith("Events:          <none>")


def test_describe_replicaset_pods_status() -> None:
    r = rs("web-1", 1, 3, 3)
    r.metadata.namespace = "default"
    r.spec.selector.match_labels["app"] = "web"
    pods = []
    for phase in ("Running", "Running", "Pending", "Failed"):
        p = core_pb2.Pod()
        p.status.phase = phase
        pods.append(p)
    text = describe.describe_replicaset(r, pods, None, NOW)
    assert "Replicas:     3 current / 3 desired" in text
    assert "Pods Status:  2 Running / 1 Waiting / 0 Succeeded / 1 Failed" in text
    assert "Selector:     app=web" in text


def test_describe_service_with_endpoints() -> None:
    s = core_pb2.Service()
    s.metadata.name = "web"
    s.metadata.namespace = "default"
    s.spec.type = "NodePort"
    s.spec.cluster_ip = "10.96.0.10"
    s.spec.cluster_ips.append("10.96.0.10")
    s.spec.selector["app"] = "web"
    p = s.spec.ports.add(name="http", port=80, protocol="TCP", node_port=30080)
    p.target_port.CopyFrom(struct_pb2.Value(string_value="web"))
    s.spec.session_affinity = "ClientIP"
    s.spec.session_affinity_config.client_ip.timeout_seconds = 60
    ep = core_pb2.Endpoints()
    ss = ep.subsets.add()
    ss.addresses.add(ip="10.0.0.2")
    ss.addresses.add(ip="10.0.0.3")
    ss.ports.add(name="http", port=40001)
    text = describe.describe_service(s, ep, [], NOW)
    ls = norm(text)
    for want in ("Type: NodePort", "IP: 10.96.0.10", "Port: http 80/TCP", "TargetPort: web/TCP",
                 "NodePort: http 30080/TCP", "Endpoints: 10.0.0.2:40001,10.0.0.3:40001", "Session Affinity: ClientIP",
                 "Session Affinity Timeout: 60s", "External Traffic Policy: Cluster"):
        assert want in ls, f"{want!r} not in:\n{text}"
    assert lines(text)[-1] == "Events:                    <none>"
    # a port the endpoints do not carry has none
    s.spec.ports.add(name="metrics", port=9090, protocol="TCP")
    assert norm(describe.describe_service(s, ep, [], NOW)).count("Endpoints: <none>") == 1


def test_describe_load_balancer_and_external_name() -> None:
    s = core_pb2.Service()
    s.metadata.name = "lb"
    s.spec.type = "LoadBalancer"
    s.spec.ports.add(port=80, protocol="TCP", node_port=30001)
    assert "LoadBalancer Ingress:     <pending>" in describe.describe_service(s, None, None, NOW)
    s.status.load_balancer.ingress.add(ip="192.168.77.10")
    assert "LoadBalancer Ingress:     192.168.77.10" in describe.describe_service(s, None, None, NOW)
    x = core_pb2.Service()
    x.metadata.name = "ext"
    x.spec.type = "ExternalName"
    x.spec.external_name = "example.org"
    text = describe.describe_service(x, None, None, NOW)
    assert "External Name:" in text and "example.org" in text and "IP Family" not in text


def test_describe_node() -> None:
    n = core_pb2.Node()
    n.metadata.name = "node-1"
    n.spec.unschedulable = True
    n.spec.taints.add(key="node.kubernetes.io/unreachable", effect="NoExecute")
    n.spec.taints.add(key="dedicated", value="gpu", effect="NoSchedule")
    n.status.conditions.add(type="Ready", status="Unknown", reason="NodeStatusUnknown",
                            message="Agent stopped posting node status.")
    n.status.addresses.add(type="InternalIP", address="10.0.0.2")
    n.status.capacity["cpu"].CopyFrom(struct_pb2.Value(string_value="2"))
    n.status.capacity["pods"].CopyFrom(struct_pb2.Value(number_value=110))
    n.status.node_info.kubelet_version = "v0.1.0"
    le = core_pb2.Lease()
    le.spec.holder_identity = "node-1"
    stamp(le.spec.renew_time, 3)
    p = core_pb2.Pod()
    p.metadata.name = "web-1"
    p.metadata.namespace = "default"
    p.spec.containers.add(name="c").resources.requests["cpu"].CopyFrom(struct_pb2.Value(string_value="100m"))
    stamp(p.metadata.creation_timestamp, 60)
    text = describe.describe_node(n, [p], le, [], NOW)
    assert "Taints:             node.kubernetes.io/unreachable:NoExecute" in lines(text)
    assert "                    dedicated=gpu:NoSchedule" in lines(text)
    ls = norm(text)
    for want in ("Unschedulable: true", "HolderIdentity: node-1", "InternalIP: 10.0.0.2", "pods: 110", "cpu: 2",
                 "Non-terminated Pods: (1 in total)", "default web-1 100m 0 60s", "Kubelet Version: v0.1.0"):
        assert want in ls, f"{want!r} not in:\n{text}"
    assert any(line.startswith("Ready Unknown <none> <none> NodeStatusUnknown Agent stopped") for line in ls)


def test_describe_generic_kinds() -> None:
    ns = core_pb2.Namespace()
    ns.metadata.name = "dev"
    assert lines(describe.describe_namespace(ns, None, NOW))[:4] == [
        "Name:         dev", "Labels:       <none>", "Annotations:  <none>", "Status:       Active"]
    e = event("Scheduled", "Successfully assigned default/web-1 to node-1")
    e.metadata.name = "web-1.1"
    e.involved_object.kind = "Pod"
    e.involved_object.name = "web-1"
    text = describe.describe_event(e, NOW)
    assert "Reason:       Scheduled" in text and "  Kind:         Pod" in text
    le = core_pb2.Lease()
    le.metadata.name = "node-1"
    le.spec.holder_identity = "node-1"
    assert "Holder Identity: node-1" in norm(describe.describe_lease(le, NOW))
