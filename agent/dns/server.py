"""The node's cluster DNS server: UDP and TCP on the node IP (port 53 by
default), answering cluster names from the shared Service/Endpoints
informers and forwarding everything else to upstream resolvers.

Concurrency: one event loop. A cluster name is answered synchronously in
datagram_received (a dict lookup, no await); an ExternalName's CNAME is
completed with its target's records (chase) in a task, like a forward. A forwarded query runs as one
task: it sends the client's raw bytes to each upstream in turn (UDP, with a
per-upstream timeout; a truncated UDP answer is retried over TCP), and
relays the first answer unchanged (the client's own id is kept since the
query bytes are not rewritten). No answer from any upstream: SERVFAIL.

Upstreams come from /etc/resolv.conf unless given; the server never
forwards to itself.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord

from agent.dns.resolve import CLUSTER_DOMAIN, answer
from agent.proxy.watch import ServiceWatch, shared

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT = 2.0
MAX_CHASE = 4


def resolv_conf_upstreams(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append((parts[1], 53))
    except OSError:
        pass
    return out


def upstreams_from_env(value: str | None = None) -> list[tuple[str, int]] | None:
    """PK_DNS_UPSTREAMS="127.0.0.1:5353,10.0.0.2" (IPv4[:port], comma
    separated; "none": never forward), parsed as pk-agent's --dns-upstreams
    (ValueError when malformed). None when unset: use resolv.conf. Tests use
    it so that nothing is ever forwarded off the machine."""
    import os

    from agent.config import parse_dns_upstreams

    raw = os.environ.get("PK_DNS_UPSTREAMS") if value is None else value
    return parse_dns_upstreams(raw or "")


class ClusterDNS:
    def __init__(
        self,
        watch: ServiceWatch,
        upstreams: list[tuple[str, int]] | None = None,
        domain: str = CLUSTER_DOMAIN,
    ) -> None:
        self.watch = watch
        self.domain = domain
        self.upstreams = upstreams if upstreams is not None else resolv_conf_upstreams()
        self.queries = 0
        self.forwarded = 0
        self.port = 0  # where run_dns listens (UDP and TCP)

    def _svc(self, ns: str, name: str) -> Any:
        return self.watch.services.get(ns, name)

    def _ep(self, ns: str, name: str) -> Any:
        return self.watch.endpoints.get(ns, name)

    def local(self, data: bytes) -> bytes | DNSRecord | None:
        """The reply bytes if the query is ours; None to forward; a
        DNSRecord when the reply is an ExternalName's CNAME whose target must
        still be resolved (chase()). A query that does not parse gets FORMERR
        when its id can be read."""
        self.queries += 1
        try:
            q = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - any parse failure is the client's
            if len(data) >= 2:
                return data[:2] + b"\x81\x01" + b"\x00" * 8  # FORMERR
            return b""
        if not q.questions:
            return b""
        r = answer(q, self._svc, self._ep, self.domain)
        if r is None:
            return None
        if r.rr and all(x.rtype == QTYPE.CNAME for x in r.rr) and q.q.qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY):
            return r
        return bytes(r.pack())

    async def chase(self, r: DNSRecord, tcp: bool = False) -> bytes:
        """Complete a CNAME answer with the target's records, as CoreDNS does
        for ExternalName Services (stub resolvers do not chase CNAMEs
        themselves). The target is resolved here if it is a cluster name,
        else upstream; at most MAX_CHASE links."""
        qtype = r.q.qtype
        for _ in range(MAX_CHASE):
            target = str(r.rr[-1].rdata)
            sub = DNSRecord.question(target, QTYPE[qtype])
            out = self.local(sub.pack())
            if isinstance(out, DNSRecord):
                r.add_answer(*out.rr)
                continue
            if out is None:
                out = await self.forward(sub.pack(), tcp)
            try:
                got = DNSRecord.parse(out)
            except Exception:  # noqa: BLE001 - upstream garbage: answer with the CNAME alone
                break
            r.add_answer(*got.rr)
            if got.header.rcode == RCODE.NXDOMAIN:
                r.header.rcode = RCODE.NXDOMAIN
            break
        return bytes(r.pack())

    async def forward(self, data: bytes, tcp: bool = False) -> bytes:
        self.forwarded += 1
        for host, port in self.upstreams:
            try:
                if not tcp:
                    out = await asyncio.wait_for(_udp_query(host, port, data), UPSTREAM_TIMEOUT)
                    if len(out) > 2 and out[2] & 0x02:  # TC: retry over TCP
                        out = await asyncio.wait_for(_tcp_query(host, port, data), UPSTREAM_TIMEOUT)
                else:
                    out = await asyncio.wait_for(_tcp_query(host, port, data), UPSTREAM_TIMEOUT)
                return out
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as err:
                log.debug("upstream %s:%s: %s", host, port, err)
        try:
            r = DNSRecord.parse(data).reply()
            r.header.rcode = RCODE.SERVFAIL
            return bytes(r.pack())
        except Exception:  # noqa: BLE001
            return b""

    async def handle(self, data: bytes, tcp: bool = False) -> bytes:
        out = self.local(data)
        if out is None:
            return await self.forward(data, tcp)
        if isinstance(out, DNSRecord):
            return await self.chase(out, tcp)
        return out


class _UdpUpstream(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future[bytes]) -> None:
        self.fut = fut

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


async def _udp_query(host: str, port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()
    t, _ = await loop.create_datagram_endpoint(lambda: _UdpUpstream(fut), remote_addr=(host, port))
    try:
        t.sendto(data)
        return await fut
    finally:
        t.close()


async def _tcp_query(host: str, port: int, data: bytes) -> bytes:
    r, w = await asyncio.open_connection(host, port)
    try:
        w.write(struct.pack("!H", len(data)) + data)
        n = struct.unpack("!H", await r.readexactly(2))[0]
        return await r.readexactly(n)
    finally:
        w.close()


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, dns: ClusterDNS) -> None:
        self.dns = dns
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        out = self.dns.local(data)
        if isinstance(out, bytes):
            if out:
                self.transport.sendto(out, addr)
            return
        asyncio.get_running_loop().create_task(self._async_answer(data, out, addr))

    async def _async_answer(self, data: bytes, pending: DNSRecord | None, addr: Any) -> None:
        out = await (self.dns.forward(data) if pending is None else self.dns.chase(pending))
        if out and self.transport is not None:
            self.transport.sendto(out, addr)


async def _serve_tcp_conn(dns: ClusterDNS, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while True:
            n = struct.unpack("!H", await asyncio.wait_for(r.readexactly(2), 30))[0]
            data = await r.readexactly(n)
            out = await dns.handle(data, tcp=True)
            if not out:
                return
            w.write(struct.pack("!H", len(out)) + out)
            await w.drain()
    except (asyncio.IncompleteReadError, TimeoutError, OSError):
        pass
    finally:
        w.close()


async def run_dns(
    client: Any,
    listen: list[str],
    port: int = 53,
    *,
    upstreams: list[tuple[str, int]] | None = None,
    domain: str = CLUSTER_DOMAIN,
    watch: ServiceWatch | None = None,
    started: asyncio.Future[ClusterDNS] | None = None,
) -> None:
    """Serve cluster DNS on every address of `listen` (UDP and TCP) until
    cancelled. port 0: any free port (the same for UDP and TCP), reported
    as ClusterDNS.port through `started`. Typically listen = [node IP] (plus the container bridge's
    gateway when the node IP is a loopback address, so containers can reach
    it)."""
    w = watch or shared(client)
    if upstreams is None:
        upstreams = upstreams_from_env()
    dns = ClusterDNS(w, upstreams, domain)
    own = {(ip, port) for ip in listen}
    dns.upstreams = [u for u in dns.upstreams if u not in own]
    await w.wait_synced(None)
    loop = asyncio.get_running_loop()
    transports: list[Any] = []
    servers: list[Any] = []
    try:
        for ip in listen:
            for attempt in range(20):
                t, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpServer(dns), local_addr=(ip, port), reuse_port=True
                )
                bound = t.get_extra_info("sockname")[1]
                try:
                    srv = await asyncio.start_server(
                        lambda r, wr: _serve_tcp_conn(dns, r, wr), ip, bound, reuse_port=True
                    )
                except OSError:
                    t.close()
                    if port != 0 or attempt == 19:
                        raise
                    continue  # port 0 (tests): the UDP port was taken for TCP; pick again
                transports.append(t)
                servers.append(srv)
                port = bound  # with port 0, every address gets the first one picked
                break
        dns.port = port
        if started is not None and not started.done():
            started.set_result(dns)
        await asyncio.Event().wait()
    finally:
        for t in transports:
            t.close()
        for s in servers:
            s.close()
