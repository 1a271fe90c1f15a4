"""How pkctl prints objects: kubectl's tables, ages, -o json/yaml/name.

Pure: no external calls or any I/O. Every function takes messages (or
dicts) and the current time and returns strings, so the unit tests build
objects in memory and compare text.

Columns follow kubectl's printers (k8s.io/kubernetes/pkg/printers/internalversion):

  pods          NAME READY STATUS RESTARTS AGE      wide: IP NODE NOMINATED NODE READINESS GATES
  deployments   NAME READY UP-TO-DATE AVAILABLE AGE wide: CONTAINERS IMAGES SELECTOR
  replicasets   NAME DESIRED CURRENT READY AGE      wide: CONTAINERS IMAGES SELECTOR
  services      NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE  wide: SELECTOR
  endpoints     NAME ENDPOINTS AGE
  nodes         NAME STATUS ROLES AGE VERSION      wide: INTERNAL-IP EXTERNAL-IP OS-IMAGE
                                                          KERNEL-VERSION CONTAINER-RUNTIME
  namespaces    NAME STATUS AGE
  events        LAST SEEN TYPE REASON OBJECT MESSAGE
  leases        NAME HOLDER AGE

Tables are laid out as Go's text/tabwriter does for kubectl (minimum
width 6, padding 3); `tabwrite` implements the general algorithm, which
`describe` uses with padding 2.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import yaml
from google.protobuf.message import Message

from pkapi import meta, selectors
from pkapi.meta import Kind

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


def rfc1123z(ts: Any) -> str:
    """kubectl describe's time format: Mon, 02 Jan 2006 15:04:05 -0700."""
    if not ts_set(ts):
        return NONE
    return ts_datetime(ts).strftime("%a, %d %b %Y %H:%M:%S %z")


# ---------------------------------------------------------------- tabwriter


