"""Label and field selectors: parse Kubernetes' syntax, match objects.

Pure: no external calls or any I/O. The API server filters List and Watch
results with these; controllers match pods against ReplicaSet selectors.

Label selector grammar (k8s.io/apimachinery/pkg/labels), comma = AND:
    key=value  key==value  key!=value  key in (a,b)  key notin (a,b)
    key  (exists)  !key  (does not exist)
Field selectors (k8s.io/apimachinery/pkg/fields): field=value, field==value,
field!=value, comma = AND, over the values object_fields() extracts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from google.protobuf.message import Message

from pkapi.errors import ApiError

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A selector that does not parse; str() is the user-facing reason."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and labels[self.key] in self.values
        # "!=" and "notin" match objects without the key too, as Kubernetes.
        return not has or labels[self.key] not in self.values

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{self.values[0]}"
        return f"{self.key} {self.op} ({','.join(self.values)})"


@dataclass(frozen=True)
class LabelSelectorExpr:
    requirements: tuple[Requirement, ...] = ()
    # A LabelSelector message that is nil selects nothing; an empty one all.
    nothing: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                     r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _check_key(key: str) -> None:
    name = key.rpartition("/")[2]
    if not key or not _KEY_RE.match(key) or len(name) > 63:
        raise SelectorError(f"invalid label key {key!r}")


def _check_value(v: str) -> None:
    if len(v) > 63 or not _VALUE_RE.match(v):
        raise SelectorError(f"invalid label value: {v!r}")


def _split_top(s: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("unbalanced parentheses")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise SelectorError("unbalanced parentheses")
    parts.append("".join(cur))
    return parts


_SET_RE = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")


def _parse_requirement(term: str) -> Requirement:
    t = term.strip()
    if not t:
        raise SelectorError("empty requirement")
    m = _SET_RE.match(t)
    if m:
        key, op, inner = m.group(1), m.group(2), m.group(3)
        _check_key(key)
        vals = tuple(v.strip() for v in inner.split(",")) if inner.strip() else ()
        if not vals:
            raise SelectorError(f"{key}: for 'in', 'notin' operators, values set can't be empty")
        for v in vals:
            _check_value(v)
        return Requirement(key, op, tuple(sorted(set(vals))))
    for op in ("!=", "==", "="):
        if op in t:
            key, _, value = t.partition(op)
            key, value = key.strip(), value.strip()
            _check_key(key)
            _check_value(value)
            return Requirement(key, "!=" if op == "!=" else "=", (value,))
    if t.startswith("!"):
        key = t[1:].strip()
        _check_key(key)
        return Requirement(key, "!")
    if re.search(r"\s", t) or any(c in t for c in "()<>"):
        # The API server prefixes "unable to parse requirement: " itself.
        raise SelectorError(f"{t!r}: expected KEY, !KEY, KEY=VALUE, KEY!=VALUE, KEY in (...) or KEY notin (...)")
    _check_key(t)
    return Requirement(t, "exists")


def parse_label_selector(s: str) -> LabelSelectorExpr:
    """Parse "app=web,tier!=db,env in (a,b),!legacy,gpu". Empty -> everything.
    Raises SelectorError."""
    if not s or not s.strip():
        return LabelSelectorExpr()
    return LabelSelectorExpr(tuple(_parse_requirement(t) for t in _split_top(s)))


def from_label_selector(msg: Any) -> LabelSelectorExpr:
    """From a LabelSelector message (matchLabels AND matchExpressions).
    None selects nothing; an empty selector selects everything (as Kubernetes'
    LabelSelectorAsSelector). Raises SelectorError on a bad operator."""
    if msg is None:
        return LabelSelectorExpr(nothing=True)
    reqs: list[Requirement] = []
    for k in sorted(msg.match_labels):
        reqs.append(Requirement(k, "=", (msg.match_labels[k],)))
    for e in msg.match_expressions:
        if e.operator == "In":
            reqs.append(Requirement(e.key, "in", tuple(e.values)))
        elif e.operator == "NotIn":
            reqs.append(Requirement(e.key, "notin", tuple(e.values)))
        elif e.operator == "Exists":
            reqs.append(Requirement(e.key, "exists"))
        elif e.operator == "DoesNotExist":
            reqs.append(Requirement(e.key, "!"))
        else:
            raise SelectorError(f"{e.operator!r} is not a valid label selector operator")
    return LabelSelectorExpr(tuple(reqs))


def selector_string(msg: Any) -> str:
    """A LabelSelector message as a selector string (for -l and describe)."""
    return str(from_label_selector(msg))


# ------------------------------------------------------------------ fields


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")
        return (have == self.value) if self.op == "=" else (have != self.value)


@dataclass(frozen=True)
class FieldSelectorExpr:
    requirements: tuple[FieldRequirement, ...] = field(default=())

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def fields(self) -> set[str]:
        return {r.field for r in self.requirements}

    def __str__(self) -> str:
        return ",".join(f"{r.field}{r.op}{r.value}" for r in self.requirements)


def parse_field_selector(s: str) -> FieldSelectorExpr:
    """Parse "metadata.name=x,spec.nodeName!=n1". Raises SelectorError."""
    if not s or not s.strip():
        return FieldSelectorExpr()
    reqs = []
    for term in s.split(","):
        t = term.strip()
        for op in ("!=", "==", "="):
            if op in t:
                f, _, v = t.partition(op)
                f = f.strip()
                if not f:
                    raise SelectorError(f"invalid selector: {s!r}; can't understand {t!r}")
                reqs.append(FieldRequirement(f, "!=" if op == "!=" else "=", v.strip()))
                break
        else:
            raise SelectorError(f"invalid selector: {s!r}; can't understand {t!r}")
    return FieldSelectorExpr(tuple(reqs))


# Which fields each kind supports in field selectors, beyond metadata.name and
# metadata.namespace (as Kubernetes' per-kind field label conversion).
SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "status.phase", "status.podIP",
            "status.nominatedNodeName"),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
    "Service": ("spec.clusterIP", "spec.type"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"),
    "ReplicaSet": ("status.replicas",),
}


def supported_fields(kind: str) -> tuple[str, ...]:
    return ("metadata.name", "metadata.namespace", *SUPPORTED_FIELDS.get(kind, ()))


def check_field_selector(kind: str, sel: FieldSelectorExpr) -> None:
    """ApiError BadRequest (kubectl's wording) for a field the kind does not
    support."""
    ok = supported_fields(kind)
    for r in sel.requirements:
        if r.field not in ok:
            raise ApiError("BadRequest", f'field label not supported: {r.field}')


def object_fields(msg: Message) -> dict[str, str]:
    """Field-selector values of an object: metadata.name, metadata.namespace
    and the kind's SUPPORTED_FIELDS, as strings."""
    md = msg.metadata  # type: ignore[attr-defined]
    out = {"metadata.name": md.name, "metadata.namespace": md.namespace}
    kind = msg.DESCRIPTOR.name
    if kind == "Pod":
        out["spec.nodeName"] = msg.spec.node_name  # type: ignore[attr-defined]
        out["spec.restartPolicy"] = msg.spec.restart_policy  # type: ignore[attr-defined]
        out["spec.schedulerName"] = msg.spec.scheduler_name  # type: ignore[attr-defined]
        out["status.phase"] = msg.status.phase  # type: ignore[attr-defined]
        out["status.podIP"] = msg.status.pod_ip  # type: ignore[attr-defined]
        out["status.nominatedNodeName"] = msg.status.nominated_node_name  # type: ignore[attr-defined]
    elif kind == "Node":
        out["spec.unschedulable"] = "true" if msg.spec.unschedulable else "false"  # type: ignore[attr-defined]
    elif kind == "Namespace":
        out["status.phase"] = msg.status.phase  # type: ignore[attr-defined]
    elif kind == "Service":
        out["spec.clusterIP"] = msg.spec.cluster_ip  # type: ignore[attr-defined]
        out["spec.type"] = msg.spec.type  # type: ignore[attr-defined]
    elif kind == "ReplicaSet":
        out["status.replicas"] = str(msg.status.replicas)  # type: ignore[attr-defined]
    elif kind == "Event":
        io = msg.involved_object  # type: ignore[attr-defined]
        out.update({
            "involvedObject.kind": io.kind,
            "involvedObject.namespace": io.namespace,
            "involvedObject.name": io.name,
            "involvedObject.uid": io.uid,
            "involvedObject.apiVersion": io.api_version,
            "involvedObject.resourceVersion": io.resource_version,
            "involvedObject.fieldPath": io.field_path,
            "reason": msg.reason,  # type: ignore[attr-defined]
            "reportingComponent": msg.reporting_component,  # type: ignore[attr-defined]
            "source": msg.source.component,  # type: ignore[attr-defined]
            "type": msg.type,  # type: ignore[attr-defined]
        })
    return out
