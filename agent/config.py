"""pk-agent's configuration: one dataclass filled from flags by agent.main,
and the pure parsers of the flags' values (each raises ValueError with the
reason). Pure data; no I/O."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

# name -> (heartbeat interval s, crash back-off start s)
PRESETS: dict[str, tuple[float, float]] = {
    "lab": (1.0, 1.0),
    "kubernetes": (10.0, 10.0),
}
BACKOFF_CAP = 300.0  # both presets: 5 min, as Kubernetes
PULL_BACKOFF_INITIAL = 10.0  # image pulls, both presets: kubelet's 10 s
MAX_PROXY_WORKERS = 64


@dataclass
class AgentConfig:
    server: str = "127.0.0.1:6444"
    # pk-agent's --node-name defaults to the hostname (agent.main asks the
    # system; this module reads nothing).
    node_name: str = ""
    # The address pods' ports are published on and other nodes reach it by.
    node_ip: str = "127.0.0.1"
    docker_host: str = "unix:///var/run/docker.sock"
    heartbeat_interval: float = 1.0
    labels: dict[str, str] = field(default_factory=dict)
    data_dir: str = "/var/lib/pocketkube/agent"
    host_port_range: tuple[int, int] = (40000, 44999)
    max_pods: int = 110
    # AgentService (logs, exec) listens on node_ip:agent_port; 0 = a free port.
    agent_port: int = 10250
    preset: str = "lab"
    backoff_initial: float = 1.0
    backoff_cap: float = BACKOFF_CAP
    pull_backoff_initial: float = PULL_BACKOFF_INITIAL
    # How often every pod is re-synced even without events (safety net).
    resync_interval: float = 10.0
    # Container stops/removals of deleted pods in flight at once (see
    # agent/pods/teardown.py: more delays the start of new pods).
    max_parallel_teardowns: int = 2
    log_level: str = "info"
    # Kernel/OS facts are read from the host; a hollow agent may override.
    capacity_cpu: str = ""
    capacity_memory: str = ""
    # Node services (agent/proxy, agent/dns). Each flag's default comes from
    # an environment variable (PK_PROXY_WORKERS, ...): see agent.main.
    node_services: bool = True
    # Processes serving the proxy's ports (SO_REUSEPORT): the agent + N-1.
    proxy_workers: int = 1
    # Where cluster DNS forwards other names: None = the host's resolv.conf,
    # [] = nowhere (answer cluster names only).
    dns_upstreams: list[tuple[str, int]] | None = None
    dns_port: int = 53
    # With a loopback node IP: DNS also listens on this bridge's gateway
    # address, which pods then get as their nameserver ("" = off).
    dns_bridge: str = ""

    def apply_preset(self, name: str) -> None:
        hb, backoff = PRESETS[name]
        self.preset = name
        self.heartbeat_interval = hb
        self.backoff_initial = backoff


def parse_proxy_workers(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        raise ValueError(f"must be an integer from 1 to {MAX_PROXY_WORKERS}") from None
    if not 1 <= n <= MAX_PROXY_WORKERS:
        raise ValueError(f"must be an integer from 1 to {MAX_PROXY_WORKERS}")
    return n


def parse_port(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        raise ValueError("must be a port number from 1 to 65535") from None
    if not 1 <= n <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return n


def parse_dns_upstreams(s: str) -> list[tuple[str, int]] | None:
    """"" -> None (the host's resolv.conf); "none" -> [] (never forward);
    else comma-separated IPv4[:port] (port 53 by default)."""
    s = s.strip()
    if s == "":
        return None
    if s == "none":
        return []
    out: list[tuple[str, int]] = []
    for part in (p.strip() for p in s.split(",")):
        host, colon, port = part.partition(":")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f'"{part}" is not IPv4[:PORT] (or use "none" to never forward)') from None
        try:
            out.append((host, parse_port(port) if colon else 53))
        except ValueError as err:
            raise ValueError(f'"{part}": port {err}') from None
    return out


_IFNAME = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")


def parse_bridge(s: str) -> str:
    """A network device name ("" = none), as the kernel allows them."""
    if s and (not _IFNAME.fullmatch(s) or s in (".", "..")):
        raise ValueError("must be a network device name (at most 15 characters, e.g. docker0)")
    return s


def parse_switch(s: str) -> bool:
    """An on/off environment value: 1/true/yes/on or 0/false/no/off."""
    v = s.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1 or 0 (true/false)")