def tabwrite(text: str, minwidth: int = 0, padding: int = 2) -> str:
    """Lay out tab-separated cells as Go's text/tabwriter (flags 0, padchar ' ').

    A cell is text terminated by a tab; the text after a line's last tab is
    not part of any column. A column block is a run of consecutive lines
    that all have a cell in that column; each block is as wide as its widest
    cell plus `padding` (at least `minwidth`). kubectl describe relies on
    exactly this: a line without tabs ends the blocks above it.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(a: int, b: int) -> None:
        for i in range(a, b):
            cells = lines[i]
            parts: list[str] = []
            for j, c in enumerate(cells):
                if j < len(widths):
                    parts.append(c + " " * (widths[j] - len(c)))
                else:
                    parts.append(c)
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out)


@dataclass
class TableWriter:
    """kubectl's table layout (tabwriter minwidth 6, padding 3) for rows of
    equal length. Widths only grow, as with tabwriter.RememberWidths, so the
    lines `get -w` prints later stay aligned with the header."""

    minwidth: int = 6
    padding: int = 3
    widths: list[int] = field(default_factory=list)

    def render(self, rows: Sequence[Sequence[str]]) -> list[str]:
        for row in rows:
            for j, cell in enumerate(row[:-1]):
                w = max(self.minwidth, len(cell) + self.padding)
                if j >= len(self.widths):
                    self.widths.append(w)
                elif w > self.widths[j]:
                    self.widths[j] = w
        out = []
        for row in rows:
            parts = [c.ljust(self.widths[j]) for j, c in enumerate(row[:-1])]
            parts.append(row[-1] if row else "")
            out.append("".join(parts))
        return out


# ------------------------------------------------------------- small parts


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


# ------------------------------------------------------------------ tables


RowFn = Callable[[Any, _dt.datetime, bool], list[str]]


@dataclass(frozen=True)
class Columns:
    headers: tuple[str, ...]
    wide: tuple[str, ...]
    row: RowFn  # (obj, now, wide) -> cells, NAME first (except events)
    name_first: bool = True


def _pod_row(p: Any, now: _dt.datetime, wide: bool) -> list[str]:
    cells = [p.metadata.name, pod_ready(p), pod_status_reason(p), pod_restarts(p, now), age(p.metadata.creation_timestamp, now)]
    if wide:
        cells += [pod_ip(p), p.spec.node_name or NONE, p.status.nominated_node_name or NONE, NONE]
    return cells


def _deploy_row(d: Any, now: _dt.datetime, wide: bool) -> list[str]:
    cells = [
        d.metadata.name,
        f"{d.status.ready_replicas}/{_replicas(d.spec)}",
        str(d.status.updated_replicas),
        str(d.status.available_replicas),
        age(d.metadata.creation_timestamp, now),
    ]
    if wide:
        cells += [*_containers(d.spec.template.spec), selector_text(d.spec.selector)]
    return cells


def _rs_row(r: Any, now: _dt.datetime, wide: bool) -> list[str]:
    cells = [
        r.metadata.name,
        str(_replicas(r.spec)),
        str(r.status.replicas),
        str(r.status.ready_replicas),
        age(r.metadata.creation_timestamp, now),
    ]
    if wide:
        cells += [*_containers(r.spec.template.spec), selector_text(r.spec.selector)]
    return cells


def _svc_row(s: Any, now: _dt.datetime, wide: bool) -> list[str]:
    cells = [
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


def _ep_row(e: Any, now: _dt.datetime, wide: bool) -> list[str]:
    return [e.metadata.name, format_endpoints(e), age(e.metadata.creation_timestamp, now)]


def _node_row(n: Any, now: _dt.datetime, wide: bool) -> list[str]:
    info = n.status.node_info
    cells = [n.metadata.name, node_status(n), node_roles(n), age(n.metadata.creation_timestamp, now),
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


def _ns_row(n: Any, now: _dt.datetime, wide: bool) -> list[str]:
    return [n.metadata.name, n.status.phase or "Active", age(n.metadata.creation_timestamp, now)]


def _event_row(e: Any, now: _dt.datetime, wide: bool) -> list[str]:
    first, last = event_times(e)
    if wide:
        src = e.source.component or e.reporting_component
        if e.source.host:
            src = f"{src}, {e.source.host}"
        return [age(last, now), e.type, e.reason, event_object(e), e.involved_object.field_path,
                src, e.message.strip(), age(first, now), str(e.count), e.metadata.name]
    return [age(last, now), e.type, e.reason, event_object(e), e.message.strip()]


def _lease_row(le: Any, now: _dt.datetime, wide: bool) -> list[str]:
    return [le.metadata.name, le.spec.holder_identity or NONE, age(le.metadata.creation_timestamp, now)]


COLUMNS: dict[str, Columns] = {
    "Pod": Columns(("NAME", "READY", "STATUS", "RESTARTS", "AGE"),
                   ("IP", "NODE", "NOMINATED NODE", "READINESS GATES"), _pod_row),
    "Deployment": Columns(("NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"),
                          ("CONTAINERS", "IMAGES", "SELECTOR"), _deploy_row),
    "ReplicaSet": Columns(("NAME", "DESIRED", "CURRENT", "READY", "AGE"),
                          ("CONTAINERS", "IMAGES", "SELECTOR"), _rs_row),
    "Service": Columns(("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"), ("SELECTOR",), _svc_row),
    "Endpoints": Columns(("NAME", "ENDPOINTS", "AGE"), (), _ep_row),
    "Node": Columns(("NAME", "STATUS", "ROLES", "AGE", "VERSION"),
                    ("INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"), _node_row),
    "Namespace": Columns(("NAME", "STATUS", "AGE"), (), _ns_row),
    # Wide events replace the columns rather than append (kubectl's order).
    "Event": Columns(("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"),
                     ("LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN",
                      "COUNT", "NAME"), _event_row, name_first=False),
    "Lease": Columns(("NAME", "HOLDER", "AGE"), (), _lease_row),
}


def _default_row(o: Any, now: _dt.datetime, wide: bool) -> list[str]:
    return [o.metadata.name, age(o.metadata.creation_timestamp, now)]


def columns_for(kind: Kind) -> Columns:
    return COLUMNS.get(kind.kind, Columns(("NAME", "AGE"), (), _default_row))


@dataclass(frozen=True)
class TableOptions:
    wide: bool = False
    all_namespaces: bool = False  # NAMESPACE column first
    kind_prefix: bool = False  # NAME as deployment.apps/web (several types)
    show_labels: bool = False
    label_columns: tuple[str, ...] = ()  # -L key: one column per key
    watch_events: bool = False  # --output-watch-events: EVENT column first


def table_headers(kind: Kind, opts: TableOptions) -> list[str]:
    cols = columns_for(kind)
    if opts.wide and not cols.name_first:
        headers = list(cols.wide)
    else:
        headers = list(cols.headers) + (list(cols.wide) if opts.wide else [])
    if opts.all_namespaces and kind.namespaced:
        headers.insert(0, "NAMESPACE")
    headers += [k.rsplit("/", 1)[-1].upper() for k in opts.label_columns]
    if opts.show_labels:
        headers.append("LABELS")
    if opts.watch_events:
        headers.insert(0, "EVENT")
    return headers


def table_row(obj: Message, now: _dt.datetime, opts: TableOptions, event: str = "") -> list[str]:
    kind = meta.kind_of(obj)
    cols = columns_for(kind)
    cells = [str(c) for c in cols.row(obj, now, opts.wide)]
    if opts.kind_prefix and cols.name_first:
        cells[0] = f"{kind.lower}/{cells[0]}"
    md = obj.metadata  # type: ignore[attr-defined]
    if opts.all_namespaces and kind.namespaced:
        cells.insert(0, md.namespace)
    for k in opts.label_columns:
        cells.append(md.labels.get(k, ""))
    if opts.show_labels:
        cells.append(format_labels(md.labels))
    if opts.watch_events:
        cells.insert(0, event)
    return cells


def table(objs: Iterable[Message], kind: Kind, now: _dt.datetime, opts: TableOptions,
          writer: TableWriter | None = None, headers: bool = True) -> list[str]:
    """The lines of a kubectl table (header first unless headers=False)."""
    rows = [table_headers(kind, opts)] if headers else []
    rows += [table_row(o, now, opts) for o in objs]
    return (writer or TableWriter()).render(rows)


# ------------------------------------------------------- structured output


def object_dict(msg: Message) -> dict[str, Any]:
    """The object as kubectl's -o json shows it. The .proto files give
    Kubernetes' initialisms as json_name (spec.clusterIP, status.podIPs,
    containerID), so jq scripts and JSONPath written for kubectl work
    unchanged and the output applies back as is."""
    return meta.to_dict(msg)


def list_dict(items: list[dict[str, Any]]) -> dict[str, Any]:
    """kubectl's List wrapper for several objects."""
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def to_json(d: Any) -> str:
    """As kubectl -o json: 4-space indent, keys sorted (Go prints maps sorted)."""
    return json.dumps(d, indent=4, sort_keys=True, ensure_ascii=False)


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # Multi-line strings (messages, scripts in args) as block literals, as
    # kubectl prints them, instead of one long quoted line.
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    # A string that would read back as another type ("80", "true", a
    # timestamp) is double-quoted, as Go's YAML printer in kubectl does.
    if dumper.resolve(yaml.ScalarNode, data, (True, False)) != "tag:yaml.org,2002:str":
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(d: Any) -> str:
    """As kubectl -o yaml: block style, keys sorted, lists not indented."""
    return yaml.dump(d, Dumper=_Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True)


def name_of(obj: Message) -> str:
    """-o name: deployment.apps/web."""
    return f"{meta.kind_of(obj).lower}/{obj.metadata.name}"  # type: ignore[attr-defined]
