"""pk-controlplane's configuration: one dataclass, filled from flags by
controlplane.main and read by every part (API server, controllers,
scheduler, allocators). Pure data; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

# name -> (heartbeat interval s, node grace period s, default unreachable toleration s)
PRESETS: dict[str, tuple[float, float, int]] = {
    "lab": (1.0, 4.0, 0),
    "kubernetes": (10.0, 40.0, 300),
}


@dataclass
class ControlPlaneConfig:
    # gRPC API listen address (pkctl, agents, controllers): the port after
    # the Kubernetes API's
    listen: str = "127.0.0.1:6444"
    # Kubernetes HTTPS API listen address (kubectl, client libraries); empty: off
    http_listen: str = "127.0.0.1:6443"
    # Extra names and addresses for the HTTPS serving certificate
    tls_sans: list[str] = field(default_factory=list)
    # CA and serving certificate directory; empty: <data_dir>/pki
    pki_dir: str = ""
    # etcd endpoints ("http://127.0.0.1:2379,..."); empty: start an embedded etcd
    etcd_servers: list[str] = field(default_factory=list)
    data_dir: str = "/var/lib/pocketkube"
    service_cidr: str = "10.96.0.0/16"
    service_node_port_range: tuple[int, int] = (30000, 32767)
    # LoadBalancer addresses: a CIDR or "first-last" range; empty: none
    lb_pool: str = ""
    preset: str = "lab"
    heartbeat_interval: float = 1.0
    node_grace_period: float = 4.0
    default_unreachable_toleration: int = 0
    # Leader election (an etcd lease): all control planes serve the API, one
    # runs controllers and the scheduler.
    leader_elect: bool = True
    leader_lease_seconds: int = 3
    identity: str = ""
    # Run controllers and scheduler at all (tests of the bare API disable it).
    controllers: bool = True
    # Run them in a supervised child process (their own core, like
    # kube-controller-manager); false: on the API server's event loop.
    controllers_process: bool = True
    # Where the events expire (seconds)
    event_ttl: int = 3600
    log_level: str = "info"

    def apply_preset(self, name: str) -> None:
        hb, grace, tol = PRESETS[name]
        self.preset = name
        self.heartbeat_interval = hb
        self.node_grace_period = grace
        self.default_unreachable_toleration = tol
