"""pkctl api-resources: the kinds PocketKube serves (from pkapi.meta, the
one registry every program shares, so no server round trip is needed)."""

from __future__ import annotations

import click

from cli import printers
from pkapi import meta


@click.command("api-resources", help="Print the supported resource types.")
@click.option("-o", "--output", type=click.Choice(["wide", "name"]), default=None, help="wide or name.")
@click.option("--namespaced", type=click.BOOL, default=None, help="Only namespaced (true) or cluster-scoped (false) kinds.")
@click.option("--no-headers", is_flag=True, help="Omit the header line.")
@click.option("--api-group", default=None, help="Only this API group ('' for core).")
def command(output: str | None, namespaced: bool | None, no_headers: bool, api_group: str | None) -> None:
    kinds = sorted(meta.KINDS, key=lambda k: k.resource)
    kinds = [k for k in kinds if (namespaced is None or k.namespaced == namespaced)
             and (api_group is None or k.group == api_group)]
    if output == "name":
        for k in kinds:
            click.echo(k.qualified)
        return
    rows = [] if no_headers else [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
                                  + (["VERBS"] if output == "wide" else [])]
    verbs = "create,delete,get,list,patch,update,watch"
    for k in kinds:
        rows.append([k.resource, ",".join(k.short_names), k.api_version, "true" if k.namespaced else "false", k.kind]
                    + ([verbs] if output == "wide" else []))
    for line in printers.TableWriter().render(rows):
        click.echo(line.rstrip())
