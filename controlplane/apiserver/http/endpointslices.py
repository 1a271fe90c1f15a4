"""discovery.k8s.io/v1 EndpointSlice, read-only, derived from Endpoints.

kubectl 1.32's `describe service` reads only EndpointSlices
(`labelSelector=kubernetes.io/service-name=<svc>`); PocketKube keeps
Endpoints, so each Endpoints object is shown as one slice per subset,
named `<service>-<n>`, labelled as the EndpointSlice controller labels
its own (kubernetes.io/service-name, endpointslice.kubernetes.io/managed-by).
Ready addresses have conditions.ready true, not-ready ones false. Only get
and list are served (and advertised): a slice has no life of its own.

slices_of is pure; the handlers read Endpoints through the Registry.
"""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf.message import Message

from pkapi import meta, selectors
from pkapi.errors import ApiError, bad_request, not_found

GROUP_VERSION = "discovery.k8s.io/v1"
RESOURCE = "endpointslices"
KIND = "EndpointSlice"
QUALIFIED = "endpointslices.discovery.k8s.io"
VERBS = ["get", "list"]
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
ENDPOINTS = meta.kind_by_resource("endpoints")


def _address(a: Any, ready: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [a.ip], "conditions": {"ready": ready, "serving": ready,
                                                                "terminating": False}}
    if a.node_name:
        out["nodeName"] = a.node_name
    if a.hostname:
        out["hostname"] = a.hostname
    ref = a.target_ref
    if ref.name:
        out["targetRef"] = {k: v for k, v in (("kind", ref.kind), ("namespace", ref.namespace), ("name", ref.name),
                                             ("uid", ref.uid)) if v}
    return out


def slices_of(ep: Message) -> list[dict[str, Any]]:
    """The EndpointSlices an Endpoints object stands for (one per subset; a
    Service with no endpoints has one empty slice, as Kubernetes')."""
    md = ep.metadata  # type: ignore[attr-defined]
    subsets = list(ep.subsets) or [None]  # type: ignore[attr-defined]
    out = []
    for i, sub in enumerate(subsets):
        smd: dict[str, Any] = {
            "name": f"{md.name}-{i}", "namespace": md.namespace, "resourceVersion": md.resource_version,
            "labels": {SERVICE_NAME: md.name, MANAGED_BY: CONTROLLER},
        }
        if md.uid:  # stable: the same slice has the same uid on every read
            smd["uid"] = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{md.uid}/{i}"))
        if md.HasField("creation_timestamp"):
            smd["creationTimestamp"] = md.creation_timestamp.ToJsonString()
        endpoints: list[dict[str, Any]] = []
        ports: list[dict[str, Any]] = []
        if sub is not None:
            endpoints = [_address(a, True) for a in sub.addresses] + [_address(a, False) for a in
                                                                    sub.not_ready_addresses]
            ports = [{k: v for k, v in (("name", p.name), ("port", p.port), ("protocol", p.protocol or "TCP")) if
                      v or k == "name"} for p in sub.ports]
        out.append({"kind": KIND, "apiVersion": GROUP_VERSION, "metadata": smd, "addressType": "IPv4",
                    "endpoints": endpoints, "ports": ports})
    return out


def resource_entry() -> dict[str, Any]:
    """Its legacy discovery entry (APIResourceList)."""
    return {"name": RESOURCE, "singularName": "endpointslice", "namespaced": True, "kind": KIND, "verbs": VERBS}


def aggregated_entry() -> dict[str, Any]:
    return {"resource": RESOURCE, "responseKind": {"group": "discovery.k8s.io", "version": "v1", "kind": KIND},
            "scope": "Namespaced", "singularResource": "endpointslice", "verbs": VERBS}


def parse(segments: list[str]) -> tuple[str, str]:
    """(namespace, name) of a path below /apis/discovery.k8s.io/v1."""
    if segments == [RESOURCE]:
        return "", ""
    if len(segments) in (3, 4) and segments[0] == "namespaces" and segments[2] == RESOURCE:
        return segments[1], segments[3] if len(segments) == 4 else ""
    raise ApiError("NotFound", "the server could not find the requested resource")


async def read(registry: Any, namespace: str, name: str, label_selector: str, field_selector: str
               ) -> tuple[list[dict[str, Any]], int]:
    """The slices of `namespace` ("" = all) matching the selectors, or the
    one named `name` (NotFound); and the revision they were read at."""
    assert ENDPOINTS is not None
    try:
        lsel = selectors.parse_label_selector(label_selector)
        fsel = selectors.parse_field_selector(field_selector)
    except selectors.SelectorError as e:
        raise bad_request(f"unable to parse requirement: {e}") from None
    selectors.check_field_selector(KIND, fsel)
    msgs, rev = await registry.list(ENDPOINTS, namespace)
    out = []
    for ep in msgs:
        for s in slices_of(ep):
            md = s["metadata"]
            if name and md["name"] != name:
                continue
            if lsel.matches(md["labels"]) and fsel.matches({"metadata.name": md["name"],
                                                            "metadata.namespace": md["namespace"]}):
                out.append(s)
    if name and not out:
        raise not_found(QUALIFIED, name)
    return out, rev
