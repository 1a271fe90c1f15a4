"""From a pod's spec to container configurations. Pure: no I/O.

Container names: pk_<container>_<pod>_<namespace>_<uid>_<attempt>; attempt
counts restarts (it is the restartCount), so the previous container is kept
for `pkctl logs --previous` and lastState. Labels (base.LABEL_*) identify
node, pod and container, so agents sharing an engine never touch each
other's containers.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from agent.runtime.base import (
    LABEL_ATTEMPT,
    LABEL_CONTAINER,
    LABEL_NODE,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_PORTS,
    LABEL_SPEC_HASH,
    ContainerConfig,
    PortBinding,
)
from pkapi import quantity
from pkapi.v1 import core_pb2

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(s: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known variables are replaced, unknown
    references are left as written, $$ is a literal $."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _REF.sub(sub, s)


def field_ref(pod: core_pb2.Pod, path: str, node_name: str, node_ip: str) -> str:
    md = pod.metadata
    simple = {
        "metadata.name": md.name,
        "metadata.namespace": md.namespace,
        "metadata.uid": md.uid,
        "spec.nodeName": pod.spec.node_name or node_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "status.hostIP": node_ip,
        "status.podIP": node_ip,
    }
    if path in simple:
        return simple[path]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        src = md.labels if m.group(1) == "labels" else md.annotations
        return src.get(m.group(2), "")
    return ""


def container_env(
    pod: core_pb2.Pod, c: core_pb2.Container, node_name: str, node_ip: str, extra: dict[str, str]
) -> dict[str, str]:
    """The container's environment in Kubernetes' order: service links and
    the PocketKube basics first, then the container's env (which may refer to
    earlier variables as $(VAR) and overrides everything)."""
    env: dict[str, str] = dict(extra)
    env["POD_NAME"] = pod.metadata.name
    env["POD_NAMESPACE"] = pod.metadata.namespace
    env["NODE_NAME"] = node_name
    for e in c.env:
        if e.HasField("value_from") and e.value_from.HasField("field_ref"):
            env[e.name] = field_ref(pod, e.value_from.field_ref.field_path, node_name, node_ip)
        else:
            env[e.name] = expand(e.value, env)
    return env


def container_name(pod: core_pb2.Pod, c_name: str, attempt: int) -> str:
    md = pod.metadata
    return f"pk_{c_name}_{md.name}_{md.namespace}_{md.uid}_{attempt}"


def spec_hash(c: core_pb2.Container) -> str:
    """Hash of the container's spec: a running container whose spec hash
    differs is from an older spec (pods are immutable, but a recreated pod
    of the same uid is not possible, so this is informational)."""
    return hashlib.sha256(c.SerializeToString(deterministic=True)).hexdigest()[:12]


def ports_label(bindings: list[PortBinding], c: core_pb2.Container) -> str:
    names = {(p.container_port, (p.protocol or "TCP").upper()): p.name for p in c.ports}
    return json.dumps(
        [
            {
                "name": names.get((b.container_port, b.protocol), ""),
                "containerPort": b.container_port,
                "protocol": b.protocol,
                "hostIP": b.host_ip,
                "hostPort": b.host_port,
            }
            for b in bindings
        ],
        separators=(",", ":"),
    )


def parse_ports_label(s: str) -> list[PortBinding]:
    try:
        raw: Any = json.loads(s or "[]")
        return [PortBinding(int(p["containerPort"]), str(p["protocol"]), str(p["hostIP"]), int(p["hostPort"])) for p in raw]
    except (ValueError, KeyError, TypeError):
        return []


def limits(c: core_pb2.Container) -> tuple[int, int]:
    """(cpu nanos, memory bytes) from resources.limits; 0 = unlimited."""
    cpu = mem = 0
    lim = c.resources.limits
    if "cpu" in lim:
        cpu = quantity.cpu_millis(lim["cpu"]) * 1_000_000
    if "memory" in lim:
        mem = quantity.bytes_(lim["memory"])
    return cpu, mem


def pod_labels(pod: core_pb2.Pod, node_name: str) -> dict[str, str]:
    md = pod.metadata
    return {
        LABEL_NODE: node_name,
        LABEL_POD_UID: md.uid,
        LABEL_POD_NAMESPACE: md.namespace,
        LABEL_POD_NAME: md.name,
    }


def hostname(pod: core_pb2.Pod) -> str:
    return (pod.spec.hostname or pod.metadata.name)[:63]


def container_config(
    pod: core_pb2.Pod,
    c: core_pb2.Container,
    attempt: int,
    node_name: str,
    node_ip: str,
    bindings: list[PortBinding],
    extra_env: dict[str, str],
    dns: tuple[list[str], list[str], list[str]],
) -> ContainerConfig:
    env = container_env(pod, c, node_name, node_ip, extra_env)
    labels = pod_labels(pod, node_name)
    labels[LABEL_CONTAINER] = c.name
    labels[LABEL_ATTEMPT] = str(attempt)
    labels[LABEL_SPEC_HASH] = spec_hash(c)
    labels[LABEL_PORTS] = ports_label(bindings, c)
    cpu, mem = limits(c)
    return ContainerConfig(
        name=container_name(pod, c.name, attempt),
        image=c.image,
        labels=labels,
        command=[expand(s, env) for s in c.command] if c.command else None,
        args=[expand(s, env) for s in c.args] if c.args else None,
        env=env,
        working_dir=c.working_dir,
        hostname=hostname(pod),
        ports=bindings,
        cpu_nanos=cpu,
        memory_bytes=mem,
        dns_servers=dns[0],
        dns_search=dns[1],
        dns_options=dns[2],
        stdin=c.stdin,
        tty=c.tty,
    )
