"""pkctl cordon, uncordon and drain.

cordon/uncordon flip spec.unschedulable (CAS on the Node read). drain
cordons, then evicts the node's pods: pods owned by a controller are
deleted (their ReplicaSet makes replacements, which the scheduler puts on
other nodes since this one is cordoned); pods with no controller would be
lost for good, so drain refuses them unless --force. It then waits until
the evicted pods are gone and their ReplicaSets are back at full ready
strength (the replacements run), or --timeout passes. With several nodes,
--ignore-errors goes on with the next node after a failure.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import click

from cli import util
from pkapi import meta
from pkapi.client.cluster import ClusterClient
from pkapi.errors import ApiError, is_not_found


async def _set_unschedulable(c: ClusterClient, name: str, value: bool) -> bool:
    """Returns False when the node already was in that state."""
    def change(node: Any) -> bool:
        if node.spec.unschedulable == value:
            return False
        node.spec.unschedulable = value
        return True

    _, written = await util.update_retrying(c, "nodes", "", name, change)
    return bool(written)


def _cordon_cmd(verb: str, value: bool) -> click.Command:
    @click.command(verb, help=f"Mark nodes as {'un' if value else ''}schedulable.")
    @click.argument("nodes", nargs=-1, required=True)
    @click.pass_context
    def cmd(ctx: click.Context, nodes: tuple[str, ...]) -> None:
        async def go() -> None:
            async with util.client(ctx) as c:
                for n in nodes:
                    changed = await _set_unschedulable(c, n, value)
                    click.echo(f"node/{n} {'' if changed else 'already '}{verb}ed")

        util.run(go())

    return cmd


cordon = _cordon_cmd("cordon", True)
uncordon = _cordon_cmd("uncordon", False)


def classify(pods: list[Any]) -> tuple[list[Any], list[Any]]:
    """(pods to evict, pods with no controller). Pure."""
    evict: list[Any] = []
    bare: list[Any] = []
    for p in pods:
        if p.metadata.HasField("deletion_timestamp"):
            continue
        (evict if meta.controller_of(p) is not None else bare).append(p)
    return evict, bare


async def _node_pods(c: ClusterClient, node: str) -> list[Any]:
    items: Any
    items, _ = await c.list("pods", "", field_selector=f"spec.nodeName={node}")
    return [p for p in items if p.spec.node_name == node]


async def _drain_one(c: ClusterClient, node: str, force: bool, grace: int | None, deadline: float | None) -> None:
    changed = await _set_unschedulable(c, node, True)
    click.echo(f"node/{node} {'' if changed else 'already '}cordoned")
    pods, bare = classify(await _node_pods(c, node))
    if bare:
        names = ", ".join(f"{p.metadata.namespace}/{p.metadata.name}" for p in bare)
        if not force:
            raise DrainError(f"cannot delete Pods declare no controller (use --force to override): {names}")
        click.echo(f"Warning: deleting Pods that declare no controller: {names}", err=True)
        pods = pods + bare
    owners: set[tuple[str, str]] = set()
    for p in pods:
        click.echo(f"evicting pod {p.metadata.namespace}/{p.metadata.name}")
        ref = meta.controller_of(p)
        if ref is not None and ref.kind == "ReplicaSet":
            owners.add((p.metadata.namespace, ref.name))
        try:
            await c.delete("pods", p.metadata.namespace, p.metadata.name, grace_period_seconds=grace,
                           uid=p.metadata.uid)
        except ApiError as e:
            if not is_not_found(e):
                raise
    pending = {(p.metadata.namespace, p.metadata.name, p.metadata.uid) for p in pods}
    while pending:
        for ns, name, uid in sorted(pending):
            try:
                cur: Any = await c.get("pods", ns, name)
                gone = cur.metadata.uid != uid
            except ApiError as e:
                if not is_not_found(e):
                    raise
                gone = True
            if gone:
                pending.discard((ns, name, uid))
                click.echo(f"pod/{name} evicted")
        if pending:
            _check_deadline(deadline, node)
            await asyncio.sleep(0.2)
    # The replacements: every ReplicaSet that lost a pod is whole again.
    while owners:
        for ns, name in sorted(owners):
            rs = await util.get_or_none(c, "replicasets", ns, name)
            if rs is None:
                owners.discard((ns, name))
                continue
            want = rs.spec.replicas if rs.spec.HasField("replicas") else 1
            if rs.status.ready_replicas >= want and rs.status.observed_generation >= rs.metadata.generation:
                owners.discard((ns, name))
        if owners:
            _check_deadline(deadline, node)
            await asyncio.sleep(0.2)
    click.echo(f"node/{node} drained")


class DrainError(Exception):
    pass


def _check_deadline(deadline: float | None, node: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise DrainError(f'drain did not complete within the timeout on node "{node}"')


@click.command("drain", help="Cordon nodes and evict their pods.")
@click.argument("nodes", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Also delete pods that no controller manages (they are lost).")
@click.option("--ignore-errors", is_flag=True, help="Go on with the other nodes when one fails.")
@click.option("--grace-period", default=-1, type=int, help="Seconds each pod gets to stop (-1: its own).")
@click.option("--timeout", default="0", metavar="DURATION", help="Give up after this long (0: never).")
@click.option("--delete-emptydir-data", is_flag=True, help="Accepted for kubectl compatibility (no emptyDir here).")
@click.option("--ignore-daemonsets", is_flag=True, help="Accepted for kubectl compatibility (no DaemonSets here).")
@click.pass_context
def drain(ctx: click.Context, nodes: tuple[str, ...], force: bool, ignore_errors: bool, grace_period: int,
          timeout: str, delete_emptydir_data: bool, ignore_daemonsets: bool) -> None:
    try:
        limit = util.parse_duration(timeout)
    except ValueError:
        util.fail(f'invalid argument "{timeout}" for "--timeout" flag')
    grace = grace_period if grace_period >= 0 else None

    async def go() -> None:
        deadline = time.monotonic() + limit if limit > 0 else None
        failed: list[tuple[str, str]] = []
        async with util.client(ctx) as c:
            for n in nodes:
                try:
                    await _drain_one(c, n, force, grace, deadline)
                except DrainError as e:
                    failed.append((n, str(e)))
                    util.err(f'error: unable to drain node "{n}" due to error: {e}, continuing command...')
                    if not ignore_errors:
                        break
        if failed:
            util.err("There are pending nodes to be drained:")
            for n, _ in failed:
                util.err(f" {n}")
            util.fail(failed[-1][1])

    util.run(go())
