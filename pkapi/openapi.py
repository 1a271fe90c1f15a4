"""OpenAPI v3 documents of the HTTP API, generated from the .proto schema.

Pure: no external calls or any I/O. The documents are built from the
message descriptors of pkapi/v1 (the one source of truth for what an
object holds) and the .proto comments (pkapi/v1/docs.py, which
scripts/gendocs.py compiles with protoc's source info in `make proto`;
`make verify-proto` checks it is current). The comments are compiled ahead
rather than parsed when the server starts because the generated *_pb2
modules drop them, and a checked-in, verified file keeps the control plane
free of protoc at run time.

  /openapi/v3                  index(): {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}
  /openapi/v3/<gv>             document(gv) / document_json(gv), gv as in group_versions()

What kubectl reads from them:
- `apply`/`create` validation: each kind's PATCH operation, carrying
  `x-kubernetes-group-version-kind` and a `fieldValidation` parameter, makes
  kubectl leave validation to the server (`?fieldValidation=Strict`).
  The PATCH operations have no requestBody on purpose: kubectl then computes
  apply's strategic merge patches from its compiled-in Kubernetes types
  rather than from these documents.
- `explain`: `components.schemas` named as Kubernetes names them
  (io.k8s.api.apps.v1.Deployment, io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta),
  the kinds with `x-kubernetes-group-version-kind`, descriptions,
  `required`, references as `allOf: [{$ref}]`, and Kubernetes' formats:
  times are `date-time` strings (meta.v1.Time), IntOrString fields
  (targetPort, maxSurge) `int-or-string`, resource maps Quantity.
- Patch strategies (`x-kubernetes-patch-strategy`, `-merge-key`) come
  from pkapi.patch's table, the one the server merges with.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from pkapi import meta, patch
from pkapi.v1.docs import DOCS

# Message and field descriptors (the C implementation's classes differ from
# the pure-Python ones that the stubs name, so they are typed loosely).
Descriptor = Any

REF = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
TIME = f"{META}.Time"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
SCALE = "io.k8s.api.autoscaling.v1.Scale"

# Messages whose Kubernetes package is not their .proto file's.
_PACKAGES = {
    "pkapi.v1.ObjectReference": "io.k8s.api.core.v1",
    "pkapi.v1.Lease": "io.k8s.api.coordination.v1",
    "pkapi.v1.LeaseSpec": "io.k8s.api.coordination.v1",
}
_FILE_PACKAGES = {
    "pkapi/v1/meta.proto": META,
    "pkapi/v1/core.proto": "io.k8s.api.core.v1",
    "pkapi/v1/apps.proto": "io.k8s.api.apps.v1",
}

# Required fields, as Kubernetes' schemas mark them (+required / no omitempty).
REQUIRED: dict[str, list[str]] = {
    "DeploymentSpec": ["selector", "template"],
    "ReplicaSetSpec": ["selector"],
    "PodSpec": ["containers"],
    "Container": ["name"],
    "ContainerPort": ["containerPort"],
    "EnvVar": ["name"],
    "ServicePort": ["port"],
    "EndpointPort": ["port"],
    "EndpointAddress": ["ip"],
    "OwnerReference": ["apiVersion", "kind", "name", "uid"],
    "LabelSelectorRequirement": ["key", "operator"],
    "NodeAddress": ["type", "address"],
    "Taint": ["key", "effect"],
    "Condition": ["type", "status"],
    "HTTPHeader": ["name", "value"],
    "HTTPGetAction": ["port"],
    "TCPSocketAction": ["port"],
    "ObjectFieldSelector": ["fieldPath"],
    "Event": ["metadata", "involvedObject"],
}

# Kubernetes' enum values of string fields, which explain lists.
ENUMS: dict[tuple[str, str], list[str]] = {
    ("DeploymentStrategy", "type"): ["Recreate", "RollingUpdate"],
    ("ServiceSpec", "type"): ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    ("ServiceSpec", "sessionAffinity"): ["ClientIP", "None"],
    ("ServiceSpec", "externalTrafficPolicy"): ["Cluster", "Local"],
    ("ServiceSpec", "internalTrafficPolicy"): ["Cluster", "Local"],
    ("ServicePort", "protocol"): ["TCP", "UDP"],
    ("ContainerPort", "protocol"): ["TCP", "UDP"],
    ("EndpointPort", "protocol"): ["TCP", "UDP"],
    ("Container", "imagePullPolicy"): ["Always", "IfNotPresent", "Never"],
    ("PodSpec", "restartPolicy"): ["Always", "Never", "OnFailure"],
    ("PodSpec", "dnsPolicy"): ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
    ("PodStatus", "phase"): ["Failed", "Pending", "Running", "Succeeded", "Unknown"],
    ("NamespaceStatus", "phase"): ["Active", "Terminating"],
    ("Taint", "effect"): ["NoExecute", "NoSchedule", "PreferNoSchedule"],
    ("Toleration", "effect"): ["NoExecute", "NoSchedule", "PreferNoSchedule"],
    ("Toleration", "operator"): ["Equal", "Exists"],
}

# Kubernetes' descriptions of the fields every kind has, where the .proto says nothing.
_COMMON = {
    "apiVersion": "APIVersion defines the versioned schema of this representation of an object. Servers should "
                  "convert recognized schemas to the latest internal value, and may reject unrecognized values.",
    "kind": "Kind is a string value representing the REST resource this object represents. Servers may infer "
            "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.",
    "metadata": "Standard object's metadata.",
    "spec": "Specification of the desired behavior of the object.",
    "status": "Most recently observed status of the object. Populated by the system. Read-only.",
}

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_INT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}

# Schemas not generated from a message: well-known protobuf types in Kubernetes' form, and Scale.
_FIXED: dict[str, dict[str, Any]] = {
    TIME: {"description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON. "
                          "Wrappers are provided for many of the factory methods that the time package offers.",
           "type": "string", "format": "date-time"},
    INT_OR_STRING: {"description": "IntOrString is a type that can hold an int32 or a string. When used in JSON "
                                   "or YAML marshalling and unmarshalling, it produces or consumes the inner type.",
                    "format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]},
    QUANTITY: {"description": "Quantity is a fixed-point representation of a number: a plain number (2, 0.5), "
                              "a binary-SI suffixed one (128Mi, 1Gi) or a decimal-SI one (500m, 1k).",
               "oneOf": [{"type": "string"}, {"type": "number"}]},
    "io.k8s.api.autoscaling.v1.ScaleSpec": {
        "description": "ScaleSpec describes the attributes of a scale subresource.", "type": "object",
        "properties": {"replicas": {"description": "replicas is the desired number of instances for the scaled "
                                                   "object.", "type": "integer", "format": "int32"}}},
    "io.k8s.api.autoscaling.v1.ScaleStatus": {
        "description": "ScaleStatus represents the current status of a scale subresource.", "type": "object",
        "required": ["replicas"],
        "properties": {
            "replicas": {"description": "replicas is the actual number of observed instances of the scaled object.",
                         "type": "integer", "format": "int32", "default": 0},
            "selector": {"description": "selector is the label query over pods that should match the replicas "
                                        "count, as a label selector string.", "type": "string"}}},
    SCALE: {
        "description": "Scale represents a scaling request for a resource.", "type": "object",
        "properties": {
            "apiVersion": {"description": _COMMON["apiVersion"], "type": "string"},
            "kind": {"description": _COMMON["kind"], "type": "string"},
            "metadata": {"allOf": [{"$ref": f"{REF}{META}.ObjectMeta"}], "default": {},
                         "description": _COMMON["metadata"]},
            "spec": {"allOf": [{"$ref": f"{REF}io.k8s.api.autoscaling.v1.ScaleSpec"}], "default": {},
                     "description": "spec defines the behavior of the scale."},
            "status": {"allOf": [{"$ref": f"{REF}io.k8s.api.autoscaling.v1.ScaleStatus"}], "default": {},
                       "description": "status is the current status of the scale. Read-only."}},
        "x-kubernetes-group-version-kind": [{"group": "autoscaling", "kind": "Scale", "version": "v1"}]},
    f"{META}.ListMeta": {
        "description": "ListMeta describes metadata that synthetic resources must have, including lists.",
        "type": "object",
        "properties": {
            "continue": {"description": "continue may be set if the user set a limit on the number of items "
                                        "returned, and indicates that the server has more data available.",
                         "type": "string"},
            "remainingItemCount": {"description": "The number of subsequent items in the list which are not "
                                                  "included in this list response.",
                                   "type": "integer", "format": "int64"},
            "resourceVersion": {"description": "The version of the list: a watch from it sees the changes made "
                                               "after it.", "type": "string"}}},
}

SCALABLE = ("Deployment", "ReplicaSet")
_WITH_STATUS = ("Namespace", "Node", "Pod", "Service", "ReplicaSet", "Deployment")


def schema_name(desc: Descriptor) -> str:
    """Kubernetes' schema name of a pkapi.v1 message: io.k8s.api.apps.v1.Deployment."""
    pkg = _PACKAGES.get(desc.full_name) or _FILE_PACKAGES.get(desc.file.name, "io.k8s.pocketkube.v1")
    return f"{pkg}.{desc.name}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF + name}


