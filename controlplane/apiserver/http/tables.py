"""meta.k8s.io Table responses (kubectl's human output: get, get -w).

The cells come from pkapi.tables (kube-apiserver's columns per kind, shared
with pkctl) when it is present; otherwise from kube-apiserver's default
table convertor (Name, Created At). Rows carry PartialObjectMetadata
(kubectl computes NAMESPACE, --show-labels and -L from it), the full object
with includeObject=Object, or nothing with includeObject=None.

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf.message import Message

from pkapi import meta
from pkapi.errors import bad_request
from pkapi.meta import Kind

try:
    from pkapi import tables as _cells  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - before pkapi.tables exists
    _cells = None

DEFAULT_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "priority": 0,
     "description": "Name must be unique within a namespace."},
    {"name": "Created At", "type": "date", "format": "", "priority": 0,
     "description": "CreationTimestamp is a timestamp representing the server time when this object was created."},
]


def columns(kind: Kind) -> list[dict[str, Any]]:
    if _cells is not None:
        return list(_cells.column_definitions(kind.kind))
    return DEFAULT_COLUMNS


def cells(msg: Message, now: dt.datetime) -> list[Any]:
    if _cells is not None:
        return list(_cells.row_cells(msg, now))
    md = msg.metadata  # type: ignore[attr-defined]
    created = md.creation_timestamp.ToJsonString() if md.HasField("creation_timestamp") else ""
    return [md.name, created]


def _row_object(msg: Message, include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    d = meta.to_dict(msg)
    if include == "Object":
        return d
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": d.get("metadata", {})}


def table(kind: Kind, objs: list[Message], now: dt.datetime, version: str = "v1",
          list_meta: dict[str, Any] | None = None, include_object: str = "") -> dict[str, Any]:
    include = include_object or "Metadata"
    if include not in ("None", "Metadata", "Object"):
        raise bad_request(f'includeObject: Unsupported value: "{include_object}": supported values: '
                          '"None", "Metadata", "Object"')
    rows = []
    for m in objs:
        row: dict[str, Any] = {"cells": cells(m, now)}
        obj = _row_object(m, include)
        if obj is not None:
            row["object"] = obj
        rows.append(row)
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": dict(list_meta or {}),
            "columnDefinitions": columns(kind), "rows": rows}
