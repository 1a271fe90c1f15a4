"""The three patch types of Kubernetes' PATCH verb, applied to an object's JSON dict.

Pure: no external calls or any I/O. Every function takes dicts (the object
as `meta.to_dict` gives it, and the decoded patch body) and returns a new
dict; the inputs are never changed.

  application/json-patch+json             RFC 6902, by the `jsonpatch` library
  application/merge-patch+json            RFC 7386 (`merge_patch`, below: the algorithm is the
                                          RFC's own ten lines, so no library for it)
  application/strategic-merge-patch+json  Kubernetes' strategic merge patch (`strategic_merge_patch`)

Strategic merge patch has no Python implementation anywhere, so it is
written here, from Kubernetes' documented behaviour (the SMP design doc and
"Update API Objects in Place Using kubectl patch"):

- Maps merge key by key; `null` deletes a key (a `null` for a key the
  object does not have is dropped, not stored).
- A list field merges by its *patch merge key* when the Kubernetes type
  declares `patchStrategy:"merge"` (containers by `name`, ports by
  `containerPort`, ...: MERGE_KEYS below, taken from the struct tags of
  the types PocketKube serves); any other list is replaced whole
  (PodSpec.tolerations, Node.spec.taints, Endpoints.subsets...). A merged
  list of scalars (finalizers, podCIDRs) is the union.
- Order of a merged list: the object's own elements keep their order,
  elements named by the patch come in the patch's order, and where the
  two disagree the object's order wins; an element new to the object goes
  before the object's elements that follow it (Kubernetes' mergeSortedSlice).
- Directives: `$patch: replace` (in a map: the map becomes the patch; in a
  list element: the list becomes the other elements), `$patch: delete`
  (in a map: it becomes {}; in a list element: remove the element with that
  merge key), `$patch: merge` (the default: accepted and dropped, in a list element
  too, where Kubernetes refuses it),
  `$setElementOrder/<list>` (the order of the merged list), `$retainKeys`
  (drop the object's keys not listed, as for DeploymentStrategy, whose
  `rollingUpdate` goes when `type` becomes Recreate), and
  `$deleteFromPrimitiveList/<list>` (remove those scalars from a merged list).
- A patch value for a key the object does not have is merged into nothing,
  so directives never end up stored in the object.

Errors are PatchError values carrying the HTTP status and Kubernetes'
reason, as kube-apiserver answers them: 400 BadRequest for a body that is
not JSON or not the shape its type needs (and for malformed directives,
including a patch key that its own `$retainKeys` does not list), 422
Invalid for a JSON patch that cannot be applied (a path that does not
exist, a failed `test`) and for lists of lists in a strategic merge patch.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, cast

import jsonpatch
import jsonpointer

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply: not a patch engine, not here
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

# kube-apiserver refuses JSON patches longer than this (maxJSONPatchOperations).
MAX_JSON_PATCH_OPERATIONS = 10000


class PatchError(Exception):
    """A patch that cannot be applied: `code` is the HTTP status, `reason`
    the Kubernetes StatusReason, `message` what kubectl prints after
    `Error from server (<reason>): `."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"PatchError({self.code}, {self.reason!r}, {self.message!r})"

    def status(self) -> dict[str, Any]:
        """The meta/v1 Status object to answer with."""
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


def _bad(message: str) -> PatchError:
    return PatchError(400, "BadRequest", message)


def _invalid(message: str) -> PatchError:
    return PatchError(422, "Invalid", message)


# ------------------------------------------------------------------ entry point


def media_type(content_type: str) -> str:
    """"application/json-patch+json; charset=utf-8" -> "application/json-patch+json"."""
    return content_type.split(";", 1)[0].strip().lower()


def decode_body(body: bytes | bytearray | str) -> Any:
    if isinstance(body, bytes | bytearray):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad("the request body is not valid UTF-8") from None
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        raise _bad(f"error decoding patch: {e}") from None


def apply_patch(obj: dict[str, Any], body: bytes | str | Any, content_type: str, kind: str) -> dict[str, Any]:
    """Apply a PATCH request's body to `obj` by its Content-Type.

    `body` is the raw request body (bytes or str) or an already decoded
    JSON value; `kind` ("Deployment", "Pod"...) picks the strategic merge
    keys. Returns the patched object as a new dict; raises PatchError."""
    mt = media_type(content_type)
    if mt not in PATCH_TYPES:
        raise PatchError(415, "UnsupportedMediaType",
                         f"the body of the request was in an unknown format - accepted media types include: "
                         f"{', '.join(PATCH_TYPES)}, {APPLY_PATCH}")
    patch = decode_body(body) if isinstance(body, bytes | bytearray | str) else body
    if mt == JSON_PATCH:
        # An operation on the root ("path": "") may leave a non-object; the
        # strict decode of the result refuses it, as for any bad object.
        return cast(dict[str, Any], json_patch(obj, patch))
    if mt == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise _bad("error decoding patch: json: cannot unmarshal "
                       f"{_json_type(patch)} into Go value of type map[string]interface {{}}")
        result = merge_patch(obj, patch)
        assert isinstance(result, dict)
        return result
    return strategic_merge_patch(obj, patch, kind)


