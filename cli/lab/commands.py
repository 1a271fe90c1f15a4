"""`pkctl lab …`: thin click wiring over cli/lab/lab.py.

Every failure a user can cause (not root, unknown node, no such lab, a
missing package, a component that would not start) is printed as
`error: …` with exit code 1 and no traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, TypeVar

import click

from cli.lab import lab as labmod
from cli.lab import net
from cli.lab.engine import EngineError
from cli.lab.plan import PlanError
from cli.lab.registry import RegistryError

F = TypeVar("F", bound=Callable[..., Any])

USER_ERRORS = (labmod.LabError, PlanError, EngineError, net.NetError, RegistryError)


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except USER_ERRORS as err:
        raise click.ClickException(str(err)) from None
    except KeyboardInterrupt:
        raise click.Abort() from None


def _say(text: str) -> None:
    click.echo(text)
    sys.stdout.flush()


def name_option(f: F) -> F:
    return click.option(
        "--name", "lab_name", default="lab", show_default=True, metavar="NAME",
        help="Which lab (several can run side by side).",
    )(f)


@click.group("lab", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """A multi-node cluster on this Linux machine (root): nodes are network
    namespaces with their own dockerd and pk-agent on a private bridge;
    etcd and the control plane run in the host namespace.

    State: /var/lib/pocketkube/lab/NAME (etcd, engines, logs; $PK_LAB_STATE_ROOT)
    and /run/pocketkube/lab/NAME (sockets, PID files; $PK_LAB_RUN_ROOT).
    """


@command.command("up")
@name_option
@click.option("--nodes", type=int, default=None, help="Number of nodes (default 3).")
@click.option("--preset", type=click.Choice(["lab", "kubernetes"]), default="lab", show_default=True,
              help="Failover timing: lab (heartbeat 1 s, grace 4 s, toleration 0 s) or kubernetes (10 s / 40 s / 300 s).")
@click.option("--service-cidr", default="10.96.0.0/16", show_default=True, help="ClusterIP range.")
@click.option("--lb-pool", default=None, help="LoadBalancer addresses, CIDR or first-last (default: 10.231.K.192/27 on the lab network).")
@click.option("--images", "images_dir", default=None, metavar="DIR",
              help="Where `make images` wrote images.tar.hash: the images pushed to the lab registry (default: images/out).")
@click.option("--timeout", type=float, default=90.0, show_default=True, help="Seconds to wait for the nodes to be Ready.")
@click.option("--control-planes", type=int, default=None,
              help="Control planes, each with its own etcd member (default 1; 3 for HA: cp-1..cp-3 on 10.231.K.1-3).")
@click.option("--infra-only", is_flag=True, hidden=True, help="Network, engines and images only (the lab's own tests).")
def up_cmd(lab_name: str, nodes: int | None, preset: str, service_cidr: str, lb_pool: str | None,
           images_dir: str | None, timeout: float, control_planes: int | None, infra_only: bool) -> None:
    """Bring the lab up (idempotent: a running lab is left as it is)."""
    opts = labmod.UpOptions(
        name=lab_name, nodes=nodes, preset=preset, service_cidr=service_cidr, lb_pool=lb_pool,
        images_dir=images_dir, cluster=not infra_only, timeout=timeout, control_planes=control_planes,
    )
    _guard(lambda: labmod.up(opts, say=_say))


@command.command("down")
@name_option
@click.option("--keep-data", is_flag=True, help="Keep etcd's data (the cluster's objects) for the next `up`.")
def down_cmd(lab_name: str, keep_data: bool) -> None:
    """Remove everything the lab made: processes, namespaces, links, routes, mounts, files."""
    left = _guard(lambda: labmod.down(lab_name, keep_data=keep_data, say=_say))
    if left:
        sys.exit(1)


@command.command("kubeconfig")
@name_option
def kubeconfig_cmd(lab_name: str) -> None:
    """Print the lab's kubeconfig (context pocketkube-NAME: kubectl's HTTPS
    API and pkctl's gRPC address; `up` merges it into $KUBECONFIG or
    ~/.kube/config)."""
    from pkapi import kubeconfig

    def show() -> None:
        _, plan = labmod.load_plan(lab_name)
        click.echo(kubeconfig.dump(labmod.lab_kubeconfig(plan)), nl=False)

    _guard(show)


@command.command("status")
@name_option
@click.option("-o", "--output", type=click.Choice(["json"]), default=None,
              help="json: one JSON object (controlplanes, leader, etcd, nodes; registry: the host:port to push to).")
def status_cmd(lab_name: str, output: str | None) -> None:
    """Show the lab's processes, links and node status (exit 1 if a part is down)."""
    ok = _guard(lambda: labmod.status(lab_name, say=_say, output=output or ""))
    if not ok:
        sys.exit(1)


