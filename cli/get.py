"""pkctl get: list or fetch objects and print them as kubectl does.

Reads for several targets (`get deploy,svc`, `get po a b`) are sent
concurrently and printed in the order asked. With -w the command lists,
prints, then watches from the list's resourceVersion, so no change between
the list and the watch is missed; it prints one line per change until
Ctrl-C (or until an explicit --request-timeout elapses, as kubectl).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import click
from google.protobuf.message import Message

from cli import jsonpath, printers, util
from pkapi import meta
from pkapi.client.cluster import ClusterClient
from pkapi.errors import ApiError, is_expired, is_not_found
from pkapi.meta import Kind

FORMATS = ("wide", "yaml", "json", "name", "jsonpath=TEMPLATE", "custom-columns=SPEC")


@dataclass(frozen=True)
class Output:
    """A parsed -o value."""

    format: str  # "table", "wide", "yaml", "json", "name", "jsonpath", "custom-columns"
    template: jsonpath.Template | None = None
    columns: tuple[tuple[str, jsonpath.Path], ...] = ()

    @property
    def tabular(self) -> bool:
        return self.format in ("table", "wide", "custom-columns")


def parse_output(o: str | None) -> Output:
    if not o:
        return Output("table")
    name, eq, arg = o.partition("=")
    if name in ("wide", "yaml", "json", "name") and not eq:
        return Output(name)
    if name == "jsonpath":
        if not arg:
            util.fail("template format specified but no template given")
        try:
            return Output("jsonpath", template=jsonpath.parse_template(arg))
        except jsonpath.JSONPathError as e:
            util.fail(f"error parsing jsonpath {arg}, {e}")
    if name == "custom-columns":
        if not arg:
            util.fail("custom-columns format specified but no custom columns given")
        cols = []
        for spec in arg.split(","):
            header, colon, expr = spec.partition(":")
            if not colon or not header or not expr:
                util.fail(f"unexpected custom-columns spec: {spec}, expected <header>:<json-path-expr>")
            try:
                cols.append((header, jsonpath.relaxed(expr)))
            except jsonpath.JSONPathError as e:
                util.fail(f"error parsing jsonpath {expr}, {e}")
        return Output("custom-columns", columns=tuple(cols))
    util.fail(f'unable to match a printer suitable for the output format "{o}", allowed formats are: '
              + ",".join(f.split("=")[0] for f in FORMATS))


@dataclass
class Result:
    kind: Kind
    objs: list[Message]
    named: bool  # fetched by name (not a list)


def no_resources(kinds: list[Kind], s: util.Settings) -> str:
    if kinds and all(k.namespaced for k in kinds) and not s.all_namespaces:
        return f"No resources found in {s.namespace} namespace."
    return "No resources found"


def sort_objs(objs: list[Message], path: jsonpath.Path | None, text: str = "") -> list[Message]:
    """Sorted by the value at path (objects without it first); as kubectl,
    an error when no object has the field at all (a typo, most likely)."""
    if path is None or not objs:
        return objs

    def key(o: Message) -> tuple[int, Any]:
        d = printers.object_dict(o)
        vals = jsonpath.evaluate(path, d, d)
        if not vals:
            return (0, "")
        v = vals[0]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return (1, v)
        return (2, jsonpath.text(v))

    keys = [key(o) for o in objs]
    if all(k[0] == 0 for k in keys):
        t = text.strip()
        braced = t if t.startswith("{") else "{" + t + "}"
        util.fail(f'couldn\'t find any field with path "{braced}" in the list of objects')
    order = sorted(range(len(objs)), key=lambda i: keys[i])
    return [objs[i] for i in order]


class Printer:
    """Prints results (and, for -w, single objects) in one output format;
    keeps table column widths so watch lines stay aligned."""

    def __init__(self, out: Output, s: util.Settings, kind_prefix: bool, show_labels: bool,
                 label_columns: tuple[str, ...], no_headers: bool, watch_events: bool = False) -> None:
        self.out = out
        self.opts = printers.TableOptions(
            wide=out.format == "wide",
            all_namespaces=s.all_namespaces,
            kind_prefix=kind_prefix,
            show_labels=show_labels,
            label_columns=label_columns,
            watch_events=watch_events,
        )
        self.no_headers = no_headers
        self.writers: dict[str, printers.TableWriter] = {}
        self.headed: set[str] = set()
        self.printed_yaml = False

    def _rows(self, kind: Kind, objs: list[Message], events: list[str]) -> list[list[str]]:
        now = util.now()
        if self.out.format == "custom-columns":
            rows = []
            for o in objs:
                d = printers.object_dict(o)
                cells = []
                for _, path in self.out.columns:
                    vals = jsonpath.evaluate(path, d, d)
                    cells.append(",".join(jsonpath.text(v) for v in vals) if vals else printers.NONE)
                rows.append(cells)
            return rows
        return [printers.table_row(o, now, self.opts, ev) for o, ev in zip(objs, events, strict=True)]

    def table(self, kind: Kind, objs: list[Message], events: list[str] | None = None) -> None:
        events = events or [""] * len(objs)
        rows = []
        if kind.kind not in self.headed and not self.no_headers:
            if self.out.format == "custom-columns":
                rows.append([h for h, _ in self.out.columns])
            else:
                rows.append(printers.table_headers(kind, self.opts))
        self.headed.add(kind.kind)
        rows += self._rows(kind, objs, events)
        if not rows:
            return
        w = self.writers.get(kind.kind)
        if w is None:
            w = self.writers[kind.kind] = printers.TableWriter()
            if self.opts.watch_events:
                # Room for the widest event type, so MODIFIED lines stay aligned.
                w.widths.append(len("MODIFIED") + w.padding)
        # One write for the whole table: 10,000 pods are one flush, not 10,000.
        click.echo("\n".join(line.rstrip() for line in w.render(rows)))

    def structured(self, root: Any) -> None:
        if self.out.format == "json":
            click.echo(printers.to_json(root))
        elif self.out.format == "yaml":
            if self.printed_yaml:
                click.echo("---")
            click.echo(printers.to_yaml(root), nl=False)
            self.printed_yaml = True
        elif self.out.format == "jsonpath":
            assert self.out.template is not None
            click.echo(self.out.template.render(root), nl=False)

    def one(self, obj: Message, event: str = "") -> None:
        """A single object, as `get -w` prints each change."""
        if self.out.tabular:
            self.table(meta.kind_of(obj), [obj], [event])
        elif self.out.format == "name":
            click.echo(printers.name_of(obj))
        else:
            self.structured(printers.object_dict(obj))
            if self.out.format == "jsonpath":
                click.echo("")


async def fetch(c: ClusterClient, t: util.Target, s: util.Settings, selector: str, field_selector: str
                ) -> Result | ApiError:
    ns = util.scope_namespace(t.kind, s)
    try:
        if t.name is not None:
            return Result(t.kind, [await c.get(t.kind.resource, ns, t.name)], True)
        items, _ = await c.list(t.kind.resource, ns, selector, field_selector)
        return Result(t.kind, items, False)
    except ApiError as e:
        return e


def group(results: list[Result]) -> list[Result]:
    """Merge consecutive results of one kind (`get po a b` is one table)."""
    out: list[Result] = []
    for r in results:
        if out and out[-1].kind == r.kind:
            out[-1].objs.extend(r.objs)
            out[-1].named = out[-1].named and r.named
        else:
            out.append(Result(r.kind, list(r.objs), r.named))
    return out


async def get_once(ctx: click.Context, targets: list[util.Target], printer: Printer, selector: str,
                   field_selector: str, ignore_not_found: bool, sort_by: jsonpath.Path | None,
                   sort_text: str = "") -> bool:
    s = util.settings(ctx)
    async with util.client(ctx) as c:
        fetched = await asyncio.gather(*(fetch(c, t, s, selector, field_selector) for t in targets))
    errors: list[ApiError] = []
    results: list[Result] = []
    for f in fetched:
        if isinstance(f, ApiError):
            if not (ignore_not_found and is_not_found(f)):
                errors.append(f)
        else:
            results.append(f)
    groups = group(results)
    for g in groups:
        g.objs = sort_objs(g.objs, sort_by, sort_text)
    total = sum(len(g.objs) for g in groups)
    fmt = printer.out.format
    if printer.out.tabular:
        first = True
        for g in groups:
            if not g.objs:
                continue
            if not first:
                click.echo("")
            printer.table(g.kind, g.objs)
            first = False
        if total == 0 and not errors and not ignore_not_found:
            util.err(no_resources([t.kind for t in targets], s))
    elif fmt == "name":
        for g in groups:
            for o in g.objs:
                click.echo(printers.name_of(o))
        if total == 0 and not errors and not ignore_not_found:
            util.err(no_resources([t.kind for t in targets], s))
    else:
        single = len(targets) == 1 and targets[0].name is not None
        if single and total == 1:
            printer.structured(printers.object_dict(groups[0].objs[0]))
        elif not (single and total == 0):
            printer.structured(printers.list_dict([printers.object_dict(o) for g in groups for o in g.objs]))
    # One bad selector fails every target alike: say it once.
    for text in dict.fromkeys(util.api_error_text(e) for e in errors):
        util.err(text)
    return not errors


async def watch(ctx: click.Context, target: util.Target, printer: Printer, selector: str, field_selector: str,
                watch_only: bool, deadline: float | None) -> None:
    s = util.settings(ctx)
    ns = util.scope_namespace(target.kind, s)
    fs = field_selector
    if target.name is not None:
        fs = ",".join(x for x in (f"metadata.name={target.name}", field_selector) if x)
    async with util.client(ctx) as c:
        if target.name is not None and not watch_only:
            # kubectl errors out on a missing named object before watching.
            await c.get(target.kind.resource, ns, target.name)
        items, rv = await c.list(target.kind.resource, ns, selector, fs)
        if not watch_only:
            if items:
                if printer.out.tabular:
                    printer.table(target.kind, items, ["ADDED"] * len(items))
                else:
                    for o in items:
                        printer.one(o, "ADDED")
            elif printer.out.tabular:
                util.err(no_resources([target.kind], s))

        async def stream() -> None:
            nonlocal rv
            while True:
                try:
                    async for typ, obj in c.watch(target.kind.resource, ns, rv, selector, fs):
                        if typ == "BOOKMARK":
                            continue
                        rv = obj.metadata.resource_version  # type: ignore[attr-defined]
                        printer.one(obj, typ)
                    return
                except ApiError as e:
                    if not is_expired(e):
                        raise
                    # History compacted under us: start over from now.
                    _, rv = await c.list(target.kind.resource, ns, selector, fs)

        if deadline is None:
            await stream()
        else:
            try:
                await asyncio.wait_for(stream(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                pass


@click.command("get", help="""Display one or many objects.