def _json_type(v: Any) -> str:
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return "null" if v is None else "object"


# ------------------------------------------------------------------ RFC 6902


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902: apply a list of operations. 400 for a malformed patch,
    422 for one that does not apply to this document."""
    if not isinstance(ops, list):
        raise _bad(f"json: cannot unmarshal {_json_type(ops)} into Go value of type jsonpatch.Patch")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(413, "RequestEntityTooLarge",
                         f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
                         f"got {len(ops)}")
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise _bad(f"json: cannot unmarshal {_json_type(op)} into Go value of type jsonpatch.Operation "
                       f"(operation {i})")
    try:
        p = jsonpatch.JsonPatch(ops)
        return p.apply(doc, in_place=False)
    except jsonpatch.JsonPatchTestFailed as e:
        raise _invalid(f"the server rejected our request due to an error in our request: {e}") from None
    except jsonpatch.InvalidJsonPatch as e:
        raise _bad(f"invalid JSON patch: {e}") from None
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as e:
        raise _invalid(f"the server rejected our request due to an error in our request: {e}") from None
    except (TypeError, ValueError, KeyError, IndexError) as e:  # e.g. a pointer that is not a string
        raise _bad(f"invalid JSON patch: {e}") from None


# ------------------------------------------------------------------ RFC 7386


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch(Target, Patch), without changing either argument."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


# ------------------------------------------------------------------ strategic merge patch


@dataclass(frozen=True)
class Field:
    """A field's patch metadata (the `patchStrategy` and `patchMergeKey`
    struct tags of Kubernetes' Go types) and the type of its value (or of
    its list's elements), so that nested fields can be looked up."""

    type: str = ""
    merge: bool = False  # patchStrategy merge (lists: merge by `key`, or union for scalars)
    retain_keys: bool = False  # patchStrategy retainKeys (the client sends $retainKeys)
    key: str = ""  # patchMergeKey


_META = Field("ObjectMeta")
_TEMPLATE = Field("PodTemplateSpec")
_CONDITIONS = Field("", merge=True, key="type")

# Type -> field -> Field, for the kinds PocketKube serves. A field not listed
# has no patch strategy: a map merges, a list is replaced. Fields listed only
# for their type are how the lookup reaches the ones below them.
SCHEMA: dict[str, dict[str, Field]] = {
    "ObjectMeta": {
        "finalizers": Field(merge=True),
        "ownerReferences": Field(merge=True, key="uid"),
    },
    "Pod": {"metadata": _META, "spec": Field("PodSpec"), "status": Field("PodStatus")},
    "PodTemplateSpec": {"metadata": _META, "spec": Field("PodSpec")},
    "PodSpec": {
        "volumes": Field("Volume", merge=True, retain_keys=True, key="name"),
        "initContainers": Field("Container", merge=True, key="name"),
        "containers": Field("Container", merge=True, key="name"),
        "ephemeralContainers": Field("Container", merge=True, key="name"),
        "imagePullSecrets": Field(merge=True, key="name"),
        "hostAliases": Field(merge=True, key="ip"),
        "topologySpreadConstraints": Field(merge=True, key="topologyKey"),
        "resourceClaims": Field(merge=True, retain_keys=True, key="name"),
        "schedulingGates": Field(merge=True, key="name"),
    },
    "Container": {
        "ports": Field(merge=True, key="containerPort"),
        "env": Field(merge=True, key="name"),
        "volumeMounts": Field(merge=True, key="mountPath"),
        "volumeDevices": Field(merge=True, key="devicePath"),
    },
    "PodStatus": {
        "conditions": _CONDITIONS,
        "podIPs": Field(merge=True, key="ip"),
        "hostIPs": Field(merge=True, key="ip"),
        "resourceClaimStatuses": Field(merge=True, retain_keys=True, key="name"),
    },
    "Deployment": {"metadata": _META, "spec": Field("DeploymentSpec"), "status": Field("DeploymentStatus")},
    "DeploymentSpec": {"template": _TEMPLATE, "strategy": Field("DeploymentStrategy", retain_keys=True)},
    "DeploymentStatus": {"conditions": _CONDITIONS},
    "ReplicaSet": {"metadata": _META, "spec": Field("ReplicaSetSpec"), "status": Field("ReplicaSetStatus")},
    "ReplicaSetSpec": {"template": _TEMPLATE},
    "ReplicaSetStatus": {"conditions": _CONDITIONS},
    "Service": {"metadata": _META, "spec": Field("ServiceSpec"), "status": Field("ServiceStatus")},
    "ServiceSpec": {"ports": Field("ServicePort", merge=True, key="port")},
    "ServiceStatus": {"conditions": _CONDITIONS},
    "Node": {"metadata": _META, "spec": Field("NodeSpec"), "status": Field("NodeStatus")},
    "NodeSpec": {"podCIDRs": Field(merge=True)},
    "NodeStatus": {"conditions": _CONDITIONS, "addresses": Field(merge=True, key="type")},
    "Namespace": {"metadata": _META, "status": Field("NamespaceStatus")},
    "NamespaceStatus": {"conditions": _CONDITIONS},
    "Endpoints": {"metadata": _META},
    "EndpointSlice": {"metadata": _META},
    "Event": {"metadata": _META},
    "Lease": {"metadata": _META},
    "Scale": {"metadata": _META},
}

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

