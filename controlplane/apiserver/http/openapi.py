"""/openapi/v3: the index and one document per group-version.

The documents come from pkapi.openapi (generated from the .proto files,
with schemas for `kubectl explain`) when it is present. Otherwise each
document holds what kubectl's validation reads and nothing more: for every
kind, a PATCH operation with its x-kubernetes-group-version-kind and a
`fieldValidation` parameter, so `kubectl apply|create -f` leave validation
to the server (fieldValidation=Strict) instead of failing with "failed to
download openapi". It has no requestBody, so kubectl builds strategic merge
patches from its compiled-in types, which are right for every kind served.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from controlplane.apiserver.http import discovery

try:
    from pkapi import openapi as _generated  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - before pkapi.openapi exists
    _generated = None

# Kinds of Kubernetes' core/v1 that are not served: their PATCH operations
# tell kubectl to leave validation to the server, so a manifest naming one
# of them fails as kubectl says of an unknown kind ("resource mapping not
# found ... ensure CRDs are installed first") instead of failing the
# file's validation ("failed to download openapi"). A kind of a group not
# served at all still fails validation that way: use --validate=false.
UNSERVED_CORE = ("ConfigMap", "Secret", "ServiceAccount", "PersistentVolumeClaim", "PersistentVolume",
                 "ReplicationController", "LimitRange", "ResourceQuota", "PodTemplate")

_PARAMS = [{"name": n, "in": "query", "schema": {"type": t}} for n, t in
           (("dryRun", "string"), ("fieldManager", "string"), ("fieldValidation", "string"), ("force", "boolean"))]


def _path_of(gv: str) -> str:
    return f"api/{gv}" if "/" not in gv else f"apis/{gv}"


def _patch_op(path: str, group: str, version: str, kind: str) -> dict[str, Any]:
    return {path: {"patch": {
        "operationId": f"patch{kind}",
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
        "parameters": _PARAMS,
        "responses": {"200": {"description": "OK"}},
    }}}


@cache
def _minimal(path: str) -> dict[str, Any] | None:
    paths: dict[str, Any] = {}
    gv = path.removeprefix("api/") if path.startswith("api/") else path.removeprefix("apis/")
    kinds = discovery.kinds_of(gv)
    if kinds is None or _path_of(gv) != path:
        return None
    for k in kinds:
        ns = "namespaces/{namespace}/" if k.namespaced else ""
        paths.update(_patch_op(f"/{path}/{ns}{k.resource}/{{name}}", k.group, k.version, k.kind))
    if gv == "v1":
        for kind in UNSERVED_CORE:
            paths.update(_patch_op(f"/{path}/namespaces/{{namespace}}/{kind.lower()}s/{{name}}", "", "v1", kind))
    return _doc(paths)


def _doc(paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "components": {"schemas": {}}, "paths": paths}


def document(path: str) -> dict[str, Any] | None:
    """The document of `path` ("api/v1", "apis/apps/v1"), or None."""
    if _generated is not None:
        try:
            return dict(_generated.document(path))
        except KeyError:
            return None
    return _minimal(path)


def _hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()


def index() -> dict[str, Any]:
    if _generated is not None:
        return dict(_generated.index())
    out = {}
    for p in (_path_of(gv) for gv in discovery.group_versions()):
        doc = _minimal(p)
        assert doc is not None
        out[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={_hash(doc)}"}
    return {"paths": out}
