"""The node's userspace service proxy (see README.md in this directory).

Entry point for pk-agent: run_proxy(client, node_name, node_ip, ...)."""

from agent.proxy.proxier import Proxier, remove_addresses, run_proxy

__all__ = ["Proxier", "remove_addresses", "run_proxy"]
