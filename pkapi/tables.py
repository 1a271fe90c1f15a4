"""Server-side printing: kube-apiserver's table columns per kind, the cells of
each row, and `meta.k8s.io/v1` Table objects. pkctl prints its tables from
the same cells (cli/printers.py lays them out), so `pkctl get` and
`kubectl get` against the HTTP API show the same text.

Pure: no external calls or any I/O. Every function takes messages and the
current time (`now`, so tests fix it) and returns cells, dicts or strings.

Columns follow kube-apiserver's printers (pkg/printers/internalversion);
priority 1 columns are those `-o wide` adds:

  Pod         Name Ready Status Restarts Age          | IP Node Nominated-Node Readiness-Gates
  Deployment  Name Ready Up-to-date Available Age     | Containers Images Selector
  ReplicaSet  Name Desired Current Ready Age          | Containers Images Selector
  Service     Name Type Cluster-IP External-IP Port(s) Age | Selector
  Endpoints   Name Endpoints Age
  Node        Name Status Roles Age Version           | Internal-IP External-IP OS-Image
                                                        Kernel-Version Container-Runtime
  Namespace   Name Status Age
  Event       Last-Seen Type Reason Object Message    | Subobject Source First-Seen Count Name
              (the wide columns are interleaved: definition order is the wide order)
  Lease       Name Holder Age

A row function gives the cells of every column in definition order when
asked for `wide`, and only the priority-0 ones otherwise (kube-apiserver
always answers wide and kubectl drops the priority-1 columns; pkctl asks
for what it prints, because a LoadBalancer's EXTERNAL-IP is shortened when
not wide, as in kubectl).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from google.protobuf.message import Message

from pkapi import meta, selectors

NONE = "<none>"

# ------------------------------------------------------------------ time


def human_duration(seconds: float) -> str:
    """kubectl's duration.HumanDuration: 5s, 119s, 3m2s, 10m, 4h, 4h5m, 2d, 2d3h, 3y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def ts_set(ts: Any) -> bool:
    """A google.protobuf.Timestamp that carries a time (0 is "unset")."""
    return ts is not None and (ts.seconds != 0 or ts.nanos != 0)


def ts_datetime(ts: Any) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, _dt.UTC)


def age(ts: Any, now: _dt.datetime) -> str:
    """Time since `ts` as kubectl's AGE column; `<unknown>` when unset."""
    if not ts_set(ts):
        return "<unknown>"
    return human_duration((now - ts_datetime(ts)).total_seconds())


# ------------------------------------------------------------- cells


def format_labels(labels: Any) -> str:
    """k=v pairs sorted by key, or <none> (kubectl's labels.FormatLabels)."""
    if not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_text(sel: Any) -> str:
    try:
        return selectors.selector_string(sel)
    except ValueError:
        return "<invalid>"


def service_ports(svc: Any) -> str:
    """80/TCP, 80:30080/TCP, comma-separated; <none> without ports."""
    pieces = []
    for p in svc.spec.ports:
        proto = p.protocol or "TCP"
        if p.node_port > 0:
            pieces.append(f"{p.port}:{p.node_port}/{proto}")
        else:
            pieces.append(f"{p.port}/{proto}")
    return ",".join(pieces) or NONE


def _lb_ingress(svc: Any, wide: bool) -> str:
    ips = [i.ip or i.hostname for i in svc.status.load_balancer.ingress if i.ip or i.hostname]
    s = ",".join(ips)
    if not wide and len(s) > 16:
        return s[:13] + "..."
    return s


def service_external_ip(svc: Any, wide: bool = False) -> str:
    t = svc.spec.type or "ClusterIP"
    ext = list(svc.spec.external_ips)
    if t in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else NONE
    if t == "LoadBalancer":
        lb = _lb_ingress(svc, wide)
        parts = (lb.split(",") if lb else []) + ext
        return ",".join(parts) if parts else "<pending>"
    if t == "ExternalName":
        return str(svc.spec.external_name)
    return "<unknown>"


def service_cluster_ip(svc: Any) -> str:
    if svc.spec.cluster_ips:
        return str(svc.spec.cluster_ips[0])
    return str(svc.spec.cluster_ip) or NONE


def format_endpoints(ep: Any, limit: int = 3) -> str:
    """10.0.0.2:40001,10.0.0.3:40002 + 1 more... (kubectl's formatEndpoints)."""
    if not ep.subsets:
        return NONE
    shown: list[str] = []
    count = 0
    more = False
    for ss in ep.subsets:
        if not ss.ports:
            count += len(ss.addresses)
            for a in ss.addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(a.ip)
            continue
        for port in ss.ports:
            count += len(ss.addresses)
            for a in ss.addresses:
                if len(shown) == limit:
                    more = True
                    break
                host = f"[{a.ip}]" if ":" in a.ip else a.ip
                shown.append(f"{host}:{port.port}")
    text = ",".join(shown)
    if more:
        return f"{text} + {count - limit} more..."
    return text