def _value_schema(f: Any, in_map: bool, deps: set[Descriptor]) -> dict[str, Any]:
    """The schema of one value of field f (an element, for lists and maps)."""
    if f.type != FieldDescriptor.TYPE_MESSAGE:
        return dict(_SCALARS.get(f.type, {"type": "string"}))
    m = f.message_type
    if m.full_name == "google.protobuf.Timestamp":
        return _ref(TIME)
    if m.full_name == "google.protobuf.Value":
        return _ref(QUANTITY if in_map else INT_OR_STRING)
    if m.full_name == "google.protobuf.Struct":
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    deps.add(m)
    return {"allOf": [_ref(schema_name(m))], "default": {}}


def _property(owner: Descriptor, f: Any, deps: set[Descriptor]) -> dict[str, Any]:
    is_map = f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.GetOptions().map_entry
    if is_map:
        value = f.message_type.fields_by_name["value"]
        prop: dict[str, Any] = {"type": "object", "additionalProperties": _value_schema(value, True, deps)}
    elif f.is_repeated:
        prop = {"type": "array", "items": _value_schema(f, False, deps)}
    else:
        prop = _value_schema(f, False, deps)
        if "$ref" in prop:  # a description beside a $ref is ignored in OpenAPI 3.0: wrap it
            prop = {"allOf": [prop]}
    doc = DOCS.get(owner.full_name, {}).get(f.json_name) or (
        _COMMON.get(f.json_name, "") if meta.kind_by_name(owner.name) else "")
    if doc:
        prop["description"] = doc
    enum = ENUMS.get((owner.name, f.json_name))
    if enum:
        prop["enum"] = enum
    pf = patch.field_of(owner.name, f.json_name)
    strategies = [s for s, on in (("merge", pf.merge), ("retainKeys", pf.retain_keys)) if on]
    if strategies:
        prop["x-kubernetes-patch-strategy"] = ",".join(strategies)
    if pf.key:
        prop["x-kubernetes-patch-merge-key"] = pf.key
        prop["x-kubernetes-list-type"] = "map"
        prop["x-kubernetes-list-map-keys"] = [pf.key]
    return prop


