"""Container image references as Docker reads them. Pure: no I/O.

    split_ref("nginx")                      -> ("nginx", "latest")
    split_ref("localhost:5100/team/app:2")  -> ("localhost:5100/team/app", "2")
    hub_path("nginx")                       -> "library/nginx"  (a Docker Hub name)
    hub_path("localhost:5100/app")          -> None             (another registry's)
"""

from __future__ import annotations


def split_ref(ref: str) -> tuple[str, str]:
    """An image reference as (repository, tag or digest): nginx -> (nginx,
    latest), localhost:5100/app:1 -> (localhost:5100/app, 1), x@sha256:… ->
    (x, sha256:…)."""
    if "@" in ref:
        repo, _, digest = ref.partition("@")
        return repo, digest
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = ref.rpartition(":")
        return repo, tag
    return ref, "latest"


def hub_path(repo: str) -> str | None:
    """A Docker Hub repository's path on a registry (nginx -> library/nginx,
    docker.io/pocketkube/hello -> pocketkube/hello); None for a repository
    of another registry (its first part has a dot or a port, or is localhost)."""
    first, _, rest = repo.partition("/")
    if rest and first in ("docker.io", "index.docker.io"):
        repo = rest
    elif rest and ("." in first or ":" in first or first == "localhost"):
        return None
    return repo if "/" in repo else f"library/{repo}"


def local_registry(host: str) -> bool:
    """host[:port] names a registry on this machine (localhost, 127.0.0.0/8)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name == "localhost" or name.startswith("127.")
