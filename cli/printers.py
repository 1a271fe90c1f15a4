"""How pkctl prints objects: kubectl's tables, ages, -o json/yaml/name.

Pure: no external calls or any I/O. Every function takes messages (or
dicts) and the current time and returns strings, so the unit tests build
objects in memory and compare text.

The columns and cells of each kind are pkapi.tables' (the HTTP API's
server-side printing uses the same), so pkctl and kubectl print alike.

Tables are laid out as Go's text/tabwriter does for kubectl (minimum
width 6, padding 3); `tabwrite` implements the general algorithm, which
`describe` uses with padding 2.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import yaml
from google.protobuf.message import Message

from pkapi import meta
from pkapi.meta import Kind
from pkapi.tables import NONE as NONE
from pkapi.tables import Columns, columns_for
from pkapi.tables import age as age
from pkapi.tables import event_sort_key as event_sort_key
from pkapi.tables import event_times as event_times
from pkapi.tables import format_endpoints as format_endpoints
from pkapi.tables import format_labels as format_labels
from pkapi.tables import human_duration as human_duration
from pkapi.tables import node_roles as node_roles
from pkapi.tables import node_status as node_status
from pkapi.tables import pod_ready as pod_ready
from pkapi.tables import pod_status_reason as pod_status_reason
from pkapi.tables import selector_text as selector_text
from pkapi.tables import service_cluster_ip as service_cluster_ip
from pkapi.tables import service_external_ip as service_external_ip
from pkapi.tables import service_ports as service_ports
from pkapi.tables import ts_datetime as ts_datetime
from pkapi.tables import ts_set as ts_set

# ------------------------------------------------------------------ time


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


@dataclass(frozen=True)
class TableOptions:
    wide: bool = False
    all_namespaces: bool = False  # NAMESPACE column first
    kind_prefix: bool = False  # NAME as deployment.apps/web (several types)
    show_labels: bool = False
    label_columns: tuple[str, ...] = ()  # -L key: one column per key
    watch_events: bool = False  # --output-watch-events: EVENT column first


def _columns(kind: Kind) -> Columns:
    return columns_for(kind.kind)


def _name_first(cols: Columns) -> bool:
    return cols.columns[0].format == "name"  # not events (LAST SEEN first)


def table_headers(kind: Kind, opts: TableOptions) -> list[str]:
    headers = [c.header for c in _columns(kind).visible(opts.wide)]
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
    cols = _columns(kind)
    cells = [str(c) for c in cols.row(obj, now, opts.wide)]
    if opts.kind_prefix and _name_first(cols):
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