def pod_status_reason(pod: Any) -> str:
    """The STATUS column: phase, overridden by a container's waiting or
    terminated reason (CrashLoopBackOff, ImagePullBackOff, Completed,
    ExitCode:N), then Terminating / Unknown for pods being deleted."""
    reason = pod.status.reason or pod.status.phase or "Pending"
    has_running = False
    for cs in reversed(list(pod.status.container_statuses)):
        st = cs.state
        if st.HasField("waiting") and st.waiting.reason:
            reason = st.waiting.reason
        elif st.HasField("terminated") and st.terminated.reason:
            reason = st.terminated.reason
        elif st.HasField("terminated"):
            t = st.terminated
            reason = f"Signal:{t.signal}" if t.signal else f"ExitCode:{t.exit_code}"
        elif cs.ready and st.HasField("running"):
            has_running = True
    if reason == "Completed" and has_running:
        ready = meta.condition(pod.status.conditions, "Ready")
        reason = "Running" if ready is not None and ready.status == "True" else "NotReady"
    if ts_set(pod.metadata.deletion_timestamp):
        if pod.status.reason == "NodeLost":
            reason = "Unknown"
        elif pod.status.phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return str(reason)


def pod_ready(pod: Any) -> str:
    ready = 0
    for cs in pod.status.container_statuses:
        st = cs.state
        if (st.HasField("waiting") and st.waiting.reason) or st.HasField("terminated"):
            continue
        if cs.ready and st.HasField("running"):
            ready += 1
    return f"{ready}/{len(pod.spec.containers)}"


def pod_restarts(pod: Any, now: _dt.datetime) -> str:
    """`3` or `3 (42s ago)`: the time since the latest container termination."""
    restarts = 0
    last: _dt.datetime | None = None
    for cs in pod.status.container_statuses:
        restarts += cs.restart_count
        if cs.last_state.HasField("terminated") and ts_set(cs.last_state.terminated.finished_at):
            when = ts_datetime(cs.last_state.terminated.finished_at)
            if last is None or when > last:
                last = when
    if restarts and last is not None:
        return f"{restarts} ({human_duration((now - last).total_seconds())} ago)"
    return str(restarts)


def pod_ip(pod: Any) -> str:
    if pod.status.pod_ips:
        return str(pod.status.pod_ips[0].ip) or NONE
    return str(pod.status.pod_ip) or NONE


def node_status(node: Any) -> str:
    ready = meta.condition(node.status.conditions, "Ready")
    if ready is None:
        parts = ["Unknown"]
    elif ready.status == "True":
        parts = ["Ready"]
    else:
        parts = ["NotReady"]
    if node.spec.unschedulable:
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Any) -> str:
    roles = set()
    for k, v in node.metadata.labels.items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k.split("/", 1)[1]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or NONE


def node_address(node: Any, type_: str) -> str:
    for a in node.status.addresses:
        if a.type == type_:
            return str(a.address)
    return NONE


def _containers(spec: Any) -> tuple[str, str]:
    return (",".join(c.name for c in spec.containers), ",".join(c.image for c in spec.containers))


def _replicas(spec: Any) -> int:
    return int(spec.replicas) if spec.HasField("replicas") else 1


def event_object(ev: Any) -> str:
    kind = ev.involved_object.kind.lower()
    return f"{kind}/{ev.involved_object.name}" if ev.involved_object.name else kind


def event_times(ev: Any) -> tuple[Any, Any]:
    """(first, last) timestamps of an event, falling back to eventTime."""
    first = ev.first_timestamp if ts_set(ev.first_timestamp) else ev.event_time
    last = ev.last_timestamp if ts_set(ev.last_timestamp) else first
    return first, last


def event_sort_key(ev: Any) -> tuple[int, int, str]:
    _, last = event_times(ev)
    return (last.seconds, last.nanos, ev.metadata.name)


# ------------------------------------------------------------------ columns

Cell = str | int
RowFn = Callable[[Any, _dt.datetime, bool], list[Cell]]


@dataclass(frozen=True)
class Column:
    """A meta.k8s.io/v1 TableColumnDefinition."""

    name: str
    description: str
    priority: int = 0
    type: str = "string"
    format: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format, "description": self.description,
                "priority": self.priority}

    @property
    def header(self) -> str:
        """As kubectl prints it: upper case, "Up-to-date" -> "UP-TO-DATE"."""
        return self.name.upper()


