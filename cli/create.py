"""pkctl create: create objects from manifests (-f), or build one from flags
as kubectl does (`create namespace NAME`, `create deployment NAME --image=…`).

An object that already exists is an error (AlreadyExists), unlike apply.
`-f` follows cli/apply.py (parse everything first, send in file order, go on
past a refused document, exit 1 at the end). The builders print the object
instead of sending it with `--dry-run=client -o yaml`, the usual way to
start a manifest.
"""

from __future__ import annotations

import re
from typing import Any

import click
from google.protobuf.message import Message

from cli import printers, util
from cli.apply import dry_run_option, filename_options, send_all
from pkapi import meta
from pkapi.v1 import apps_pb2, core_pb2


@click.group("create", invoke_without_command=True, help="""Create objects from files, or build one from flags.

\b
  pkctl create -f web.yaml
  pkctl create namespace dev
  pkctl create deployment web --image=pocketkube/hello:1 --replicas=3 --port=8080
  pkctl create deployment web --image=nginx --dry-run=client -o yaml > web.yaml""")
@click.option("-o", "--output", type=click.Choice(["name", "yaml", "json"]), default=None,
              help="name: only TYPE/NAME; yaml, json: the objects as stored.")
@click.pass_context
def command(ctx: click.Context, filenames: tuple[str, ...], recursive: bool, dry_run: str, output: str | None) -> None:
    if ctx.invoked_subcommand is not None:
        if filenames:
            util.fail("-f cannot be combined with a create subcommand")
        return
    if not filenames:
        util.run(_missing())

    async def main() -> bool:
        docs = util.read_manifests(filenames, recursive)
        return await send_all(ctx, docs, create=True, dry_run=dry_run, output=output)

    if not util.run(main()):
        ctx.exit(1)


async def _missing() -> None:
    util.fail("must specify one of -f and -k (or a subcommand: namespace, deployment)")


filename_options(command, required=False)
command.params.append(dry_run_option())


def _builder_options(f: Any) -> Any:
    f = click.option("-o", "--output", type=click.Choice(["yaml", "json", "name"]), default=None,
                     help="Print the object (yaml, json) or TYPE/NAME instead of the usual line.")(f)
    f = click.option("--dry-run", type=click.Choice(["none", "server", "client"]), default="none",
                     show_default=True, help="client: only print the object; server: validate without storing.")(f)
    return f


def emit(ctx: click.Context, obj: Message, dry_run: str, output: str | None) -> None:
    """Print (dry-run=client) or create the object, then print as kubectl."""

    def show(o: Message, suffix: str) -> None:
        if output in ("yaml", "json"):
            d = printers.object_dict(o)
            click.echo(printers.to_yaml(d) if output == "yaml" else printers.to_json(d), nl=output == "json")
        elif output == "name":
            click.echo(printers.name_of(o))
        else:
            click.echo(f"{printers.name_of(o)} created{suffix}")

    if dry_run == "client":
        show(obj, " (dry run)")
        return

    kind = meta.kind_of(obj)
    ns = util.settings(ctx).namespace if kind.namespaced else ""

    async def main() -> Message:
        async with util.client(ctx) as c:
            return await c.create(obj, dry_run=dry_run == "server", default_namespace=ns)

    out = util.run(main())
    show(out, " (server dry run)" if dry_run == "server" else "")


def container_name(image: str) -> str:
    """kubectl's container name for an image: the last path part, no tag or
    digest ("registry:5000/team/web:1.2" -> "web")."""
    base = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    name = re.sub(r"[^a-z0-9-]", "-", base.lower()).strip("-")
    return name or "container"


@command.command("namespace", help="Create a namespace.")
@click.argument("name")
@_builder_options
@click.pass_context
def namespace(ctx: click.Context, name: str, dry_run: str, output: str | None) -> None:
    ns = core_pb2.Namespace()
    ns.metadata.name = name
    emit(ctx, ns, dry_run, output)


command.add_command(namespace, "ns")


@command.command("deployment", help="Create a deployment with the given image(s).")
@click.argument("name")
@click.option("--image", "images", multiple=True, required=True, metavar="IMAGE", help="Container image; repeatable.")
@click.option("-r", "--replicas", type=int, default=1, show_default=True, help="Number of replicas.")
@click.option("--port", type=int, default=None, help="The containerPort the containers expose.")
@click.argument("cmd", nargs=-1, metavar="[-- COMMAND [ARGS]...]")
@_builder_options
@click.pass_context
def deployment(ctx: click.Context, name: str, images: tuple[str, ...], replicas: int, port: int | None,
               cmd: tuple[str, ...], dry_run: str, output: str | None) -> None:
    if cmd and len(images) > 1:
        util.fail("cannot specify multiple --image options and command")
    d = apps_pb2.Deployment()
    d.metadata.name = name
    d.metadata.labels["app"] = name
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = name
    d.spec.template.metadata.labels["app"] = name
    seen: set[str] = set()
    for image in images:
        cname = container_name(image)
        while cname in seen:
            cname += "-x"
        seen.add(cname)
        c = d.spec.template.spec.containers.add(name=cname, image=image)
        if port is not None:
            c.ports.add(container_port=port)
        if cmd:
            c.command.extend(cmd)
    emit(ctx, d, dry_run, output)
