"""Where pkctl finds the control plane.

Pure apart from reading the environment and one small config file; no
network I/O. Resolution order (first that is set wins), as kubectl's
--server > $KUBECONFIG-ish config:

  1. --server / -s
  2. $PKCTL_SERVER
  3. the config file: $PKCTL_CONFIG, else ~/.pocketkube/config, a YAML
     mapping `server: host:port` (and optionally `namespace: NAME`), written
     by `pkctl lab up`
  4. the kubeconfig's current context ($KUBECONFIG's first file, else
     ~/.kube/config), when its cluster carries PocketKube's gRPC address
     (the `pocketkube.io/grpc` extension `pkctl lab up` and pk-controlplane
     write), so one file serves kubectl and pkctl
  5. 127.0.0.1:6444
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

DEFAULT_SERVER = "127.0.0.1:6444"
ENV_SERVER = "PKCTL_SERVER"
ENV_CONFIG = "PKCTL_CONFIG"


class ConfigError(Exception):
    """The config file exists but cannot be used; str() says why and where."""


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    return Path.home() / ".pocketkube" / "config"


@dataclass(frozen=True)
class FileConfig:
    server: str = ""
    namespace: str = ""


def read_config(path: Path) -> FileConfig:
    """The config file's settings; a missing file is an empty config."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return FileConfig()
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return FileConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping like `server: 127.0.0.1:6444`")
    server = data.get("server", "") or ""
    namespace = data.get("namespace", "") or ""
    if not isinstance(server, str) or not isinstance(namespace, str):
        raise ConfigError(f"config file {path}: `server` and `namespace` must be strings")
    return FileConfig(server=normalize_server(server) if server else "", namespace=namespace)


def write_config(path: Path, server: str, namespace: str = "") -> None:
    """Write the config file (used by `pkctl lab up`); creates the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"server": server}
    if namespace:
        data["namespace"] = namespace
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, default_flow_style=False))
    tmp.replace(path)  # atomic: a concurrent pkctl never reads half a file


def normalize_server(server: str) -> str:
    """Accept what a kubectl user may type: `host:port`, `http://host:port`,
    `grpc://host:port`, or several of them comma-separated (control planes
    to fail over between); gRPC wants `host:port[,host:port...]`."""
    out = []
    for part in server.split(","):
        s = part.strip()
        for scheme in ("grpc://", "http://", "https://"):
            if s.startswith(scheme):
                s = s[len(scheme):]
        out.append(s.rstrip("/"))
    return ",".join(out)


def kubeconfig_server(env: Mapping[str, str] | None = None) -> str:
    """The gRPC address the kubeconfig's current context gives, or "" (an
    unreadable kubeconfig is kubectl's to report, not pkctl's)."""
    from pkapi import kubeconfig

    try:
        cluster = kubeconfig.current_cluster(kubeconfig.load(kubeconfig.path(env)))
    except kubeconfig.KubeconfigError:
        return ""
    return normalize_server(kubeconfig.grpc_server_of(cluster)) if cluster else ""


def resolve_server(flag: str | None, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if flag:
        return normalize_server(flag)
    if env.get(ENV_SERVER):
        return normalize_server(env[ENV_SERVER])
    cfg = read_config(config_path(env))
    return cfg.server or kubeconfig_server(env) or DEFAULT_SERVER


def resolve_namespace(flag: str | None, env: Mapping[str, str] | None = None) -> str:
    """-n, else the config file's namespace, else "default"."""
    if flag:
        return flag
    cfg = read_config(config_path(env))
    return cfg.namespace or "default"
