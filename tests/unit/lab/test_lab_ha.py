"""An HA lab's layout (`pkctl lab up --control-planes 3`): names, addresses,
command lines and the kubeconfig's gRPC address list (pure: no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.lab import lab
from cli.lab.plan import PlanError, make_plan
from cli.lab.state import LabRecord
from pkapi import kubeconfig


def _record(control_planes: int = 3) -> LabRecord:
    return LabRecord(name="ha", index=1, nodes=2, preset="lab", service_cidr="10.96.0.0/16", lb_pool="",
                     etcd_client_port=0, etcd_peer_port=0, state_root="/s", run_root="/r", created=0.0,
                     control_planes=control_planes, etcd_ports=[[3001, 4001], [3002, 4002], [3003, 4003]])


def test_three_control_planes_on_their_own_addresses() -> None:
    plan = _record().plan()
    assert [(cp.name, cp.ip) for cp in plan.controlplanes] == [
        ("cp-1", "10.231.1.1"), ("cp-2", "10.231.1.2"), ("cp-3", "10.231.1.3")]
    assert plan.server == "10.231.1.1:6444,10.231.1.2:6444,10.231.1.3:6444"
    assert plan.https_server == "10.231.1.1:6443"
    assert [m.name for m in plan.etcd_members] == ["etcd-1", "etcd-2", "etcd-3"]
    assert lab.components(plan)[:6] == ["cp-1", "cp-2", "cp-3", "etcd-1", "etcd-2", "etcd-3"]
    assert lab.log_path(plan, "cp-2") == "/s/ha/logs/cp-2.log"
    assert plan.controlplane("cp-3").pidfile == "/r/ha/cp-3.pid"
    with pytest.raises(PlanError, match=r'control plane "controlplane" is not in lab "ha" \(control planes: cp-1'):
        plan.controlplane("controlplane")
    with pytest.raises(PlanError, match='etcd member "etcd-4"'):
        plan.etcd_member("etcd-4")


def test_a_lab_of_one_keeps_its_names() -> None:
    plan = make_plan("lab", 0)
    assert [cp.name for cp in plan.controlplanes] == ["controlplane"]
    assert plan.server == "10.231.0.1:6444"
    assert plan.controlplane_dir == "/var/lib/pocketkube/lab/lab/controlplane"
    assert [m.name for m in plan.etcd_members] == ["etcd"]


@pytest.mark.parametrize("n", [0, 2, 9])
def test_control_plane_counts_etcd_cannot_use_are_refused(n: int) -> None:
    with pytest.raises(PlanError, match="--control-planes must be an odd number between 1 and 7"):
        make_plan("ha", 0, control_planes=n)


def test_members_and_control_planes_know_each_other() -> None:
    rec = _record()
    plan = rec.plan()
    argv = lab.etcd_argv(plan, rec, 1)
    assert "--name=etcd-2" in argv and "--data-dir=/s/ha/etcd/etcd-2" in argv
    assert "--listen-client-urls=http://127.0.0.1:3002" in argv
    assert ("--initial-cluster=etcd-1=http://127.0.0.1:4001,etcd-2=http://127.0.0.1:4002,"
            "etcd-3=http://127.0.0.1:4003") in argv
    values = lab.controlplane_values(plan, rec, 2)
    assert values["listen"] == "10.231.1.3:6444" and values["http_listen"] == "10.231.1.3:6443"
    assert values["etcd_servers"] == "http://127.0.0.1:3001,http://127.0.0.1:3002,http://127.0.0.1:3003"
    assert values["data_dir"] == "/s/ha/controlplanes/cp-3"
    assert lab.agent_values(plan, plan.nodes[0])["server"] == plan.server


def test_the_kubeconfig_gives_pkctl_every_control_plane(tmp_path: Path) -> None:
    plan = make_plan("ha", 1, 2, state_root=str(tmp_path), run_root=str(tmp_path / "run"), control_planes=3)
    written = kubeconfig.build("pocketkube", f"https://{plan.https_server}", b"CA",
                               grpc_server=plan.controlplanes[0].server, user="admin", user_entry={})
    kubeconfig.save(Path(plan.controlplane_dir) / "kubeconfig.yaml", written)
    cluster = kubeconfig.current_cluster(lab.lab_kubeconfig(plan))
    assert cluster is not None and cluster["server"] == "https://10.231.1.1:6443"
    assert kubeconfig.grpc_server_of(cluster) == "10.231.1.1:6444,10.231.1.2:6444,10.231.1.3:6444"