ERR_RETAIN_KEYS_FORMAT = "invalid patch format of retainKeys"
ERR_SET_ORDER_FORMAT = "invalid patch format of setElementOrder list"
ERR_PRIMITIVE_LIST_FORMAT = "invalid patch format of primitive list"


def field_of(type_: str, name: str) -> Field:
    return SCHEMA.get(type_, {}).get(name, Field())


def strategic_merge_patch(obj: dict[str, Any], patch: Any, kind: str) -> dict[str, Any]:
    """Kubernetes' strategic merge patch of `obj` (a `kind`) by `patch`."""
    if not isinstance(patch, dict):
        raise _bad("error decoding patch: json: cannot unmarshal "
                   f"{_json_type(patch)} into Go value of type map[string]interface {{}}")
    return _merge_map(copy.deepcopy(obj), copy.deepcopy(patch), kind)


def _directive_in_map(patch: dict[str, Any]) -> str | None:
    d = patch.get(DIRECTIVE)
    if d is None:
        return None
    if d not in ("replace", "delete", "merge"):
        raise _bad(f"unknown patch type: {d} in map: {_go_map(patch)}")
    return str(d)


def _go_map(m: Any) -> str:
    return json.dumps(m, sort_keys=True, separators=(",", ":"))


def _merge_map(original: dict[str, Any], patch: dict[str, Any], type_: str) -> dict[str, Any]:
    """Merge `patch` into `original` (both owned by the caller: changed in place)."""
    directive = _directive_in_map(patch)
    if directive == "replace":
        del patch[DIRECTIVE]
        return _merge_map({}, patch, type_)  # still resolves nested directives and drops nulls
    if directive == "delete":
        return {}
    patch.pop(DIRECTIVE, None)

    _retain_keys(original, patch)
    _set_element_orders(original, patch, type_)

    deletions: list[tuple[str, Any]] = []
    for k, pv in patch.items():
        if k.startswith(DELETE_FROM_PRIMITIVE_LIST):
            deletions.append((k[len(DELETE_FROM_PRIMITIVE_LIST):], pv))
            continue
        if pv is None:
            original.pop(k, None)
            continue
        f = field_of(type_, k)
        ov = original.get(k)
        if isinstance(pv, dict):
            original[k] = _merge_map(ov if isinstance(ov, dict) else {}, pv, f.type)
        elif isinstance(pv, list):
            original[k] = _merge_list(ov if isinstance(ov, list) else [], pv, f, k) if f.merge else \
                _merge_list([], pv, f, k) if _has_directives(pv) else pv
        else:
            original[k] = pv
    for k, pv in deletions:
        ov = original.get(k)
        if not isinstance(pv, list):
            raise _bad(ERR_PRIMITIVE_LIST_FORMAT)
        if not isinstance(ov, list):
            continue
        if not field_of(type_, k).merge:
            original[k] = pv  # as Kubernetes does for a list without the merge strategy
            continue
        original[k] = [x for x in ov if x not in pv]
    return original


def _has_directives(items: list[Any]) -> bool:
    return any(isinstance(x, dict) and DIRECTIVE in x for x in items)


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise _bad(ERR_RETAIN_KEYS_FORMAT)
    for k, v in patch.items():
        if v is not None and not k.startswith("$") and k not in keep:
            raise _bad(ERR_RETAIN_KEYS_FORMAT)  # Kubernetes answers a key outside $retainKeys so too
    for k in list(original):
        if k not in keep:
            del original[k]


