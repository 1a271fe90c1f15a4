"""pkctl describe: a readable report of objects, ending with their Events.

The report functions (`describe_*`) are pure: they take the object, the
related objects the command fetched (events, replica sets, pods, endpoints,
lease) and the current time, and return text laid out as kubectl does
(Go tabwriter, padding 2). The command fetches those related objects
concurrently, then prints.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Callable

import click
from google.protobuf.message import Message

from cli import printers, util
from cli.printers import NONE, age, format_labels, rfc1123z, selector_text, ts_set
from pkapi import intstr, meta
from pkapi.client.cluster import ClusterClient
from pkapi.errors import ApiError, is_not_found, not_found
from pkapi.meta import Kind


class Writer:
    """kubectl's PrefixWriter: lines at an indent level, cells split by tabs,
    laid out at the end by printers.tabwrite."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def w(self, level: int, text: str) -> None:
        self.lines.append("  " * level + text)

    def kv(self, level: int, key: str, value: Any) -> None:
        self.w(level, f"{key}:\t{value}")

    def multiline(self, level: int, key: str, items: list[str]) -> None:
        """`Labels:  a=1` then continuation lines aligned under the value."""
        if not items:
            self.kv(level, key, NONE)
            return
        self.kv(level, key, items[0])
        for it in items[1:]:
            self.w(level, f"\t{it}")

    def text(self) -> str:
        return printers.tabwrite("\n".join(self.lines), 0, 2).rstrip("\n") + "\n"


def _labels(labels: Any) -> list[str]:
    return [f"{k}={labels[k]}" for k in sorted(labels)]


def _annotations(ann: Any) -> list[str]:
    return [f"{k}: {ann[k]}" for k in sorted(ann)]


def _value(v: Any) -> str:
    try:
        x = intstr.value(v)
    except ValueError:
        return str(v)
    return "" if x is None else str(x)


def _common(w: Writer, obj: Any, namespaced: bool = True) -> None:
    md = obj.metadata
    w.kv(0, "Name", md.name)
    if namespaced:
        w.kv(0, "Namespace", md.namespace)


def _meta_block(w: Writer, md: Any) -> None:
    w.multiline(0, "Labels", _labels(md.labels))
    w.multiline(0, "Annotations", _annotations(md.annotations))


def _controlled_by(w: Writer, md: Any) -> None:
    ref = next((r for r in md.owner_references if r.HasField("controller") and r.controller), None)
    if ref is not None:
        w.kv(0, "Controlled By", f"{ref.kind}/{ref.name}")


def events_section(w: Writer, events: list[Any] | None, now: _dt.datetime) -> None:
    if events is None:
        return
    if not events:
        w.kv(0, "Events", NONE)
        return
    w.w(0, "Events:")
    w.w(1, "Type\tReason\tAge\tFrom\tMessage")
    w.w(1, "----\t------\t----\t----\t-------")
    for e in sorted(events, key=printers.event_sort_key):
        first, last = printers.event_times(e)
        if e.count > 1:
            interval = f"{age(last, now)} (x{e.count} over {age(first, now)})"
        else:
            interval = age(first, now)
        source = e.source.component or e.reporting_component
        w.w(1, f"{e.type}\t{e.reason}\t{interval}\t{source}\t{e.message.strip()}")


# ------------------------------------------------------------------- pods


def _port_lines(c: Any) -> tuple[str, str]:
    if not c.ports:
        return "", ""
    ports = ", ".join(f"{p.container_port}/{p.protocol or 'TCP'}" for p in c.ports)
    hosts = ", ".join(f"{p.host_port}/{p.protocol or 'TCP'}" for p in c.ports)
    return ports, hosts


