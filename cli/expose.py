"""pkctl expose: make a Service for a Deployment, ReplicaSet, Pod or Service,
as `kubectl expose` does.

    pkctl expose deployment web --port 80 [--target-port 8080|http]
          [--type NodePort] [--name web-svc] [--protocol TCP]

The selector is the object's own (a Deployment's or ReplicaSet's
spec.selector.matchLabels, a Pod's labels, a Service's selector); the
Service copies the object's labels. Without --port the ports come from the
pod template's container ports (one Service port each; several are named
port-1, port-2 ... as kubectl names them). The Service is created with the
server's validation and allocation, so a bad --type or nodePort conflict
gets the API server's message. Nothing is written on any error.
"""

from __future__ import annotations

from typing import Any

import click

from cli import util
from pkapi import intstr, meta
from pkapi.v1 import core_pb2, meta_pb2

EXPOSABLE = ("Deployment", "ReplicaSet", "Pod", "Service")


def _selector(kind: str, obj: Any) -> dict[str, str]:
    if kind in ("Deployment", "ReplicaSet"):
        sel = obj.spec.selector
        if sel.match_expressions:
            util.fail(
                f"couldn't retrieve selectors via --selector flag or introspection: "
                f"{kind.lower()}s with matchExpressions are not supported by expose"
            )
        return dict(sel.match_labels)
    if kind == "Pod":
        return dict(obj.metadata.labels)
    return dict(obj.spec.selector)


def _container_ports(kind: str, obj: Any) -> list[tuple[int, str, str]]:
    """(port, protocol, name) of the object's pods' containers."""
    if kind in ("Deployment", "ReplicaSet"):
        spec = obj.spec.template.spec
    elif kind == "Pod":
        spec = obj.spec
    else:
        return [(p.port, p.protocol or "TCP", p.name) for p in obj.spec.ports]
    return [(p.container_port, p.protocol or "TCP", p.name) for c in spec.containers for p in c.ports]


def build_service(
    kind: str, obj: Any, name: str, port: int | None, target_port: str | None, type_: str, protocol: str | None
) -> core_pb2.Service:
    """Pure: the Service `expose` creates (CliError on what kubectl refuses)."""
    selector = _selector(kind, obj)
    if not selector:
        util.fail(f"couldn't retrieve selectors via --selector flag or introspection: "
                  f"the {kind.lower()} has no labels to select its pods")
    svc = core_pb2.Service(
        api_version="v1", kind="Service",
        metadata=meta_pb2.ObjectMeta(name=name, namespace=obj.metadata.namespace, labels=dict(obj.metadata.labels)),
    )
    svc.spec.selector.update(selector)
    if type_:
        svc.spec.type = type_
    if port is not None:
        sp = svc.spec.ports.add(port=port, protocol=protocol or "TCP")
        if target_port is not None:
            intstr.set_value(sp.target_port, int(target_port) if target_port.isdigit() else target_port)
        return svc
    found = _container_ports(kind, obj)
    if not found:
        util.fail("couldn't find port via --port flag or introspection")
    for i, (p, proto, _pname) in enumerate(found):
        sp = svc.spec.ports.add(port=p, protocol=protocol or proto)
        if len(found) > 1:
            sp.name = f"port-{i + 1}"
        if target_port is not None:
            intstr.set_value(sp.target_port, int(target_port) if target_port.isdigit() else target_port)
    return svc


@click.command("expose", help="Take a deployment, replica set, pod or service and expose it as a new Service.")
@click.argument("args", nargs=-1, required=True)
@click.option("--port", type=int, default=None, help="The port that the service should serve on.")
@click.option("--target-port", default=None,
              help="Name or number for the port on the container that the service should direct traffic to.")
@click.option("--type", "type_", default="",
              help="Type for this service: ClusterIP, NodePort, LoadBalancer, or ExternalName. Default is 'ClusterIP'.")
@click.option("--name", default="", help="The name for the newly created object.")
@click.option("--protocol", default=None, help="The network protocol for the service to be created (TCP or UDP).")
@click.pass_context
def command(ctx: click.Context, args: tuple[str, ...], port: int | None, target_port: str | None, type_: str,
            name: str, protocol: str | None) -> None:
    targets = util.parse_targets(list(args), verb="expose")
    if len(targets) != 1 or targets[0].name is None:
        util.fail("You must provide one resource by argument or filename.\n"
                  "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--resource=rsrc.json'")
    t = targets[0]
    if t.kind.kind not in EXPOSABLE:
        util.fail(f"cannot expose a {t.kind.kind}")
    if port is not None and not 1 <= port <= 65535:
        util.fail(f"invalid --port {port}: must be between 1 and 65535, inclusive")
    ns = util.settings(ctx).namespace

    async def go() -> None:
        async with util.client(ctx) as c:
            assert t.name is not None
            obj = await c.get(t.kind.resource, ns, t.name)
            svc = build_service(t.kind.kind, obj, name or t.name, port, target_port, type_, protocol)
            created = await c.create(svc)
            click.echo(f"service/{meta.ns_name(created).split('/')[-1]} exposed")

    util.run(go())
