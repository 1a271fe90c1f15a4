"""pkctl events: the namespace's events in time order (kubectl events).

Unlike `get events` (server order, as kubectl get), this sorts by when each
event last happened, filters by object (--for TYPE/NAME) and type
(--types Warning), and with -w keeps printing new ones.
"""

from __future__ import annotations

import asyncio
import time

import click

from cli import printers, util
from pkapi.errors import ApiError, is_expired


@click.command("events", help="""List events, oldest first.

\b
  pkctl events
  pkctl events --for deploy/web
  pkctl events -A --types Warning
  pkctl events -w""")
@click.option("--for", "for_", default="", metavar="TYPE/NAME", help="Only events about this object.")
@click.option("--types", default="", metavar="Normal,Warning", help="Only these event types.")
@click.option("-w", "--watch", "watch_", is_flag=True, help="After listing, print new events until Ctrl-C.")
@click.option("--no-headers", is_flag=True, help="Omit the header line.")
@click.pass_context
def command(ctx: click.Context, for_: str, types: str, watch_: bool, no_headers: bool) -> None:
    async def main() -> None:
        s = util.settings(ctx)
        ns = "" if s.all_namespaces else s.namespace
        fs = []
        if for_:
            typ, slash, name = for_.partition("/")
            if not slash or not name:
                util.fail(f"--for must be TYPE/NAME, e.g. deploy/web: {for_}")
            kind = util.lookup_kind(typ)
            fs += [f"involvedObject.kind={kind.kind}", f"involvedObject.name={name}"]
        wanted = {t.strip().lower() for t in types.split(",") if t.strip()}
        for t in wanted:
            if t not in ("normal", "warning"):
                util.fail(f'valid --types are Normal or Warning, not "{t}"')
        field_selector = ",".join(fs)
        opts = printers.TableOptions(all_namespaces=s.all_namespaces)
        writer = printers.TableWriter()
        kind = util.lookup_kind("events")

        def keep(e: object) -> bool:
            return not wanted or e.type.lower() in wanted  # type: ignore[attr-defined]

        def emit(evs: list[object], header: bool) -> None:
            now = util.now()
            rows = [printers.table_headers(kind, opts)] if header and not no_headers else []
            rows += [printers.table_row(e, now, opts) for e in evs]  # type: ignore[arg-type]
            if rows:
                click.echo("\n".join(line.rstrip() for line in writer.render(rows)))

        async with util.client(ctx) as c:
            items, rv = await c.list("events", ns, field_selector=field_selector)
            evs = sorted((e for e in items if keep(e)), key=printers.event_sort_key)
            if evs:
                emit(evs, True)  # type: ignore[arg-type]
            elif not watch_:
                util.err(f"No events found in {ns} namespace." if ns else "No events found.")
            headed = bool(evs)
            if not watch_:
                return
            deadline = time.monotonic() + s.request_timeout if s.request_timeout_explicit and s.request_timeout \
                else None

            async def follow() -> None:
                nonlocal rv, headed
                while True:
                    try:
                        async for typ, e in c.watch("events", ns, rv, field_selector=field_selector):
                            rv = e.metadata.resource_version  # type: ignore[attr-defined]
                            if typ in ("ADDED", "MODIFIED") and keep(e):
                                emit([e], not headed)
                                headed = True
                        return
                    except ApiError as err:
                        if not is_expired(err):
                            raise
                        _, rv = await c.list("events", ns, field_selector=field_selector)

            if deadline is None:
                await follow()
            else:
                try:
                    await asyncio.wait_for(follow(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    pass

    util.run(main())