def describe_probe(p: Any) -> str:
    attrs = (f"delay={p.initial_delay_seconds}s timeout={p.timeout_seconds}s period={p.period_seconds}s "
             f"#success={p.success_threshold} #failure={p.failure_threshold}")
    if p.HasField("exec"):
        return f"exec [{' '.join(p.exec.command)}] {attrs}"
    if p.HasField("http_get"):
        h = p.http_get
        scheme = (h.scheme or "HTTP").lower()
        port = _value(h.port)
        host = f"{h.host}:{port}" if port else h.host
        return f"http-get {scheme}://{host}{h.path} {attrs}"
    if p.HasField("tcp_socket"):
        return f"tcp-socket {p.tcp_socket.host}:{_value(p.tcp_socket.port)} {attrs}"
    return f"unknown {attrs}"


def _state(w: Writer, level: int, title: str, st: Any) -> None:
    if st.HasField("running"):
        w.kv(level, title, "Running")
        w.kv(level + 1, "Started", rfc1123z(st.running.started_at))
    elif st.HasField("waiting"):
        w.kv(level, title, "Waiting")
        if st.waiting.reason:
            w.kv(level + 1, "Reason", st.waiting.reason)
        if st.waiting.message:
            w.kv(level + 1, "Message", st.waiting.message)
    elif st.HasField("terminated"):
        t = st.terminated
        w.kv(level, title, "Terminated")
        if t.reason:
            w.kv(level + 1, "Reason", t.reason)
        if t.message:
            w.kv(level + 1, "Message", t.message)
        w.kv(level + 1, "Exit Code", t.exit_code)
        if t.signal:
            w.kv(level + 1, "Signal", t.signal)
        w.kv(level + 1, "Started", rfc1123z(t.started_at))
        w.kv(level + 1, "Finished", rfc1123z(t.finished_at))
    else:
        w.kv(level, title, "Waiting" if title == "State" else NONE)


def _resources(w: Writer, level: int, res: Any) -> None:
    for title, m in (("Limits", res.limits), ("Requests", res.requests)):
        if m:
            w.w(level, f"{title}:")
            for k in sorted(m):
                w.kv(level + 1, k, _value(m[k]))


def _env(w: Writer, level: int, c: Any) -> None:
    if not c.env:
        w.kv(level, "Environment", NONE)
        return
    w.w(level, "Environment:")
    for e in c.env:
        if e.HasField("value_from") and e.value_from.HasField("field_ref"):
            ref = e.value_from.field_ref
            w.kv(level + 1, e.name, f"({ref.api_version or 'v1'}:{ref.field_path})")
        else:
            w.kv(level + 1, e.name, e.value)


def _containers(w: Writer, level: int, spec: Any, statuses: dict[str, Any] | None = None,
                mappings: list[Any] | None = None) -> None:
    w.w(level, "Containers:")
    for c in spec.containers:
        w.w(level + 1, f"{c.name}:")
        lv = level + 2
        cs = (statuses or {}).get(c.name)
        if cs is not None and cs.container_id:
            w.kv(lv, "Container ID", cs.container_id)
        w.kv(lv, "Image", c.image)
        if cs is not None:
            w.kv(lv, "Image ID", cs.image_id)
        ports, hosts = _port_lines(c)
        if ports:
            w.kv(lv, "Port", ports)
            published = [m for m in (mappings or []) if m.container_name == c.name]
            if published:
                # PocketKube publishes container ports on the node: endpoints
                # are hostIP:hostPort, so this is where the pod is reached.
                w.kv(lv, "Host Port", ", ".join(
                    f"{m.host_ip}:{m.host_port}/{m.protocol or 'TCP'}" for m in published))
            else:
                w.kv(lv, "Host Port", hosts)
        if c.command:
            w.w(lv, "Command:")
            for a in c.command:
                w.w(lv + 1, a)
        if c.args:
            w.w(lv, "Args:")
            for a in c.args:
                w.w(lv + 1, a)
        if cs is not None:
            _state(w, lv, "State", cs.state)
            if cs.last_state.ListFields():
                _state(w, lv, "Last State", cs.last_state)
            w.kv(lv, "Ready", "True" if cs.ready else "False")
            w.kv(lv, "Restart Count", cs.restart_count)
        _resources(w, lv, c.resources)
        for title, probe in (("Liveness", c.liveness_probe), ("Readiness", c.readiness_probe),
                             ("Startup", c.startup_probe)):
            if probe.ListFields():
                w.kv(lv, title, describe_probe(probe))
        _env(w, lv, c)
        w.kv(lv, "Mounts", NONE)


