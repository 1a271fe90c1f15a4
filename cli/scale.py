"""pkctl scale: set spec.replicas of a Deployment or ReplicaSet.

--current-replicas is a precondition checked against the object read; the
write itself is CAS on that object's resourceVersion, and a Conflict (a
controller's status write in between) reads again, re-checks the
precondition and retries, as kubectl scale does.
"""

from __future__ import annotations

from typing import Any

import click

from cli import resources, util

SCALABLE = ("Deployment", "ReplicaSet")


@click.command("scale", help="Set a new size for a Deployment or ReplicaSet.")
@click.argument("args", nargs=-1, required=True)
@click.option("--replicas", type=int, default=None, help="The new number of replicas (required).")
@click.option("--current-replicas", type=int, default=-1,
              help="Only scale if the current size is this (-1: no precondition).")
@click.pass_context
def command(ctx: click.Context, args: tuple[str, ...], replicas: int | None, current_replicas: int) -> None:
    if replicas is None:
        util.fail("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    if replicas < 0:
        util.fail("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    targets = resources.named(args, "scale", util.settings(ctx), SCALABLE,
                              "cannot scale {resource}: only deployments and replicasets can be scaled")

    async def go() -> None:
        async with util.client(ctx) as c:
            for t in targets:
                def change(obj: Any) -> bool:
                    spec = obj.spec
                    cur = spec.replicas if spec.HasField("replicas") else 1
                    if current_replicas >= 0 and cur != current_replicas:
                        util.fail(f"Expected replicas to be {current_replicas}, was {cur}")
                    spec.replicas = replicas
                    return True

                await util.update_retrying(c, t.kind.resource, t.namespace, t.name, change)
                click.echo(f"{t.kind.lower}/{t.name} scaled")

    util.run(go())
