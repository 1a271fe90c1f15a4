"""`pkctl lab` refuses clearly (exit 1, `error: …`, no traceback, nothing
changed) when not root or given bad options. No lab is created here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.lab import lab as labmod
from cli.main import cli


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PK_LAB_STATE_ROOT", str(tmp_path / "state"))
    monkeypatch.setenv("PK_LAB_RUN_ROOT", str(tmp_path / "run"))
    monkeypatch.setenv("PKCTL_CONFIG", str(tmp_path / "config"))
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["lab", *args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.output


@pytest.mark.parametrize("verb", [["up"], ["down"], ["kill-node", "node-1"], ["start-node", "node-1"],
                                  ["partition", "node-1"], ["heal", "node-1"], ["exec", "node-1", "--", "true"]])
def test_non_root_is_told_what_is_needed(verb: list[str], sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, out = _run(*verb)
    assert code == 1
    assert out.startswith(f"error: `pkctl lab {verb[0]}` must run as root"), out
    assert "network namespaces" in out and "Traceback" not in out
    assert not (sandbox / "state").exists() and not (sandbox / "run").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--nodes", "0"], "--nodes must be between 1 and 30, not 0"),
        (["--nodes", "31"], "--nodes must be between 1 and 30, not 31"),
        (["--name", "Bad_Name"], 'invalid lab name "Bad_Name"'),
        (["--service-cidr", "8.8.8.0/24"], "must be a private range"),
        (["--lb-pool", "10.96.0.0/24"], "overlaps the service CIDR"),
    ],
)
def test_bad_options_change_nothing(args: list[str], message: str, sandbox: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # not root either: should validation ever let an option through, nothing is created
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, out = _run("up", *args)
    assert code == 1 and message in out and "Traceback" not in out
    assert not (sandbox / "state").exists() and not (sandbox / "run").exists()


def test_commands_on_a_lab_that_does_not_exist(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    code, out = _run("status", "--name", "nope")
    assert code == 1 and 'no lab named "nope": bring one up with `pkctl lab up --name nope`' in out, out
    code, out = _run("down", "--name", "nope")
    assert code == 0 and 'no lab named "nope" (nothing to remove)' in out
    code, out = _run("logs", "etcd")
    assert code == 1 and 'no lab named "lab"' in out


def test_log_components(sandbox: Path) -> None:
    from cli.lab.plan import PlanError, make_plan

    plan = make_plan("lab", 0, nodes=2, state_root="/s", run_root="/r")
    assert labmod.log_path(plan, "etcd") == "/s/lab/logs/etcd.log"
    assert labmod.log_path(plan, "controlplane") == "/s/lab/logs/controlplane.log"
    assert labmod.log_path(plan, "registry") == "/s/lab/logs/registry.log"
    assert labmod.log_path(plan, "node-2") == "/s/lab/nodes/node-2/agent.log"
    assert labmod.log_path(plan, "node-2/agent") == "/s/lab/nodes/node-2/agent.log"
    assert labmod.log_path(plan, "node-1/dockerd") == "/s/lab/nodes/node-1/dockerd.log"
    with pytest.raises(PlanError, match='unknown component "node-1/kubelet"'):
        labmod.log_path(plan, "node-1/kubelet")
    with pytest.raises(PlanError, match='node "node-3" is not in lab'):
        labmod.log_path(plan, "node-3/agent")
    assert labmod.components(plan) == ["controlplane", "etcd", "registry", "node-1/agent", "node-1/dockerd",
                                       "node-2/agent", "node-2/dockerd"]
