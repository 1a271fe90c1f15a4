"""Leases: the node heartbeats in kube-node-lease.

A renewal moves spec.renewTime on; like Kubernetes' Lease strategy, no
update of a Lease moves metadata.generation (a heartbeat is not a new
desired state).
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from google.protobuf.message import Message

from controlplane.apiserver.strategy import RETRIES, DefaultStrategy, Verbs
from pkapi.errors import ApiError, conflict, is_already_exists, is_not_found
from pkapi.v1 import core_pb2

NODE_LEASE_NAMESPACE = "kube-node-lease"


class LeaseStrategy(DefaultStrategy):
    def generation_changed(self, old: Message, new: Message) -> bool:
        return False


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def renew_node_lease(
    verbs: Verbs, node: str, duration_seconds: int, clock: Callable[[], dt.datetime] = _utcnow
) -> core_pb2.Lease:
    """Create or renew the Lease kube-node-lease/<node> (holder the node)
    through the registry's update path: a renewal is a patch (re-run on a
    conflict with a concurrent renewal); a Lease that is missing, or deleted
    under the renewal (node deleted, namespace emptied), is created."""

    def renew(lease: Message) -> None:
        spec = lease.spec  # type: ignore[attr-defined]
        spec.renew_time.FromDatetime(clock())
        spec.lease_duration_seconds = duration_seconds

    for _attempt in range(RETRIES):
        try:
            return _lease(await verbs.patch("leases", NODE_LEASE_NAMESPACE, node, renew))
        except ApiError as e:
            if not is_not_found(e):
                raise
        now = clock()
        lease = core_pb2.Lease()
        lease.metadata.name = node
        lease.metadata.namespace = NODE_LEASE_NAMESPACE
        lease.spec.holder_identity = node
        lease.spec.lease_duration_seconds = duration_seconds
        lease.spec.renew_time.FromDatetime(now)
        lease.spec.acquire_time.FromDatetime(now)
        try:
            return _lease(await verbs.create(lease))
        except ApiError as e:
            if not is_already_exists(e):
                raise
    raise conflict("leases.coordination.k8s.io", node)


def _lease(msg: Message) -> core_pb2.Lease:
    assert isinstance(msg, core_pb2.Lease), type(msg)
    return msg
