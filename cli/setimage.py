"""pkctl set image: change container images of a Deployment's (or
ReplicaSet's, or Pod's) template: `set image deployment/web web=nginx:2`
or `*=image` for every container. Unknown container names fail before
anything is written; the write is CAS on the object read.
"""

from __future__ import annotations

from typing import Any

import click

from cli import resources, util

SUPPORTED = ("Deployment", "ReplicaSet", "Pod")


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        name, eq, image = p.partition("=")
        if not eq or not name or not image:
            util.fail(f"invalid image update: {p!r}: expected CONTAINER_NAME=IMAGE")
        out[name] = image
    return out


def apply_images(spec: Any, images: dict[str, str]) -> bool:
    """Set images in a PodSpec; returns whether anything changed. Pure."""
    names = {c.name for c in spec.containers}
    for n in images:
        if n != "*" and n not in names:
            util.fail(f'unable to find container named "{n}"')
    changed = False
    for c in spec.containers:
        img = images.get(c.name, images.get("*"))
        if img is not None and c.image != img:
            c.image = img
            changed = True
    return changed


@click.group("set", help="Set specific features on objects.")
def command() -> None:
    pass


@command.command("image", help="Update the image of containers: TYPE/NAME CONTAINER=IMAGE ...")
@click.argument("args", nargs=-1, required=True)
@click.pass_context
def image(ctx: click.Context, args: tuple[str, ...]) -> None:
    objs = [a for a in args if "=" not in a]
    pairs = [a for a in args if "=" in a]
    if not pairs:
        util.fail("at least one image update is required")
    images = parse_pairs(pairs)
    if not objs:
        util.fail("one or more resources must be specified as <resource> <name> or <resource>/<name>")
    targets = resources.named(objs, "set image", util.settings(ctx), SUPPORTED,
                              "{lower}/{name} has no pod template: cannot set image")

    async def go() -> None:
        async with util.client(ctx) as c:
            for t in targets:
                def change(obj: Any, pod: bool = t.kind.kind == "Pod") -> bool:
                    return apply_images(obj.spec if pod else obj.spec.template.spec, images)

                _, written = await util.update_retrying(c, t.kind.resource, t.namespace, t.name, change)
                if written:
                    click.echo(f"{t.kind.lower}/{t.name} image updated")

    util.run(go())
