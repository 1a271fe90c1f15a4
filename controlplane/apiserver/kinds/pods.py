"""Pods: created Pending, deleted with a grace period while a node runs
them, bound to a node once (pods/binding)."""

from __future__ import annotations

from google.protobuf.message import Message

from controlplane.apiserver.strategy import ResetStatusStrategy, uid_conflict
from pkapi import defaults
from pkapi.errors import conflict
from pkapi.v1 import api_pb2, core_pb2


class PodStrategy(ResetStatusStrategy):
    def prepare_create(self, obj: Message) -> None:
        super().prepare_create(obj)
        obj.status.phase = "Pending"  # type: ignore[attr-defined]

    def grace(self, old: Message, requested: int | None) -> int:
        """The request's grace, else the pod's terminationGracePeriodSeconds,
        else the default; none for a pod nothing runs; never longer than
        a grace already given."""
        spec, status, md = old.spec, old.status, old.metadata  # type: ignore[attr-defined]
        if requested is not None:
            grace = requested
        elif spec.HasField("termination_grace_period_seconds"):
            grace = spec.termination_grace_period_seconds
        else:
            grace = defaults.DEFAULT_GRACE
        # Nothing runs an unbound or finished pod: no grace needed.
        if not spec.node_name or status.phase in ("Succeeded", "Failed"):
            grace = 0
        if md.HasField("deletion_timestamp") and md.HasField("deletion_grace_period_seconds"):
            grace = min(grace, md.deletion_grace_period_seconds)
        return int(grace)

    def keep_on_apply(self, incoming: Message, new: Message, old: Message) -> None:
        if not new.spec.node_name:  # type: ignore[attr-defined]
            new.spec.node_name = old.spec.node_name  # type: ignore[attr-defined]


def bind_onto(msg: Message, b: api_pb2.Binding) -> None:
    """Kubernetes' binding checks, then spec.nodeName (in place)."""
    assert isinstance(msg, core_pb2.Pod), type(msg)
    pod = msg
    md = pod.metadata
    if b.uid and md.uid != b.uid:
        raise uid_conflict("pods", md.name, b.uid, md.uid)
    if md.HasField("deletion_timestamp"):
        raise conflict("pods", md.name, f"pod {md.name} is being deleted, cannot be assigned to a host")
    if pod.spec.node_name:
        raise conflict("pods", md.name, f'pod {md.name} is already assigned to node "{pod.spec.node_name}"')
    pod.spec.node_name = b.node