def toleration_text(t: Any) -> str:
    """kubectl's order: key[=value][:effect][ op=Exists][ for Ns]."""
    s = str(t.key)
    if t.value:
        s += f"={t.value}"
    if t.effect:
        s += f":{t.effect}"
    if t.operator == "Exists" and not t.value:
        s += " op=Exists" if (t.key or t.effect) else "op=Exists"
    if t.HasField("toleration_seconds"):
        s += f" for {t.toleration_seconds}s"
    return s


def _tolerations(w: Writer, tols: Any) -> None:
    w.multiline(0, "Tolerations", [toleration_text(t) for t in tols])


def describe_pod(pod: Any, events: list[Any] | None, now: _dt.datetime) -> str:
    w = Writer()
    md, spec, st = pod.metadata, pod.spec, pod.status
    _common(w, pod)
    w.kv(0, "Priority", spec.priority)
    w.kv(0, "Service Account", spec.service_account_name or "default")
    node = spec.node_name or NONE
    if spec.node_name and st.host_ip:
        node = f"{spec.node_name}/{st.host_ip}"
    w.kv(0, "Node", node)
    if ts_set(st.start_time):
        w.kv(0, "Start Time", rfc1123z(st.start_time))
    _meta_block(w, md)
    if ts_set(md.deletion_timestamp):
        w.kv(0, "Status", f"Terminating (lasts {age(md.deletion_timestamp, now)})")
        if md.HasField("deletion_grace_period_seconds"):
            w.kv(0, "Termination Grace Period", f"{md.deletion_grace_period_seconds}s")
    else:
        w.kv(0, "Status", st.phase or "Pending")
    if st.reason:
        w.kv(0, "Reason", st.reason)
    if st.message:
        w.kv(0, "Message", st.message)
    w.kv(0, "IP", st.pod_ip)
    ips = [i.ip for i in st.pod_ips] or ([st.pod_ip] if st.pod_ip else [])
    if ips:
        w.w(0, "IPs:")
        for ip in ips:
            w.kv(1, "IP", ip)
    else:
        w.kv(0, "IPs", NONE)
    _controlled_by(w, md)
    statuses = {cs.name: cs for cs in st.container_statuses}
    _containers(w, 0, spec, statuses, list(st.port_mappings))
    if st.port_mappings:
        w.w(0, "Port Mappings:")
        w.w(1, "Container\tPort\tHost")
        w.w(1, "---------\t----\t----")
        for m in st.port_mappings:
            name = f" ({m.name})" if m.name else ""
            w.w(1, f"{m.container_name}\t{m.container_port}/{m.protocol or 'TCP'}{name}\t{m.host_ip}:{m.host_port}")
    if st.conditions:
        w.w(0, "Conditions:")
        w.w(1, "Type\tStatus")
        for c in st.conditions:
            w.w(1, f"{c.type}\t{c.status}")
    w.kv(0, "Volumes", NONE)
    w.kv(0, "QoS Class", st.qos_class or "BestEffort")
    w.multiline(0, "Node-Selectors", _labels(spec.node_selector))
    _tolerations(w, spec.tolerations)
    events_section(w, events, now)
    return w.text()


# ------------------------------------------------------ replica sets etc.


def _pod_template(w: Writer, tmpl: Any) -> None:
    w.w(0, "Pod Template:")
    w.multiline(1, "Labels", _labels(tmpl.metadata.labels))
    if tmpl.metadata.annotations:
        w.multiline(1, "Annotations", _annotations(tmpl.metadata.annotations))
    _containers(w, 1, tmpl.spec)
    w.kv(1, "Volumes", NONE)
    if tmpl.spec.node_selector:
        w.multiline(1, "Node-Selectors", _labels(tmpl.spec.node_selector))
    if tmpl.spec.tolerations:
        w.multiline(1, "Tolerations", [toleration_text(t) for t in tmpl.spec.tolerations])


