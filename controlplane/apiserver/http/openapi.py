"""/openapi/v3: the index and one document per group-version, as
pkapi.openapi generates them from the .proto files (schemas for `kubectl
explain`, a PATCH per kind with `fieldValidation`, so `kubectl apply|create
-f` leave validation to the server).

One addition here: the core/v1 document also has PATCH operations for the
core kinds this server does not serve (ConfigMap, Secret, ...). kubectl
validates a manifest on the server only when the document names its kind;
for any other kind it tries /openapi/v2 and fails the whole file with
"failed to download openapi". With them, a ConfigMap in a file fails alone,
in kubectl's words for an unknown kind ("resource mapping not found ...
ensure CRDs are installed first"), and the other documents still apply. A
kind of a group not served at all still fails that way: --validate=false.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from pkapi import openapi as generated

UNSERVED_CORE = ("ConfigMap", "Secret", "ServiceAccount", "PersistentVolumeClaim", "PersistentVolume",
                 "ReplicationController", "LimitRange", "ResourceQuota", "PodTemplate")
CORE = "api/v1"

_PARAMS = [{"name": n, "in": "query", "schema": {"type": t}} for n, t in
           (("dryRun", "string"), ("fieldManager", "string"), ("fieldValidation", "string"), ("force", "boolean"))]


def _unserved_ops() -> dict[str, Any]:
    out = {}
    for kind in UNSERVED_CORE:
        out[f"/api/v1/namespaces/{{namespace}}/{kind.lower()}s/{{name}}"] = {"patch": {
            "operationId": f"patchCoreV1Namespaced{kind}",
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": kind},
            "parameters": _PARAMS,
            "responses": {"200": {"description": "OK"}},
        }}
    return out


@cache
def document_json(path: str) -> bytes | None:
    """The document of `path` ("api/v1", "apis/apps/v1") serialised, or None."""
    try:
        doc = generated.document(path)
    except KeyError:
        return None
    if path == CORE:
        doc["paths"].update({p: op for p, op in _unserved_ops().items() if p not in doc["paths"]})
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def document(path: str) -> dict[str, Any] | None:
    data = document_json(path)
    return None if data is None else dict(json.loads(data))


@cache
def index() -> dict[str, Any]:
    out = {}
    for gv in generated.group_versions():
        data = document_json(gv)
        assert data is not None
        out[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={hashlib.sha512(data).hexdigest().upper()}"}
    return {"paths": out}
