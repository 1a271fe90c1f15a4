"""pkctl edit TYPE NAME: change an object in your editor, as kubectl edit.

The object is written as YAML to a temporary file and $KUBE_EDITOR, else
$EDITOR, else `vi` is run on it. An unchanged or emptied file cancels. The
result is sent as an Update carrying the resourceVersion it was read at
(compare-and-swap), as JSON text so the server decodes it strictly; if
someone changed the object meanwhile, or the server refuses the change, the
edited copy is kept and its path printed, so nothing typed is lost.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile

import click
import grpc
from google.protobuf.message import Message

from cli import printers, util
from pkapi import meta
from pkapi.v1 import api_pb2

HEADER = """\
# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving, a
# copy of your changes is kept and its path printed.
#
"""


def strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")).strip()


def editor_command() -> list[str]:
    ed = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    return shlex.split(ed)


@click.command("edit", help="""Edit an object in your editor ($KUBE_EDITOR, $EDITOR or vi).

\b
  pkctl edit deploy web
  KUBE_EDITOR=nano pkctl edit svc/web""")
@click.argument("args", nargs=-1, metavar="(TYPE NAME | TYPE/NAME)")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="The format to edit in.")
@click.pass_context
def command(ctx: click.Context, args: tuple[str, ...], output: str) -> None:
    s = util.settings(ctx)

    async def fetch() -> Message:
        targets = util.parse_targets(args, "edit")
        if len(targets) != 1 or targets[0].name is None:
            util.fail("edit needs exactly one object: TYPE NAME or TYPE/NAME")
        t = targets[0]
        assert t.name is not None
        async with util.client(ctx) as c:
            return await c.get(t.kind.resource, util.scope_namespace(t.kind, s), t.name)

    obj = util.run(fetch())
    kind = meta.kind_of(obj)
    name = obj.metadata.name  # type: ignore[attr-defined]
    d = printers.object_dict(obj)
    original = printers.to_yaml(d) if output == "yaml" else printers.to_json(d) + "\n"
    fd, path = tempfile.mkstemp(prefix="pkctl-edit-", suffix="." + output)
    keep = False
    try:
        with os.fdopen(fd, "w") as f:
            f.write((HEADER if output == "yaml" else "") + original)
        try:
            rc = subprocess.call([*editor_command(), path])
        except OSError as e:
            util.err(f"error: cannot run the editor {editor_command()[0]!r}: {e.strerror} (set KUBE_EDITOR or EDITOR)")
            ctx.exit(1)
        if rc != 0:
            util.err(f"error: the editor exited with {rc}; nothing was changed")
            ctx.exit(1)
        with open(path) as f:
            edited = f.read()
        if not strip_comments(edited):
            click.echo("Edit cancelled, saved file was empty.")
            return
        if strip_comments(edited) == strip_comments(original):
            click.echo("Edit cancelled, no changes made.")
            return
        keep = True

        async def save() -> None:
            docs = util.parse_documents(edited, path)
            if len(docs) != 1:
                util.fail("the edited file must hold exactly one object")
            doc = util.Document(path, docs[0])
            if doc.resolve_kind() != kind or doc.name != name:
                util.fail(f"the kind and name of the object cannot be changed while editing ({kind.lower}/{name})")
            req = api_pb2.UpdateRequest(body=api_pb2.Body(json=json.dumps(doc.data)),
                                        default_namespace=util.scope_namespace(kind, s))
            async with util.client(ctx) as c:
                try:
                    await c.resources.Update(req, timeout=s.request_timeout)
                except grpc.aio.AioRpcError as e:
                    raise util.convert_rpc_error(e, c.address) from None

        try:
            util.run(save())
        except SystemExit as e:
            if e.code:
                util.err(f'A copy of your changes has been stored to "{path}"')
            raise
        keep = False
        click.echo(f"{kind.lower}/{name} edited")
    finally:
        if not keep:
            os.unlink(path)
