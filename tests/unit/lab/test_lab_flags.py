"""One definition of the daemons' flags (cli/lab/flags.py): the lab's
command lines and the Vagrant systemd units must agree with it, and the
daemons must accept every flag."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cli.lab import flags
from cli.lab.lab import agent_values, controlplane_values
from cli.lab.plan import make_plan
from cli.lab.state import LabRecord

ROOT = Path(__file__).resolve().parents[3]
UNITS = ROOT / "vagrant" / "units"


def _exec_start(unit: Path) -> list[str]:
    lines = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
    assert len(lines) == 1, f"{unit.name}: expected one ExecStart= line"
    return shlex.split(lines[0][len("ExecStart="):])


def _unit_flags(unit: Path) -> list[tuple[str, str]]:
    """(flag, key) pairs of a unit's ExecStart, `--flag=${PK_KEY}` -> key."""
    out = []
    for arg in _exec_start(unit)[1:]:
        m = re.fullmatch(r"(--[a-z-]+)=\$\{PK_([A-Z_]+)\}", arg)
        assert m, f"{unit.name}: argument {arg!r} is not --flag=${{PK_KEY}}"
        out.append((m.group(1), m.group(2).lower()))
    return out


@pytest.mark.parametrize(
    "unit, definition, program",
    [
        ("pk-agent.service", flags.AGENT_FLAGS, "pk-agent"),
        ("pk-controlplane.service", flags.CONTROLPLANE_FLAGS, "pk-controlplane"),
    ],
)
def test_units_use_exactly_the_labs_flags(unit: str, definition: tuple, program: str) -> None:
    path = UNITS / unit
    assert _unit_flags(path) == list(definition)
    assert _exec_start(path)[0] == f"/opt/pocketkube/.venv/bin/{program}"
    assert flags.unit_args(definition) in path.read_text()


@pytest.mark.parametrize(
    "env_file, definition",
    [("controlplane.env", flags.CONTROLPLANE_FLAGS), ("agent.env", flags.AGENT_FLAGS)],
)
def test_provisioning_writes_every_variable_the_units_read(env_file: str, definition: tuple) -> None:
    script = (ROOT / "vagrant" / "provision.sh").read_text()
    m = re.search(rf"cat >/etc/pocketkube/{re.escape(env_file)} <<ENV\n(.*?)\nENV\n", script, re.S)
    assert m, f"provision.sh does not write /etc/pocketkube/{env_file}"
    written = [line.split("=", 1)[0] for line in m.group(1).splitlines()]
    assert sorted(written) == sorted(flags.env_name(key) for _, key in definition)


def _record() -> LabRecord:
    return LabRecord(name="lab", index=0, nodes=3, preset="lab", service_cidr="10.96.0.0/16", lb_pool="",
                     etcd_client_port=2379, etcd_peer_port=2380, state_root="/s", run_root="/r", created=0.0)


def test_lab_command_lines_come_from_the_definition() -> None:
    plan = make_plan("lab", 0)
    node = plan.nodes[1]
    argv = flags.argv(flags.AGENT_FLAGS, agent_values(plan, node))
    assert argv == [
        "--node-name=node-2",
        "--node-ip=10.231.0.12",
        "--docker-host=unix:///run/pocketkube/lab/lab/node-2/docker.sock",
        "--server=10.231.0.1:6444",
        "--data-dir=/var/lib/pocketkube/lab/lab/nodes/node-2/agent",
        "--preset=lab",
        "--dns-upstreams=none",
    ]
    cp = flags.argv(flags.CONTROLPLANE_FLAGS, controlplane_values(plan, _record()))
    assert cp == [
        "--listen=10.231.0.1:6444",
        "--http-listen=10.231.0.1:6443",
        "--etcd-servers=http://127.0.0.1:2379",
        "--data-dir=/var/lib/pocketkube/lab/lab/controlplane",
        "--service-cidr=10.96.0.0/16",
        "--lb-pool=10.231.0.192/27",
        "--preset=lab",
    ]
    with pytest.raises(KeyError, match="node_ip"):
        flags.argv(flags.AGENT_FLAGS, {"node_name": "x"})


@pytest.mark.parametrize(
    "module, definition",
    [("agent.main", flags.AGENT_FLAGS), ("controlplane.main", flags.CONTROLPLANE_FLAGS)],
)
def test_the_daemons_accept_every_flag(module: str, definition: tuple) -> None:
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for flag, _ in definition:
        assert re.search(rf"(^|\s){re.escape(flag)}\b", proc.stdout), f"{module} --help does not list {flag}"