def _replicas(spec: Any) -> int:
    return int(spec.replicas) if spec.HasField("replicas") else 1


def _pods_status(pods: list[Any]) -> str:
    counts = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for p in pods:
        ph = p.status.phase or "Pending"
        counts[ph if ph in counts else "Pending"] += 1
    return (f"{counts['Running']} Running / {counts['Pending']} Waiting / {counts['Succeeded']} Succeeded / "
            f"{counts['Failed']} Failed")


def describe_replicaset(rs: Any, pods: list[Any], events: list[Any] | None, now: _dt.datetime) -> str:
    w = Writer()
    _common(w, rs)
    w.kv(0, "Selector", selector_text(rs.spec.selector))
    _meta_block(w, rs.metadata)
    _controlled_by(w, rs.metadata)
    w.kv(0, "Replicas", f"{rs.status.replicas} current / {_replicas(rs.spec)} desired")
    w.kv(0, "Pods Status", _pods_status(pods))
    _pod_template(w, rs.spec.template)
    _conditions_table(w, rs.status.conditions)
    events_section(w, events, now)
    return w.text()


def _conditions_table(w: Writer, conditions: Any) -> None:
    if not conditions:
        return
    w.w(0, "Conditions:")
    w.w(1, "Type\tStatus\tReason")
    w.w(1, "----\t------\t------")
    for c in conditions:
        w.w(1, f"{c.type}\t{c.status}\t{c.reason}")


def _rs_line(rs: Any) -> str:
    return f"{rs.metadata.name} ({rs.status.replicas}/{_replicas(rs.spec)} replicas created)"


def revision(obj: Any) -> int:
    try:
        return int(obj.metadata.annotations.get("deployment.kubernetes.io/revision", "0"))
    except ValueError:
        return 0


def describe_deployment(d: Any, replica_sets: list[Any], events: list[Any] | None, now: _dt.datetime) -> str:
    w = Writer()
    _common(w, d)
    w.kv(0, "CreationTimestamp", rfc1123z(d.metadata.creation_timestamp))
    _meta_block(w, d.metadata)
    w.kv(0, "Selector", selector_text(d.spec.selector))
    st = d.status
    w.kv(0, "Replicas", f"{_replicas(d.spec)} desired | {st.updated_replicas} updated | {st.replicas} total | "
                        f"{st.available_replicas} available | {st.unavailable_replicas} unavailable")
    strategy = d.spec.strategy.type or "RollingUpdate"
    w.kv(0, "StrategyType", strategy)
    w.kv(0, "MinReadySeconds", d.spec.min_ready_seconds)
    if strategy == "RollingUpdate":
        ru = d.spec.strategy.rolling_update
        mu = _value(ru.max_unavailable) or "25%"
        ms = _value(ru.max_surge) or "25%"
        w.kv(0, "RollingUpdateStrategy", f"{mu} max unavailable, {ms} max surge")
    if d.spec.paused:
        w.kv(0, "Paused", "true")
    _pod_template(w, d.spec.template)
    _conditions_table(w, st.conditions)
    owned = sorted(replica_sets, key=revision)
    new = owned[-1] if owned else None
    old = [r for r in owned[:-1] if r.status.replicas > 0 or _replicas(r.spec) > 0]
    w.kv(0, "OldReplicaSets", ", ".join(_rs_line(r) for r in old) or NONE)
    w.kv(0, "NewReplicaSet", _rs_line(new) if new is not None else NONE)
    events_section(w, events, now)
    return w.text()


# --------------------------------------------------------------- services


def _target_port(p: Any) -> str:
    v = _value(p.target_port)
    return f"{v or p.port}/{p.protocol or 'TCP'}"


