"""pkctl patch: change an object with a strategic merge, JSON merge or JSON patch, as kubectl patch.

  pkctl patch deployment web -p '{"spec":{"replicas":3}}'                 # strategic (the default)
  pkctl patch deploy/web --type merge -p '{"metadata":{"labels":{"tier":"front"}}}'
  pkctl patch deploy web --type json -p '[{"op":"replace","path":"/spec/replicas","value":1}]'
  pkctl patch node node-1 --patch-file cordon.yaml                         # YAML is fine too
  pkctl patch -f web.yaml -p '{"spec":{"paused":true}}'                    # the objects a manifest names

The object is read, patched here with pkapi.patch (the same code the HTTP
API runs for PATCH) and written back with the resourceVersion it was read
at; a Conflict (a controller's write in between) reads it again and patches
the fresh object, so nothing another writer did is lost. A patch that sets
metadata.resourceVersion itself makes that version a precondition: it fails
with Conflict instead of being retried.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from cli import util
from pkapi import decode, manifest, meta
from pkapi import patch as patches
from pkapi.errors import ApiError, bad_request, conflict

TYPES = {"strategic": patches.STRATEGIC_MERGE_PATCH, "merge": patches.MERGE_PATCH, "json": patches.JSON_PATCH}


def parse_patch(text: str) -> Any:
    """The patch as JSON data: kubectl accepts JSON or YAML for every type."""
    try:
        docs = manifest.load_all(text)
    except manifest.ManifestError as e:
        util.fail(f'unable to parse "{text}": {e}')
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        util.fail(f'unable to parse "{text}": a patch is one JSON or YAML document')
    return docs[0]


def patched(obj: Any, body: Any, content_type: str) -> Any | None:
    """The object after the patch (a new message), or None when the patch
    changes nothing. Raises ApiError as the API server would answer."""
    kind = meta.kind_of(obj)
    before = meta.to_dict(obj)
    try:
        after = patches.apply_patch(before, body, content_type, kind.kind)
    except patches.PatchError as e:
        raise ApiError(e.reason, e.message) from None
    if not isinstance(after, dict):
        raise bad_request(f"the patch made the object a {type(after).__name__}, not an object")
    if after == before:
        return None
    md_any = after.get("metadata")
    md: dict[str, Any] = md_any if isinstance(md_any, dict) else {}
    name = obj.metadata.name
    if md.get("name") != name:
        raise bad_request(f"the name of the object ({md.get('name')}) does not match the name on the URL ({name})")
    if obj.metadata.namespace and md.get("namespace") != obj.metadata.namespace:
        raise bad_request(f"the namespace of the object ({md.get('namespace')}) does not match the namespace "
                          f"on the URL ({obj.metadata.namespace})")
    rv = md.get("resourceVersion")
    if rv != obj.metadata.resource_version:
        raise conflict(kind.qualified, name)  # the patch's own precondition
    try:
        return decode.strict_dict(after, type(obj), kind.kind, kind.version)
    except decode.DecodeError as e:
        raise bad_request(str(e)) from None


@click.command("patch", help="""Update fields of an object with a strategic merge patch, JSON merge patch or JSON patch.

\b
  pkctl patch deployment web -p '{"spec":{"replicas":3}}'
  pkctl patch deploy/web --type merge -p '{"metadata":{"labels":{"tier":"front"}}}'
  pkctl patch deploy web --type json -p '[{"op":"remove","path":"/metadata/labels/tier"}]'""")
@click.argument("args", nargs=-1, metavar="(TYPE NAME | TYPE/NAME | -f FILE)")
@click.option("-p", "--patch", "patch_text", default=None, metavar="PATCH",
              help="The patch, as JSON or YAML.")
@click.option("--patch-file", default=None, metavar="FILE", help="A file holding the patch.")
@click.option("--type", "patch_type", type=click.Choice(sorted(TYPES)), default="strategic", show_default=True,
              help="The type of patch.")
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-",
              help="Patch the objects these manifests name (kind, name, namespace).")
@click.option("--dry-run", type=click.Choice(["none", "server"]), default="none", show_default=True,
              help="server: the server checks the patched object without storing it.")
@click.pass_context
def command(ctx: click.Context, args: tuple[str, ...], patch_text: str | None, patch_file: str | None,
            patch_type: str, dry_run: str, filenames: tuple[str, ...]) -> None:
    async def go() -> None:
        # Every check runs inside util.run, which prints a CliError as kubectl does.
        if patch_text is not None and patch_file is not None:
            util.fail("cannot specify --patch and --patch-file together")
        text = patch_text
        if patch_file is not None:
            try:
                text = await asyncio.to_thread(Path(patch_file).read_text)
            except OSError as e:
                util.fail(f"unable to read patch file: {e.strerror}: {patch_file}")
        if not text:
            util.fail("must specify --patch or --patch-file containing the contents of the patch")
        body = parse_patch(text)
        s = util.settings(ctx)
        if filenames and args:
            util.fail("there is no need to specify a resource type and name when passing -f")
        work: list[tuple[meta.Kind, str, str]] = []  # (kind, namespace, name)
        for t in util.parse_targets(list(args), verb="patch"):
            if t.name is None:
                util.fail("resource(s) were provided, but no name was specified")
            work.append((t.kind, util.scope_namespace(t.kind, s), t.name))
        for doc in util.read_manifests(filenames) if filenames else []:
            kind = doc.resolve_kind()
            util.check_namespace(doc, s)
            if not doc.name:
                util.fail(f'error validating "{doc.source}": the object has no metadata.name')
            work.append((kind, (doc.namespace or s.namespace) if kind.namespaced else "", doc.name))
        if not work:
            util.fail("you must provide one or more resources by argument or filename")
        content_type = TYPES[patch_type]
        async with util.client(ctx) as c:
            for kind, ns, name in work:
                def change(obj: Any) -> bool:
                    new = patched(obj, body, content_type)
                    if new is None:
                        return False
                    obj.CopyFrom(new)
                    return True

                _, written = await util.update_retrying(c, kind.resource, ns, name, change,
                                                        dry_run=dry_run == "server")
                suffix = (" (server dry run)" if dry_run == "server" else "") if written else " (no change)"
                click.echo(f"{kind.lower}/{name} patched{suffix}")

    util.run(go())
