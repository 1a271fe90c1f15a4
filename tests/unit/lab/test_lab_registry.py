"""The lab registry's pure parts (cli/lab/registry.py, plan, engine's
daemon.json): names, ports, configuration. No processes."""

from __future__ import annotations

import yaml

from cli.lab import engine, registry
from cli.lab.plan import make_plan


def test_each_lab_has_its_own_registry_port_and_directory() -> None:
    p0, p3 = make_plan("lab", 0), make_plan("other", 3, state_root="/s")
    assert (p0.registry, p0.registry_port) == ("localhost:5100", 5100)
    assert p3.registry == "localhost:5103"
    assert p3.registry_dir == "/s/other/registry"


def test_registry_config_stores_in_the_lab_and_listens_on_the_lab_network() -> None:
    p = make_plan("lab", 2, state_root="/s", run_root="/r")
    cfg = yaml.safe_load(registry.config_text(p))
    assert cfg["storage"]["filesystem"]["rootdirectory"] == "/s/lab/registry"
    assert cfg["http"]["addr"] == "10.231.2.1:5102"
    assert "auth" not in cfg
    assert registry.argv(p)[1:] == ["serve", "/r/lab/registry.yml"]
    # localhost:PORT on this machine and in every node reaches it
    fwd = registry.forwarder_argv(p)
    assert fwd[1:] == ["TCP-LISTEN:5102,bind=127.0.0.1,reuseaddr,fork", "TCP:10.231.2.1:5102"]
    assert registry.forwarder_pidfile(p) == "/r/lab/registry-forward.pid"
    assert registry.forwarder_pidfile(p, p.nodes[0]) == "/r/lab/node-1/registry-forward.pid"


def test_node_engines_use_the_registry_as_their_docker_hub_mirror() -> None:
    p = make_plan("lab", 1)
    assert engine.daemon_config(p) == {"registry-mirrors": ["http://10.231.1.1:5101"],
                                       "insecure-registries": ["10.231.1.1:5101"]}


def test_docker_hub_names_as_registry_repositories() -> None:
    assert registry.repository("nginx:latest") == ("library/nginx", "latest")
    assert registry.repository("nginx") == ("library/nginx", "latest")
    assert registry.repository("pocketkube/hello:2") == ("pocketkube/hello", "2")
    assert registry.repository("pocketkube/debian:bookworm") == ("pocketkube/debian", "bookworm")