def _key_of(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else None


def _set_element_orders(original: dict[str, Any], patch: dict[str, Any], type_: str) -> None:
    """Merge each list that has a `$setElementOrder/<list>` with it, and take
    both out of the patch."""
    for pk in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(pk)
        name = pk[len(SET_ELEMENT_ORDER):]
        f = field_of(type_, name)
        if not isinstance(order, list):
            raise _bad(ERR_SET_ORDER_FORMAT)
        in_patch = name in patch
        pv = patch.pop(name, None)
        if in_patch and not isinstance(pv, list):
            raise _bad(ERR_SET_ORDER_FORMAT)
        _check_order(pv or [], order, f.key)
        ov = original.get(name)
        if ov is None and not in_patch:
            continue
        if not isinstance(ov, list):
            ov = []
        if in_patch and f.merge:
            merged = _merge_list(list(ov), pv or [], f, name, order)
        elif in_patch:
            merged = pv or []
        else:
            merged = _ordered(list(ov), [], order, list(ov), f.key)
        original[name] = merged


def _check_order(items: list[Any], order: list[Any], key: str) -> None:
    """Every element of the patch list is in the order list, in the same order."""
    ids = [_key_of(x, key) if key else x for x in order]
    if key and any(i is None for i in ids):
        raise _bad(ERR_SET_ORDER_FORMAT)
    last = -1
    for item in items:
        if isinstance(item, dict) and item.get(DIRECTIVE) is not None:
            continue
        ident = _key_of(item, key) if key else item
        try:
            pos = ids.index(ident)
        except ValueError:
            raise _bad(ERR_SET_ORDER_FORMAT) from None
        if pos < last:
            raise _bad(ERR_SET_ORDER_FORMAT)
        last = pos


def _merge_list(original: list[Any], patch: list[Any], f: Field, name: str,
                order: list[Any] | None = None) -> list[Any]:
    """Merge a list that has the merge strategy (or resolve the directives of
    one that has not, `original` being empty then)."""
    if not patch and order is None:
        return original
    if any(isinstance(x, list) for x in patch):
        raise _invalid("lists of lists are not supported")
    maps = [x for x in patch if isinstance(x, dict)]
    if not maps:  # a list of scalars: the union, without repeats
        merged: list[Any] = []
        for x in original + patch:
            if x not in merged:
                merged.append(x)
        return _ordered(merged, patch, order if order is not None else patch, original, "")
    if len(maps) != len(patch):
        raise _bad(f"the elements of list {name} are not all of one type")
    key = f.key
    if not key:
        if _has_directives(patch):
            rest = [x for x in patch if DIRECTIVE not in x]
            return [_merge_map({}, x, f.type) for x in rest]
        raise _bad(f"cannot merge lists without merge key for {name}")
    rest_patch: list[dict[str, Any]] = []
    replace = False
    for item in maps:
        d = item.get(DIRECTIVE)
        if d is None:
            rest_patch.append(item)
        elif d == "delete":
            if key not in item:
                raise _bad(f"map: {_go_map(item)} does not contain declared merge key: {key}")
            original = [x for x in original if _key_of(x, key) != item[key]]
        elif d == "replace":
            replace = True
        elif d == "merge":
            item = {k: v for k, v in item.items() if k != DIRECTIVE}
            rest_patch.append(item)
        else:
            raise _bad(f"unknown patch type: {d} in map: {_go_map(item)}")
    if replace:
        return [_merge_map({}, x, f.type) for x in rest_patch]
    merged = [x for x in original]
    for item in rest_patch:
        if key not in item:
            raise _bad(f"map: {_go_map(item)} does not contain declared merge key: {key}")
        for i, x in enumerate(merged):
            if _key_of(x, key) == item[key]:
                merged[i] = _merge_map(x if isinstance(x, dict) else {}, item, f.type)
                break
        else:
            merged.append(_merge_map({}, item, f.type))
    return _ordered(merged, rest_patch, order if order is not None else rest_patch, original, key)


def _ordered(merged: list[Any], patch: list[Any], patch_order: list[Any], server_order: list[Any],
             key: str) -> list[Any]:
    """The order of a merged list (Kubernetes' normalizeElementOrder): the
    elements the patch (or its $setElementOrder) names, in that order,
    interleaved with the object's other elements in the object's order;
    where both are in the object, the object's order decides."""
    def ident(x: Any) -> Any:
        return _key_of(x, key) if key else x

    def index(lst: list[Any], x: Any) -> int:
        want = ident(x)
        for i, y in enumerate(lst):
            if ident(y) == want:
                return i
        return -1

    named = [x for x in merged if index(patch_order, x) >= 0 or index(patch, x) >= 0]
    server_only = [x for x in merged if not (index(patch_order, x) >= 0 or index(patch, x) >= 0)]
    named.sort(key=lambda x: index(patch_order, x) if index(patch_order, x) >= 0 else len(patch_order))
    server_only.sort(key=lambda x: index(server_order, x))
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(named):
        if i >= len(server_only):
            out.append(named[j])
            j += 1
        elif j >= len(named):
            out.append(server_only[i])
            i += 1
        else:
            li, ri = index(server_order, server_only[i]), index(server_order, named[j])
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(named[j])
                j += 1
    return out