def endpoints_for_port(ep: Any | None, port_name: str) -> str:
    if ep is None:
        return NONE
    addrs = []
    for ss in ep.subsets:
        for port in ss.ports:
            if port.name == port_name or (not port_name and len(ss.ports) == 1):
                for a in ss.addresses:
                    addrs.append(f"{a.ip}:{port.port}")
    return ",".join(addrs) if addrs else NONE


def describe_service(svc: Any, ep: Any | None, events: list[Any] | None, now: _dt.datetime) -> str:
    w = Writer()
    spec = svc.spec
    _common(w, svc)
    _meta_block(w, svc.metadata)
    w.kv(0, "Selector", format_labels(spec.selector))
    typ = spec.type or "ClusterIP"
    w.kv(0, "Type", typ)
    if typ != "ExternalName":
        w.kv(0, "IP Family Policy", spec.ip_family_policy or "SingleStack")
        w.kv(0, "IP Families", ",".join(spec.ip_families) or "IPv4")
        w.kv(0, "IP", printers.service_cluster_ip(svc))
        w.kv(0, "IPs", ",".join(spec.cluster_ips) or printers.service_cluster_ip(svc))
    if spec.external_ips:
        w.kv(0, "External IPs", ",".join(spec.external_ips))
    if spec.load_balancer_ip:
        w.kv(0, "IP", spec.load_balancer_ip)
    if typ == "ExternalName":
        w.kv(0, "External Name", spec.external_name)
    if typ == "LoadBalancer":
        ingress = [i.ip or i.hostname for i in svc.status.load_balancer.ingress]
        w.kv(0, "LoadBalancer Ingress", ", ".join(ingress) if ingress else "<pending>")
    for p in spec.ports:
        name = p.name or "<unset>"
        w.kv(0, "Port", f"{name}\t{p.port}/{p.protocol or 'TCP'}")
        w.kv(0, "TargetPort", _target_port(p))
        if p.node_port:
            w.kv(0, "NodePort", f"{name}\t{p.node_port}/{p.protocol or 'TCP'}")
        w.kv(0, "Endpoints", endpoints_for_port(ep, p.name))
    w.kv(0, "Session Affinity", spec.session_affinity or "None")
    if spec.session_affinity == "ClientIP" and spec.session_affinity_config.client_ip.HasField("timeout_seconds"):
        w.kv(0, "Session Affinity Timeout", f"{spec.session_affinity_config.client_ip.timeout_seconds}s")
    if typ in ("NodePort", "LoadBalancer"):
        w.kv(0, "External Traffic Policy", spec.external_traffic_policy or "Cluster")
    w.kv(0, "Internal Traffic Policy", spec.internal_traffic_policy or "Cluster")
    events_section(w, events, now)
    return w.text()


def describe_endpoints(ep: Any, events: list[Any] | None, now: _dt.datetime) -> str:
    w = Writer()
    _common(w, ep)
    _meta_block(w, ep.metadata)
    w.w(0, "Subsets:")
    for ss in ep.subsets:
        w.kv(1, "Addresses", ",".join(a.ip for a in ss.addresses) or NONE)
        w.kv(1, "NotReadyAddresses", ",".join(a.ip for a in ss.not_ready_addresses) or NONE)
        if ss.ports:
            w.w(1, "Ports:")
            w.w(2, "Name\tPort\tProtocol")
            w.w(2, "----\t----\t--------")
            for p in ss.ports:
                w.w(2, f"{p.name or '<unset>'}\t{p.port}\t{p.protocol or 'TCP'}")
        w.w(0, "")
    events_section(w, events, now)
    return w.text()


# ------------------------------------------------------------------ nodes


def _taint(t: Any) -> str:
    return f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}"


