"""Object factories for the controller unit tests (manifests as a user
would write them; the in-process API server fills in the rest)."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from pkapi import meta
from pkapi.v1 import apps_pb2, core_pb2, meta_pb2

IMAGE = "pocketkube/hello:1"


def _template(labels: dict[str, str], image: str = IMAGE) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": image}]}}


def deployment(name: str = "web", replicas: int = 4, image: str = IMAGE, **spec: Any) -> apps_pb2.Deployment:
    labels = {"app": name}
    body = {"replicas": replicas, "selector": {"matchLabels": labels}, "template": _template(labels, image), **spec}
    return meta.from_dict({"apiVersion": "apps/v1", "kind": "Deployment",  # type: ignore[return-value]
                           "metadata": {"name": name, "namespace": "default"}, "spec": body}, apps_pb2.Deployment)


def replicaset(name: str = "web-abc", replicas: int = 3, labels: dict[str, str] | None = None,
               min_ready: int = 0) -> apps_pb2.ReplicaSet:
    labels = labels or {"app": "web", "pod-template-hash": "abc"}
    body = {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": labels},
            "template": _template(labels)}
    return meta.from_dict({"apiVersion": "apps/v1", "kind": "ReplicaSet",  # type: ignore[return-value]
                           "metadata": {"name": name, "namespace": "default"}, "spec": body}, apps_pb2.ReplicaSet)


def pod(name: str, labels: dict[str, str] | None = None, owner: Message | None = None, node: str = "",
        cpu: str = "") -> core_pb2.Pod:
    p: core_pb2.Pod = meta.from_dict({  # type: ignore[assignment]
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "web", "pod-template-hash": "abc"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": IMAGE}]},
    }, core_pb2.Pod)
    if owner is not None:
        p.metadata.owner_references.append(owner_ref(owner))
    if cpu:
        p.spec.containers[0].resources.requests["cpu"].string_value = cpu
    return p


def owner_ref(owner: Message, controller: bool = True) -> meta_pb2.OwnerReference:
    md = owner.metadata  # type: ignore[attr-defined]
    return meta_pb2.OwnerReference(api_version="apps/v1", kind=meta.kind_of(owner).kind, name=md.name, uid=md.uid,
                                   controller=controller, block_owner_deletion=True)


def node(name: str, cpu: str = "2", ready: bool = True) -> core_pb2.Node:
    return meta.from_dict({  # type: ignore[return-value]
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }, core_pb2.Node)


def set_ready(p: core_pb2.Pod, since: float) -> None:
    """Running and Ready since `since` (what a node's agent reports)."""
    p.status.phase = "Running"
    c = meta.condition(p.status.conditions, "Ready")
    if c is None:
        c = p.status.conditions.add(type="Ready")
    c.status = "True"
    c.last_transition_time.seconds = int(since)
