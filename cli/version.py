"""pkctl version: the client's and the server's versions."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import click

from cli import printers, util


def client_version() -> dict[str, Any]:
    try:
        v = metadata.version("pocketkube")
    except metadata.PackageNotFoundError:
        v = "0.0.0"
    return {
        "gitVersion": f"v{v}",
        "platform": f"{platform.system().lower()}/{platform.machine()}",
        "pythonVersion": platform.python_version(),
    }


@click.command("version", help="Print the client and server versions.")
@click.option("--client", "client_only", is_flag=True, help="Only the client's version (no server needed).")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), default=None, help="json or yaml.")
@click.pass_context
def command(ctx: click.Context, client_only: bool, output: str | None) -> None:
    async def server() -> dict[str, Any]:
        async with util.client(ctx) as c:
            v = await c.version()
        return {"gitVersion": v.git_version, "platform": v.platform, "pythonVersion": v.python_version,
                "etcdVersion": v.etcd_version}

    info: dict[str, Any] = {"clientVersion": client_version()}
    if output is None:
        click.echo(f"Client Version: {info['clientVersion']['gitVersion']}")
    if not client_only:
        sv = util.run(server())
        info["serverVersion"] = sv
        if output is None:
            extra = f" (etcd {sv['etcdVersion']})" if sv.get("etcdVersion") else ""
            click.echo(f"Server Version: {sv['gitVersion']}{extra}")
    if output == "json":
        click.echo(printers.to_json(info))
    elif output == "yaml":
        click.echo(printers.to_yaml(info), nl=False)
