"""Cluster DNS against a local socket, with a fake upstream on loopback
(nothing is ever forwarded off the machine)."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from agent.dns.resolve import pod_dns_config, service_env
from agent.dns.server import run_dns, upstreams_from_env
from pkapi import meta
from pkapi.v1 import core_pb2


class FakeCache:
    def __init__(self, objs):
        self.objs = {(o.metadata.namespace, o.metadata.name): o for o in objs}

    def get(self, ns, name):
        return self.objs.get((ns, name))

    def list(self, ns=None):
        return list(self.objs.values())


class FakeWatch:
    def __init__(self, services, endpoints):
        self.services, self.endpoints = FakeCache(services), FakeCache(endpoints)

    async def wait_synced(self, timeout=None):
        return None


def svc(name, **spec):
    return meta.from_dict({"metadata": {"name": name, "namespace": "default"},
                           "spec": {"ports": [{"port": 80, "name": "http"}], **spec}}, core_pb2.Service)


SERVICES = [
    svc("web", clusterIP="10.96.0.5"),
    svc("head", clusterIP="None"),
    svc("ext", type="ExternalName", externalName="db.example.com"),
    svc("alias", type="ExternalName", externalName="web.default.svc.cluster.local"),
]
ENDPOINTS = [meta.from_dict({"metadata": {"name": "head", "namespace": "default"}, "subsets": [
    {"addresses": [{"ip": "127.0.0.2"}, {"ip": "127.0.0.3"}], "notReadyAddresses": [{"ip": "127.0.0.9"}],
     "ports": [{"port": 40000}]}]}, core_pb2.Endpoints)]


class FakeUpstream(asyncio.DatagramProtocol):
    def connection_made(self, t):
        self.t = t
        self.seen = []

    def datagram_received(self, data, addr):
        q = DNSRecord.parse(data)
        self.seen.append(str(q.q.qname))
        r = q.reply()
        r.add_answer(*__import__("dnslib").RR.fromZone(f"{q.q.qname} 60 A 192.0.2.1"))
        self.t.sendto(r.pack(), addr)


async def query(port, name, qtype="A", tcp=False):
    q = DNSRecord.question(name, qtype)
    loop = asyncio.get_running_loop()
    if tcp:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        data = q.pack()
        w.write(struct.pack("!H", len(data)) + data)
        n = struct.unpack("!H", await r.readexactly(2))[0]
        out = await r.readexactly(n)
        w.close()
        return DNSRecord.parse(out)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    await loop.sock_connect(s, ("127.0.0.1", port))
    await loop.sock_sendall(s, q.pack())
    out = await asyncio.wait_for(loop.sock_recv(s, 4096), 5)
    s.close()
    return DNSRecord.parse(out)


async def test_cluster_names_nxdomain_and_forwarding():
    loop = asyncio.get_running_loop()
    up_t, up = await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", 0))
    started = loop.create_future()
    task = asyncio.create_task(run_dns(None, ["127.0.0.1"], 0, upstreams=[up_t.get_extra_info("sockname")[:2]],
                                       watch=FakeWatch(SERVICES, ENDPOINTS), started=started))
    port = (await asyncio.wait_for(started, 5)).port
    try:
        r = await query(port, "web.default.svc.cluster.local")
        assert [str(a.rdata) for a in r.rr] == ["10.96.0.5"] and r.header.rcode == RCODE.NOERROR
        r = await query(port, "WEB.default.svc.cluster.local.", tcp=True)
        assert [str(a.rdata) for a in r.rr] == ["10.96.0.5"]
        r = await query(port, "head.default.svc.cluster.local")
        assert sorted(str(a.rdata) for a in r.rr) == ["127.0.0.2", "127.0.0.3"]
        r = await query(port, "ext.default.svc.cluster.local")
        assert r.rr[0].rtype == QTYPE.CNAME and str(r.rr[0].rdata) == "db.example.com."
        # the CNAME is completed with the target's address, from upstream
        assert [str(a.rdata) for a in r.rr[1:]] == ["192.0.2.1"] and up.seen == ["db.example.com."]
        up.seen.clear()
        r = await query(port, "ext.default.svc.cluster.local", "CNAME")
        assert [str(a.rdata) for a in r.rr] == ["db.example.com."] and up.seen == []
        r = await query(port, "alias.default.svc.cluster.local", tcp=True)  # CNAME to a cluster name
        assert [str(a.rdata) for a in r.rr] == ["web.default.svc.cluster.local.", "10.96.0.5"]
        r = await query(port, "web.default.svc.cluster.local", "AAAA")
        assert r.header.rcode == RCODE.NOERROR and not r.rr
        for name in ("nope.default.svc.cluster.local", "web.other.svc.cluster.local", "x.cluster.local",
                     "web.default.svc.cluster.local.default.svc.cluster.local"):
            r = await query(port, name)
            assert r.header.rcode == RCODE.NXDOMAIN, name
        r = await query(port, "default.svc.cluster.local")
        assert r.header.rcode == RCODE.NOERROR and not r.rr
        assert up.seen == []
        r = await query(port, "example.org")
        assert [str(a.rdata) for a in r.rr] == ["192.0.2.1"] and up.seen == ["example.org."]
    finally:
        task.cancel()
        up_t.close()


async def test_no_upstream_is_servfail():
    loop = asyncio.get_running_loop()
    started = loop.create_future()
    task = asyncio.create_task(run_dns(None, ["127.0.0.1"], 0, upstreams=[],
                                       watch=FakeWatch([], []), started=started))
    port = (await asyncio.wait_for(started, 5)).port
    try:
        r = await query(port, "example.org")
        assert r.header.rcode == RCODE.SERVFAIL
    finally:
        task.cancel()


def test_pod_dns_config_and_service_env():
    assert pod_dns_config("shop", "127.0.0.2") == {
        "nameservers": ["127.0.0.2"],
        "searches": ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        "options": ["ndots:5"],
    }
    s = svc("my-web", clusterIP="10.96.0.7", ports=[{"port": 80, "name": "http"}, {"port": 53, "protocol": "UDP"}])
    env = service_env([s, *SERVICES], "default")
    assert env["MY_WEB_SERVICE_HOST"] == "10.96.0.7" and env["MY_WEB_SERVICE_PORT"] == "80"
    assert env["MY_WEB_SERVICE_PORT_HTTP"] == "80"
    assert env["MY_WEB_PORT"] == "tcp://10.96.0.7:80"
    assert env["MY_WEB_PORT_53_UDP_ADDR"] == "10.96.0.7" and env["MY_WEB_PORT_53_UDP_PROTO"] == "udp"
    assert "HEAD_SERVICE_HOST" not in env and "EXT_SERVICE_HOST" not in env
    assert service_env([s], "other") == {}


def test_upstreams_from_env():
    assert upstreams_from_env("127.0.0.1:5353,127.0.0.2") == [("127.0.0.1", 5353), ("127.0.0.2", 53)]
    assert upstreams_from_env("none") == []
    assert upstreams_from_env("") is None
    # The agent's --dns-upstreams parser: a name or a bad port is refused.
    for bad in ("dns.example:53", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(ValueError):
            upstreams_from_env(bad)