def describe_node(node: Any, pods: list[Any], lease: Any | None, events: list[Any] | None,
                  now: _dt.datetime) -> str:
    w = Writer()
    md, spec, st = node.metadata, node.spec, node.status
    _common(w, node, namespaced=False)
    w.kv(0, "Roles", printers.node_roles(node))
    _meta_block(w, md)
    w.kv(0, "CreationTimestamp", rfc1123z(md.creation_timestamp))
    w.multiline(0, "Taints", [_taint(t) for t in spec.taints])
    w.kv(0, "Unschedulable", "true" if spec.unschedulable else "false")
    if lease is not None:
        w.w(0, "Lease:")
        w.kv(1, "HolderIdentity", lease.spec.holder_identity or "<unset>")
        w.kv(1, "AcquireTime", rfc1123z(lease.spec.acquire_time) if ts_set(lease.spec.acquire_time) else "<unset>")
        w.kv(1, "RenewTime", rfc1123z(lease.spec.renew_time) if ts_set(lease.spec.renew_time) else "<unset>")
    w.w(0, "Conditions:")
    w.w(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
    w.w(1, "----\t------\t-----------------\t------------------\t------\t-------")
    for c in st.conditions:
        w.w(1, f"{c.type}\t{c.status}\t{rfc1123z(c.last_heartbeat_time)}\t{rfc1123z(c.last_transition_time)}\t"
               f"{c.reason}\t{c.message}")
    w.w(0, "Addresses:")
    for a in st.addresses:
        w.kv(1, a.type, a.address)
    for title, m in (("Capacity", st.capacity), ("Allocatable", st.allocatable)):
        w.w(0, f"{title}:")
        for k in sorted(m):
            w.kv(1, k, _value(m[k]))
    info = st.node_info
    w.w(0, "System Info:")
    w.kv(1, "Machine ID", info.machine_id)
    w.kv(1, "Kernel Version", info.kernel_version)
    w.kv(1, "OS Image", info.os_image)
    w.kv(1, "Operating System", info.operating_system)
    w.kv(1, "Architecture", info.architecture)
    w.kv(1, "Container Runtime Version", info.container_runtime_version)
    w.kv(1, "Kubelet Version", info.kubelet_version)
    if spec.pod_cidr:
        w.kv(0, "PodCIDR", spec.pod_cidr)
    running = [p for p in pods if p.status.phase not in ("Succeeded", "Failed")]
    w.kv(0, "Non-terminated Pods", f"({len(running)} in total)")
    if running:
        w.w(1, "Namespace\tName\tCPU Requests\tMemory Requests\tAge")
        w.w(1, "---------\t----\t------------\t---------------\t---")
        for p in running:
            cpu = ",".join(_value(c.resources.requests["cpu"]) for c in p.spec.containers
                           if "cpu" in c.resources.requests) or "0"
            mem = ",".join(_value(c.resources.requests["memory"]) for c in p.spec.containers
                           if "memory" in c.resources.requests) or "0"
            w.w(1, f"{p.metadata.namespace}\t{p.metadata.name}\t{cpu}\t{mem}\t{age(p.metadata.creation_timestamp, now)}")
    events_section(w, events, now)
    return w.text()


# ---------------------------------------------------------- the rest


def describe_namespace(ns: Any, events: list[Any] | None, now: _dt.datetime) -> str:
    w = Writer()
    _common(w, ns, namespaced=False)
    _meta_block(w, ns.metadata)
    w.kv(0, "Status", ns.status.phase or "Active")
    w.w(0, "")
    w.w(0, "No resource quota.")
    w.w(0, "")
    w.w(0, "No LimitRange resource.")
    return w.text()


def describe_event(ev: Any, now: _dt.datetime) -> str:
    w = Writer()
    _common(w, ev)
    _meta_block(w, ev.metadata)
    first, last = printers.event_times(ev)
    w.kv(0, "Type", ev.type)
    w.kv(0, "Reason", ev.reason)
    w.kv(0, "Message", ev.message.strip())
    io = ev.involved_object
    w.w(0, "Involved Object:")
    w.kv(1, "API Version", io.api_version)
    w.kv(1, "Kind", io.kind)
    w.kv(1, "Name", io.name)
    w.kv(1, "Namespace", io.namespace)
    w.kv(1, "UID", io.uid)
    if io.field_path:
        w.kv(1, "Field Path", io.field_path)
    w.w(0, "Source:")
    w.kv(1, "Component", ev.source.component or ev.reporting_component)
    if ev.source.host:
        w.kv(1, "Host", ev.source.host)
    w.kv(0, "First Timestamp", rfc1123z(first))
    w.kv(0, "Last Timestamp", rfc1123z(last))
    w.kv(0, "Count", ev.count)
    return w.text()


def describe_lease(le: Any, now: _dt.datetime) -> str:
    w = Writer()
    _common(w, le)
    _meta_block(w, le.metadata)
    w.w(0, "Spec:")
    w.kv(1, "Holder Identity", le.spec.holder_identity or "<unset>")
    if le.spec.HasField("lease_duration_seconds"):
        w.kv(1, "Lease Duration Seconds", le.spec.lease_duration_seconds)
    w.kv(1, "Acquire Time", rfc1123z(le.spec.acquire_time))
    w.kv(1, "Renew Time", rfc1123z(le.spec.renew_time))
    w.kv(1, "Lease Transitions", le.spec.lease_transitions)
    return w.text()


def describe_generic(obj: Message, events: list[Any] | None, now: _dt.datetime) -> str:
    """Any other kind: metadata, then spec and status as indented YAML."""
    w = Writer()
    k = meta.kind_of(obj)
    _common(w, obj, k.namespaced)
    _meta_block(w, obj.metadata)  # type: ignore[attr-defined]
    d = printers.object_dict(obj)
    for key in ("spec", "status"):
        if d.get(key):
            w.w(0, f"{key.capitalize()}:")
            for line in printers.to_yaml(d[key]).splitlines():
                w.w(1, line.replace("\t", " "))
    events_section(w, events, now)
    return w.text()


# ----------------------------------------------------------------- fetching


@dataclass
class Related:
    events: list[Any] | None = None
    pods: list[Any] = field(default_factory=list)
    replica_sets: list[Any] = field(default_factory=list)
    endpoints: Any | None = None
    lease: Any | None = None


async def _events(c: ClusterClient, obj: Any) -> list[Any]:
    md = obj.metadata
    kind = meta.kind_of(obj)
    fs = f"involvedObject.name={md.name},involvedObject.kind={kind.kind}"
    if kind.namespaced:
        fs += f",involvedObject.namespace={md.namespace}"
    items, _ = await c.list("events", md.namespace if kind.namespaced else "", field_selector=fs)
    # Events of an earlier object of the same name carry its uid: leave them out.
    return [e for e in items if not e.involved_object.uid or e.involved_object.uid == md.uid]  # type: ignore[attr-defined]


async def _maybe(coro: Any, default: Any) -> Any:
    try:
        return await coro
    except ApiError:
        return default


async def related(c: ClusterClient, obj: Any, show_events: bool) -> Related:
    kind = meta.kind_of(obj)
    md = obj.metadata
    r = Related()
    tasks: dict[str, Any] = {}
    if show_events and kind.kind not in ("Event", "Lease", "Namespace"):
        tasks["events"] = _events(c, obj)
    if kind.kind == "Deployment":
        tasks["rs"] = c.list("replicasets", md.namespace)
    elif kind.kind == "ReplicaSet":
        tasks["pods"] = c.list("pods", md.namespace, label_selector=selector_text(obj.spec.selector))
    elif kind.kind == "Service":
        tasks["ep"] = _maybe(c.get("endpoints", md.namespace, md.name), None)
    elif kind.kind == "Node":
        tasks["pods"] = c.list("pods", "", field_selector=f"spec.nodeName={md.name}")
        tasks["lease"] = _maybe(c.get("leases", "kube-node-lease", md.name), None)
    names = list(tasks)
    values = await asyncio.gather(*tasks.values())
    got = dict(zip(names, values, strict=True))
    if "events" in got:
        r.events = got["events"]
    if "rs" in got:
        r.replica_sets = [x for x in got["rs"][0] if any(
            o.uid == md.uid and o.HasField("controller") and o.controller for o in x.metadata.owner_references)]
    if "pods" in got:
        pods = got["pods"][0]
        if kind.kind == "ReplicaSet":
            pods = [p for p in pods if (ref := meta.controller_of(p)) is None or ref.uid == md.uid]
        r.pods = pods
    r.endpoints = got.get("ep")
    r.lease = got.get("lease")
    return r


def render(obj: Any, rel: Related, now: _dt.datetime) -> str:
    k = meta.kind_of(obj).kind
    fns: dict[str, Callable[[], str]] = {
        "Pod": lambda: describe_pod(obj, rel.events, now),
        "Deployment": lambda: describe_deployment(obj, rel.replica_sets, rel.events, now),
        "ReplicaSet": lambda: describe_replicaset(obj, rel.pods, rel.events, now),
        "Service": lambda: describe_service(obj, rel.endpoints, rel.events, now),
        "Endpoints": lambda: describe_endpoints(obj, rel.events, now),
        "Node": lambda: describe_node(obj, rel.pods, rel.lease, rel.events, now),
        "Namespace": lambda: describe_namespace(obj, rel.events, now),
        "Event": lambda: describe_event(obj, now),
        "Lease": lambda: describe_lease(obj, now),
    }
    return fns.get(k, lambda: describe_generic(obj, rel.events, now))()


async def find(c: ClusterClient, kind: Kind, ns: str, name: str) -> list[Message]:
    """The object called `name`, else (as kubectl) those whose name starts with it."""
    try:
        return [await c.get(kind.resource, ns, name)]
    except ApiError as e:
        if not is_not_found(e):
            raise
    items, _ = await c.list(kind.resource, ns)
    matches = [o for o in items if o.metadata.name.startswith(name)]  # type: ignore[attr-defined]
    if not matches:
        raise not_found(kind.qualified, name)
    return matches


@click.command("describe", help="""Show details of objects, with their recent Events.

\b
  pkctl describe deploy web
  pkctl describe pods -l app=web
  pkctl describe svc/web node/node-1""")
@click.argument("args", nargs=-1, metavar="(TYPE [NAME_PREFIX…] | TYPE/NAME…)", shell_complete=util.complete_types)
@click.option("-l", "--selector", default="", metavar="SELECTOR", help="Describe the objects matching this label selector.")
@click.option("--show-events/--no-show-events", default=True, show_default=True, help="Include Events.")
@click.pass_context
def command(ctx: click.Context, args: tuple[str, ...], selector: str, show_events: bool) -> None:
    async def main() -> bool:
        s = util.settings(ctx)
        if not args:
            util.err('You must specify the type of resource to describe. Use "pkctl api-resources" for a complete '
                     "list of supported resources.\n")
            util.fail("Required resource not specified.")
        targets = util.parse_targets(args, "describe")
        if selector and any(t.name is not None for t in targets):
            util.fail("name cannot be provided when a selector is specified")
        objs: list[Message] = []
        errors: list[ApiError] = []
        async with util.client(ctx) as c:
            for t in targets:
                ns = util.scope_namespace(t.kind, s)
                try:
                    if t.name is None:
                        items, _ = await c.list(t.kind.resource, ns, label_selector=selector)
                        if not items:
                            util.err(f"No resources found in {s.namespace} namespace."
                                     if t.kind.namespaced and not s.all_namespaces else "No resources found")
                        objs.extend(items)
                    else:
                        objs.extend(await find(c, t.kind, ns, t.name))
                except ApiError as api_err:
                    errors.append(api_err)
            rels = await asyncio.gather(*(related(c, o, show_events) for o in objs))
        now = util.now()
        for i, (o, rel) in enumerate(zip(objs, rels, strict=True)):
            if i:
                click.echo("\n")
            click.echo(render(o, rel, now), nl=False)
        for e in errors:
            util.err(util.api_error_text(e))
        return not errors

    if not util.run(main()):
        ctx.exit(1)
