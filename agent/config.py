"""pk-agent's configuration: one dataclass filled from flags by agent.main.
Pure data; no I/O."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

# name -> (heartbeat interval s, crash back-off start s)
PRESETS: dict[str, tuple[float, float]] = {
    "lab": (1.0, 1.0),
    "kubernetes": (10.0, 10.0),
}
BACKOFF_CAP = 300.0  # both presets: 5 min, as Kubernetes


@dataclass
class AgentConfig:
    server: str = "127.0.0.1:6443"
    node_name: str = field(default_factory=socket.gethostname)
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
    # How often every pod is re-synced even without events (safety net).
    resync_interval: float = 10.0
    log_level: str = "info"
    # Kernel/OS facts are read from the host; a hollow agent may override.
    capacity_cpu: str = ""
    capacity_memory: str = ""

    def apply_preset(self, name: str) -> None:
        hb, backoff = PRESETS[name]
        self.preset = name
        self.heartbeat_interval = hb
        self.backoff_initial = backoff
