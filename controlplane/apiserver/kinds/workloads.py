"""Deployments and ReplicaSets: status is the controllers'; apply leaves
the scale and `rollout restart`'s stamp alone."""

from __future__ import annotations

from google.protobuf.message import Message

from controlplane.apiserver.strategy import ResetStatusStrategy, replace_keeping_system_keys


class WorkloadStrategy(ResetStatusStrategy):
    def keep_on_apply(self, incoming: Message, new: Message, old: Message) -> None:
        # A manifest without replicas leaves the scale to `scale` (kubectl's
        # three-way merge does the same when replicas was never applied).
        if not incoming.spec.HasField("replicas") and old.spec.HasField("replicas"):  # type: ignore[attr-defined]
            new.spec.replicas = old.spec.replicas  # type: ignore[attr-defined]
        # `rollout restart` stamps kubectl.kubernetes.io/restartedAt on the
        # template; re-applying the manifest must not undo it (a rollout).
        replace_keeping_system_keys(
            new.spec.template.metadata.annotations,  # type: ignore[attr-defined]
            incoming.spec.template.metadata.annotations,  # type: ignore[attr-defined]
            old.spec.template.metadata.annotations,  # type: ignore[attr-defined]
        )
