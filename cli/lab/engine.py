"""Per-node Docker Engines: one dockerd per lab node, inside the node's
network namespace, with everything of its own (data-root, exec-root,
pidfile, unix socket, docker0 subnet, an empty daemon.json so the host's
/etc/docker/daemon.json cannot interfere).

dockerd is started with `nsenter --net=/var/run/netns/NODE`, not with
`ip netns exec`, which also unshares the mount namespace and remounts /sys,
hiding the cgroup mounts dockerd needs.

hard_kill() is a node's sudden death: dockerd, its containerd, every
containerd-shim of that containerd (found by the socket path on their
command line: shims detach and are reparented to init) and all their
descendants, i.e. the node's containers, get SIGKILL at once.

Blocking functions, meant to be called from worker threads (one per node)
by lab.py; nothing here shares state between nodes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import psutil

from cli.lab import procs
from cli.lab.plan import LabPlan, NodePlan


class EngineError(RuntimeError):
    pass


def dockerd_pidfile(node: NodePlan) -> str:
    return f"{node.run_dir}/dockerd.pid"


def dockerd_log(node: NodePlan) -> str:
    return f"{node.state_dir}/dockerd.log"


def dockerd_argv(node: NodePlan) -> list[str]:
    return [
        shutil.which("dockerd") or "dockerd",
        f"--config-file={node.run_dir}/daemon.json",
        f"--data-root={node.data_root}",
        f"--exec-root={node.exec_root}",
        f"--pidfile={node.run_dir}/docker.pid",
        f"--host={node.docker_host}",
        f"--bip={node.bip}",
        # cgroupfs whatever the host's engine uses: a lab node is not a systemd unit
        "--exec-opt=native.cgroupdriver=cgroupfs",
    ]


def daemon_config(plan: LabPlan) -> dict[str, list[str]]:
    """A node engine's daemon.json: the lab registry is its Docker Hub
    mirror (plain HTTP on the lab network), so `nginx:latest` is pulled from
    it. (A name the registry lacks is refused before the engine would fall
    back to Docker Hub: agent/runtime/docker_runtime.py.)"""
    url = f"{plan.gateway}:{plan.registry_port}"
    return {"registry-mirrors": [f"http://{url}"], "insecure-registries": [url]}


def start(node: NodePlan, config: dict[str, list[str]] | None = None) -> psutil.Process:
    Path(node.run_dir).mkdir(parents=True, exist_ok=True)
    Path(node.state_dir).mkdir(parents=True, exist_ok=True)
    Path(f"{node.run_dir}/daemon.json").write_text(json.dumps(config or {}, indent=2) + "\n")
    # dockerd refuses to start while its pidfile names a process that exists,
    # and waits for "its" containerd when containerd.pid does; a killed one
    # may linger as a zombie until init reaps it. start() is only called
    # when our record says no dockerd runs, so both files are stale.
    for stale in (f"{node.run_dir}/docker.pid", f"{node.exec_root}/containerd/containerd.pid"):
        try:
            os.unlink(stale)
        except FileNotFoundError:
            pass
    return procs.start(dockerd_argv(node), dockerd_log(node), dockerd_pidfile(node), netns=node.netns)


def client(node: NodePlan, timeout: int = 30):  # -> docker.DockerClient
    import docker  # imported lazily: pkctl's other verbs do not need it

    return docker.DockerClient(base_url=node.docker_host, timeout=timeout)


def wait_ready(node: NodePlan, timeout: float = 60.0) -> None:
    """Until the node's engine answers /_ping; raises with the log's tail if
    dockerd exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        if os.path.exists(node.docker_socket):
            try:
                c = client(node, timeout=2)
                try:
                    if c.ping():
                        return
                finally:
                    c.close()
            except Exception:  # noqa: BLE001 - not answering yet
                pass
        if not procs.alive(dockerd_pidfile(node)):
            raise EngineError(f"dockerd of {node.name} exited; last lines of {dockerd_log(node)}:\n{tail(dockerd_log(node))}")
        if time.monotonic() > deadline:
            raise EngineError(
                f"dockerd of {node.name} did not answer at {node.docker_host} within {timeout:.0f} s; "
                f"last lines of {dockerd_log(node)}:\n{tail(dockerd_log(node))}"
            )
        time.sleep(0.1)


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ------------------------------------------------------------------ images


def build_hashes(tar: Path) -> dict[str, str]:
    """TAG -> build hash, from the archive's `.hash` file ("TAG HASH" lines,
    written by images/build.sh)."""
    try:
        text = Path(str(tar) + ".hash").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        tag, _, h = line.strip().partition(" ")
        if tag and h:
            out[tag] = h.strip()
    return out


# ------------------------------------------------------------------ stopping


def engine_processes(node: NodePlan) -> list[psutil.Process]:
    """dockerd, its descendants, the shims of its containerd and theirs."""
    found: dict[int, psutil.Process] = {}
    dockerd = procs.read(dockerd_pidfile(node))
    if dockerd is not None:
        found[dockerd.pid] = dockerd
        for p in procs.descendants(dockerd):
            found[p.pid] = p
    marker = f"{node.exec_root}/"
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmdline = p.info["cmdline"] or []
        except psutil.NoSuchProcess:
            continue
        if any(marker in arg for arg in cmdline):
            found[p.pid] = p
            for c in procs.descendants(p):
                found[c.pid] = c
    return list(found.values())


def hard_kill(node: NodePlan) -> int:
    """SIGKILL the node's engine and containers; returns how many processes."""
    group = engine_processes(node)
    procs.kill_all(group)
    try:
        os.unlink(dockerd_pidfile(node))
    except FileNotFoundError:
        pass
    return len(group)
