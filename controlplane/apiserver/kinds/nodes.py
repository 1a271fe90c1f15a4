"""Nodes: registration by their agent, and the taints apply keeps.

An agent registers its Node at start (and again after a control plane
restart): the first registration creates it; a later one merges the
agent's labels, annotations and podCIDR into the stored Node, keeping what
users and controllers set (unschedulable, taints, labels they added), and
takes the agent's status (its conditions only when it reports some).
"""

from __future__ import annotations

from google.protobuf.message import Message

from controlplane.apiserver.strategy import RETRIES, DefaultStrategy, Verbs
from pkapi import meta
from pkapi.errors import ApiError, conflict, is_already_exists, is_conflict, is_not_found
from pkapi.v1 import core_pb2


class NodeStrategy(DefaultStrategy):
    def keep_on_apply(self, incoming: Message, new: Message, old: Message) -> None:
        # Registration and controllers own the taints the manifest omits.
        if not new.spec.taints:  # type: ignore[attr-defined]
            new.spec.taints.extend(old.spec.taints)  # type: ignore[attr-defined]


async def register(verbs: Verbs, node: core_pb2.Node) -> core_pb2.Node:
    """Create the agent's Node, or merge it into the stored one (see module
    docstring); retried on conflicts with concurrent writers."""
    name = node.metadata.name
    if not name:
        raise ApiError("Invalid", 'The Node "" is invalid: metadata.name: Required value: name or generateName is required')
    for _attempt in range(RETRIES):
        try:
            existing = await verbs.get("nodes", "", name)
        except ApiError as e:
            if not is_not_found(e):
                raise
            try:
                return _node(await verbs.create(node))
            except ApiError as e2:
                if is_already_exists(e2):
                    continue
                raise
        assert isinstance(existing, core_pb2.Node)
        new = merged(existing, node)
        try:
            updated = _node(await verbs.update(new))
            status = meta.copy(updated)
            status.status.CopyFrom(node.status)
            if not node.status.conditions:
                del status.status.conditions[:]
                status.status.conditions.extend(existing.status.conditions)
            return _node(await verbs.update_status(status))
        except ApiError as e:
            if is_conflict(e) or is_not_found(e):
                continue
            raise
    raise conflict("nodes", name)


def merged(existing: core_pb2.Node, node: core_pb2.Node) -> core_pb2.Node:
    """The stored Node with the agent's labels, annotations and (unless one
    is set) podCIDR."""
    new = meta.copy(existing)
    for k, v in node.metadata.labels.items():
        new.metadata.labels[k] = v
    for k, v in node.metadata.annotations.items():
        new.metadata.annotations[k] = v
    if not new.spec.pod_cidr:
        new.spec.pod_cidr = node.spec.pod_cidr
    return new


def _node(msg: Message) -> core_pb2.Node:
    assert isinstance(msg, core_pb2.Node), type(msg)
    return msg
