"""pkctl delete: delete objects by TYPE NAME…, TYPE/NAME…, -f, -l or --all.

Deletes are sent one at a time in the order given (as kubectl), then, with
--wait (the default, as kubectl), the command polls until every deleted
object is gone (its name is free or now belongs to a new object with another
uid) or the deadline passes. A missing object is reported and the others
are still deleted; the exit code is 1 if anything failed.
"""

from __future__ import annotations

import asyncio
import time

import click

from cli import resources, util
from cli.resources import Ref
from pkapi import meta
from pkapi.client.cluster import ClusterClient
from pkapi.errors import ApiError, is_not_found

CASCADE = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan",
           "true": "Background", "false": "Orphan"}


def propagation(cascade: str) -> str:
    c = cascade.lower()
    if c not in CASCADE:
        util.fail(f'invalid cascade value ({cascade}). Must be "background", "foreground", or "orphan".')
    if c in ("true", "false"):
        util.err(f"warning: --cascade={c} is deprecated (boolean value) and can be replaced with "
                 f"--cascade={'background' if c == 'true' else 'orphan'}.")
    return CASCADE[c]


def grace_seconds(grace_period: int, force: bool, now: bool) -> int | None:
    """kubectl's rules: --now is 1 s; --force without a grace period is 0;
    0 without --force becomes 1 (0 would skip the node's confirmation)."""
    g = grace_period
    if now:
        if g >= 0:
            util.fail("--now and --grace-period cannot be specified together")
        g = 1
    if force and g < 0:
        g = 0
    if g == 0 and not force:
        g = 1
    return None if g < 0 else g


async def victims(c: ClusterClient, ctx: click.Context, args: tuple[str, ...], filenames: tuple[str, ...],
                  recursive: bool, selector: str, field_selector: str, all_: bool) -> list[Ref]:
    s = util.settings(ctx)
    if filenames:
        if args:
            util.fail("arguments may not be passed when -f is used")
        docs = util.read_manifests(filenames, recursive)
        for doc in docs:
            util.check_namespace(doc, s)
            doc.resolve_kind()
            if not doc.name:
                util.fail(f'error validating "{doc.source}": resource name may not be empty')
        return resources.from_documents(docs, s)
    if not args:
        util.fail("You must provide one or more resources by argument or filename.\n"
                  "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n"
                  "   '<resource> <name>'\n   '<resource>'")
    targets = util.parse_targets(args, "delete")
    named = [t for t in targets if t.name is not None]
    if named and (selector or all_ or field_selector):
        util.fail("name cannot be provided when a selector is specified")
    if not named and not (selector or all_ or field_selector):
        util.fail("resource(s) were provided, but no name was specified")
    if named and s.all_namespaces:
        util.fail("a resource cannot be retrieved by name across all namespaces")
    return await resources.resolve(c, targets, s, selector, field_selector)


async def wait_gone(c: ClusterClient, gone: list[tuple[Ref, str]], deadline: float) -> list[Ref]:
    """Poll until each (victim, uid) is gone; the ones still there at the deadline."""
    pending = list(gone)
    delay = 0.05
    while pending:
        still = []
        for v, uid in pending:
            o = await util.get_or_none(c, v.kind.resource, v.namespace, v.name)
            if o is None:
                continue
            if uid and o.metadata.uid != uid:  # type: ignore[attr-defined]
                continue  # a new object took the name: ours is gone
            still.append((v, uid))
        pending = still
        if not pending:
            break
        if time.monotonic() >= deadline:
            return [v for v, _ in pending]
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.5)
    return []


@click.command("delete", help="""Delete objects by name, file, label selector or --all.

\b
  pkctl delete -f web.yaml
  pkctl delete deploy web
  pkctl delete pod/web-1 svc/web
  pkctl delete pods -l app=web --cascade=foreground
  pkctl delete pod web-1 --force --grace-period=0""")
@click.argument("args", nargs=-1, metavar="(TYPE [NAME…] | TYPE/NAME…)", shell_complete=util.complete_types)
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-",
              help="Delete the objects named in these manifests.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories given to -f recursively.")
