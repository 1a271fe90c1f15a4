"""Cluster DNS answers, pod resolver settings and Service environment
variables.

Pure: no I/O. The server (server.py) parses a query, asks answer() and
either sends the reply or forwards the raw query upstream.

Names served (cluster domain "cluster.local" by default):
  <svc>.<ns>.svc.<domain>   A: the ClusterIP; headless: the ready endpoint
                            addresses; ExternalName: CNAME to externalName
  anything else in <domain> NXDOMAIN (NOERROR/no data for a name that is an
                            existing Service asked for another type, or for
                            the zone's own structure: <ns>.svc.<domain> ...)
  everything else           None: forward to the upstream resolvers
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from dnslib import CNAME, QTYPE, RCODE, RR, SOA, A, DNSLabel, DNSRecord

CLUSTER_DOMAIN = "cluster.local"
TTL = 5

# (namespace, name) -> Service or None; (namespace, name) -> Endpoints or None
ServiceLookup = Callable[[str, str], Any]
EndpointsLookup = Callable[[str, str], Any]


def answer(
    query: DNSRecord,
    services: ServiceLookup,
    endpoints: EndpointsLookup,
    domain: str = CLUSTER_DOMAIN,
) -> DNSRecord | None:
    """The reply to `query`, or None when it is not ours (forward it)."""
    q = query.q
    qname = str(q.qname).rstrip(".").lower()
    suffix = "." + domain
    if qname != domain and not qname.endswith(suffix):
        return None
    reply = query.reply()
    reply.header.ra = 1
    labels = qname[: -len(suffix)].split(".") if qname != domain else []
    # labels: [..., svc, ns, "svc"] for a Service name
    if len(labels) == 3 and labels[2] == "svc":
        name, ns = labels[0], labels[1]
        svc = services(ns, name)
        if svc is not None:
            _service_records(reply, q, svc, endpoints(ns, name))
            return reply
    elif len(labels) <= 2 and (not labels or labels[-1] == "svc"):
        # The zone, "svc.<domain>" or "<ns>.svc.<domain>": exist, no data.
        _soa(reply, domain)
        return reply
    reply.header.rcode = RCODE.NXDOMAIN
    _soa(reply, domain)
    return reply


def _service_records(reply: DNSRecord, q: Any, svc: Any, ep: Any) -> None:
    qname = q.qname
    t = svc.spec.type or "ClusterIP"
    if t == "ExternalName":
        # Any type: the CNAME (the client's resolver follows it).
        reply.add_answer(RR(qname, QTYPE.CNAME, ttl=TTL, rdata=CNAME(DNSLabel(svc.spec.external_name))))
        return
    if q.qtype not in (QTYPE.A, QTYPE.ANY):
        return  # exists, but no AAAA etc.: NOERROR, no data
    cip = svc.spec.cluster_ip
    if cip and cip != "None":
        reply.add_answer(RR(qname, QTYPE.A, ttl=TTL, rdata=A(cip)))
        return
    for ip in headless_addresses(ep):
        reply.add_answer(RR(qname, QTYPE.A, ttl=TTL, rdata=A(ip)))


def headless_addresses(ep: Any) -> list[str]:
    if ep is None:
        return []
    seen: list[str] = []
    for s in ep.subsets:
        for a in s.addresses:
            if a.ip and a.ip not in seen:
                seen.append(a.ip)
    return seen


def _soa(reply: DNSRecord, domain: str) -> None:
    reply.add_auth(
        RR(domain, QTYPE.SOA, ttl=TTL, rdata=SOA(f"ns.dns.{domain}", f"hostmaster.{domain}", (1, 7200, 1800, 86400, TTL)))
    )


# --------------------------------------------------------- for the agent


def pod_dns_config(namespace: str, nameserver: str, domain: str = CLUSTER_DOMAIN) -> dict[str, list[str]]:
    """A ClusterFirst pod's resolver settings: the node's DNS server, the
    Kubernetes search path and ndots 5."""
    ns = namespace or "default"
    return {
        "nameservers": [nameserver],
        "searches": [f"{ns}.svc.{domain}", f"svc.{domain}", domain],
        "options": ["ndots:5"],
    }


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: Iterable[Any], namespace: str) -> dict[str, str]:
    """Kubernetes' Docker-links style variables for the Services of a
    namespace that have a ClusterIP: <SVC>_SERVICE_HOST, <SVC>_SERVICE_PORT,
    <SVC>_SERVICE_PORT_<PORTNAME>, <SVC>_PORT, <SVC>_PORT_<port>_<PROTO>[...]."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s.metadata.name):
        if svc.metadata.namespace != namespace:
            continue
        ip = svc.spec.cluster_ip
        if not ip or ip == "None" or (svc.spec.type or "ClusterIP") == "ExternalName" or not svc.spec.ports:
            continue
        n = _env_name(svc.metadata.name)
        first = svc.spec.ports[0]
        env[f"{n}_SERVICE_HOST"] = ip
        env[f"{n}_SERVICE_PORT"] = str(first.port)
        for p in svc.spec.ports:
            if p.name:
                env[f"{n}_SERVICE_PORT_{_env_name(p.name)}"] = str(p.port)
        env[f"{n}_PORT"] = f"{(first.protocol or 'TCP').lower()}://{ip}:{first.port}"
        for p in svc.spec.ports:
            proto = p.protocol or "TCP"
            pre = f"{n}_PORT_{p.port}_{proto}"
            env[pre] = f"{proto.lower()}://{ip}:{p.port}"
            env[f"{pre}_PROTO"] = proto.lower()
            env[f"{pre}_PORT"] = str(p.port)
            env[f"{pre}_ADDR"] = ip
    return env
