"""PATCH and the scale subresource: read, change, write back through the
Registry's update (re-read and re-applied on a write conflict, as
kube-apiserver's GuaranteedUpdate), so a patch obeys every rule a PUT does.

The patch engines (JSON patch, JSON merge patch, strategic merge patch)
are pkapi.patch's, shared with `pkctl patch`; server-side apply is not
served yet (415).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from controlplane.apiserver.http import negotiate
from controlplane.apiserver.http.paths import Target
from controlplane.apiserver.registry import RETRIES, Registry
from pkapi import meta
from pkapi import patch as engines
from pkapi.errors import ApiError, bad_request, conflict, field_invalid, invalid


def apply_patch(doc: dict[str, Any], body: bytes, content_type: str, kind: str) -> dict[str, Any]:
    if content_type == engines.APPLY_PATCH:
        raise ApiError("UnsupportedMediaType", "server-side apply (application/apply-patch+yaml) is not served "
                       "yet: use client-side `kubectl apply` (without --server-side)")
    if content_type not in engines.PATCH_TYPES:
        raise negotiate.unsupported(content_type, (*engines.PATCH_TYPES, engines.APPLY_PATCH))
    try:
        return dict(engines.apply_patch(doc, body, content_type, kind))
    except engines.PatchError as e:
        raise ApiError(e.reason, e.message) from None


async def patch(registry: Registry, t: Target, body: bytes, content_type: str, dry_run: bool,
                validation: str, warnings: list[str]) -> Message:
    k = t.kind
    for _attempt in range(RETRIES):
        cur = await registry.get(k.resource, t.namespace, t.name)
        cur_rv = cur.metadata.resource_version  # type: ignore[attr-defined]
        doc = apply_patch(meta.to_dict(cur), body, content_type, k.kind)
        found: list[str] = []
        msg = negotiate.to_message(doc, k, validation, found)
        md = msg.metadata  # type: ignore[attr-defined]
        if md.name != t.name or (k.namespaced and md.namespace != t.namespace):
            raise bad_request("metadata.name and metadata.namespace may not be changed by a patch")
        if not md.resource_version:
            md.resource_version = cur_rv
        try:
            if t.subresource == "status":
                out = await registry.update_status(msg, dry_run, t.namespace)
            else:
                out = await registry.update(msg, dry_run, t.namespace)
        except ApiError as e:
            if e.reason == "Conflict" and md.resource_version == cur_rv:
                continue  # changed since our read: patch the new version
            raise
        warnings.extend(found)
        return out
    raise conflict(k.qualified, t.name)


def _replicas(doc: Any, name: str) -> tuple[int, str]:
    if not isinstance(doc, dict):
        raise bad_request('Scale in version "v1" cannot be handled as a Scale: the object must be a JSON object')
    if doc.get("kind", "Scale") != "Scale":
        raise bad_request(f'the kind in the data ({doc.get("kind")}) does not match the expected kind (Scale)')
    spec = doc.get("spec") or {}
    r = spec.get("replicas", 0) if isinstance(spec, dict) else None
    if isinstance(r, bool) or not isinstance(r, int):
        raise bad_request('Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal '
                          f'{type(r).__name__} into Go struct field ScaleSpec.spec.replicas of type int32')
    if r < 0:
        raise invalid("Scale", name, [field_invalid("spec.replicas", r, "must be greater than or equal to 0")])
    rv = (doc.get("metadata") or {}).get("resourceVersion") or ""
    return r, str(rv)


async def scale(registry: Registry, t: Target, body: bytes, content_type: str, method: str,
                dry_run: bool) -> Message:
    """PUT (a whole Scale; kubectl sends it with no Content-Type) or PATCH
    the scale subresource; returns the updated Deployment/ReplicaSet."""
    k = t.kind
    for _attempt in range(RETRIES):
        obj = await registry.get(k.resource, t.namespace, t.name)
        cur_rv = obj.metadata.resource_version  # type: ignore[attr-defined]
        if method == "PUT":
            doc = negotiate.parse_document(body, content_type or negotiate.JSON)
        else:
            doc = apply_patch(scale_of(obj), body, content_type, "Scale")
        replicas, rv = _replicas(doc, t.name)
        obj.spec.replicas = replicas  # type: ignore[attr-defined]
        obj.metadata.resource_version = rv or cur_rv  # type: ignore[attr-defined]
        try:
            return await registry.update(obj, dry_run, t.namespace)
        except ApiError as e:
            if e.reason == "Conflict" and (not rv or (method == "PATCH" and rv == cur_rv)):
                continue  # changed since our read, and the client named no version: again
            raise
    raise conflict(k.qualified, t.name)


def scale_of(obj: Message) -> dict[str, Any]:
    """autoscaling/v1 Scale of a Deployment or ReplicaSet."""
    md = obj.metadata  # type: ignore[attr-defined]
    spec, st = obj.spec, obj.status  # type: ignore[attr-defined]
    sel = spec.selector
    parts = [f"{k}={v}" for k, v in sorted(sel.match_labels.items())]
    for e in sel.match_expressions:
        vals = ",".join(e.values)
        op = e.operator
        parts.append({"In": f"{e.key} in ({vals})", "NotIn": f"{e.key} notin ({vals})",
                      "Exists": e.key, "DoesNotExist": f"!{e.key}"}.get(op, e.key))
    md_out: dict[str, Any] = {"name": md.name, "namespace": md.namespace, "uid": md.uid,
                              "resourceVersion": md.resource_version}
    if md.HasField("creation_timestamp"):
        md_out["creationTimestamp"] = md.creation_timestamp.ToJsonString()
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": md_out,
            "spec": {"replicas": spec.replicas}, "status": {"replicas": st.replicas, "selector": ",".join(parts)}}
