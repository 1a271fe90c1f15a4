"""pkctl apply -f FILE|DIR|- : create or update objects from manifests.

Documents are read and parsed first (a file that does not parse changes
nothing), then sent one at a time in file order, as kubectl does, so a
Namespace listed before the objects in it exists when they arrive. A
document the server refuses is reported and the rest still go; the exit
code is 1 if any failed. The manifest travels as JSON text so the server
decodes it strictly (unknown and duplicate fields are errors).

As `kubectl apply`, pkctl apply stores the manifest it applied in the
kubectl.kubernetes.io/last-applied-configuration annotation, byte for byte
as kubectl writes it, so kubectl's three-way apply after pkctl's removes
what the file no longer has, and either finds the other's apply unchanged.
(One difference: a manifest that already carries the annotation, as one
read back with `pkctl get -o yaml` does, is sent with it as it is, so a
get piped into apply stays "unchanged".)
"""

from __future__ import annotations

import copy
import json
from typing import Any

import click
from google.protobuf.message import Message

from cli import util
from pkapi import meta
from pkapi.client.cluster import ClusterClient, ServerUnreachable
from pkapi.errors import ApiError, is_not_found

DRY_RUN_CHOICES = ("none", "server", "client")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def with_last_applied(data: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The manifest to send: `data` (not changed) with the
    last-applied-configuration annotation kubectl would write: the
    manifest's compact JSON with sorted keys, its namespace set (namespaced
    kinds), its own annotations minus this one (an empty map when none),
    Go's escaping of <, >, & and a final newline. A manifest that has the
    annotation already is returned as it is."""
    ann0 = (data.get("metadata") or {}).get("annotations") or {}
    if ann0.get(LAST_APPLIED):
        # A document read back from the server (`pkctl get -o yaml`):
        # its configuration is the one last applied, so that applying
        # it again is "unchanged".
        return data
    applied = copy.deepcopy(data)
    md = applied.setdefault("metadata", {})
    if namespace and not md.get("namespace"):
        md["namespace"] = namespace
    ann = dict(md.get("annotations") or {})
    ann.pop(LAST_APPLIED, None)
    md["annotations"] = ann
    text = json.dumps(applied, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    out = copy.deepcopy(data)
    omd = out.setdefault("metadata", {})
    omd["annotations"] = {**(omd.get("annotations") or {}), LAST_APPLIED: text + "\n"}
    return out


def dry_run_option() -> click.Option:
    return click.Option(
        ["--dry-run"], type=click.Choice(DRY_RUN_CHOICES), default="none", show_default=True,
        is_flag=False, flag_value="client",  # a bare --dry-run is kubectl's deprecated "client"
        help="server: the server validates and defaults but stores nothing; client: only print what would be sent.")


def filename_options(f: click.decorators.FC, required: bool = True) -> click.decorators.FC:
    f = click.option("-R", "--recursive", is_flag=True, help="Read directories given to -f recursively.")(f)
    f = click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-", required=required,
                     help="Manifest file, directory of .yaml/.yml/.json files, or - for stdin. Repeatable.")(f)
    return f


def send_error_text(e: ApiError, verb: str, source: str) -> str:
    """kubectl's wording: `Error from server (AlreadyExists): error when creating "f.yaml": ...`;
    validation errors bare."""
    if e.reason == "Invalid":
        return e.message
    return f'Error from server ({e.reason}): error when {verb} "{source}": {e.message}'


async def send_all(ctx: click.Context, docs: list[util.Document], create: bool, dry_run: str,
                   output: str | None = None) -> bool:
    """Create (`create -f`) or apply each document; True if all succeeded."""
    s = util.settings(ctx)
    ok = True
    suffix = {"server": " (server dry run)", "client": " (dry run)"}.get(dry_run, "")
    shown: list[dict[str, object]] = []  # -o yaml|json: the objects as the server returned them
    if output in ("yaml", "json"):
        # Only then: printers (and the selectors and yaml dumper it needs)
        # would add to every apply's start-up, which `pkctl apply` latency
        # includes (bench/pod_startup.py).
        from cli import printers
    async with util.client(ctx) as c:
        for doc in docs:
            try:
                util.check_namespace(doc, s)
                kind = doc.resolve_kind()
            except util.CliError as e:
                util.err(f"error: {e}")
                ok = False
                continue
            ns = s.namespace if kind.namespaced else ""
            if dry_run == "client":
                # Nothing is sent; as kubectl, only ask whether it exists.
                verb = "created"
                if not create and doc.name:
                    try:
                        await c.get(kind.resource, (doc.namespace or ns) if kind.namespaced else "", doc.name)
                        verb = "configured"
                    except ApiError as e:
                        if not is_not_found(e):
                            raise
                if output in ("yaml", "json"):
                    shown.append(doc.data)
                else:
                    click.echo(f"{kind.lower}/{doc.name} {verb}{suffix}")
                continue
            try:
                obj, result = await _send(c, doc, create, dry_run == "server", ns)
            except ApiError as e:
                util.err(send_error_text(e, "creating" if create else "applying", doc.source))
                ok = False
                continue
            except ServerUnreachable:
                raise
            name = obj.metadata.name  # type: ignore[attr-defined]
            if output == "name":
                click.echo(f"{meta.kind_of(obj).lower}/{name}")
            elif output in ("yaml", "json"):
                shown.append(printers.object_dict(obj))
            else:
                click.echo(f"{meta.kind_of(obj).lower}/{name} {result}{suffix}")
    if shown:
        root = shown[0] if len(shown) == 1 else printers.list_dict(shown)
        click.echo(printers.to_yaml(root) if output == "yaml" else printers.to_json(root), nl=output == "json")
    return ok


async def _send(c: ClusterClient, doc: util.Document, create: bool, dry_run: bool, ns: str) -> tuple[Message, str]:
    if create:
        obj: Message = await c.create(doc.json(), dry_run=dry_run, default_namespace=ns)
        return obj, "created"
    applied = with_last_applied(doc.data, (doc.namespace or ns) if doc.resolve_kind().namespaced else "")
    return await c.apply(json.dumps(applied), dry_run=dry_run, default_namespace=ns)


@click.command("apply", help="Create or update objects from manifest files (kubectl apply).")
@filename_options
@click.option("-o", "--output", type=click.Choice(["name", "yaml", "json"]), default=None,
              help="name: only TYPE/NAME; yaml, json: the objects as stored (with --dry-run=server: as they would be).")
@click.pass_context
def command(ctx: click.Context, filenames: tuple[str, ...], recursive: bool, dry_run: str, output: str | None) -> None:
    async def main() -> bool:
        docs = util.read_manifests(filenames, recursive)
        return await send_all(ctx, docs, create=False, dry_run=dry_run, output=output)

    if not util.run(main()):
        ctx.exit(1)


command.params.append(dry_run_option())
