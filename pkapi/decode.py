"""Strict decoding of Kubernetes-shaped JSON manifests into messages.

Pure: no external calls or any I/O. (Placeholder; the descriptor-driven
strict walk replaces this.)
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from pkapi import meta
from pkapi.errors import ApiError, bad_request


def decode_dict(d: Any, default_kind: str | None = None) -> Message:
    if not isinstance(d, dict):
        raise bad_request("the body must be a JSON object")
    kind_name = d.get("kind")
    k = meta.kind_by_name(kind_name) if isinstance(kind_name, str) else None
    if k is None:
        raise bad_request(f"no matches for kind {kind_name!r}")
    msg = k.message()
    try:
        json_format.ParseDict(d, msg)
    except json_format.ParseError as e:
        raise ApiError("BadRequest", f"{k.kind} in version \"{k.version}\" cannot be handled as a {k.kind}: {e}") from None
    return msg


def decode_json(text: str) -> Message:
    try:
        d = json.loads(text)
    except ValueError as e:
        raise bad_request(f"invalid JSON: {e}") from None
    return decode_dict(d)
