"""Kubeconfig files: build one for a cluster, merge it into a user's file,
take it out again, and find the gRPC address pkctl needs in it.

The dict functions are pure; load/save are the only I/O. One kubeconfig
serves kubectl and pkctl: the cluster's `server` is the HTTPS Kubernetes
API, and a cluster extension named EXTENSION holds the gRPC address
(`{server: host:port}`); kubectl ignores extensions it does not know.
A cluster without the extension is not PocketKube's (or is reached only
through its HTTP API): pkctl does not guess a gRPC address for it.
"""

from __future__ import annotations

import base64
import copy
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

EXTENSION = "pocketkube.io/grpc"
ENV = "KUBECONFIG"


class KubeconfigError(Exception):
    """A kubeconfig that cannot be used; str() says why and where."""


def build(name: str, server: str, ca_pem: bytes, grpc_server: str = "", user: str = "",
          user_entry: Mapping[str, Any] | None = None, namespace: str = "") -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context, all called `name`
    (the user `user` if given), made current."""
    cluster: dict[str, Any] = {"server": server,
                               "certificate-authority-data": base64.b64encode(ca_pem).decode()}
    if grpc_server:
        cluster["extensions"] = [{"name": EXTENSION, "extension": {"server": grpc_server}}]
    ctx: dict[str, Any] = {"cluster": name, "user": user or name}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": user or name, "user": dict(user_entry or {})}],
        "contexts": [{"name": name, "context": ctx}],
        "current-context": name,
    }


def _named(items: Any) -> list[dict[str, Any]]:
    return [i for i in (items or []) if isinstance(i, dict)]


def merge(existing: Mapping[str, Any] | None, new: Mapping[str, Any], make_current: bool = True) -> dict[str, Any]:
    """`existing` with every cluster, user and context of `new` added or
    replaced by name (as kind does); the rest is kept as it was."""
    out: dict[str, Any] = copy.deepcopy(dict(existing or {}))
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Config")
    out.setdefault("preferences", {})
    for section in ("clusters", "users", "contexts"):
        added = _named(new.get(section))
        names = {i.get("name") for i in added}
        out[section] = [i for i in _named(out.get(section)) if i.get("name") not in names] + copy.deepcopy(added)
    if make_current and new.get("current-context"):
        out["current-context"] = new["current-context"]
    return out


def remove(existing: Mapping[str, Any], context: str) -> dict[str, Any]:
    """`existing` without the context `context` and the cluster and user it
    names (when no other context uses them); current-context is cleared if
    it was this one."""
    out: dict[str, Any] = copy.deepcopy(dict(existing))
    contexts = _named(out.get("contexts"))
    gone = next((c for c in contexts if c.get("name") == context), None)
    out["contexts"] = [c for c in contexts if c.get("name") != context]
    if gone is not None:
        ctx = gone.get("context") or {}
        for section, key in (("clusters", "cluster"), ("users", "user")):
            target = ctx.get(key)
            still = any((c.get("context") or {}).get(key) == target for c in out["contexts"])
            if target and not still:
                out[section] = [i for i in _named(out.get(section)) if i.get("name") != target]
    if out.get("current-context") == context:
        out["current-context"] = ""
    return out


def renamed(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A kubeconfig of one context (as pk-controlplane writes it) with its
    context, cluster and user all called `name`, made current."""
    ctx = next(iter(_named(cfg.get("contexts"))), None)
    if ctx is None:
        raise KubeconfigError("the kubeconfig has no context")
    inner = dict(ctx.get("context") or {})
    cluster = next((c for c in _named(cfg.get("clusters")) if c.get("name") == inner.get("cluster")), None)
    user = next((u for u in _named(cfg.get("users")) if u.get("name") == inner.get("user")), None)
    if cluster is None or user is None:
        raise KubeconfigError("the kubeconfig's context names no cluster or user it has")
    inner.update(cluster=name, user=name)
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": copy.deepcopy(cluster.get("cluster") or {})}],
            "users": [{"name": name, "user": copy.deepcopy(user.get("user") or {})}],
            "contexts": [{"name": name, "context": inner}], "current-context": name}


def current_cluster(cfg: Mapping[str, Any], context: str = "") -> dict[str, Any] | None:
    """The cluster entry (the inner mapping) of `context` or the current context."""
    name = context or cfg.get("current-context") or ""
    ctx = next((c.get("context") or {} for c in _named(cfg.get("contexts")) if c.get("name") == name), None)
    if ctx is None:
        return None
    cl = next((c.get("cluster") for c in _named(cfg.get("clusters")) if c.get("name") == ctx.get("cluster")), None)
    return cl if isinstance(cl, dict) else None


def grpc_server_of(cluster: Mapping[str, Any]) -> str:
    """The gRPC address (host:port) of a kubeconfig cluster entry (its
    EXTENSION), or ""."""
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == EXTENSION:
            server = (ext.get("extension") or {}).get("server")
            if isinstance(server, str) and server:
                return server
    return ""


def path(env: Mapping[str, str] | None = None) -> Path:
    """The file kubectl writes to: the first of $KUBECONFIG, else ~/.kube/config."""
    env = os.environ if env is None else env
    value = env.get(ENV, "")
    first = next((p for p in value.split(os.pathsep) if p), "")
    return Path(first) if first else Path.home() / ".kube" / "config"


def load(p: Path) -> dict[str, Any]:
    """A kubeconfig file as a dict; a missing or empty file is {}."""
    try:
        text = p.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise KubeconfigError(f"cannot read kubeconfig {p}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise KubeconfigError(f"kubeconfig {p} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"kubeconfig {p}: expected a mapping (apiVersion: v1, kind: Config)")
    return data


def dump(cfg: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(cfg), default_flow_style=False, sort_keys=False)


def save(p: Path, cfg: Mapping[str, Any]) -> None:
    """Write atomically with mode 0600 (it may hold credentials)."""
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".pk-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(dump(cfg))
    tmp.replace(p)
