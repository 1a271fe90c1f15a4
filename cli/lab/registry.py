"""The lab's image registry: Debian's docker-registry (the CNCF
distribution registry) as a managed process of the host namespace, with
its data under the lab's state directory.

    registry        10.231.K.1:PORT (the lab network: every node reaches it)
    forwarders      127.0.0.1:PORT -> 10.231.K.1:PORT, one in the host
                    namespace and one in every node namespace (socat)

so `localhost:PORT/NAME:TAG` names one image everywhere (kind's pattern):
this machine's Docker pushes to localhost, which it trusts over plain HTTP
without any daemon configuration, and the node engines pull the same name.
The node engines also use the registry as their Docker Hub mirror, so
`nginx:latest` is `localhost:PORT/library/nginx:latest` (see
engine.daemon_config); nothing is fetched from anywhere else.

`up` pushes the images of `make images` (the tags in images/out/images.tar.hash)
from this machine's Docker Engine, skipping those the registry already has
with the same image id, then has every node engine pull them.
Blocking functions; push and pull run in worker threads of lab.py.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from cli.lab import procs
from cli.lab.plan import LabPlan, NodePlan
from pkapi.imageref import hub_path, split_ref

HOST_DOCKER = "unix:///var/run/docker.sock"
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
))


class RegistryError(RuntimeError):
    pass


def pidfile(plan: LabPlan) -> str:
    return f"{plan.run_dir}/registry.pid"


def forwarder_pidfile(plan: LabPlan, node: NodePlan | None = None) -> str:
    return f"{node.run_dir if node else plan.run_dir}/registry-forward.pid"


def log_path(plan: LabPlan) -> str:
    return f"{plan.state_dir}/logs/registry.log"


def config_path(plan: LabPlan) -> str:
    return f"{plan.run_dir}/registry.yml"


def config_text(plan: LabPlan) -> str:
    """docker-registry's configuration: filesystem storage in the lab's
    state directory, plain HTTP on the lab network, no authentication."""
    return "\n".join([
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {plan.registry_dir}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: {plan.gateway}:{plan.registry_port}",
        "",
    ])


def argv(plan: LabPlan) -> list[str]:
    return [shutil.which("docker-registry") or "docker-registry", "serve", config_path(plan)]


def forwarder_argv(plan: LabPlan) -> list[str]:
    return [
        shutil.which("socat") or "socat",
        f"TCP-LISTEN:{plan.registry_port},bind=127.0.0.1,reuseaddr,fork",
        f"TCP:{plan.gateway}:{plan.registry_port}",
    ]


def start(plan: LabPlan) -> list[str]:
    """Start whatever of the registry and its forwarders is not running;
    returns what was started."""
    started = []
    if not procs.alive(pidfile(plan)):
        Path(plan.registry_dir).mkdir(parents=True, exist_ok=True)
        Path(config_path(plan)).write_text(config_text(plan))
        procs.start(argv(plan), log_path(plan), pidfile(plan))
        started.append("registry")
    if not procs.alive(forwarder_pidfile(plan)):
        procs.start(forwarder_argv(plan), log_path(plan), forwarder_pidfile(plan))
        started.append("forwarder")
    for n in plan.nodes:
        if not procs.alive(forwarder_pidfile(plan, n)):
            start_node_forwarder(plan, n)
            started.append(f"{n.name} forwarder")
    return started


def start_node_forwarder(plan: LabPlan, node: NodePlan) -> None:
    procs.start(forwarder_argv(plan), f"{node.state_dir}/registry-forward.log", forwarder_pidfile(plan, node),
                netns=node.netns)


def stop(plan: LabPlan) -> None:
    for n in plan.nodes:
        procs.stop(forwarder_pidfile(plan, n), hard=True)
    procs.stop(forwarder_pidfile(plan), hard=True)
    procs.stop(pidfile(plan), grace=5)


def alive(plan: LabPlan) -> bool:
    return procs.alive(pidfile(plan)) and procs.alive(forwarder_pidfile(plan))


def answers(plan: LabPlan) -> bool:
    """GET /v2/ through the host's forwarder answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{plan.registry_port}/v2/", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


# ------------------------------------------------------------------ names


def repository(ref: str) -> tuple[str, str]:
    """A Docker Hub reference as (repository path, tag):
    nginx -> (library/nginx, latest), pocketkube/hello:1 -> (pocketkube/hello, 1)."""
    repo, tag = split_ref(ref)
    return hub_path(repo) or repo, tag


def manifest_config_digest(plan: LabPlan, ref: str) -> str | None:
    """The image id (config digest) the registry holds for a Docker Hub
    reference, or None when it has no such tag."""
    repo, tag = repository(ref)
    req = urllib.request.Request(f"http://127.0.0.1:{plan.registry_port}/v2/{repo}/manifests/{tag}",
                                 headers={"Accept": MANIFEST_TYPES})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return str(json.load(r).get("config", {}).get("digest", "")) or None
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise RegistryError(f"registry at 127.0.0.1:{plan.registry_port}: {err}") from None
    except (OSError, ValueError) as err:
        raise RegistryError(f"registry at 127.0.0.1:{plan.registry_port}: {err}") from None


def push(plan: LabPlan, tags: list[str], docker_host: str | None = None) -> list[str]:
    """Push tags from this machine's Docker Engine to the registry (as
    localhost:PORT/REPO:TAG); returns the tags pushed (those the registry
    had already, with the same image id, are skipped)."""
    import docker
    import docker.errors

    host = docker_host or os.environ.get("DOCKER_HOST") or HOST_DOCKER
    try:
        c = docker.DockerClient(base_url=host, timeout=300)
        c.ping()
    except Exception as err:  # noqa: BLE001 - any failure means "no engine"
        raise RegistryError(
            f"no Docker Engine answers at {host} ({err}): the lab pushes the images of `make images` from it; "
            "start it (`make lab-up` does) or set DOCKER_HOST"
        ) from None
    pushed = []
    try:
        for tag in tags:
            try:
                img = c.images.get(tag)
            except docker.errors.ImageNotFound:
                raise RegistryError(f"image {tag} is not in the Docker Engine at {host}: run `make images`") from None
            if manifest_config_digest(plan, tag) == img.id:
                continue
            repo, t = repository(tag)
            target = f"{plan.registry}/{repo}"
            img.tag(target, t)
            try:
                for line in c.api.push(target, tag=t, stream=True, decode=True):
                    if "error" in line:
                        raise RegistryError(f"pushing {tag} to {target}:{t}: {line['error']}")
            finally:
                c.api.remove_image(f"{target}:{t}", noprune=True)  # the host keeps its own name only
            pushed.append(tag)
    finally:
        c.close()
    return pushed


def pull_into(plan: LabPlan, node_client, tags: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Have a node's engine pull tags from the registry, by the registry's
    name (localhost:PORT/library/nginx:latest), and tag them with their
    Docker Hub names (nginx:latest), as pk-agent does (docker_runtime.pull)."""
    import docker.errors

    for tag in tags:
        repo, t = repository(tag)
        src = f"{plan.registry}/{repo}"
        try:
            node_client.api.pull(src, tag=t)
            node_client.api.tag(f"{src}:{t}", repo.removeprefix("library/"), t)
            node_client.api.remove_image(f"{src}:{t}", noprune=True)
        except docker.errors.APIError as err:
            raise RegistryError(f"pulling {tag} from {src}:{t}: {err.explanation or err}") from None
