"""meta.k8s.io Table responses (kubectl's human output: get, get -w): the
cells and column definitions are pkapi.tables', shared with pkctl; this
checks the includeObject parameter and sets the Table version kubectl asked
for (v1, or v1beta1 for old clients).

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf.message import Message

from pkapi import tables as cells
from pkapi.errors import bad_request
from pkapi.meta import Kind


def table(kind: Kind, objs: list[Message], now: dt.datetime, version: str = "v1",
          list_meta: dict[str, Any] | None = None, include_object: str = "") -> dict[str, Any]:
    include = include_object or "Metadata"
    if include not in cells.INCLUDE_OBJECT:
        raise bad_request(f'includeObject: Unsupported value: "{include_object}": supported values: '
                          '"None", "Metadata", "Object"')
    lm = list_meta or {}
    out = cells.table(objs, now, kind=kind.kind, resource_version=lm.get("resourceVersion", ""),
                      continue_token=lm.get("continue", ""), include_object=include)
    out["apiVersion"] = f"meta.k8s.io/{version}"
    return out
