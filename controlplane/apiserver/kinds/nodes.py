"""Nodes: the taints apply keeps."""

from __future__ import annotations

from google.protobuf.message import Message

from controlplane.apiserver.strategy import DefaultStrategy


class NodeStrategy(DefaultStrategy):
    def keep_on_apply(self, incoming: Message, new: Message, old: Message) -> None:
        # Registration and controllers own the taints the manifest omits.
        if not new.spec.taints:  # type: ignore[attr-defined]
            new.spec.taints.extend(old.spec.taints)  # type: ignore[attr-defined]
