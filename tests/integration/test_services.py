"""Services end to end on real parts: etcd, pk-controlplane, real pk-agent
processes (each with its own loopback node IP) running Docker containers,
the agents' userspace proxies and cluster DNS.

The Endpoints and LoadBalancer controllers run in the test process (they
talk to the control plane over gRPC exactly as in the controller manager),
so these tests do not depend on the rest of the controllers.

Traffic goes only to 127.0.0.0/8 and to ClusterIPs, and to a ClusterIP only
after it is on this machine's loopback device.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import time
from typing import Any

import docker
import pytest

from agent.proxy import remove_addresses
from agent.proxy.addresses import cluster_tag, labelled
from controlplane.config import ControlPlaneConfig
from controlplane.controllers.endpoints import EndpointsController
from controlplane.controllers.loadbalancer import LB_NODE, LoadBalancerController
from controlplane.controllers.manager import run_controllers
from pkapi import meta
from pkapi.client.cluster import ClusterClient
from pkapi.errors import ApiError
from pkapi.v1 import core_pb2
from tests.helpers import eventually

# What counts as "not yet" while a Service comes up: a refused or reset
# connection, an API error, a stream cut short, a failed check.
RETRY = (OSError, ApiError, asyncio.IncompleteReadError, AssertionError)

pytestmark = pytest.mark.integration

IMAGE = "pocketkube/hello:1"
# Per run (a process of this test module): several runs of the suite on one
# machine at once (parallel test runs, CI) must not share node
# IPs, ClusterIPs, LoadBalancer addresses or NodePorts.
_RUN = random.Random(os.getpid() ^ int(time.time()))
_OCTET = _RUN.randrange(100, 200)
SERVICE_CIDR = f"10.{_OCTET}.0.0/16"
NODE_IPS = [f"127.{_OCTET}.0.21", f"127.{_OCTET}.0.22"]
LB_IP = f"127.77.{_OCTET}.10"
LB_POOL = f"{LB_IP}/32"
NODE_PORT = _RUN.randrange(30100, 32700)
_HOST_PORTS = _RUN.randrange(40, 44) * 1000 + _RUN.randrange(0, 5) * 200


# ------------------------------------------------------------------ helpers



async def http_get(host: str, port: int, timeout: float = 3.0) -> str:
    async def go() -> str:
        r, w = await asyncio.open_connection(host, port)
        try:
            w.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = await r.read()
        finally:
            w.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0]:
            raise OSError(f"bad answer {data[:80]!r}")
        return body.decode().strip()

    return await asyncio.wait_for(go(), timeout)


async def _eq(aw: Any, v: int) -> bool:
    return bool(await aw == v)


async def _gt(aw: Any, v: int) -> bool:
    return bool(await aw > v)


async def dns_a(server: str, name: str) -> list[str]:
    from dnslib import DNSRecord

    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if not fut.done():
                fut.set_result(data)

    t, _ = await loop.create_datagram_endpoint(P, remote_addr=(server, 53))
    try:
        t.sendto(DNSRecord.question(name).pack())
        r = DNSRecord.parse(await asyncio.wait_for(fut, 2))
    finally:
        t.close()
    return [str(x.rdata) for x in r.rr]


def on_lo(ip: str) -> bool:
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", "lo"], capture_output=True, text=True).stdout
    return f" {ip}/32 " in out


def pod(name: str, node: str, labels: dict[str, str], containers: list[dict] | None = None, **spec: Any) -> core_pb2.Pod:
    containers = containers or [{"name": "web", "image": IMAGE, "ports": [{"name": "http", "containerPort": 8080}]}]
    return meta.from_dict(
        {"metadata": {"name": name, "namespace": "default", "labels": labels},
         "spec": {"nodeName": node, "containers": containers, "terminationGracePeriodSeconds": 0, **spec}},
        core_pb2.Pod,
    )  # type: ignore[return-value]


def service(name: str, selector: dict[str, str] | None, ports: list[dict], **spec: Any) -> core_pb2.Service:
    s: dict[str, Any] = {"ports": ports, **spec}
    if selector:
        s["selector"] = selector
    return meta.from_dict({"metadata": {"name": name, "namespace": "default"}, "spec": s}, core_pb2.Service)  # type: ignore[return-value]


async def pod_containers(dc: Any, client: ClusterClient, name: str) -> list[Any]:
    """The running containers of pod `name` of THIS cluster, found by the
    pod's UID. Not by its name: other runs of this module on the machine
    (parallel test runs, CI) have pods of the same names at the same time, and
    a name filter picked their container (the test killed another run's
    web-0, or found it already killed: "409 Cannot kill container ... is not
    running")."""
    p: Any = await client.get("pods", "default", name)
    uid = p.metadata.uid
    assert uid, f"pod {name} has no uid"
    return await asyncio.to_thread(dc.containers.list, filters={"label": f"io.pocketkube.pod.uid={uid}"})


def ready_ips(ep: Any) -> list[str]:
    return sorted(a.ip for s in ep.subsets for a in s.addresses)


async def endpoints_with(client: ClusterClient, name: str, n_ready: int, n_not_ready: int | None = 0) -> Any:
    async def check() -> Any:
        ep = await client.get("endpoints", "default", name)
        ready = sum(len(s.addresses) for s in ep.subsets)
        nr = sum(len(s.not_ready_addresses) for s in ep.subsets)
        return ep if ready == n_ready and (n_not_ready is None or nr == n_not_ready) else None

    return await eventually(f"endpoints {name} with {n_ready} ready / {n_not_ready} not ready addresses", check, timeout=30, retry_on=RETRY)


@contextlib.asynccontextmanager
async def controllers(client: ClusterClient, lb: bool = False) -> Any:
    """The Endpoints (and LoadBalancer) controllers run as the controller
    manager runs them (shared informers, their own client), in this process."""
    ctrls: list[tuple[str, Any]] = [("endpoints", EndpointsController)]
    if lb:
        ctrls.append(("loadbalancer", LoadBalancerController))
    task = asyncio.create_task(run_controllers(ControlPlaneConfig(), client.address, ctrls))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class FakeUpstream(asyncio.DatagramProtocol):
    """The nodes' "upstream resolver", on loopback: example.org and
    db.example.com are 192.0.2.1, every other name NXDOMAIN."""

    def connection_made(self, t: Any) -> None:
        self.t = t
        self.seen: list[str] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        from dnslib import QTYPE, RCODE, RR, A, DNSRecord

        q = DNSRecord.parse(data)
        self.seen.append(str(q.q.qname))
        r = q.reply()
        if str(q.q.qname) in ("example.org.", "db.example.com.") and q.q.qtype == QTYPE.A:
            r.add_answer(RR(q.q.qname, QTYPE.A, ttl=60, rdata=A("192.0.2.1")))
        elif str(q.q.qname) in ("example.org.", "db.example.com."):
            pass  # exists, no data
        else:
            r.header.rcode = RCODE.NXDOMAIN
        self.t.sendto(r.pack(), addr)


def _route(op: str) -> bool:
    return subprocess.run(["ip", "route", op, "unreachable", SERVICE_CIDR], capture_output=True).returncode == 0


@contextlib.asynccontextmanager
async def make_cluster(start_controlplane: Any, start_agent: Any, monkeypatch: pytest.MonkeyPatch,
                       with_controllers: bool = False) -> Any:
    # The agents' DNS forwards only to the fake upstream here.
    loop = asyncio.get_running_loop()
    up_t, up = await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", 0))
    node_flags = {
        "dns_upstreams": f"127.0.0.1:{up_t.get_extra_info('sockname')[1]}",
        # Pods reach the nodes' DNS on the bridge gateway (node IPs are loopback).
        "dns_bridge": "docker0",
        # Each agent's proxy runs a second worker process on the same ports.
        "proxy_workers": 2,
    }
    # A service range of our own: other clusters on this machine (other
    # tests' agents) put their 10.96.x ClusterIPs on the same lo.
    # A safety net: should a ClusterIP ever be missing from lo, traffic to it
    # is refused here instead of following the default route off the machine.
    route_added = await asyncio.to_thread(_route, "add")
    cp = await start_controlplane(controllers=with_controllers, lb_pool=LB_POOL, service_cidr=SERVICE_CIDR)
    agents = await asyncio.gather(
        start_agent(cp, node_ip=NODE_IPS[0], host_port_range=f"{_HOST_PORTS}-{_HOST_PORTS + 99}", **node_flags),
        start_agent(cp, node_ip=NODE_IPS[1], host_port_range=f"{_HOST_PORTS + 100}-{_HOST_PORTS + 199}",
                    **node_flags),
    )
    client = ClusterClient(cp.address)
    try:
        yield cp, agents, client
    finally:
        with contextlib.suppress(Exception):
            for s in (await client.list("services", "default"))[0]:
                await client.delete("services", "default", s.metadata.name)
        await client.close()
        for a in agents:
            await a.stop()
        # Whatever a killed agent left (test_addresses_removed_by_the_last_agent
        # checks that clean stops leave nothing).
        await remove_addresses(cp.address)
        if route_added:
            await asyncio.to_thread(_route, "del")
        up_t.close()


@pytest.fixture
async def cluster(start_controlplane: Any, start_agent: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    async with make_cluster(start_controlplane, start_agent, monkeypatch) as c:
        yield c


# -------------------------------------------------------------------- tests


async def test_cluster_ip_nodeport_affinity_endpoints_and_no_failures(cluster: Any) -> None:
    cp, agents, client = cluster
    nodes = [a.node_name for a in agents]
    node_ips = NODE_IPS
    async with controllers(client):
        svc = await client.create(service("web", {"app": "web"}, [{"name": "http", "port": 80, "targetPort": "http",
                                                                    "nodePort": NODE_PORT}], type="NodePort"))
        cip = svc.spec.cluster_ip
        assert svc.spec.ports[0].node_port == NODE_PORT
        # conflict and range errors, kubectl's wording
        with pytest.raises(ApiError) as e:
            await client.create(service("web2", {"app": "web"}, [{"port": 80, "nodePort": NODE_PORT}], type="NodePort"))
        assert e.value.message == (f'The Service "web2" is invalid: spec.ports[0].nodePort: Invalid value: '
                                   f"{NODE_PORT}: provided port is already allocated")
        with pytest.raises(ApiError) as e:
            await client.create(service("web3", {"app": "web"}, [{"port": 80, "nodePort": 8080}], type="NodePort"))
        assert "provided port is not in the valid range. The range of valid ports is 30000-32767" in e.value.message
        with pytest.raises(ApiError) as e:
            await client.create(service("web4", {"app": "web"}, [{"port": 80}], cluster_ip=cip))
        assert f"failed to allocate IP {cip}: provided IP is already allocated" in e.value.message

        for i in range(3):
            await client.create(pod(f"web-{i}", nodes[i % 2], {"app": "web"}))
        ep = await endpoints_with(client, "web", 3)
        assert sorted({a.node_name for s in ep.subsets for a in s.addresses}) == sorted(nodes)
        await eventually(f"ClusterIP {cip} on lo", lambda: on_lo(cip), timeout=10, retry_on=RETRY)

        # 50 requests reach every replica
        seen = [await eventually("an answer from the ClusterIP", lambda: http_get(cip, 80), timeout=10, retry_on=RETRY)]
        seen += [await http_get(cip, 80) for _ in range(49)]
        assert set(seen) == {"web-0", "web-1", "web-2"}, seen
        # NodePort on every node IP
        for ip in node_ips:
            got = {await eventually(f"NodePort on {ip}", lambda ip=ip: http_get(ip, NODE_PORT), timeout=10, retry_on=RETRY) for _ in range(6)}
            assert got == {"web-0", "web-1", "web-2"}

        # session affinity: ClientIP -> one backend; None -> several; back -> one.
        # Through one node's NodePort: both test agents share this machine's
        # loopback and serve the ClusterIP together (SO_REUSEPORT), and each
        # proxy keeps its own affinity table, as each node does.
        async def set_affinity(mode: str) -> None:
            s = await client.get("services", "default", "web")
            s.spec.session_affinity = mode
            await client.update(s)

        async def distinct() -> int:
            return len({await http_get(node_ips[0], NODE_PORT) for _ in range(15)})

        await set_affinity("ClientIP")
        await eventually("15 requests in a row on one backend (ClientIP)", lambda: _eq(distinct(), 1), timeout=5, interval=0, retry_on=RETRY)
        await set_affinity("None")
        await eventually("several backends (affinity None)", lambda: _gt(distinct(), 1), timeout=5, interval=0, retry_on=RETRY)
        await set_affinity("ClientIP")
        await eventually("15 requests on one backend again", lambda: _eq(distinct(), 1), timeout=5, interval=0, retry_on=RETRY)
        await set_affinity("None")

        # a pod removed leaves the endpoints, a new one joins
        await client.delete("pods", "default", "web-2", grace_period_seconds=0)
        await endpoints_with(client, "web", 2)
        await client.create(pod("web-3", nodes[1], {"app": "web"}))
        await endpoints_with(client, "web", 3)

        async def web3_answers() -> bool:
            return "web-3" in await asyncio.gather(*(http_get(cip, 80) for _ in range(9)))

        await eventually("web-3 answering through the ClusterIP", web3_answers, timeout=10, retry_on=RETRY)

        # a backend container killed abruptly during 200 requests: 0 failures
        dc = docker.DockerClient(base_url="unix:///var/run/docker.sock")
        victim = await pod_containers(dc, client, "web-0")
        assert victim, "container of web-0 not found"
        failures = 0
        answers = []
        for i in range(200):
            if i == 50:
                await asyncio.to_thread(victim[0].kill)
            try:
                answers.append(await http_get(cip, 80))
            except (OSError, TimeoutError) as err:
                failures += 1
                answers.append(repr(err))
        dc.close()
        assert failures == 0, [a for a in answers if a.startswith(("Connection", "Timeout", "OSError"))][:5]
        assert "web-0" in answers[:50]

        # no endpoints: refused within a second
        await client.create(service("empty", {"app": "nothing"}, [{"port": 80}]))
        empty = await client.get("services", "default", "empty")
        await eventually("ClusterIP of empty on lo", lambda: on_lo(empty.spec.cluster_ip), timeout=10, retry_on=RETRY)
        t0 = time.monotonic()
        with pytest.raises((ConnectionRefusedError, ConnectionResetError)):
            await http_get(empty.spec.cluster_ip, 80)
        assert time.monotonic() - t0 < 1.0


async def test_multiport_named_target_ports_dns_from_a_pod(cluster: Any) -> None:
    cp, agents, client = cluster
    node = agents[0].node_name
    async with controllers(client):
        svc = await client.create(service("multi", {"app": "multi"}, [
            {"name": "http", "port": 80, "targetPort": "web"},
            {"name": "metrics", "port": 9100, "targetPort": "metrics"},
        ]))
        await client.create(service("head", {"app": "multi"}, [{"name": "http", "port": 80, "targetPort": "web"}],
                                    cluster_ip="None"))
        await client.create(service("ext", None, [], type="ExternalName", external_name="db.example.com"))
        # The node's DNS knows the Service (so its agent's informer does):
        # the pod created now gets the Service environment variables.
        await eventually("multi in node DNS", lambda: dns_a(NODE_IPS[0], "multi.default.svc.cluster.local"), timeout=10, retry_on=RETRY)
        # one pod, two containers, each a named port; the Service maps both
        await client.create(pod("multi", node, {"app": "multi"}, containers=[
            {"name": "web", "image": IMAGE, "ports": [{"name": "web", "containerPort": 8080}]},
            {"name": "metrics", "image": IMAGE, "env": [{"name": "PORT", "value": "9100"}],
             "ports": [{"name": "metrics", "containerPort": 9100}]},
        ]))
        # a pod that turns unready moves to notReadyAddresses
        await client.create(pod("flaky", node, {"app": "flaky"}, containers=[{
            "name": "web", "image": "pocketkube/flaky:1", "env": [{"name": "HEALTHY_FOR", "value": "4"}],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1,
                               "failureThreshold": 1}}]))
        await client.create(service("flaky", {"app": "flaky"}, [{"port": 80, "targetPort": "http"}]))
        ep = await endpoints_with(client, "multi", 1)
        assert sorted((p.name, p.protocol) for s in ep.subsets for p in s.ports) == [("http", "TCP"), ("metrics", "TCP")]
        cip = svc.spec.cluster_ip
        await eventually(f"ClusterIP {cip} on lo", lambda: on_lo(cip), timeout=10, retry_on=RETRY)
        assert await eventually("multi:80", lambda: http_get(cip, 80), timeout=10, retry_on=RETRY) == "multi"
        assert await eventually("multi:9100", lambda: http_get(cip, 9100), timeout=10, retry_on=RETRY) == "multi"

        await endpoints_with(client, "flaky", 1, 0)
        await endpoints_with(client, "flaky", 0, 1)

        # from inside a pod: the node's DNS is its resolver, with the search path
        dc = docker.DockerClient(base_url="unix:///var/run/docker.sock")
        try:
            c = (await pod_containers(dc, client, "multi"))[0]
            resolv = c.exec_run(["cat", "/etc/resolv.conf"]).output.decode()
            assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv, resolv
            assert "options ndots:5" in resolv.splitlines(), resolv

            def run(*cmd: str) -> tuple[int, str]:
                for _ in range(3):
                    r = c.exec_run(list(cmd))
                    out = r.output.decode(errors="replace")
                    # DNS is UDP: a lost datagram is retried (at most 3 times),
                    # any answer at all is checked by the caller
                    if "no servers could be reached" not in out:
                        break
                return r.exit_code, out

            code, out = await asyncio.to_thread(run, "nslookup", "multi.default.svc.cluster.local")
            assert code == 0 and cip in out, out
            code, out = await asyncio.to_thread(run, "nslookup", "ext.default.svc.cluster.local")
            assert "canonical name = db.example.com" in out, out
            code, out = await asyncio.to_thread(run, "nslookup", "head.default.svc.cluster.local")
            assert NODE_IPS[0] in out, out
            code, out = await asyncio.to_thread(run, "nslookup", "nothere.default.svc.cluster.local")
            assert code != 0 and "NXDOMAIN" in out, out
            # short names through the search path, then answered through the
            # ClusterIP
            for name in ("multi", "multi.default.svc.cluster.local"):  # busybox searches dotless names only
                # (busybox nslookup tries every search domain and exits 1 if
                # any of them is NXDOMAIN, so only the answer is checked)
                code, out = await asyncio.to_thread(run, "nslookup", name)
                assert f"Name:\tmulti.default.svc.cluster.local\nAddress: {cip}" in out, (name, out)
            # ("multi" alone is the pod's own hostname, in its /etc/hosts)
            for url in (f"http://{cip}/", "http://multi.default/", "http://multi.default.svc.cluster.local/"):
                code, out = await asyncio.to_thread(run, "curl", "-sS", "-m", "5", url)
                assert code == 0 and out.strip() == "multi", (url, out)
            code, out = await asyncio.to_thread(run, "env")
            assert f"MULTI_SERVICE_HOST={cip}\n" in out and "MULTI_SERVICE_PORT_METRICS=9100\n" in out, out
            # other names go to the node's upstream resolver
            code, out = await asyncio.to_thread(run, "nslookup", "example.org")
            assert "192.0.2.1" in out, out
        finally:
            dc.close()


async def test_load_balancer_address_moves_when_its_node_dies(
    start_controlplane: Any, start_agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real controller manager this time: node lifecycle judges the
    # killed agent's node dead, the LoadBalancer controller moves the address.
    async with make_cluster(start_controlplane, start_agent, monkeypatch, with_controllers=True) as (cp, agents, client):
        for i, a in enumerate(agents):
            await client.create(pod(f"lb-{i}", a.node_name, {"app": "lb"}))
        svc = await client.create(service("lb", {"app": "lb"}, [{"port": 80, "targetPort": 8080}], type="LoadBalancer"))
        assert [i.ip for i in svc.status.load_balancer.ingress] == [LB_IP]
        assert svc.spec.ports[0].node_port
        # the pool has one address: a second LoadBalancer stays pending
        other = await client.create(service("lb2", {"app": "lb"}, [{"port": 81, "targetPort": 8080}],
                                            type="LoadBalancer"))
        assert not other.status.load_balancer.ingress

        async def holder() -> str:
            s = await client.get("services", "default", "lb")
            return str(s.metadata.annotations.get(LB_NODE, ""))

        first = await eventually(f"a holder for {LB_IP}", holder, timeout=20, retry_on=RETRY)
        await endpoints_with(client, "lb", 2)
        assert await eventually(f"{LB_IP}:80 answering", lambda: http_get(LB_IP, 80), timeout=10, retry_on=RETRY) in ("lb-0", "lb-1")

        victim = next(a for a in agents if a.node_name == first)
        await victim.kill()
        second = await eventually("the address moved to the other node", lambda: _moved(holder(), first), timeout=30, interval=0.2, retry_on=RETRY)
        assert second != first
        survivor = "lb-0" if agents[0].node_name == second else "lb-1"
        got = await eventually(f"{LB_IP}:80 answering from the new holder", lambda: http_get(LB_IP, 80), timeout=15, retry_on=RETRY)
        assert got in ("lb-0", "lb-1")
        # the dead node's pod has left the endpoints: only the survivor answers
        await endpoints_with(client, "lb", 1, None)
        # (the proxy applies the Endpoints change within ~50 ms)
        async def only_survivor() -> bool:
            return {await http_get(LB_IP, 80) for _ in range(6)} == {survivor}

        await eventually(f"only {survivor} answering", only_survivor, timeout=5, retry_on=RETRY)

        # the address freed by deleting "lb" goes to the pending "lb2"
        await client.delete("services", "default", "lb")

        async def lb2_address() -> list[str]:
            s = await client.get("services", "default", "lb2")
            return [i.ip for i in s.status.load_balancer.ingress]

        assert await eventually("lb2 getting the freed address", lb2_address, timeout=10, retry_on=RETRY) == [LB_IP]


async def _moved(aw: Any, old: str) -> str:
    h = str(await aw)
    return h if h and h != old else ""


SEED = [
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "my-web-app-deployment", "namespace": "default", "labels": {"app": "my-web-app"}},
     "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "my-web-app"}},
              "template": {"metadata": {"labels": {"app": "my-web-app"}},
                           "spec": {"containers": [{"name": "my-web-app-container", "image": "nginx:latest",
                                                    "ports": [{"containerPort": 80}]}]}}}},
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "my-web-app-service", "namespace": "default"},
     "spec": {"selector": {"app": "my-web-app"}, "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
              "type": "ClusterIP"}},
]


