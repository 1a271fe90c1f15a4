"""Resource paths of the Kubernetes HTTP API.

Pure: no I/O.

    /api/v1/<resource>[/<name>[/<subresource>]]                       cluster-scoped, or every namespace
    /api/v1/namespaces/<ns>/<resource>[/<name>[/<subresource>]]      namespaced
    /apis/<group>/<version>/...                                      the same below a group

`/api/v1/namespaces/<name>[/status]` is the Namespace itself: a third
segment names a namespaced resource only when it is one.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.apiserver.http import discovery
from pkapi.errors import ApiError
from pkapi.meta import Kind


@dataclass(frozen=True)
class Target:
    kind: Kind
    namespace: str  # "" for cluster-scoped kinds and all-namespace lists
    name: str  # "" for the collection
    subresource: str  # "", "status", "scale"


def not_found() -> ApiError:
    return ApiError("NotFound", "the server could not find the requested resource")


def parse(group_version: str, segments: list[str]) -> Target:
    """The target of a path below /api/v1 or /apis/<g>/<v> (its segments);
    NotFound for anything this server does not serve."""
    kinds = discovery.kinds_of(group_version)
    if kinds is None or not segments:
        raise not_found()
    by_resource = {k.resource: k for k in kinds}
    ns = ""
    rest = segments
    if len(segments) >= 3 and segments[0] == "namespaces":
        k = by_resource.get(segments[2])
        if k is not None and k.namespaced:
            ns, rest = segments[1], segments[2:]
    k = by_resource.get(rest[0])
    if k is None or len(rest) > 3 or any(not s for s in rest):
        raise not_found()
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and not discovery.served_subresource(k, sub):
        raise not_found()
    return Target(k, ns, name, sub)
