"""pkctl rollout: status, history, undo, pause, resume, restart of a
Deployment, with kubectl's messages.

Undo is done here, as kubectl does: the chosen old ReplicaSet's pod
template is written into the Deployment (CAS on its resourceVersion) and
the controller rolls to it. Status watches the Deployment (from the
resourceVersion it read first) and prints each new progress line once; it
exits 1 when the controller reports ProgressDeadlineExceeded, the
Deployment is deleted, or --timeout passes.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Any

import click

from cli import util
from pkapi import rollout as ro
from pkapi import selectors
from pkapi.client.cluster import ClusterClient
from pkapi.errors import ApiError, is_expired


def _target(arg: tuple[str, ...], verb: str) -> str:
    targets = util.parse_targets(list(arg), verb=f"rollout {verb}")
    if not targets:
        util.fail("required resource not specified")
    if len(targets) != 1 or targets[0].name is None:
        util.fail("you must specify only one resource")
    t = targets[0]
    if t.kind.kind != "Deployment":
        util.fail(f'no status viewer has been implemented for {t.kind.kind}' if verb == "status"
                  else f"{t.kind.lower} is not supported by rollout {verb}; only deployments are")
    assert t.name is not None
    return t.name


async def _deployment(c: ClusterClient, ns: str, name: str) -> Any:
    return await c.get("deployments", ns, name)


async def _owned_rss(c: ClusterClient, d: Any) -> list[Any]:
    got: Any = await c.list("replicasets", d.metadata.namespace,
                            label_selector=selectors.selector_string(d.spec.selector))
    items: list[Any] = got[0]
    return [rs for rs in items if any(r.uid == d.metadata.uid for r in rs.metadata.owner_references)]


@click.group("rollout", help="Manage the rollout of a Deployment.")
def command() -> None:
    pass


@command.command("status", help="Watch a rollout until it completes.")
@click.argument("args", nargs=-1, required=True)
@click.option("--timeout", default="0", metavar="DURATION", help="Give up after this long (0: never).")
@click.option("-w", "--watch", type=click.BOOL, default=True, is_flag=False, flag_value=True,
              metavar="[=true|false]", help="Watch until done (false: print the current status once).")
@click.pass_context
def status(ctx: click.Context, args: tuple[str, ...], timeout: str, watch: bool) -> None:
    name = _target(args, "status")
    try:
        limit = util.parse_duration(timeout)
    except ValueError:
        util.fail(f'invalid argument "{timeout}" for "--timeout" flag')
    ns = util.settings(ctx).namespace

    last = ""

    def show(d: Any) -> bool:
        """Print the progress line if it changed; True when done."""
        nonlocal last
        try:
            msg, done = ro.rollout_status_message(d)
        except ro.RolloutError as e:
            util.fail(str(e))
        if msg != last:
            click.echo(msg)
            last = msg
        return done

    async def follow(c: ClusterClient) -> None:
        """Read the Deployment, then watch it from that read until its
        rollout is done (kubectl's watch with fieldSelector metadata.name);
        a watch that ends or is too old starts again from a fresh read."""
        while True:
            d = await _deployment(c, ns, name)
            if show(d) or not watch:
                return
            try:
                async for typ, obj in c.watch("deployments", ns, resource_version=d.metadata.resource_version,
                                              field_selector=f"metadata.name={name}"):
                    if typ == "DELETED":
                        util.fail("object has been deleted")
                    if typ in ("ADDED", "MODIFIED"):
                        d = obj
                        if show(d):
                            return
            except ApiError as e:
                if not is_expired(e):
                    raise

    async def go() -> None:
        async with util.client(ctx) as c:
            try:
                async with asyncio.timeout(limit if limit > 0 else None):
                    await follow(c)
            except TimeoutError:
                util.fail("timed out waiting for the condition")

    util.run(go())


@command.command("history", help="Show the revisions of a Deployment.")
@click.argument("args", nargs=-1, required=True)
@click.option("--revision", default=0, type=int, help="Show the pod template of this revision.")
@click.pass_context
def history(ctx: click.Context, args: tuple[str, ...], revision: int) -> None:
    name = _target(args, "history")
    ns = util.settings(ctx).namespace

    async def go() -> None:
        async with util.client(ctx) as c:
            d = await _deployment(c, ns, name)
            h = ro.history(await _owned_rss(c, d))
        if revision:
            rs = next((rs for rev, _, rs in h if rev == revision), None)
            if rs is None:
                util.fail(f"unable to find the specified revision {revision}")
            click.echo(f"deployment.apps/{name} with revision #{revision}")
            click.echo(_template_text(rs.spec.template), nl=False)
            return
        click.echo(f"deployment.apps/{name} ")
        rows = [("REVISION", "CHANGE-CAUSE")] + [(str(rev), cause or "<none>") for rev, cause, _ in h]
        w = max(len(r[0]) for r in rows) + 2
        for a, b in rows:
            click.echo(f"{a:<{w}}{b}")
        click.echo("")

    util.run(go())


def _template_text(t: Any) -> str:
    lines = ["Pod Template:"]
    labels = sorted(f"{k}={v}" for k, v in t.metadata.labels.items())
    lines.append("  Labels:\t" + ("\n\t".join(labels) if labels else "<none>"))
    if t.metadata.annotations:
        ann = sorted(f"{k}: {v}" for k, v in t.metadata.annotations.items())
        lines.append("  Annotations:\t" + "\n\t".join(ann))
    lines.append("  Containers:")
    for ctr in t.spec.containers:
        lines.append(f"   {ctr.name}:")
        lines.append(f"    Image:\t{ctr.image}")
        ports = ", ".join(f"{p.container_port}/{p.protocol or 'TCP'}" for p in ctr.ports) or "<none>"
        lines.append(f"    Port:\t{ports}")
        lines.append("    Environment:\t" + (", ".join(f"{e.name}={e.value}" for e in ctr.env) or "<none>"))
    return "\n".join(lines) + "\n"


@command.command("undo", help="Roll back to the previous (or a given) revision.")
@click.argument("args", nargs=-1, required=True)
@click.option("--to-revision", default=0, type=int, help="The revision to roll back to (0: the previous one).")
@click.pass_context
def undo(ctx: click.Context, args: tuple[str, ...], to_revision: int) -> None:
    name = _target(args, "undo")
    ns = util.settings(ctx).namespace

    async def go() -> None:
        async with util.client(ctx) as c:
            d = await _deployment(c, ns, name)
            if d.spec.paused:
                util.fail(f"you cannot rollback a paused deployment; resume it first with 'pkctl rollout resume "
                          f"deployment/{name}' and try again")
            try:
                rs = ro.rollback_target(await _owned_rss(c, d), to_revision)
            except ro.RolloutError as e:
                msg = str(e)
                if msg.startswith("no rollout history"):
                    msg = f'no rollout history found for deployment "{name}"'
                util.fail(msg)
            t = ro.rollback_template(rs)
            if ro.equal_ignore_hash(t, d.spec.template):
                rev = ro.revision_of(rs.metadata.annotations)
                click.echo(f"deployment.apps/{name} skipped rollback (current template already matches "
                           f"revision {rev})")
                return
            d.spec.template.CopyFrom(t)
            cause = rs.metadata.annotations.get(ro.CHANGE_CAUSE)
            if cause:
                d.metadata.annotations[ro.CHANGE_CAUSE] = cause
            else:
                d.metadata.annotations.pop(ro.CHANGE_CAUSE, None)
            await c.update(d)  # CAS on the resourceVersion just read
        click.echo(f"deployment.apps/{name} rolled back")

    util.run(go())


def _simple(verb: str, past: str, change: Any) -> Any:
    @command.command(verb, help=f"{verb.capitalize()} a Deployment's rollout.")
    @click.argument("args", nargs=-1, required=True)
    @click.pass_context
    def cmd(ctx: click.Context, args: tuple[str, ...]) -> None:
        name = _target(args, verb)
        ns = util.settings(ctx).namespace

        async def go() -> None:
            def edit(d: Any) -> bool:
                change(d, name)
                return True

            async with util.client(ctx) as c:
                await util.update_retrying(c, "deployments", ns, name, edit)
            click.echo(f"deployment.apps/{name} {past}")

        util.run(go())

    return cmd


def _pause(d: Any, name: str) -> None:
    if d.spec.paused:
        util.fail(f'deployments.apps "{name}" is already paused')
    d.spec.paused = True


def _resume(d: Any, name: str) -> None:
    if not d.spec.paused:
        util.fail(f'deployments.apps "{name}" is not paused')
    d.spec.paused = False


def _restart(d: Any, name: str) -> None:
    if d.spec.paused:
        util.fail(f'deployments.apps "{name}" can\'t restart paused deployment (run rollout resume first)')
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    d.spec.template.metadata.annotations[ro.RESTARTED_AT] = now.isoformat().replace("+00:00", "Z")


_simple("pause", "paused", _pause)
_simple("resume", "resumed", _resume)
_simple("restart", "restarted", _restart)