@click.option("-l", "--selector", default="", metavar="SELECTOR", help="Delete the objects matching this label selector.")
@click.option("--field-selector", default="", metavar="SELECTOR", help="Delete the objects matching this field selector.")
@click.option("--all", "all_", is_flag=True, help="Delete every object of the type(s) in the namespace.")
@click.option("--cascade", default="background", show_default=True, metavar="background|foreground|orphan",
              help="What happens to dependents (a Deployment's ReplicaSets, their Pods).")
@click.option("--grace-period", type=int, default=-1, show_default=True,
              help="Seconds the pod gets to stop (-1: the object's own terminationGracePeriodSeconds).")
@click.option("--force", is_flag=True, help="With --grace-period=0: remove at once, without the node's confirmation.")
@click.option("--now", "now_", is_flag=True, help="Grace period of 1 second.")
@click.option("--wait", type=click.BOOL, default=True, is_flag=False, flag_value=True, show_default=True,
              metavar="[=true|false]", help="Wait until the objects are gone.")
@click.option("--timeout", default="0", metavar="DURATION",
              help="How long --wait waits (0: 60s plus the grace period).")
@click.option("--ignore-not-found", is_flag=True, help="A missing object is not an error.")
@click.option("--dry-run", type=click.Choice(["none", "server", "client"]), default="none", show_default=True,
              help="server: check the delete without doing it.")
@click.option("-o", "--output", type=click.Choice(["name"]), default=None, help="name: print only TYPE/NAME.")
@click.pass_context
def command(ctx: click.Context, args: tuple[str, ...], filenames: tuple[str, ...], recursive: bool, selector: str,
            field_selector: str, all_: bool, cascade: str, grace_period: int, force: bool, now_: bool, wait: bool,
            timeout: str, ignore_not_found: bool, dry_run: str, output: str | None) -> None:
    async def main() -> bool:
        policy = propagation(cascade)
        grace = grace_seconds(grace_period, force, now_)
        try:
            wait_for = util.parse_duration(timeout)
        except ValueError:
            util.fail(f"invalid --timeout {timeout!r}: use e.g. 30s, 2m")
        if wait_for <= 0:
            wait_for = 60.0 + (grace or 0)
        if force and grace == 0:
            util.err("Warning: Immediate deletion does not wait for confirmation that the running resource has "
                     "been terminated. The resource may continue to run on the cluster indefinitely.")
        ok = True
        deleted: list[tuple[Ref, str]] = []
        suffix = {"server": " (server dry run)", "client": " (dry run)"}.get(dry_run, "")
        async with util.client(ctx) as c:
            vs = await victims(c, ctx, args, filenames, recursive, selector, field_selector, all_)
            if not vs and not filenames:
                util.err("No resources found")
            for v in vs:
                if dry_run == "client":
                    click.echo(f'{v.kind.lower} "{v.name}" deleted{suffix}')
                    continue
                try:
                    obj = await c.delete(v.kind.resource, v.namespace, v.name, propagation_policy=policy,
                                         grace_period_seconds=grace, dry_run=dry_run == "server")
                except ApiError as e:
                    if is_not_found(e) and ignore_not_found:
                        continue
                    util.err(util.api_error_text(e))
                    ok = False
                    continue
                if output == "name":
                    click.echo(f"{v.kind.lower}/{v.name}")
                else:
                    verb = "force deleted" if force and grace == 0 else "deleted"
                    click.echo(f'{meta.kind_of(obj).lower} "{v.name}" {verb}{suffix}')
                if dry_run == "none":
                    deleted.append((v, obj.metadata.uid))  # type: ignore[attr-defined]
            if wait and deleted:
                left = await wait_gone(c, deleted, time.monotonic() + wait_for)
                for v in left:
                    util.err(f"error: timed out waiting for the condition on {v.kind.resource}/{v.name}")
                    ok = False
        return ok

    if not util.run(main()):
        ctx.exit(1)
