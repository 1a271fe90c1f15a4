"""pkctl port-forward: reach a pod's port from a local port.

In PocketKube every containerPort is published by the pod's agent on its
node's address (status.portMappings), so pkctl forwards straight to that
hostIP:hostPort; no stream through the control plane is needed. This works
wherever the node addresses are reachable from pkctl (the one-machine lab,
Vagrant's host-only network).

Concurrency: one asyncio server per forwarded port; each accepted
connection is two copy tasks (one per direction) that end together; a
half-close is passed on (write_eof) so request/response protocols work.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import click

from cli import util
from cli.logs import resolve_pod


@dataclass(frozen=True)
class Forward:
    local: int  # 0: any free port
    remote: str  # container port number or name


def parse_ports(specs: tuple[str, ...]) -> list[Forward]:
    """`8080:80`, `80` (same local port), `:80` (any free local port), `8080:http`."""
    out = []
    for spec in specs:
        local_s, colon, remote = spec.rpartition(":")
        if not colon:
            local_s, remote = spec, spec
        try:
            local = int(local_s) if local_s else 0
        except ValueError:
            util.fail(f"error parsing local port '{local_s}': must be a number")
        if not (0 <= local <= 65535) or not remote:
            util.fail(f"invalid port specification: {spec}")
        if remote.isdigit() and not (1 <= int(remote) <= 65535):
            util.fail(f"invalid remote port: {remote}")
        out.append(Forward(local, remote))
    return out


def target_of(pod: Any, remote: str) -> tuple[str, int, int]:
    """(hostIP, hostPort, containerPort) where the agent published `remote`."""
    names = {p.name: p.container_port for c in pod.spec.containers for p in c.ports if p.name}
    port = int(remote) if remote.isdigit() else names.get(remote)
    if port is None:
        util.fail(f"Pod '{pod.metadata.name}' does not have a named port '{remote}'")
    for m in pod.status.port_mappings:
        if m.container_port == port and (m.protocol or "TCP") == "TCP":
            return m.host_ip or pod.status.host_ip, m.host_port, port
    util.fail(f"Pod '{pod.metadata.name}' has no published TCP port {port}: PocketKube forwards to the node address "
              f"its agent published a declared containerPort on (spec.containers[].ports)")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _handle(host: str, port: int, quiet: bool, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    if not quiet:
        click.echo(f"Handling connection for {w.get_extra_info('sockname')[1]}")
    uw: asyncio.StreamWriter | None = None
    try:
        try:
            ur, up = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        except (OSError, TimeoutError) as e:
            util.err(f"error: forwarding to {host}:{port}: {e}")
            return
        uw = up
        await asyncio.gather(_pipe(r, up), _pipe(ur, w))
    except asyncio.CancelledError:
        # Ctrl-C while connections are open: end quietly (asyncio would
        # otherwise log the cancelled connection task as an error).
        pass
    finally:
        for x in (w, uw):
            if x is not None:
                x.close()


@click.command("port-forward", help="""Forward local ports to a pod's published ports.

\b
  pkctl port-forward pod/web-1 8080:80
  pkctl port-forward deploy/web :8080       # any free local port
  pkctl port-forward svc/web 9000:http""")
@click.argument("target", metavar="(POD | TYPE/NAME)")
@click.argument("ports", nargs=-1, required=True, metavar="[LOCAL:]REMOTE...")
@click.option("--address", default="127.0.0.1", show_default=True, help="The local address to listen on.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print a line per connection.")
@click.pass_context
def command(ctx: click.Context, target: str, ports: tuple[str, ...], address: str, quiet: bool) -> None:
    async def main() -> None:
        forwards = parse_ports(ports)
        async with util.client(ctx) as c:
            pod = await resolve_pod(c, ctx, target, "port-forward")
        servers = []
        try:
            for f in forwards:
                host, hport, cport = target_of(pod, f.remote)

                def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter, host: str = host,
                            hport: int = hport) -> Any:
                    return _handle(host, hport, quiet, r, w)

                try:
                    srv = await asyncio.start_server(handler, address, f.local)
                except OSError as e:
                    util.fail(f"unable to listen on {address}:{f.local}: {e.strerror}")
                servers.append(srv)
                bound = srv.sockets[0].getsockname()[1]
                click.echo(f"Forwarding from {address}:{bound} -> {cport}")
            await asyncio.gather(*(s.serve_forever() for s in servers))
        finally:
            for s in servers:
                s.close()

    util.run(main())