def message_schema(desc: Descriptor, deps: set[Descriptor] | None = None) -> dict[str, Any]:
    """The schema of one message (its message-typed fields are added to deps)."""
    deps = deps if deps is not None else set()
    s: dict[str, Any] = {"type": "object"}
    doc = DOCS.get(desc.full_name, {}).get("")
    if doc:
        s["description"] = doc
    s["properties"] = {f.json_name: _property(desc, f, deps) for f in sorted(desc.fields, key=lambda f: f.json_name)}
    required = [r for r in REQUIRED.get(desc.name, []) if r in s["properties"]]
    if required:
        s["required"] = required
    k = meta.kind_by_name(desc.name)
    if k is not None and k.message.DESCRIPTOR is desc:
        s["x-kubernetes-group-version-kind"] = [{"group": k.group, "kind": k.kind, "version": k.version}]
    return s


def _list_schema(k: meta.Kind) -> dict[str, Any]:
    return {
        "description": f"{k.kind}List is a list of {k.kind} objects.", "type": "object", "required": ["items"],
        "properties": {
            "apiVersion": {"description": _COMMON["apiVersion"], "type": "string"},
            "items": {"description": f"Items is the list of {k.kind} objects.", "type": "array",
                      "items": {"allOf": [_ref(schema_name(k.message.DESCRIPTOR))], "default": {}}},
            "kind": {"description": _COMMON["kind"], "type": "string"},
            "metadata": {"allOf": [_ref(f"{META}.ListMeta")], "default": {},
                         "description": "Standard list metadata."},
        },
        "x-kubernetes-group-version-kind": [{"group": k.group, "kind": f"{k.kind}List", "version": k.version}],
    }


# ------------------------------------------------------------------ group versions