@command.command("kill-controlplane")
@name_option
@click.argument("controlplane")
def kill_controlplane_cmd(lab_name: str, controlplane: str) -> None:
    """SIGKILL one control plane (cp-1, ...; `controlplane` in a lab of one)."""
    _guard(lambda: labmod.kill_controlplane(lab_name, controlplane, say=_say))


@command.command("start-controlplane")
@name_option
@click.argument("controlplane")
def start_controlplane_cmd(lab_name: str, controlplane: str) -> None:
    """Start a control plane again and wait until it answers."""
    _guard(lambda: labmod.start_controlplane(lab_name, controlplane, say=_say))


@command.command("kill-etcd")
@name_option
@click.argument("member")
def kill_etcd_cmd(lab_name: str, member: str) -> None:
    """SIGKILL one etcd member (etcd-1, ...; `etcd` in a lab of one)."""
    _guard(lambda: labmod.kill_etcd(lab_name, member, say=_say))


@command.command("start-etcd")
@name_option
@click.argument("member")
def start_etcd_cmd(lab_name: str, member: str) -> None:
    """Start an etcd member again (same ports and data) and wait until it is healthy."""
    _guard(lambda: labmod.start_etcd(lab_name, member, say=_say))


@command.command("kill-node")
@name_option
@click.argument("node")
@click.option("--hard", is_flag=True, help="Also kill the node's dockerd and every container: the node is gone.")
def kill_node_cmd(lab_name: str, node: str, hard: bool) -> None:
    """Kill NODE's pk-agent (its containers keep running), or with --hard the whole node."""
    _guard(lambda: labmod.kill_node(lab_name, node, hard=hard, say=_say))


@command.command("start-node")
@name_option
@click.argument("node")
def start_node_cmd(lab_name: str, node: str) -> None:
    """Start NODE's dockerd and pk-agent again (whichever is not running)."""
    _guard(lambda: labmod.start_node(lab_name, node, say=_say))


@command.command("partition")
@name_option
@click.argument("node")
def partition_cmd(lab_name: str, node: str) -> None:
    """Cut NODE's network link: it keeps running but reaches nothing."""
    _guard(lambda: labmod.partition(lab_name, node, cut=True, say=_say))


@command.command("heal")
@name_option
@click.argument("node")
def heal_cmd(lab_name: str, node: str) -> None:
    """Restore NODE's network link."""
    _guard(lambda: labmod.partition(lab_name, node, cut=False, say=_say))


@command.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@name_option
@click.argument("node")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
def exec_cmd(lab_name: str, node: str, cmd: tuple[str, ...]) -> None:
    """Run CMD inside NODE's network namespace (DOCKER_HOST set to its engine):
    pkctl lab exec node-1 -- curl -s http://10.96.0.10"""
    _guard(lambda: labmod.require_root("exec"))
    args = list(cmd)
    if args and args[0] == "--":
        args = args[1:]
    argv = _guard(lambda: labmod.exec_argv(lab_name, node, args))
    sys.stdout.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        raise click.ClickException(f"cannot run {argv[0]}: {err.strerror}") from None


@command.command("logs")
@name_option
@click.argument("component")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what is appended.")
@click.option("--tail", "lines", type=int, default=-1, help="Lines to show from the end (default: all; with -f: 20).")
def logs_cmd(lab_name: str, component: str, follow: bool, lines: int) -> None:
    """Print a component's log: controlplane, etcd, registry, NODE/agent (or NODE), NODE/dockerd."""
    def path() -> str:
        _, plan = labmod.load_plan(lab_name)
        return labmod.log_path(plan, component)
    p = _guard(path)
    if not os.path.exists(p):
        raise click.ClickException(f"no log yet for {component} ({p})")
    if follow:
        try:
            labmod.follow(p, 20 if lines < 0 else lines, _say)
        except KeyboardInterrupt:
            return
    with open(p, "rb") as f:
        data = f.read().decode(errors="replace")
    if lines >= 0:
        data = "\n".join(data.splitlines()[-lines:]) + ("\n" if lines else "")
    sys.stdout.write(data)
