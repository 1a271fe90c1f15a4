"""Defaulting: fill in what Kubernetes' API server fills in, so stored
objects (and `get -o yaml`) look like Kubernetes'.

Pure: no external calls or any I/O; idempotent (defaulting a defaulted
object changes nothing), which Apply relies on to tell "unchanged" from
"configured". Server-set metadata (uid, creationTimestamp, generation,
namespace) is the API server's job, not this module's.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from pkapi import intstr

DEFAULT_GRACE = 30


def image_pull_policy(image: str) -> str:
    """Always for ":latest" or no tag, else IfNotPresent (a digest counts as
    a tag)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _probe(p: Any) -> None:
    if p.timeout_seconds == 0:
        p.timeout_seconds = 1
    if p.period_seconds == 0:
        p.period_seconds = 10
    if p.success_threshold == 0:
        p.success_threshold = 1
    if p.failure_threshold == 0:
        p.failure_threshold = 3
    if p.HasField("http_get"):
        if not p.http_get.path:
            p.http_get.path = "/"
        if not p.http_get.scheme:
            p.http_get.scheme = "HTTP"


def pod_spec(spec: Any) -> None:
    if not spec.restart_policy:
        spec.restart_policy = "Always"
    if not spec.HasField("termination_grace_period_seconds"):
        spec.termination_grace_period_seconds = DEFAULT_GRACE
    if not spec.dns_policy:
        spec.dns_policy = "ClusterFirst"
    if not spec.scheduler_name:
        spec.scheduler_name = "default-scheduler"
    if not spec.HasField("enable_service_links"):
        spec.enable_service_links = True
    for c in spec.containers:
        if not c.image_pull_policy and c.image:
            c.image_pull_policy = image_pull_policy(c.image)
        if not c.termination_message_path:
            c.termination_message_path = "/dev/termination-log"
        if not c.termination_message_policy:
            c.termination_message_policy = "File"
        for p in c.ports:
            if not p.protocol:
                p.protocol = "TCP"
        if c.HasField("resources") and c.resources.ByteSize() == 0:
            # A value struct in Kubernetes: `resources: {}` (as kubectl's
            # rollout undo sends it) is the same template as none at all.
            c.ClearField("resources")
        for name in ("liveness_probe", "readiness_probe", "startup_probe"):
            if c.HasField(name):
                _probe(getattr(c, name))
    for t in spec.tolerations:
        if not t.operator:
            t.operator = "Equal"


def deployment(d: Any) -> None:
    s = d.spec
    if not s.HasField("replicas"):
        s.replicas = 1
    if not s.strategy.type:
        s.strategy.type = "RollingUpdate"
    if s.strategy.type == "RollingUpdate":
        ru = s.strategy.rolling_update
        if not intstr.is_set(ru.max_unavailable):
            ru.max_unavailable.string_value = "25%"
        if not intstr.is_set(ru.max_surge):
            ru.max_surge.string_value = "25%"
    if not s.HasField("revision_history_limit"):
        s.revision_history_limit = 10
    if not s.HasField("progress_deadline_seconds"):
        s.progress_deadline_seconds = 600
    pod_spec(s.template.spec)


def replica_set(rs: Any) -> None:
    if not rs.spec.HasField("replicas"):
        rs.spec.replicas = 1
    pod_spec(rs.spec.template.spec)


def pod(p: Any) -> None:
    pod_spec(p.spec)


def service(svc: Any) -> None:
    s = svc.spec
    if not s.type:
        s.type = "ClusterIP"
    if not s.session_affinity:
        s.session_affinity = "None"
    if s.session_affinity == "ClientIP":
        cfg = s.session_affinity_config.client_ip
        if not cfg.HasField("timeout_seconds"):
            cfg.timeout_seconds = 10800
    if s.type != "ExternalName" and not s.internal_traffic_policy:
        s.internal_traffic_policy = "Cluster"
    if s.type in ("NodePort", "LoadBalancer") and not s.external_traffic_policy:
        s.external_traffic_policy = "Cluster"
    for p in s.ports:
        if not p.protocol:
            p.protocol = "TCP"
        if not intstr.is_set(p.target_port) or p.target_port == intstr.make(0):
            p.target_port.number_value = float(p.port)


def namespace(ns: Any) -> None:
    if not ns.status.phase:
        ns.status.phase = "Active"


def endpoints(ep: Any) -> None:
    for sub in ep.subsets:
        for p in sub.ports:
            if not p.protocol:
                p.protocol = "TCP"


def event(ev: Any) -> None:
    if not ev.type:
        ev.type = "Normal"
    if ev.count == 0:
        ev.count = 1


_BY_KIND = {
    "Deployment": deployment,
    "ReplicaSet": replica_set,
    "Pod": pod,
    "Service": service,
    "Namespace": namespace,
    "Endpoints": endpoints,
    "Event": event,
}


def apply(msg: Message) -> None:
    """Default `msg` in place (any kind; kinds without defaults are left)."""
    fn = _BY_KIND.get(msg.DESCRIPTOR.name)
    if fn is not None:
        fn(msg)
    if not msg.api_version or not msg.kind:  # type: ignore[attr-defined]
        from pkapi import meta

        k = meta.kind_of(msg)
        msg.api_version = k.api_version  # type: ignore[attr-defined]
        msg.kind = k.kind  # type: ignore[attr-defined]