def gv_path(group: str, version: str) -> str:
    """"api/v1" for the core group, "apis/<group>/<version>" otherwise."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def group_versions() -> list[str]:
    """The documents served, one per group version of the served kinds."""
    return sorted({gv_path(k.group, k.version) for k in meta.KINDS})


def kinds_of(gv: str) -> list[meta.Kind]:
    return [k for k in meta.KINDS if gv_path(k.group, k.version) == gv]


# ------------------------------------------------------------------ paths

_Q = "query"


def _param(name: str, type_: str, description: str, where: str = _Q, required: bool = False) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "description": description, "schema": {"type": type_}}
    if where != _Q or required:
        p["required"] = True
    if where == _Q:
        p["uniqueItems"] = True
    return p


_DRY_RUN = _param("dryRun", "string", "When present, indicates that modifications should not be persisted. "
                  "The only valid value is All: all dry run stages are processed.")
_FIELD_MANAGER = _param("fieldManager", "string", "fieldManager is a name associated with the actor or entity "
                        "that is making these changes.")
_FIELD_VALIDATION = _param("fieldValidation", "string", "fieldValidation instructs the server on how to handle "
                           "objects in the request containing unknown or duplicate fields. Valid values are: "
                           "Ignore, Warn and Strict (the default: fail the request).")
_FORCE = _param("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire "
                "conflicting fields owned by other people.")
_PRETTY = _param("pretty", "string", "If 'true', then the output is pretty printed.")
_LIST_PARAMS = [
    _param("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
    _param("continue", "string", "The continue option should be set when retrieving more results from the server."),
    _param("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields."),
    _param("labelSelector", "string", "A selector to restrict the list of returned objects by their labels."),
    _param("limit", "integer", "limit is a maximum number of responses to return for a list call."),
    _param("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request "
           "may be served from."),
    _param("timeoutSeconds", "integer", "Timeout for the list/watch call."),
    _param("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, "
           "update, and remove notifications."),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _param("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
    _param("propagationPolicy", "string", "Whether and how garbage collection will be performed: Orphan, "
           "Background or Foreground."),
]
_PATCH_TYPES = [patch.JSON_PATCH, patch.MERGE_PATCH, patch.STRATEGIC_MERGE_PATCH, patch.APPLY_PATCH]


def _camel(group: str) -> str:
    if not group:
        return "Core"
    return "".join(p[:1].upper() + p[1:] for p in group.split(".")[0].split("-"))


def _op(action: str, op_id: str, k: meta.Kind, schema: str, gvk: dict[str, str], params: list[dict[str, Any]],
        description: str, code: str = "200") -> dict[str, Any]:
    return {
        "description": description,
        "operationId": op_id,
        "parameters": params,
        "responses": {code: {"description": "OK" if code == "200" else "Created",
                             "content": {"application/json": {"schema": _ref(schema)}}},
                      "401": {"description": "Unauthorized"}},
        "tags": [f"{_camel(k.group).lower()}_{k.version}"],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }


def _paths(k: meta.Kind) -> dict[str, Any]:
    base = "/" + gv_path(k.group, k.version)
    gvk = {"group": k.group, "version": k.version, "kind": k.kind}
    schema = schema_name(k.message.DESCRIPTOR)
    list_schema = f"{schema}List"
    ns = "Namespaced" if k.namespaced else ""
    stem = f"{_camel(k.group)}{k.version.capitalize()}{ns}{k.kind}"
    coll = f"{base}/namespaces/{{namespace}}/{k.resource}" if k.namespaced else f"{base}/{k.resource}"
    item = f"{coll}/{{name}}"
    scope = [_param("namespace", "string", "object name and auth scope, such as for teams and projects", "path")] \
        if k.namespaced else []
    name = [_param("name", "string", f"name of the {k.kind}", "path")]
    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _PRETTY]
    out: dict[str, Any] = {
        coll: {
            "get": _op("list", f"list{stem}", k, list_schema, gvk, [*_LIST_PARAMS, _PRETTY],
                       f"list or watch objects of kind {k.kind}"),
            "post": _op("post", f"create{stem}", k, schema, gvk, write, f"create a {k.kind}", "201"),
            "delete": _op("deletecollection", f"deletecollection{stem}", k, "io.k8s.apimachinery.pkg.apis.meta.v1"
                          ".Status", gvk, [*_DELETE_PARAMS, *_LIST_PARAMS], f"delete collection of {k.kind}"),
            "parameters": scope,
        },
        item: {
            "get": _op("get", f"read{stem}", k, schema, gvk, [_PRETTY], f"read the specified {k.kind}"),
            "put": _op("put", f"replace{stem}", k, schema, gvk, write, f"replace the specified {k.kind}"),
            "patch": _op("patch", f"patch{stem}", k, schema, gvk, [*write, _FORCE],
                         f"partially update the specified {k.kind}"),
            "delete": _op("delete", f"delete{stem}", k, "io.k8s.apimachinery.pkg.apis.meta.v1.Status", gvk,
                          _DELETE_PARAMS, f"delete a {k.kind}"),
            "parameters": name + scope,
        },
    }
    if k.namespaced:
        out[f"{base}/{k.resource}"] = {
            "get": _op("list", f"list{_camel(k.group)}{k.version.capitalize()}{k.kind}ForAllNamespaces", k,
                       list_schema, gvk, [*_LIST_PARAMS, _PRETTY], f"list or watch objects of kind {k.kind}"),
        }
    if k.kind in _WITH_STATUS:
        out[f"{item}/status"] = {
            "get": _op("get", f"read{stem}Status", k, schema, gvk, [_PRETTY], f"read status of the specified {k.kind}"),
            "put": _op("put", f"replace{stem}Status", k, schema, gvk, write,
                       f"replace status of the specified {k.kind}"),
            "patch": _op("patch", f"patch{stem}Status", k, schema, gvk, [*write, _FORCE],
                         f"partially update status of the specified {k.kind}"),
            "parameters": name + scope,
        }
    if k.kind in SCALABLE:
        sgvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        out[f"{item}/scale"] = {
            "get": _op("get", f"read{stem}Scale", k, SCALE, sgvk, [_PRETTY], f"read scale of the specified {k.kind}"),
            "put": _op("put", f"replace{stem}Scale", k, SCALE, sgvk, write, f"replace scale of the specified {k.kind}"),
            "patch": _op("patch", f"patch{stem}Scale", k, SCALE, sgvk, [*write, _FORCE],
                         f"partially update scale of the specified {k.kind}"),
            "parameters": name + scope,
        }
    return out


_STATUS_SCHEMA = {
    "description": "Status is a return value for calls that don't return other objects.", "type": "object",
    "properties": {
        "apiVersion": {"description": _COMMON["apiVersion"], "type": "string"},
        "code": {"description": "Suggested HTTP return code for this status, 0 if not set.", "type": "integer",
                 "format": "int32"},
        "kind": {"description": _COMMON["kind"], "type": "string"},
        "message": {"description": "A human-readable description of the status of this operation.",
                    "type": "string"},
        "reason": {"description": "A machine-readable description of why this operation is in the \"Failure\" "
                                  "status.", "type": "string"},
        "status": {"description": "Status of the operation. One of: \"Success\" or \"Failure\".", "type": "string"},
    },
    "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}],
}


# ------------------------------------------------------------------ documents


@functools.cache
def _document(gv: str) -> dict[str, Any]:
    kinds = kinds_of(gv)
    if not kinds:
        raise KeyError(gv)
    schemas: dict[str, Any] = {}
    todo: list[Descriptor] = [k.message.DESCRIPTOR for k in kinds]
    seen: set[str] = set()
    while todo:
        desc = todo.pop()
        if desc.full_name in seen:
            continue
        seen.add(desc.full_name)
        deps: set[Descriptor] = set()
        schemas[schema_name(desc)] = message_schema(desc, deps)
        todo += sorted(deps, key=lambda d: d.full_name)
    fixed = dict(_FIXED)
    if not any(k.kind in SCALABLE for k in kinds):
        fixed = {n: s for n, s in fixed.items() if "autoscaling" not in n}
    schemas.update(fixed)
    schemas[f"{META}.Status"] = _STATUS_SCHEMA
    paths: dict[str, Any] = {}
    for k in kinds:
        schemas[f"{schema_name(k.message.DESCRIPTOR)}List"] = _list_schema(k)
        paths.update(_paths(k))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def document(gv: str) -> dict[str, Any]:
    """The OpenAPI v3 document of one group version ("api/v1",
    "apis/apps/v1"...); KeyError for one not served. A fresh copy."""
    return copy.deepcopy(_document(gv))


@functools.cache
def document_json(gv: str) -> bytes:
    """document(gv) serialised, ready to send (application/json)."""
    return json.dumps(_document(gv), sort_keys=True, separators=(",", ":")).encode()


@functools.cache
def etag(gv: str) -> str:
    """The document's hash (SHA-512, upper-case hex, as kube-apiserver's): it
    changes whenever the document does, so kubectl's cache of it does too."""
    return hashlib.sha512(document_json(gv)).hexdigest().upper()


def index() -> dict[str, Any]:
    """/openapi/v3: each group version's document by its hashed URL."""
    return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={etag(gv)}"} for gv in group_versions()}}
