"""Extension points of the agent for its node services (agent/services.py:
the service proxy and cluster DNS).

    NodeContext   what node services get: config, client, runtime, hooks,
                  and proxy_synced, which they set once the node's proxy
                  has done its first sync (agent.main registers the Node,
                  and so lets it turn Ready, only then)
    PodHooks      how pod containers are shaped by node services:
                    env_providers  fn(pod) -> {NAME: value}, e.g. the
                                   Kubernetes <SVC>_SERVICE_HOST/_PORT vars
                    nameserver     where pods reach the node's DNS server:
                                   the node IP, or the DNS bridge's gateway
                                   when the node IP is a loopback address
                    cluster_dns    set True once the node's DNS server runs:
                                   containers of dnsPolicy ClusterFirst then
                                   get that nameserver and the search
                                   path <ns>.svc.cluster.local svc.cluster.local
                                   cluster.local and `options ndots:5`

agent.main starts every coroutine of `agent.services.node_services(ctx)` in the
agent's TaskGroup. Providers run on the event loop while a container is being
created: they must be quick and must not raise (an exception is logged and the
provider skipped).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from pkapi.v1 import core_pb2

log = logging.getLogger(__name__)

EnvProvider = Callable[[core_pb2.Pod], dict[str, str]]
CLUSTER_DOMAIN = "cluster.local"
NDOTS = 5  # as agent.dns.pod_dns_config


@dataclass
class PodHooks:
    nameserver: str = ""
    env_providers: list[EnvProvider] = field(default_factory=list)
    cluster_dns: bool = False
    cluster_domain: str = CLUSTER_DOMAIN

    def extra_env(self, pod: core_pb2.Pod) -> dict[str, str]:
        out: dict[str, str] = {}
        if pod.spec.HasField("enable_service_links") and not pod.spec.enable_service_links:
            return out
        for fn in self.env_providers:
            try:
                out.update(fn(pod))
            except Exception:  # noqa: BLE001 - a broken provider must not block pods
                log.exception("env provider %r failed", fn)
        return out

    def dns(self, pod: core_pb2.Pod) -> tuple[list[str], list[str], list[str]]:
        """(nameservers, search path, resolver options) for the pod's
        containers; ([], [], []) = the engine's default (the host's
        resolv.conf). ClusterFirst adds ndots:5 as Kubernetes does: a name
        with fewer than 5 dots tries the search path first, so `web` and
        `web.other` resolve to Services."""
        servers: list[str] = []
        search: list[str] = []
        options: list[str] = []
        policy = pod.spec.dns_policy or "ClusterFirst"
        if policy == "ClusterFirst" and self.cluster_dns and self.nameserver:
            ns = pod.metadata.namespace or "default"
            d = self.cluster_domain
            servers = [self.nameserver]
            search = [f"{ns}.svc.{d}", f"svc.{d}", d]
            options = [f"ndots:{NDOTS}"]
        if pod.spec.HasField("dns_config"):
            cfg = pod.spec.dns_config
            servers += [s for s in cfg.nameservers if s not in servers]
            search += [s for s in cfg.searches if s not in search]
            # Kubernetes merges options by name: the pod's replace the policy's.
            mine = {o.name: (f"{o.name}:{o.value}" if o.value else o.name) for o in cfg.options}
            options = [o for o in options if o.split(":", 1)[0] not in mine] + list(mine.values())
        return servers, search, options


@dataclass
class NodeContext:
    config: Any  # AgentConfig
    client: Any  # ClusterClient
    runtime: Any  # Runtime
    hooks: PodHooks
    proxy_synced: asyncio.Event = field(default_factory=asyncio.Event)
