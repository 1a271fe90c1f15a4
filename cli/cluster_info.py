"""pkctl cluster-info: where the control plane is, its version, its nodes.
pkctl config view|set-server|set-namespace: the settings pkctl resolved
and where each came from; edit the config file."""

from __future__ import annotations

import os
from typing import Any

import click

from cli import config, printers, util


@click.command("cluster-info", help="Show where the control plane runs and how its nodes are.")
@click.pass_context
def command(ctx: click.Context) -> None:
    s = util.settings(ctx)

    async def main() -> None:
        async with util.client(ctx) as c:
            v = await c.version()
            nodes, _ = await c.list("nodes")
        counts: dict[str, int] = {}
        for n in nodes:
            st = printers.node_status(n).split(",")[0]
            counts[st] = counts.get(st, 0) + 1
        click.echo(f"PocketKube control plane is running at {s.server}")
        etcd = f", etcd {v.etcd_version}" if v.etcd_version else ""
        click.echo(f"Server version: {v.git_version}{etcd}")
        summary = ", ".join(f"{n} {st}" for st, n in sorted(counts.items())) or "none registered"
        click.echo(f"Nodes: {summary}")
        click.echo("Cluster DNS: on every node's agent (<service>.<namespace>.svc.cluster.local)")

    util.run(main())


def _sources(s: util.Settings) -> dict[str, Any]:
    path = config.config_path()
    try:
        cfg = config.read_config(path)
    except config.ConfigError as e:
        util.fail(str(e))
    if s.server_flag:
        server_from = "--server"
    elif os.environ.get(config.ENV_SERVER):
        server_from = f"${config.ENV_SERVER}"
    elif cfg.server:
        server_from = str(path)
    elif config.kubeconfig_server():
        from pkapi import kubeconfig

        server_from = str(kubeconfig.path())
    else:
        server_from = "default"
    ns_from = "--namespace" if s.namespace_flag else (str(path) if cfg.namespace else "default")
    return {
        "server": s.server,
        "serverFrom": server_from,
        "namespace": s.namespace,
        "namespaceFrom": ns_from,
        "configFile": str(path),
        "configFileExists": path.exists(),
    }


@click.group("config", help="Show or change pkctl's settings (the config file).")
def config_group() -> None:
    pass


@config_group.command("view", help="The server and namespace pkctl uses, and where each comes from.")
@click.pass_context
def view(ctx: click.Context) -> None:
    try:
        click.echo(printers.to_yaml(_sources(util.settings(ctx))), nl=False)
    except util.CliError as e:
        util.err(f"error: {e}")
        ctx.exit(1)


def _write(server: str | None, namespace: str | None) -> None:
    path = config.config_path()
    try:
        cfg = config.read_config(path)
    except config.ConfigError as e:
        util.err(f"error: {e}")
        raise SystemExit(1) from None
    config.write_config(path, server if server is not None else (cfg.server or config.DEFAULT_SERVER),
                        namespace if namespace is not None else cfg.namespace)


@config_group.command("set-server", help="Write the control plane's address to the config file.")
@click.argument("address")
def set_server(address: str) -> None:
    _write(config.normalize_server(address), None)
    click.echo(f"server set to {config.normalize_server(address)} in {config.config_path()}")


@config_group.command("set-namespace", help="Make NS the default namespace (in the config file).")
@click.argument("ns", metavar="NAMESPACE")
def set_namespace(ns: str) -> None:
    _write(None, ns)
    click.echo(f"namespace set to {ns} in {config.config_path()}")
