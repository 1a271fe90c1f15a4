"""pkctl label / annotate: set or remove labels and annotations, as kubectl.

  pkctl label pod web-1 tier=front            # add
  pkctl label pod web-1 tier=back --overwrite # change an existing key
  pkctl label pod web-1 tier-                 # remove
  pkctl annotate deploy web note='on call: ana'
  pkctl label pods -l app=web canary=true

Each object is read, changed and written back with its resourceVersion as a
precondition (compare-and-swap); when another writer got there first the
command re-reads and tries again (a few times), so a concurrent change is
never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from google.protobuf.message import Message

from cli import resources, util
from pkapi import meta, selectors
from pkapi.client.cluster import ClusterClient
from pkapi.errors import ApiError, is_conflict

RETRIES = 5


@dataclass(frozen=True)
class Change:
    set: dict[str, str]
    remove: tuple[str, ...]


def parse_changes(args: list[str], what: str) -> Change:
    """`k=v` sets, `k-` removes (kubectl's syntax). CliError on bad input."""
    sets: dict[str, str] = {}
    removes: list[str] = []
    for a in args:
        if a.endswith("-") and "=" not in a:
            removes.append(a[:-1])
        elif "=" in a:
            k, _, v = a.partition("=")
            if not k:
                util.fail(f"invalid {what} spec: {a}")
            if k in sets:
                util.fail(f"can not both modify and remove a {what} in the same command" if k in removes
                          else f"duplicate {what} key: {k}")
            sets[k] = v
        else:
            util.fail(f"invalid {what} spec: {a}")
    for k in removes:
        if k in sets:
            util.fail(f"can not both modify and remove a {what} in the same command")
    if what == "label":
        for k, v in sets.items():
            try:
                selectors.parse_label_selector(f"{k}={v}" if v else f"{k}")
            except selectors.SelectorError as e:
                util.fail(f"invalid label spec: {k}={v}: {e}")
    return Change(sets, tuple(removes))


def _split(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Resource arguments and the KEY=VALUE / KEY- changes (a name or type
    never contains "=" nor ends with "-")."""
    res = [a for a in args if "=" not in a and not a.endswith("-")]
    changes = [a for a in args if "=" in a or a.endswith("-")]
    return res, changes


async def change_one(c: ClusterClient, kind: meta.Kind, ns: str, name: str, ch: Change, what: str,
                     overwrite: bool, dry_run: bool) -> str:
    """'labeled' / 'not labeled' (nothing to do); raises ApiError/CliError."""
    for _ in range(RETRIES):
        obj: Message = await c.get(kind.resource, ns, name)
        field = obj.metadata.labels if what == "label" else obj.metadata.annotations  # type: ignore[attr-defined]
        before = dict(field)
        for k, v in ch.set.items():
            if k in field and field[k] != v and not overwrite:
                util.fail(f"'{k}' already has a value ({field[k]}), and --overwrite is false")
            field[k] = v
        for k in ch.remove:
            if k in field:
                del field[k]
        if dict(field) == before:
            return "not labeled" if what == "label" else "not annotated"
        try:
            await c.update(obj, dry_run=dry_run)
        except ApiError as e:
            if is_conflict(e):
                continue  # someone else wrote in between: re-read and redo
            raise
        return "labeled" if what == "label" else "annotated"
    raise ApiError("Conflict", f'{kind.qualified} "{name}": still changing under us after {RETRIES} attempts')


def _command(what: str) -> click.Command:
    plural = "labels" if what == "label" else "annotations"

    @click.command(what, help=f"""Update the {plural} of objects: KEY=VALUE sets, KEY- removes.

\b
  pkctl {what} pod web-1 tier=front
  pkctl {what} pod/web-1 tier=back --overwrite
  pkctl {what} pods -l app=web tier-""")
    @click.argument("args", nargs=-1, metavar="(TYPE NAME | TYPE/NAME | TYPE -l SEL) KEY=VAL… KEY-…")
    @click.option("--overwrite", is_flag=True, help=f"Allow changing the value of an existing {what}.")
    @click.option("-l", "--selector", default="", metavar="SELECTOR", help="Change every object matching it.")
    @click.option("--all", "all_", is_flag=True, help="Change every object of the type in the namespace.")
    @click.option("--dry-run", type=click.Choice(["none", "server"]), default="none", show_default=True,
                  help="server: check the update without storing it.")
    @click.pass_context
    def cmd(ctx: click.Context, args: tuple[str, ...], overwrite: bool, selector: str, all_: bool,
            dry_run: str) -> None:
        async def main() -> bool:
            s = util.settings(ctx)
            res, raw = _split(args)
            if not res:
                util.fail("one or more resources must be specified as <resource> <name> or <resource>/<name>")
            if not raw:
                util.fail(f"at least one {what} update is required")
            ch = parse_changes(raw, "label" if what == "label" else "annotation")
            targets = util.parse_targets(res, what)
            named = [t for t in targets if t.name is not None]
            if not named and not (selector or all_):
                util.fail("resource(s) were provided, but no name was specified")
            ok = True
            suffix = " (server dry run)" if dry_run == "server" else ""
            async with util.client(ctx) as c:
                work = [(r.kind, r.namespace, r.name) for r in await resources.resolve(c, targets, s, selector)]
                for kind, ns, name in work:
                    try:
                        result = await change_one(c, kind, ns, name, ch, what, overwrite, dry_run == "server")
                    except ApiError as e:
                        util.err(util.api_error_text(e))
                        ok = False
                        continue
                    click.echo(f"{kind.lower}/{name} {result}{suffix}")
            return ok

        if not util.run(main()):
            ctx.exit(1)

    return cmd


label = _command("label")
annotate = _command("annotate")