@dataclass(frozen=True)
class Columns:
    columns: tuple[Column, ...]
    row: RowFn  # (obj, now, wide) -> cells: all columns when wide, else the priority-0 ones

    def visible(self, wide: bool) -> list[Column]:
        return [c for c in self.columns if wide or c.priority == 0]


_NAME = Column("Name", "Name must be unique within a namespace. Is required when creating resources, although some "
               "resources may allow a client to request the generation of an appropriate name automatically. "
               "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
               "updated.", format="name")
_AGE = Column("Age", "CreationTimestamp is a timestamp representing the server time when this object was created. "
              "It is represented in RFC3339 form and is in UTC. Populated by the system. Read-only.")
_CONTAINERS = Column("Containers", "Names of each container in the template.", 1)
_IMAGES = Column("Images", "Images referenced by each container in the template.", 1)
_SELECTOR = Column("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be "
                   "the ones affected by this deployment.", 1)


def _pod_row(p: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    cells: list[Cell] = [p.metadata.name, pod_ready(p), pod_status_reason(p), pod_restarts(p, now),
                         age(p.metadata.creation_timestamp, now)]
    if wide:
        cells += [pod_ip(p), p.spec.node_name or NONE, p.status.nominated_node_name or NONE, NONE]
    return cells


def _deploy_row(d: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    cells: list[Cell] = [
        d.metadata.name,
        f"{d.status.ready_replicas}/{_replicas(d.spec)}",
        int(d.status.updated_replicas),
        int(d.status.available_replicas),
        age(d.metadata.creation_timestamp, now),
    ]
    if wide:
        cells += [*_containers(d.spec.template.spec), selector_text(d.spec.selector)]
    return cells


def _rs_row(r: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    cells: list[Cell] = [
        r.metadata.name,
        _replicas(r.spec),
        int(r.status.replicas),
        int(r.status.ready_replicas),
        age(r.metadata.creation_timestamp, now),
    ]
    if wide:
        cells += [*_containers(r.spec.template.spec), selector_text(r.spec.selector)]
    return cells


def _svc_row(s: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    cells: list[Cell] = [
        s.metadata.name,
        s.spec.type or "ClusterIP",
        service_cluster_ip(s),
        service_external_ip(s, wide),
        service_ports(s),
        age(s.metadata.creation_timestamp, now),
    ]
    if wide:
        cells.append(format_labels(s.spec.selector))
    return cells


def _ep_row(e: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    return [e.metadata.name, format_endpoints(e), age(e.metadata.creation_timestamp, now)]


def _node_row(n: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    info = n.status.node_info
    cells: list[Cell] = [n.metadata.name, node_status(n), node_roles(n), age(n.metadata.creation_timestamp, now),
                         info.kubelet_version or ""]
    if wide:
        cells += [
            node_address(n, "InternalIP"),
            node_address(n, "ExternalIP"),
            info.os_image or "<unknown>",
            info.kernel_version or "<unknown>",
            info.container_runtime_version or "<unknown>",
        ]
    return cells


def _ns_row(n: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    return [n.metadata.name, n.status.phase or "Active", age(n.metadata.creation_timestamp, now)]


def _event_row(e: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    first, last = event_times(e)
    if wide:
        src = e.source.component or e.reporting_component
        if e.source.host:
            src = f"{src}, {e.source.host}"
        return [age(last, now), e.type, e.reason, event_object(e), e.involved_object.field_path,
                src, e.message.strip(), age(first, now), int(e.count), e.metadata.name]
    return [age(last, now), e.type, e.reason, event_object(e), e.message.strip()]


def _lease_row(le: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    return [le.metadata.name, le.spec.holder_identity or NONE, age(le.metadata.creation_timestamp, now)]


def _default_row(o: Any, now: _dt.datetime, wide: bool) -> list[Cell]:
    return [o.metadata.name, age(o.metadata.creation_timestamp, now)]


COLUMNS: dict[str, Columns] = {
    "Pod": Columns((
        _NAME,
        Column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        Column("Status", "The aggregate status of the containers in this pod."),
        Column("Restarts", "The number of times the containers in this pod have been restarted and when the last "
               "container in this pod has restarted."),
        _AGE,
        Column("IP", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
               "allocated.", 1),
        Column("Node", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate "
               "for scheduling by the scheduler defined in schedulerName.", 1),
        Column("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node, but "
               "it cannot be scheduled right away as preemption victims receive their graceful termination "
               "periods.", 1),
        Column("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
    ), _pod_row),
    "Deployment": Columns((
        _NAME,
        Column("Ready", "Number of the pod with ready state"),
        Column("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired "
               "template spec."),
        Column("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this "
               "deployment."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ), _deploy_row),
    "ReplicaSet": Columns((
        _NAME,
        Column("Desired", "Replicas is the number of desired replicas.", type="integer"),
        Column("Current", "Replicas is the most recently observed number of replicas.", type="integer"),
        Column("Ready", "The number of ready replicas for this replica set.", type="integer"),
        _AGE, _CONTAINERS, _IMAGES,
        Column("Selector", "Selector is a label query over pods that should match the replica count.", 1),
    ), _rs_row),
    "Service": Columns((
        _NAME,
        Column("Type", "type determines how the Service is exposed: ClusterIP, NodePort, LoadBalancer or "
               "ExternalName."),
        Column("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
        Column("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also "
               "accept traffic for this service."),
        Column("Port(s)", "The list of ports that are exposed by this service."),
        _AGE,
        Column("Selector", "Route service traffic to pods with label keys and values matching this selector.", 1),
    ), _svc_row),
    "Endpoints": Columns((
        _NAME,
        Column("Endpoints", "The set of all endpoints is the union of all subsets."),
        _AGE,
    ), _ep_row),
    "Node": Columns((
        _NAME,
        Column("Status", "The status of the node"),
        Column("Roles", "The roles of the node"),
        _AGE,
        Column("Version", "Kubelet Version reported by the node."),
        Column("Internal-IP", "List of addresses reachable to the node.", 1),
        Column("External-IP", "List of addresses reachable to the node.", 1),
        Column("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
               1),
        Column("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", 1),
        Column("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API.", 1),
    ), _node_row),
    "Namespace": Columns((
        _NAME,
        Column("Status", "The status of the namespace"),
        _AGE,
    ), _ns_row),
    "Event": Columns((
        Column("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
        Column("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
        Column("Reason", "This should be a short, machine understandable string that gives the reason for the "
               "transition into the object's current status."),
        Column("Object", "The object that this event is about."),
        Column("Subobject", "If referring to a piece of an object instead of an entire object, this string should "
               "contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].", 1),
        Column("Source", "The component reporting this event.", 1),
        Column("Message", "A human-readable description of the status of this operation."),
        Column("First Seen", "The time at which the event was first recorded.", 1),
        Column("Count", "The number of times this event has occurred.", 1),
        Column("Name", _NAME.description, 1, format="name"),
    ), _event_row),
    "Lease": Columns((
        _NAME,
        Column("Holder", "holderIdentity contains the identity of the holder of a current lease."),
        _AGE,
    ), _lease_row),
}

DEFAULT_COLUMNS = Columns((_NAME, _AGE), _default_row)


def columns_for(kind: str) -> Columns:
    return COLUMNS.get(kind, DEFAULT_COLUMNS)


def column_definitions(kind: str) -> list[dict[str, Any]]:
    """Every column of `kind`, as Table.columnDefinitions."""
    return [c.definition() for c in columns_for(kind).columns]


def row_cells(obj: Message, now: _dt.datetime, wide: bool = True) -> list[Cell]:
    return columns_for(meta.kind_of(obj).kind).row(obj, now, wide)


# ------------------------------------------------------------------ Table objects

INCLUDE_OBJECT = ("None", "Metadata", "Object")  # the includeObject query parameter


def partial_object_metadata(obj: Message) -> dict[str, Any]:
    """The row's object when includeObject=Metadata (kubectl's default): what
    -A, --show-labels and -L read."""
    d = meta.to_dict(obj)
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": d.get("metadata", {})}


def table(objs: Sequence[Message] | Iterable[Message], now: _dt.datetime, kind: str = "",
          resource_version: str = "", continue_token: str = "", include_object: str = "Metadata",
          remaining: int | None = None) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of `objs` (a list's items, one object, or a
    watch event's object), all columns included as kube-apiserver does.
    `kind` names the columns when `objs` may be empty."""
    items = list(objs)
    kind = kind or (meta.kind_of(items[0]).kind if items else "")
    cols = columns_for(kind)
    rows = []
    for o in items:
        row: dict[str, Any] = {"cells": cols.row(o, now, True)}
        if include_object == "Object":
            row["object"] = meta.to_dict(o)
        elif include_object != "None":
            row["object"] = partial_object_metadata(o)
        rows.append(row)
    md: dict[str, Any] = {}
    if resource_version:
        md["resourceVersion"] = resource_version
    if continue_token:
        md["continue"] = continue_token
    if remaining is not None:
        md["remainingItemCount"] = remaining
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md,
            "columnDefinitions": column_definitions(kind), "rows": rows}


def watch_event_table(event_type: str, obj: Message, now: _dt.datetime,
                      include_object: str = "Metadata") -> dict[str, Any]:
    """A watch event whose object is a one-row Table (kubectl get -w)."""
    return {"type": event_type, "object": table([obj], now, include_object=include_object)}
