"""The kinds PocketKube serves, and conversions between their forms.

Pure: no I/O. Every program (pkctl, agent, control plane) finds a kind's
message class, plural resource name, short names and scope here, so the
mapping is written once.

Forms of an object:
  message   the generated protobuf message (pkapi.v1.*_pb2)
  Object    api_pb2.Object, the oneof wrapper carried by the gRPC API
  dict      Kubernetes-shaped JSON (camelCase) as kubectl prints it
"""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, TypeVar

from google.protobuf.message import Message

from pkapi.v1 import api_pb2, apps_pb2, core_pb2

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Kind:
    kind: str  # "Deployment"
    resource: str  # plural: "deployments"
    singular: str  # "deployment"
    group: str  # "" for core, "apps"
    version: str  # "v1"
    namespaced: bool
    short_names: tuple[str, ...]
    message: type[Message]
    field: str  # field of api_pb2.Object's oneof: "deployment"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """kubectl's name for the resource in messages: "deployments.apps", "pods"."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def lower(self) -> str:
        """kubectl's prefix in `-o name` and apply output: "deployment.apps", "pod"."""
        return f"{self.singular}.{self.group}" if self.group else self.singular


KINDS: tuple[Kind, ...] = (
    Kind("Namespace", "namespaces", "namespace", "", "v1", False, ("ns",), core_pb2.Namespace, "namespace"),
    Kind("Node", "nodes", "node", "", "v1", False, ("no",), core_pb2.Node, "node"),
    Kind("Pod", "pods", "pod", "", "v1", True, ("po",), core_pb2.Pod, "pod"),
    Kind("ReplicaSet", "replicasets", "replicaset", "apps", "v1", True, ("rs",), apps_pb2.ReplicaSet, "replica_set"),
    Kind("Deployment", "deployments", "deployment", "apps", "v1", True, ("deploy",), apps_pb2.Deployment, "deployment"),
    Kind("Service", "services", "service", "", "v1", True, ("svc",), core_pb2.Service, "service"),
    Kind("Endpoints", "endpoints", "endpoints", "", "v1", True, ("ep",), core_pb2.Endpoints, "endpoints"),
    Kind("Event", "events", "event", "", "v1", True, ("ev",), core_pb2.Event, "event"),
    Kind("Lease", "leases", "lease", "coordination.k8s.io", "v1", True, (), core_pb2.Lease, "lease"),
)

_BY_KIND = {k.kind: k for k in KINDS}
_BY_RESOURCE = {k.resource: k for k in KINDS}
_BY_FIELD = {k.field: k for k in KINDS}
_BY_MESSAGE = {k.message.DESCRIPTOR.full_name: k for k in KINDS}
_BY_ANY_NAME: dict[str, Kind] = {}
for _k in KINDS:
    for _n in (_k.kind.lower(), _k.resource, _k.singular, *_k.short_names, _k.qualified, _k.lower):
        _BY_ANY_NAME[_n] = _k


def kind_by_name(kind: str) -> Kind | None:
    """By exact Kind name as written in a manifest ("Deployment")."""
    return _BY_KIND.get(kind)


def kind_by_resource(resource: str) -> Kind | None:
    """By plural resource name ("deployments")."""
    return _BY_RESOURCE.get(resource)


def lookup(name: str) -> Kind | None:
    """By anything a user may type: "deploy", "deployments", "Deployment", "deployments.apps"."""
    return _BY_ANY_NAME.get(name.lower())


def kind_of(msg: Message) -> Kind:
    return _BY_MESSAGE[msg.DESCRIPTOR.full_name]


# ------------------------------------------------------------------ Object


def wrap(msg: Message) -> api_pb2.Object:
    """A typed message into the api_pb2.Object oneof (copies)."""
    obj = api_pb2.Object()
    getattr(obj, kind_of(msg).field).CopyFrom(msg)
    return obj


def unwrap(obj: api_pb2.Object) -> Message:
    """The typed message inside an api_pb2.Object (not a copy)."""
    field = obj.WhichOneof("kind")
    if field is None:
        raise ValueError("empty Object")
    msg: Message = getattr(obj, field)
    return msg


