"""Discovery documents: aggregated (apidiscovery.k8s.io v2 and v2beta1) and
legacy (APIVersions, APIGroupList, APIGroup, APIResourceList), all made from
pkapi.meta.KINDS, so a group is advertised exactly when a kind of it is
served, with the subresources the HTTP API serves.

Pure: no I/O. kubectl reads shortNames (`deploy`), categories (`get all`),
verbs and subresources (`scale`) from here; see the module's tests for the
shapes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from pkapi import meta
from pkapi.meta import Kind

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]
# kube-apiserver's category "all" holds these of our kinds.
ALL = ("pods", "services", "deployments", "replicasets")
# resource -> subresources served: (name, responseKind group, version, kind, verbs)
SCALE = ("scale", "autoscaling", "v1", "Scale", SUB_VERBS)
SUBRESOURCES: dict[str, tuple[tuple[str, str, str, str, list[str]], ...]] = {
    "deployments": (SCALE, ("status", "apps", "v1", "Deployment", SUB_VERBS)),
    "replicasets": (SCALE, ("status", "apps", "v1", "ReplicaSet", SUB_VERBS)),
    "pods": (("eviction", "policy", "v1", "Eviction", ["create"]), ("exec", "", "v1", "PodExecOptions", ["create", "get"]),
             ("log", "", "v1", "Pod", ["get"]),
             ("status", "", "v1", "Pod", SUB_VERBS)),
    "services": (("status", "", "v1", "Service", SUB_VERBS),),
    "nodes": (("status", "", "v1", "Node", SUB_VERBS),),
    "namespaces": (("status", "", "v1", "Namespace", SUB_VERBS),),
}

AGGREGATED_VERSIONS = ("v2", "v2beta1")


def content_type(version: str) -> str:
    return f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"


def group_versions() -> OrderedDict[str, list[Kind]]:
    """'v1' / 'apps/v1' -> its kinds, core first."""
    out: OrderedDict[str, list[Kind]] = OrderedDict()
    for k in sorted(meta.KINDS, key=lambda k: (k.group != "", k.group)):
        out.setdefault(k.api_version, []).append(k)
    return out


def kinds_of(group_version: str) -> list[Kind] | None:
    return group_versions().get(group_version)


def served_subresource(k: Kind, sub: str) -> bool:
    return any(s[0] == sub for s in SUBRESOURCES.get(k.resource, ()))


def _categories(k: Kind) -> list[str]:
    return ["all"] if k.resource in ALL else []


def _aggregated_resource(k: Kind) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resource": k.resource,
        "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
        "scope": "Namespaced" if k.namespaced else "Cluster",
        "singularResource": k.singular,
        "verbs": VERBS,
    }
    if k.short_names:
        r["shortNames"] = list(k.short_names)
    if _categories(k):
        r["categories"] = _categories(k)
    subs = SUBRESOURCES.get(k.resource, ())
    if subs:
        r["subresources"] = [
            {"subresource": name, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": verbs}
            for name, g, v, kind, verbs in subs
        ]
    return r


def aggregated(core: bool, version: str = "v2") -> dict[str, Any]:
    """/api (core=True) or /apis as an APIGroupDiscoveryList."""
    items = []
    by_group: OrderedDict[str, list[tuple[str, list[Kind]]]] = OrderedDict()
    for kinds in group_versions().values():
        g = kinds[0].group
        if (g == "") == core:
            by_group.setdefault(g, []).append((kinds[0].version, kinds))
    if not core:
        from controlplane.apiserver.http import endpointslices as eps

        by_group["discovery.k8s.io"] = [("v1", [])]
    for g, versions in by_group.items():
        items.append({
            "metadata": {"name": g} if g else {},
            "versions": [{"version": v, "freshness": "Current",
                          "resources": [_aggregated_resource(k) for k in kinds] or [eps.aggregated_entry()]}
                         for v, kinds in versions],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(g: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
    return {"name": g, "versions": gvs, "preferredVersion": gvs[0]}


def _groups() -> OrderedDict[str, list[str]]:
    out: OrderedDict[str, list[str]] = OrderedDict()
    for kinds in group_versions().values():
        if kinds[0].group:
            out.setdefault(kinds[0].group, []).append(kinds[0].version)
    out["discovery.k8s.io"] = ["v1"]  # EndpointSlices, derived from Endpoints (endpointslices.py)
    return out


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, vs) for g, vs in _groups().items()]}


def api_group(group: str) -> dict[str, Any] | None:
    vs = _groups().get(group)
    if vs is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, vs)}


def resource_list(group_version: str) -> dict[str, Any] | None:
    from controlplane.apiserver.http import endpointslices as eps

    if group_version == eps.GROUP_VERSION:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": [eps.resource_entry()]}
    kinds = kinds_of(group_version)
    if kinds is None:
        return None
    resources: list[dict[str, Any]] = []
    for k in kinds:
        r: dict[str, Any] = {"name": k.resource, "singularName": k.singular, "namespaced": k.namespaced,
                             "kind": k.kind, "verbs": VERBS}
        if k.short_names:
            r["shortNames"] = list(k.short_names)
        if _categories(k):
            r["categories"] = _categories(k)
        resources.append(r)
        for name, g, v, kind, verbs in SUBRESOURCES.get(k.resource, ()):
            sub: dict[str, Any] = {"name": f"{k.resource}/{name}", "singularName": "", "namespaced": k.namespaced,
                                   "kind": kind, "verbs": verbs}
            if g != k.group:
                sub["group"], sub["version"] = g, v
            resources.append(sub)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