\b
  pkctl get pods
  pkctl get deploy,svc -o wide
  pkctl get deploy web -o yaml
  pkctl get pod/web-1 svc/web
  pkctl get pods -l app=web -w
  pkctl get pods -o jsonpath='{range .items[*]}{.metadata.name}{"\\n"}{end}'

Types: pods (po), deployments (deploy), replicasets (rs), services (svc),
endpoints (ep), nodes (no), namespaces (ns), events (ev), leases, all.

JSONPath (-o jsonpath, custom-columns, --sort-by): .a.b, ['key.with.dots'],
[n], [-1], [a:b], [*], ..name, [?(@.f=="v")] (== != < <= > >=, existence),
{range …}…{end} and "\\n" literals; a missing field prints nothing.""")
@click.argument("args", nargs=-1, metavar="(TYPE[,TYPE…] [NAME…] | TYPE/NAME…)", shell_complete=util.complete_types)
@click.option("-o", "--output", metavar="FORMAT",
              help="wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=HEADER:PATH,…")
@click.option("-l", "--selector", default="", metavar="SELECTOR", help="Label selector, e.g. app=web,tier!=db.")
@click.option("--field-selector", default="", metavar="SELECTOR", help="Field selector, e.g. status.phase=Running.")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@click.option("-L", "--label-columns", multiple=True, metavar="KEY", help="Add a column with this label's value.")
@click.option("--no-headers", is_flag=True, help="Omit the header line.")
@click.option("--sort-by", default="", metavar="PATH", help="Sort by a JSONPath field, e.g. .metadata.name.")
@click.option("--ignore-not-found", is_flag=True, help="A named object that does not exist is not an error.")
@click.option("-w", "--watch", "watch_", is_flag=True, help="After listing, print every change until Ctrl-C.")
@click.option("--watch-only", is_flag=True, help="Print changes only, not the current objects.")
@click.option("--output-watch-events", is_flag=True, help="With -w: add an EVENT column (ADDED, MODIFIED, DELETED).")
@click.pass_context
def command(ctx: click.Context, args: tuple[str, ...], output: str | None, selector: str, field_selector: str,
            show_labels: bool, label_columns: tuple[str, ...], no_headers: bool, sort_by: str,
            ignore_not_found: bool, watch_: bool, watch_only: bool, output_watch_events: bool) -> None:
    async def main() -> bool:
        s = util.settings(ctx)
        if not args:
            util.err('You must specify the type of resource to get. Use "pkctl api-resources" for a complete '
                     "list of supported resources.\n")
            util.fail("Required resource not specified.")
        out = parse_output(output)
        targets = util.parse_targets(args, "get")
        named = any(t.name is not None for t in targets)
        if named and selector:
            util.fail("name cannot be provided when a selector is specified")
        if named and s.all_namespaces:
            util.fail("a resource cannot be retrieved by name across all namespaces")
        sort_path = None
        if sort_by:
            try:
                sort_path = jsonpath.relaxed(sort_by)
            except jsonpath.JSONPathError as e:
                util.fail(f"error parsing --sort-by {sort_by}: {e}")
        kinds = {t.kind for t in targets}
        printer = Printer(out, s, kind_prefix=len(kinds) > 1, show_labels=show_labels, label_columns=label_columns,
                          no_headers=no_headers, watch_events=output_watch_events and (watch_ or watch_only))
        if watch_ or watch_only:
            if len(kinds) > 1:
                util.fail("you may only specify a single resource type")
            if len(targets) > 1:
                util.fail("watch is only supported on individual resources and resource collections, "
                          f"but {len(targets)} resources were found")
            deadline = None
            if s.request_timeout_explicit and s.request_timeout:
                deadline = time.monotonic() + s.request_timeout
            await watch(ctx, targets[0], printer, selector, field_selector, watch_only, deadline)
            return True
        return await get_once(ctx, targets, printer, selector, field_selector, ignore_not_found, sort_path, sort_by)

    if not util.run(main()):
        ctx.exit(1)
