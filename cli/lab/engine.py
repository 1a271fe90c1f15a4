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
import tarfile
import time
from pathlib import Path

import psutil

from cli.lab import procs
from cli.lab.plan import NodePlan


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


def start(node: NodePlan) -> psutil.Process:
    Path(node.run_dir).mkdir(parents=True, exist_ok=True)
    Path(node.state_dir).mkdir(parents=True, exist_ok=True)
    Path(f"{node.run_dir}/daemon.json").write_text("{}\n")
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


def image_tars(images_dir: str) -> list[Path]:
    """The `docker save` archives in images_dir (images/out): every *.tar
    except the root filesystem tarballs the image build keeps for itself."""
    d = Path(images_dir)
    return sorted(p for p in d.glob("*.tar") if not p.name.startswith("rootfs-"))


def _repo_tags(tar: Path) -> list[str]:
    try:
        with tarfile.open(tar) as t:
            member = t.extractfile("manifest.json")
            if member is None:
                return []
            manifest = json.load(member)
    except (OSError, KeyError, ValueError, tarfile.TarError):
        return []
    return [tag for entry in manifest for tag in (entry.get("RepoTags") or [])]


def load_images(node: NodePlan, tars: list[Path]) -> list[str]:
    """docker load every archive whose tags the engine does not have yet
    (with the same build label); returns the tags loaded."""
    c = client(node, timeout=120)
    loaded: list[str] = []
    try:
        for tar in tars:
            tags = _repo_tags(tar)
            want = build_hashes(tar)
            if tags and all(_has_image(c, tag, want.get(tag, "")) for tag in tags):
                continue
            with open(tar, "rb") as f:
                c.images.load(f.read())
            loaded.extend(tags or [tar.name])
    finally:
        c.close()
    return loaded


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


def _has_image(c, tag: str, build_hash: str) -> bool:  # type: ignore[no-untyped-def]
    import docker.errors

    try:
        img = c.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    if not build_hash:
        return True
    labels = (img.attrs.get("Config") or {}).get("Labels") or {}
    return bool(labels.get("io.pocketkube.build") == build_hash)


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
