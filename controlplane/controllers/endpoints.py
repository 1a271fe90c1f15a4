"""Endpoints controller: for every Service with a selector, an Endpoints
object of the same name listing the pods that back it.

In PocketKube a pod is reached through its node: an address is the pod's
status.hostIP and a port is the host port the agent published for the
Service's targetPort (a number, or a named container port), found in the
pod's status.portMappings. Different pods of one Service usually have
different host ports, so addresses are grouped into one subset per
distinct port set (Kubernetes' own grouping rule, applied to host ports).
Ready pods go to `addresses`, others (not Ready, or terminating) to
`notReadyAddresses` (all to `addresses` with publishNotReadyAddresses).
Services without a selector are left alone: their Endpoints are the user's.

Concurrency and ordering (the informer + work-queue pattern): informers on
Services, Pods and Endpoints only enqueue Service keys ("ns/name"); workers
take keys from one WorkQueue, which never hands one key to two workers at
once, and sync(key) recomputes the whole Endpoints object from the caches
(level-triggered), so event order does not matter. A failed write (Conflict
with a newer Endpoints, or the API unreachable) requeues the key with
backoff. Workers start after all three caches have synced, so the first
pass never deletes or rewrites from a partial view.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from controlplane.controllers.base import Controller, SharedInformers
from pkapi import intstr, meta
from pkapi.errors import ApiError, is_already_exists, is_not_found
from pkapi.v1 import core_pb2, meta_pb2

log = logging.getLogger(__name__)

# Endpoints written by this controller carry this label so a user (or the
# test suite) can tell them apart; Kubernetes' own controller uses
# endpoints.kubernetes.io/managed-by on EndpointSlices.
MANAGED_BY = "endpoints.pocketkube.io/managed-by"
MANAGER = "endpoints-controller"


# ----------------------------------------------------------------- pure


def pod_ready(pod: core_pb2.Pod) -> bool:
    """Pure. Ready condition True, not terminating, phase not finished."""
    if pod.metadata.HasField("deletion_timestamp"):
        return False
    if pod.status.phase in ("Succeeded", "Failed"):
        return False
    c = meta.condition(pod.status.conditions, "Ready")
    return c is not None and c.status == "True"


def selector_matches(selector: Any, labels: Any) -> bool:
    """Pure. A Service selector (map) matches when every pair is present;
    an empty selector matches nothing (such Services are not managed)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def resolve_host_port(pod: core_pb2.Pod, sp: core_pb2.ServicePort) -> int | None:
    """Pure. The host port the pod's agent published for this Service port,
    or None (the pod does not expose it or has not been published yet)."""
    proto = sp.protocol or "TCP"
    target = intstr.value(sp.target_port) if sp.HasField("target_port") else None
    if target is None or target == 0 or target == "":
        target = sp.port
    if isinstance(target, str):
        # A named port: the mapping carries the container port's name; fall
        # back to the pod spec in case the agent did not record names.
        for m in pod.status.port_mappings:
            if m.name == target and (m.protocol or "TCP") == proto and m.host_port:
                return int(m.host_port)
        number = None
        for c in pod.spec.containers:
            for cp in c.ports:
                if cp.name == target and (cp.protocol or "TCP") == proto:
                    number = cp.container_port
        if number is None:
            return None
        target = number
    for m in pod.status.port_mappings:
        if m.container_port == target and (m.protocol or "TCP") == proto and m.host_port:
            return int(m.host_port)
    return None


def _address(pod: core_pb2.Pod) -> core_pb2.EndpointAddress:
    return core_pb2.EndpointAddress(
        ip=pod.status.host_ip,
        node_name=pod.spec.node_name,
        target_ref=meta_pb2.ObjectReference(
            kind="Pod",
            namespace=pod.metadata.namespace,
            name=pod.metadata.name,
            uid=pod.metadata.uid,
            resource_version=pod.metadata.resource_version,
        ),
    )


