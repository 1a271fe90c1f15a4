"""pkctl create -f FILE|DIR|- : create objects from manifests; an object that
already exists is an error (AlreadyExists), unlike apply. Same ordering and
failure handling as cli/apply.py.
"""

from __future__ import annotations

import click

from cli import util
from cli.apply import dry_run_option, filename_options, send_all


@click.command("create", help="Create objects from manifest files (kubectl create -f).")
@filename_options
@click.option("-o", "--output", type=click.Choice(["name"]), default=None, help="name: print only TYPE/NAME.")
@click.pass_context
def command(ctx: click.Context, filenames: tuple[str, ...], recursive: bool, dry_run: str, output: str | None) -> None:
    async def main() -> bool:
        docs = util.read_manifests(filenames, recursive)
        return await send_all(ctx, docs, create=True, dry_run=dry_run, output=output)

    if not util.run(main()):
        ctx.exit(1)


command.params.append(dry_run_option())
