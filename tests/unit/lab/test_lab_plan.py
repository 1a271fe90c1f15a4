"""The lab's layout (cli/lab/plan.py): addresses, names, validation. Pure."""

from __future__ import annotations

import ipaddress
import itertools
import os
from pathlib import Path

import pytest

from cli.lab.plan import MAX_LABS, MAX_NODES, PlanError, free_index, lb_cidrs, make_plan


def test_default_lab_layout() -> None:
    p = make_plan("lab", 0)
    assert p.subnet == "10.231.0.0/24"
    assert p.gateway == "10.231.0.1"
    assert p.server == "10.231.0.1:6444" and p.https_server == "10.231.0.1:6443"
    assert p.uplink == "pklab0" and p.switch_ns == "pklab0"
    assert [n.name for n in p.nodes] == ["node-1", "node-2", "node-3"]
    assert [n.ip for n in p.nodes] == ["10.231.0.11", "10.231.0.12", "10.231.0.13"]
    assert [n.netns for n in p.nodes] == ["pklab0-node-1", "pklab0-node-2", "pklab0-node-3"]
    assert p.service_cidr == "10.96.0.0/16"
    assert p.lb_pool == "10.231.0.192/27" and p.lb_cidrs == ("10.231.0.192/27",)
    n1 = p.nodes[0]
    assert n1.docker_host == "unix:///run/pocketkube/lab/lab/node-1/docker.sock"
    assert n1.data_root == "/var/lib/pocketkube/lab/lab/nodes/node-1/docker"
    assert n1.netns_path == "/var/run/netns/pklab0-node-1"


def test_every_address_of_every_lab_is_distinct_and_contained() -> None:
    """Node IPs, gateways, LB pools and docker0 subnets of all labs at their
    largest never collide, and all stay in the lab's own ranges."""
    seen_ips: set[str] = set()
    bips: list[ipaddress.IPv4Network] = []
    lab_net = ipaddress.ip_network("10.231.0.0/16")
    docker_net = ipaddress.ip_network("10.232.0.0/16")
    for k in range(MAX_LABS):
        p = make_plan(f"l{k}", k, nodes=MAX_NODES)
        subnet = ipaddress.ip_network(p.subnet)
        assert subnet.subnet_of(lab_net)  # type: ignore[arg-type]
        pool = ipaddress.ip_network(p.lb_pool)
        assert pool.subnet_of(subnet)  # type: ignore[arg-type]
        for ip in [p.gateway] + [n.ip for n in p.nodes]:
            assert ip not in seen_ips
            seen_ips.add(ip)
            addr = ipaddress.ip_address(ip)
            assert addr in subnet and addr not in pool
            assert addr not in (subnet.network_address, subnet.broadcast_address)
        for n in p.nodes:
            bip = ipaddress.ip_interface(n.bip).network
            assert bip.subnet_of(docker_net)  # type: ignore[arg-type]
            bips.append(bip)
            assert len(n.port) <= 15 and len(n.netns) <= 64
        assert len(p.uplink) <= 15
    for a, b in itertools.combinations(bips, 2):
        assert not a.overlaps(b)


def test_names_and_paths_follow_the_lab_name_and_roots() -> None:
    p = make_plan("demo-2", 3, nodes=2, state_root="/s/", run_root="/r")
    assert p.state_dir == "/s/demo-2" and p.run_dir == "/r/demo-2"
    assert p.nodes[1].state_dir == "/s/demo-2/nodes/node-2"
    assert p.nodes[1].run_dir == "/r/demo-2/node-2"
    assert p.route_table == 23103
    assert p.node("node-2") is p.nodes[1]
    with pytest.raises(PlanError, match='node "node-9" is not in lab "demo-2" \\(nodes: node-1, node-2\\)'):
        p.node("node-9")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "Lab"}, 'invalid lab name "Lab"'),
        ({"name": "-x"}, "invalid lab name"),
        ({"name": "a" * 33}, "invalid lab name"),
        ({"name": ""}, "invalid lab name"),
        ({"index": MAX_LABS}, "lab index"),
        ({"nodes": 0}, "--nodes must be between 1 and 30, not 0"),
        ({"nodes": MAX_NODES + 1}, "--nodes must be between 1 and 30"),
        ({"preset": "fast"}, 'Unsupported value: "fast": supported values: "lab", "kubernetes"'),
        ({"service_cidr": "8.8.0.0/16"}, "must be a private range"),
        ({"service_cidr": "10.96.0.0/33"}, 'invalid service CIDR "10.96.0.0/33"'),
        ({"service_cidr": "10.231.0.0/24"}, "overlaps the lab's own"),
        ({"lb_pool": "1.2.3.0/24"}, "must be a private range"),
        ({"lb_pool": "10.96.1.0/24"}, "overlaps the service CIDR"),
        ({"lb_pool": "10.231.0.20-10.231.0.10"}, "the last address is before the first"),
        ({"lb_pool": "nonsense"}, 'invalid LoadBalancer pool "nonsense"'),
    ],
)
def test_bad_options_are_refused_with_a_clear_reason(kwargs: dict, message: str) -> None:
    args = {"name": "lab", "index": 0, **kwargs}
    with pytest.raises(PlanError) as err:
        make_plan(**args)
    assert message in str(err.value)


def test_lb_pool_range_becomes_cidrs() -> None:
    assert lb_cidrs("10.231.0.200-10.231.0.207") == ("10.231.0.200/29",)
    assert lb_cidrs("10.231.0.200-10.231.0.210") == ("10.231.0.200/29", "10.231.0.208/31", "10.231.0.210/32")
    assert lb_cidrs(" 192.168.9.0/24 ") == ("192.168.9.0/24",)
    assert lb_cidrs("") == ()
    p = make_plan("lab", 1, lb_pool="192.168.77.10-192.168.77.11")
    assert p.lb_cidrs == ("192.168.77.10/31",) and p.lb_pool == "192.168.77.10-192.168.77.11"


def test_free_index() -> None:
    assert free_index(set()) == 0
    assert free_index({0, 1, 3}) == 2
    with pytest.raises(PlanError, match="too many labs"):
        free_index(set(range(MAX_LABS)))


def test_labs_brought_up_at_once_get_different_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`pkctl lab up` chooses a new lab's index and writes its record under
    state.locked(): four processes doing so at the same moment (each
    pausing between choice and record, where a race would bite) get four
    different indexes; the lock leaves no file behind."""
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from cli.lab import state\n"
        "from cli.lab.lab import UpOptions, _record_for_up\n"
        "with state.locked():\n"
        "    rec, new = _record_for_up(UpOptions(name=sys.argv[1]))\n"
        "    time.sleep(0.3)\n"
        "    state.save(rec)\n"
    )
    env = {**os.environ, "PK_LAB_STATE_ROOT": str(tmp_path / "labs"), "PK_LAB_RUN_ROOT": str(tmp_path / "run")}
    procs = [subprocess.Popen([sys.executable, "-c", script, f"race{i}"], env=env, cwd=str(Path(__file__).resolve().parents[3])) for i in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    from cli.lab import state

    recs = state.all_labs(str(tmp_path / "labs"))
    assert len(recs) == 4 and len({r.index for r in recs}) == 4, [(r.name, r.index) for r in recs]
    assert sorted(p.name for p in (tmp_path / "labs").iterdir()) == [f"race{i}" for i in range(4)]