def compute_subsets(svc: core_pb2.Service, pods: Iterable[core_pb2.Pod]) -> list[core_pb2.EndpointSubset]:
    """Pure. The subsets of the Service's Endpoints, deterministic (sorted)
    so an unchanged set of pods gives an identical object."""
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[Any], list[Any]]] = {}
    publish_all = svc.spec.publish_not_ready_addresses
    for pod in pods:
        if not pod.status.host_ip or pod.status.phase in ("Succeeded", "Failed"):
            continue
        if not selector_matches(svc.spec.selector, pod.metadata.labels):
            continue
        ports = []
        for sp in svc.spec.ports:
            hp = resolve_host_port(pod, sp)
            if hp is not None:
                ports.append((sp.name, hp, sp.protocol or "TCP"))
        if not ports:
            continue
        ready, not_ready = groups.setdefault(tuple(sorted(ports)), ([], []))
        (ready if publish_all or pod_ready(pod) else not_ready).append(pod)
    out = []
    for ports_key in sorted(groups):
        ready, not_ready = groups[ports_key]
        order = lambda p: (p.status.host_ip, p.metadata.name)  # noqa: E731
        subset = core_pb2.EndpointSubset(
            addresses=[_address(p) for p in sorted(ready, key=order)],
            not_ready_addresses=[_address(p) for p in sorted(not_ready, key=order)],
            ports=[core_pb2.EndpointPort(name=n, port=hp, protocol=pr) for n, hp, pr in ports_key],
        )
        out.append(subset)
    return out


def _strip_rv(subsets: Iterable[core_pb2.EndpointSubset]) -> list[bytes]:
    """Subsets compared without the pods' resourceVersions (a pod status
    heartbeat must not rewrite Endpoints)."""
    out = []
    for s in subsets:
        c = core_pb2.EndpointSubset()
        c.CopyFrom(s)
        for a in list(c.addresses) + list(c.not_ready_addresses):
            a.target_ref.resource_version = ""
        out.append(c.SerializeToString(deterministic=True))
    return out


# ----------------------------------------------------------- controller


class EndpointsController(Controller):
    name = "endpoints"
    workers = 2

    def __init__(self, client: Any, config: Any, informers: SharedInformers) -> None:
        super().__init__()
        self.client = client
        self.services = informers.informer("services")
        self.pods = informers.informer("pods")
        self.endpoints = informers.informer("endpoints")
        self.informers = [self.services, self.pods, self.endpoints]
        self.services.add_handler(
            on_add=self._enqueue_obj, on_update=lambda o, n: self._enqueue_obj(n), on_delete=self._enqueue_obj
        )
        self.pods.add_handler(on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed)
        self.endpoints.add_handler(on_update=lambda o, n: self._enqueue_obj(n), on_delete=self._enqueue_obj)

    # Handlers only enqueue.
    def _enqueue_obj(self, obj: Any) -> None:
        self.queue.add(meta.ns_name(obj))

    def _pod_changed(self, pod: core_pb2.Pod) -> None:
        for svc in self.services.list(pod.metadata.namespace):
            if selector_matches(svc.spec.selector, pod.metadata.labels):
                self.queue.add(meta.ns_name(svc))

    def _pod_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        self._pod_changed(old)
        self._pod_changed(new)

    async def started(self) -> None:
        # Endpoints whose Service is gone (deleted while no leader ran).
        for ep in self.endpoints.list():
            if ep.metadata.labels.get(MANAGED_BY) == MANAGER:
                self.queue.add(meta.ns_name(ep))
        for svc in self.services.list():
            self.queue.add(meta.ns_name(svc))

    async def sync(self, key: str) -> None:
        ns, name = meta.split_key(key)
        svc = self.services.get(ns, name)
        current = self.endpoints.get(ns, name)
        if svc is None:
            if current is not None and current.metadata.labels.get(MANAGED_BY) == MANAGER:
                try:
                    await self.client.delete("endpoints", ns, name, resource_version=current.metadata.resource_version)
                except ApiError as err:
                    if not is_not_found(err):
                        raise
            return
        if not svc.spec.selector or (svc.spec.type == "ExternalName"):
            return  # user-managed Endpoints (or none): not ours
        subsets = compute_subsets(svc, self.pods.list(ns))
        labels = dict(svc.metadata.labels)
        labels[MANAGED_BY] = MANAGER
        if current is not None:
            if _strip_rv(current.subsets) == _strip_rv(subsets) and dict(current.metadata.labels) == labels:
                return
            ep = core_pb2.Endpoints()
            ep.CopyFrom(current)
            del ep.subsets[:]
            ep.subsets.extend(subsets)
            ep.metadata.labels.clear()
            ep.metadata.labels.update(labels)
            await self.client.update(ep)
            return
        ep = core_pb2.Endpoints(
            api_version="v1", kind="Endpoints",
            metadata=meta_pb2.ObjectMeta(name=name, namespace=ns, labels=labels),
            subsets=subsets,
        )
        try:
            await self.client.create(ep)
        except ApiError as err:
            if not is_already_exists(err):
                raise
            raise RuntimeError("Endpoints appeared meanwhile; resync") from err
