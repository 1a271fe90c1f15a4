"""pkctl wait: block until objects meet a condition, as kubectl wait.

  pkctl wait --for=condition=Available deploy/web --timeout=60s
  pkctl wait --for=condition=Ready pods -l app=web
  pkctl wait --for=delete pod/web-1
  pkctl wait --for=jsonpath='{.status.phase}'=Running pod/web-1

The objects are re-read until each meets the condition or the deadline
passes (polling with a back-off from 100 ms to 1 s: simple, and a missed
watch event can never leave it hanging). Each object is reported once, as
`pod/web-1 condition met`, in the order they become true.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import click
from google.protobuf.message import Message

from cli import jsonpath, printers, resources, util
from cli.resources import Ref
from pkapi.client.cluster import ClusterClient
from pkapi.errors import ApiError, is_not_found


@dataclass(frozen=True)
class Condition:
    kind: str  # "condition", "delete", "jsonpath"
    name: str = ""  # condition type
    value: str = "true"  # wanted status (lower case) or jsonpath value
    path: jsonpath.Path | None = None

    def met(self, obj: Message) -> bool:
        if self.kind == "condition":
            for c in getattr(obj.status, "conditions", []):  # type: ignore[attr-defined]
                if c.type.lower() == self.name.lower():
                    return bool(c.status.lower() == self.value)
            return False
        assert self.path is not None
        d = printers.object_dict(obj)
        vals = jsonpath.evaluate(self.path, d, d)
        return bool(vals) and jsonpath.text(vals[0]) == self.value


def parse_for(spec: str) -> Condition:
    if spec == "delete":
        return Condition("delete")
    if spec.startswith("condition="):
        rest = spec[len("condition="):]
        name, eq, value = rest.partition("=")
        if not name:
            util.fail(f"invalid --for condition: {spec}")
        return Condition("condition", name, (value if eq else "true").lower())
    if spec.startswith("jsonpath="):
        rest = spec[len("jsonpath="):]
        # {.status.phase}=Running ; the expression may hold "=" inside braces
        if rest.startswith("{") and "}" in rest:
            end = rest.index("}") + 1
            expr, tail = rest[:end], rest[end:]
        else:
            expr, _, tail = rest.partition("=")
            tail = "=" + tail if tail else ""
        if not tail.startswith("=") or len(tail) < 2:
            util.fail(f"jsonpath wait format must be --for=jsonpath='{{.status.readyReplicas}}'=3: {spec}")
        try:
            path = jsonpath.relaxed(expr)
        except jsonpath.JSONPathError as e:
            util.fail(f"invalid jsonpath in --for {spec}: {e}")
        return Condition("jsonpath", value=tail[1:], path=path)
    util.fail(f'unrecognized condition: "{spec}"')


async def resolve(c: ClusterClient, ctx: click.Context, args: tuple[str, ...], filenames: tuple[str, ...],
                  selector: str, all_: bool, for_delete: bool = False) -> list[Ref]:
    """The objects to wait for. For --for=delete, as kubectl: a named object
    that does not exist is left out (nothing to wait for, nothing said) and
    one that does is remembered by uid (a new one of that name counts as
    the old one deleted); no objects at all is then no error."""
    s = util.settings(ctx)
    if filenames:
        out = resources.from_documents(util.read_manifests(filenames), s)
        return await _existing(c, out) if for_delete else out
    if not args:
        util.fail("resource(s) must be specified, e.g. pkctl wait --for=condition=Ready pod/web-1")
    targets = util.parse_targets(args, "wait")
    if any(t.name is None for t in targets) and not (selector or all_):
        util.fail("resource(s) were provided, but no name was specified")
    out = await resources.resolve(c, targets, s, selector)
    if for_delete:
        return await _existing(c, out)
    if not out:
        util.fail("no matching resources found")
    return out


async def _existing(c: ClusterClient, items: list[Ref]) -> list[Ref]:
    """items that exist now, each with its uid."""
    out = []
    for it in items:
        obj = await util.get_or_none(c, it.kind.resource, it.namespace, it.name)
        if obj is None:
            continue
        out.append(it if it.uid else dataclasses.replace(it, uid=obj.metadata.uid))
    return out


async def check(c: ClusterClient, item: Ref, cond: Condition) -> tuple[bool, str]:
    """(met, why-not)."""
    try:
        obj: Any = await c.get(item.kind.resource, item.namespace, item.name)
    except ApiError as e:
        if not is_not_found(e):
            raise
        if cond.kind == "delete":
            return True, ""
        raise  # as kubectl: waiting for a condition on nothing is an error at once
    if cond.kind == "delete":
        if item.uid and obj.metadata.uid != item.uid:
            return True, ""
        return False, "still exists"
    return cond.met(obj), ""


@click.command("wait", help="""Wait until objects meet a condition.

\b
  pkctl wait --for=condition=Available deploy/web --timeout=60s
  pkctl wait --for=condition=Ready pods -l app=web
  pkctl wait --for=delete pod/web-1
  pkctl wait --for=jsonpath='{.status.phase}'=Running pod/web-1""")
@click.argument("args", nargs=-1, metavar="(TYPE NAME… | TYPE/NAME… | TYPE -l SELECTOR)")
@click.option("--for", "for_", required=True, metavar="CONDITION",
              help="condition=TYPE[=STATUS], delete, or jsonpath='{PATH}'=VALUE.")
@click.option("--timeout", default="30s", show_default=True, metavar="DURATION", help="Give up after this long.")
@click.option("-l", "--selector", default="", metavar="SELECTOR", help="Wait for the objects matching this selector.")
@click.option("--all", "all_", is_flag=True, help="Wait for every object of the type in the namespace.")
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-", help="The objects in these manifests.")
@click.pass_context
def command(ctx: click.Context, args: tuple[str, ...], for_: str, timeout: str, selector: str, all_: bool,
            filenames: tuple[str, ...]) -> None:
    async def main() -> bool:
        cond = parse_for(for_)
        try:
            limit = util.parse_duration(timeout)
        except ValueError:
            util.fail(f"invalid --timeout {timeout!r}: use e.g. 30s, 2m")
        deadline = time.monotonic() + limit
        async with util.client(ctx) as c:
            pending = await resolve(c, ctx, args, filenames, selector, all_, for_delete=cond.kind == "delete")
            delay = 0.1
            while True:
                results = await asyncio.gather(*(check(c, it, cond) for it in pending))
                still = []
                for it, (met, _) in zip(pending, results, strict=True):
                    if met:
                        click.echo(f"{it.kind.lower}/{it.name} condition met")
                    else:
                        still.append(it)
                pending = still
                if not pending:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 1.5, 1.0)
        for it in pending:
            util.err(f"error: timed out waiting for the condition on {it.kind.resource}/{it.name}")
        return False

    if not util.run(main()):
        ctx.exit(1)
