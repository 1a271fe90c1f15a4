"""Strict decoding of Kubernetes-shaped JSON into messages, with field paths.

Pure: no external calls or any I/O. One walk, driven by the message
descriptors (no per-field code), checks a manifest before protobuf parses it:

- unknown fields and duplicate fields are collected, all of them, into
  Kubernetes' strict-decoding message:
      strict decoding error: unknown field "spec.unknownField", duplicate field "spec.replicas"
- a value of the wrong JSON type stops decoding with Go's wording, as the
  API server's decoder does:
      Deployment in version "v1" cannot be handled as a Deployment: json:
      cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32
- `null` means "absent" (as in Kubernetes), except inside free-form values.

Only camelCase JSON names are accepted (protobuf's parser would also take
snake_case; Kubernetes does not).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pkapi import meta
from pkapi.errors import ApiError, bad_request

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: ("uint32", 0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: ("uint32", 0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: ("uint64", 0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: ("uint64", 0, 2**64 - 1),
}

# Well-known types that take a free-form or string JSON value.
_FREE_FORM = ("google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue")
_TIMESTAMP = "google.protobuf.Timestamp"


class DecodeError(ValueError):
    """Bad input; str() is the complete user-facing message."""


class _Obj(dict[str, Any]):
    """A JSON object that remembers keys it saw twice."""

    dups: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Obj:
    out = _Obj()
    out.dups = []
    for k, v in pairs:
        if k in out and k not in out.dups:
            out.dups.append(k)
        out[k] = v
    return out


def loads(text: str) -> Any:
    """json.loads that records duplicate keys (on _Obj.dups)."""
    return json.loads(text, object_pairs_hook=_pairs)


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def _go_type(f: FieldDescriptor, element: bool = False) -> str:
    repeated = f.is_repeated and not element
    mt = f.message_type
    if mt is not None and mt.GetOptions().map_entry:
        if element:
            return _go_type(mt.fields_by_name["value"])
        return f"map[string]{_go_type(mt.fields_by_name['value'])}"
    if mt is not None:
        if mt.full_name == _TIMESTAMP:
            base = "v1.Time"
        elif mt.full_name in _FREE_FORM:
            base = "intstr.IntOrString"
        else:
            base = f"v1.{mt.name}"
    elif f.type in _INT_RANGES:
        base = _INT_RANGES[f.type][0]
    elif f.type == FieldDescriptor.TYPE_BOOL:
        base = "bool"
    elif f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        base = "float64"
    else:
        base = "string"
    return f"[]{base}" if repeated else base


class _TypeError(Exception):
    pass


class _Walker:
    """path: Kubernetes' strict path (with [i] indices); gopath: Go's
    struct-field path (no indices), used in type errors."""

    def __init__(self) -> None:
        self.strict: list[str] = []

    @staticmethod
    def type_error(v: Any, owner: Descriptor, gopath: str, f: FieldDescriptor, element: bool = False) -> None:
        raise _TypeError(
            f"json: cannot unmarshal {_json_type(v)} into Go struct field {owner.name}.{gopath} "
            f"of type {_go_type(f, element)}"
        )

    def message(self, obj: Any, desc: Descriptor, path: str, gopath: str) -> dict[str, Any]:
        """Check obj against desc; return a clean dict (nulls dropped)."""
        out: dict[str, Any] = {}
        for k in getattr(obj, "dups", []):
            self.strict.append(f'duplicate field "{_join(path, k)}"')
        by_json = _names(desc)
        for k, v in obj.items():
            f = by_json.get(k)
            if f is None:
                self.strict.append(f'unknown field "{_join(path, k)}"')
                continue
            if v is None:
                continue
            out[f.json_name] = self.field(v, f, desc, _join(path, k), _join(gopath, k))
        return out

    def field(self, v: Any, f: FieldDescriptor, owner: Descriptor, path: str, gopath: str) -> Any:
        mt = f.message_type
        if mt is not None and mt.GetOptions().map_entry:
            if not isinstance(v, dict):
                self.type_error(v, owner, gopath, f)
            vf = mt.fields_by_name["value"]
            for k in getattr(v, "dups", []):
                self.strict.append(f'duplicate field "{_join(path, k)}"')
            res = {}
            for mk, mv in v.items():
                if mv is None and vf.message_type is None:
                    mv = ""
                res[mk] = self.value(mv, vf, owner, _join(path, mk), gopath, element=True)
            return res
        if f.is_repeated:
            if not isinstance(v, list):
                self.type_error(v, owner, gopath, f)
            return [self.value(x, f, owner, f"{path}[{i}]", gopath, element=True)
                    for i, x in enumerate(v) if x is not None]
        return self.value(v, f, owner, path, gopath)

    def value(
        self, v: Any, f: FieldDescriptor, owner: Descriptor, path: str, gopath: str, element: bool = False
    ) -> Any:
        mt = f.message_type
        if mt is not None:
            if mt.full_name in _FREE_FORM:
                return _plain(v)
            if mt.full_name == _TIMESTAMP:
                if not isinstance(v, str):
                    self.type_error(v, owner, gopath, f, element)
                try:
                    dt.datetime.fromisoformat(v)
                except ValueError:
                    raise _TypeError(
                        f'parsing time "{v}" as "2006-01-02T15:04:05Z07:00": cannot parse "{v}" as RFC 3339'
                    ) from None
                return v
            if not isinstance(v, dict):
                self.type_error(v, owner, gopath, f, element)
            return self.message(v, mt, path, gopath)
        if f.type in _INT_RANGES:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.type_error(v, owner, gopath, f, element)
            _, lo, hi = _INT_RANGES[f.type]
            if (isinstance(v, float) and not v.is_integer()) or not lo <= v <= hi:
                raise _TypeError(
                    f"json: cannot unmarshal number {v} into Go struct field {owner.name}.{gopath} "
                    f"of type {_go_type(f, element)}"
                )
            return int(v)
        if f.type == FieldDescriptor.TYPE_BOOL:
            if not isinstance(v, bool):
                self.type_error(v, owner, gopath, f, element)
            return v
        if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.type_error(v, owner, gopath, f, element)
            return v
        if f.type == FieldDescriptor.TYPE_ENUM:
            return v
        if not isinstance(v, str):
            self.type_error(v, owner, gopath, f, element)
        return v


_NAMES: dict[str, dict[str, FieldDescriptor]] = {}


def _names(desc: Any) -> dict[str, FieldDescriptor]:
    """JSON name -> field. The .proto files set json_name where Kubernetes
    spells an initialism in capitals (clusterIP, podCIDR, containerID)."""
    names = _NAMES.get(desc.full_name)
    if names is None:
        names = {f.json_name: f for f in desc.fields}
        _NAMES[desc.full_name] = names
    return names


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def strict_dict(d: Any, message: type[Message], kind_name: str = "", version: str = "v1",
                warnings: list[str] | None = None) -> Message:
    """Decode d into `message` strictly; DecodeError with Kubernetes' message.
    With a `warnings` list, unknown and duplicate fields are dropped and
    described there instead (fieldValidation Warn or Ignore); type errors
    are errors either way."""
    w = _Walker()
    desc: Any = message.DESCRIPTOR
    kind_name = kind_name or desc.name
    try:
        clean = w.message(d, desc, "", "")
    except _TypeError as e:
        raise DecodeError(f'{kind_name} in version "{version}" cannot be handled as a {kind_name}: {e}') from None
    if w.strict:
        if warnings is None:
            raise DecodeError("strict decoding error: " + ", ".join(w.strict))
        warnings.extend(w.strict)
    msg = message()
    try:
        json_format.ParseDict(clean, msg)
    except json_format.ParseError as e:
        # Values the walk lets through but protobuf rejects (a malformed timestamp).
        raise DecodeError(
            f'{kind_name} in version "{version}" cannot be handled as a {kind_name}: {_parse_error(str(e))}'
        ) from None
    return msg


def _parse_error(text: str) -> str:
    return text.replace("Failed to parse ", "failed to parse ")


def kind_of_dict(d: Any, raw: str = "") -> meta.Kind:
    """The served Kind a manifest names; ApiError BadRequest/NotFound with
    Kubernetes' wording when it names none."""
    if not isinstance(d, dict):
        raise bad_request(f"the object must be a JSON object, not {_json_type(d)}")
    kind_name, api_version = d.get("kind"), d.get("apiVersion")
    if not kind_name:
        raise bad_request(f"Object 'Kind' is missing in '{raw or json.dumps(d)}'")
    if not api_version:
        raise bad_request(f"Object 'apiVersion' is missing in '{raw or json.dumps(d)}'")
    k = meta.kind_by_name(kind_name) if isinstance(kind_name, str) else None
    if k is None or k.api_version != api_version:
        raise ApiError("NotFound", f'no matches for kind "{kind_name}" in version "{api_version}"')
    return k


def decode_dict(d: Any, raw: str = "") -> Message:
    """A manifest dict (from loads(), so duplicates are known) to its message."""
    k = kind_of_dict(d, raw)
    try:
        return strict_dict(d, k.message, k.kind, k.version)
    except DecodeError as e:
        raise bad_request(str(e)) from None


def decode_json(text: str) -> Message:
    """One JSON document (a Body.json) to its message; ApiError BadRequest."""
    # Parsing and the decoding walk recurse per level of nesting: nesting
    # deeper than Python's stack is refused (Go's decoder has a limit too).
    too_deep = bad_request("couldn't get version/kind; json parse error: exceeded max depth")
    try:
        d = loads(text)
    except ValueError as e:
        raise bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    except RecursionError:
        raise too_deep from None
    try:
        return decode_dict(d, text if len(text) < 200 else "")
    except RecursionError:
        raise too_deep from None