# -------------------------------------------------------------------- dict


def _ints(value: Any) -> Any:
    # google.protobuf.Value holds numbers as doubles, so MessageToDict prints
    # targetPort 80 as 80.0. The schema has no float fields, so every
    # integral float came from a Value and is printed as an int.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def to_dict(msg: Message) -> dict[str, Any]:
    """Kubernetes-shaped JSON dict; apiVersion and kind always filled in."""
    from google.protobuf import json_format  # here, not at the top: pkctl apply does not need it (start-up)

    d: dict[str, Any] = _ints(json_format.MessageToDict(msg, preserving_proto_field_name=False))
    try:
        k = kind_of(msg)
    except KeyError:
        return d
    out: dict[str, Any] = {"apiVersion": k.api_version, "kind": k.kind}
    out.update({key: val for key, val in d.items() if key not in ("apiVersion", "kind")})
    return out


def from_dict(d: dict[str, Any], message: type[Message]) -> Message:
    """Parse a Kubernetes-shaped dict into `message` (lenient types are errors:
    ParseError). Strict decoding with field paths is the API server's job
    (pkapi.decode); this is for trusted input such as tests and fixtures."""
    from google.protobuf import json_format

    msg = message()
    json_format.ParseDict(d, msg)
    return msg


# ------------------------------------------------------------ meta helpers


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def set_timestamp(ts: Any, when: _dt.datetime | None = None) -> None:
    """Set a google.protobuf.Timestamp to `when` (default now), whole seconds
    as Kubernetes' metav1.Time."""
    when = when or now()
    ts.FromDatetime(when.replace(microsecond=0))


def new_uid() -> str:
    return str(uuid.uuid4())


def key(resource: str, namespace: str, name: str) -> str:
    """The etcd key of an object: /registry/<resource>/<namespace>/<name>;
    cluster-scoped kinds have no namespace segment."""
    if namespace:
        return f"/registry/{resource}/{namespace}/{name}"
    return f"/registry/{resource}/{name}"


def ns_name(msg: Message) -> str:
    """'namespace/name' (or 'name' for cluster-scoped), the work-queue key."""
    md = msg.metadata  # type: ignore[attr-defined]
    return f"{md.namespace}/{md.name}" if md.namespace else md.name


def split_key(k: str) -> tuple[str, str]:
    ns, _, name = k.rpartition("/")
    return ns, name


def controller_of(msg: Message) -> Any | None:
    """The ownerReference with controller=true, if any."""
    for ref in msg.metadata.owner_references:  # type: ignore[attr-defined]
        if ref.HasField("controller") and ref.controller:
            return ref
    return None


def condition(conditions: Iterable[Any], type_: str) -> Any | None:
    for c in conditions:
        if c.type == type_:
            return c
    return None


def copy(msg: M) -> M:
    """A deep copy of a message, of the same type: what a controller changes
    instead of the informer's read-only cached object."""
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def set_condition(conditions: Any, type_: str, status: str, reason: str = "", message: str = "", *,
                  now: float, message_counts: bool = True, update_time: bool = False) -> bool:
    """Set the condition of type_ in a repeated conditions field (Kubernetes'
    SetDeploymentCondition / SetNodeCondition): lastTransitionTime moves only
    when the status changes or the condition is new; lastUpdateTime (with
    update_time=True: Deployments' conditions have one) moves on every change. An unchanged
    status, reason and message (or status and reason alone, with
    message_counts=False, as Deployments compare) leaves it as it is.
    Returns whether anything changed."""
    cur = condition(conditions, type_)
    if cur is not None and cur.status == status and cur.reason == reason and (
            not message_counts or cur.message == message):
        return False
    new = conditions.add(type=type_) if cur is None else cur
    transition = cur is None or cur.status != status
    new.status, new.reason, new.message = status, reason, message
    when = int(now)
    if update_time:
        new.last_update_time.seconds, new.last_update_time.nanos = when, 0
    if transition:
        new.last_transition_time.seconds, new.last_transition_time.nanos = when, 0
    return True