async def test_seed_service_spreads_over_its_three_replicas(
    start_controlplane: Any, start_agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed manifest through the whole system (scheduler, ReplicaSets,
    Endpoints controller, agents' proxies): 50 requests to the Service reach
    every replica's hostname."""
    import json

    async with make_cluster(start_controlplane, start_agent, monkeypatch, with_controllers=True) as (cp, agents, client):
        for doc in SEED:
            await client.create(json.dumps(doc))
        svc = await client.get("services", "default", "my-web-app-service")
        cip = svc.spec.cluster_ip
        ep = await endpoints_with(client, "my-web-app-service", 3)
        names = {a.target_ref.name for s in ep.subsets for a in s.addresses}
        await eventually(f"ClusterIP {cip} on lo", lambda: on_lo(cip), timeout=10, retry_on=RETRY)
        await eventually("the Service answering", lambda: http_get(cip, 80), timeout=10, retry_on=RETRY)
        seen = [await http_get(cip, 80) for _ in range(50)]
        assert set(seen) == names, (set(seen), names)


async def test_addresses_removed_by_the_last_agent_to_stop(
    start_controlplane: Any, start_agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two agents of one cluster share this machine's lo: the first to stop
    leaves the ClusterIP (the other still serves it), the last removes it."""
    async with make_cluster(start_controlplane, start_agent, monkeypatch) as (cp, agents, client):
        svc = await client.create(service("keep", {"app": "none"}, [{"port": 80}]))
        cip = svc.spec.cluster_ip
        tag = cluster_tag(cp.address)
        await eventually(f"{cip} on lo", lambda: on_lo(cip), timeout=10, retry_on=RETRY)
        assert cip in await labelled(f"lo:ps{tag}")
        await agents[0].stop()
        assert on_lo(cip), "the first agent to stop removed a ClusterIP the other still serves"
        await agents[1].stop()
        assert not on_lo(cip) and not await labelled(f"lo:ps{tag}"), "the last agent to stop left its ClusterIPs"


async def test_addresses_of_a_cluster_gone_from_this_machine_are_collected(
    start_controlplane: Any, start_agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed agent of a finished cluster leaves its ClusterIPs on lo; the
    next agent to start on the machine removes them (nobody holds that
    cluster's lock), and leaves those of live clusters alone."""
    stale = f"10.{_OCTET}.250.250"  # in our unreachable service range
    label = "lo:psdeadbeef"

    def ip(*args: str) -> bool:
        return subprocess.run(["ip", *args], capture_output=True).returncode == 0

    route_added = await asyncio.to_thread(_route, "add")
    try:
        assert await asyncio.to_thread(ip, "addr", "add", f"{stale}/32", "dev", "lo", "label", label)
        async with make_cluster(start_controlplane, start_agent, monkeypatch):
            await eventually(f"{stale} ({label}) removed by the agents' proxies", lambda: not on_lo(stale), timeout=10, retry_on=RETRY)
    finally:
        await asyncio.to_thread(ip, "addr", "del", f"{stale}/32", "dev", "lo")
        if route_added:
            await asyncio.to_thread(_route, "del")


async def test_a_starting_node_is_ready_only_once_its_nodeports_listen(
    start_controlplane: Any, start_agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent registers its Node (which makes it Ready) only after the
    proxy's first sync: the moment a new node is Ready, its NodePort
    answers. (A node coming back after NotReady likewise turns Ready with its
    first heartbeat, which now also follows the first sync.)"""

    class Hello(asyncio.Protocol):
        def connection_made(self, t: Any) -> None:
            self.t = t

        def data_received(self, data: bytes) -> None:
            if b"\r\n\r\n" in data:  # the whole request (it is tiny): answer
                self.t.write(b"HTTP/1.0 200 OK\r\n\r\nhello\n")
                self.t.close()

    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Hello, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    node_port = NODE_PORT + 7 if NODE_PORT + 7 <= 32767 else NODE_PORT - 7
    new_ip = f"127.{_OCTET}.0.23"
    try:
        async with make_cluster(start_controlplane, start_agent, monkeypatch) as (cp, agents, client):
            await client.create(service("hello", None, [{"port": 80, "nodePort": node_port}], type="NodePort"))
            await client.create(meta.from_dict({
                "metadata": {"name": "hello", "namespace": "default"},
                "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": port}]}]}, core_pb2.Endpoints))
            await eventually("the NodePort on a running node", lambda: http_get(NODE_IPS[0], node_port), timeout=10, retry_on=RETRY)
            # start() returns as soon as the Node is Ready: one try, no retry.
            same = {k: agents[0].flags[k] for k in ("dns_upstreams", "dns_bridge", "proxy_workers")}
            await start_agent(cp, node_ip=new_ip, host_port_range=f"{_HOST_PORTS + 200}-{_HOST_PORTS + 299}", **same)
            assert await http_get(new_ip, node_port) == "hello"
    finally:
        srv.close()
