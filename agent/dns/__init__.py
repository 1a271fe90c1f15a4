"""The node's cluster DNS (see README.md in this directory).

For pk-agent: run_dns(client, listen, port), pod_dns_config(namespace,
nameserver), service_env(services, namespace)."""

from agent.dns.resolve import CLUSTER_DOMAIN, pod_dns_config, service_env
from agent.dns.server import ClusterDNS, run_dns, upstreams_from_env

__all__ = ["CLUSTER_DOMAIN", "ClusterDNS", "pod_dns_config", "run_dns", "service_env", "upstreams_from_env"]
