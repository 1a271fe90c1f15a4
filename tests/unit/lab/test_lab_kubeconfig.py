"""`pkctl lab up` merges the lab's context into the user's kubeconfig,
`lab kubeconfig` prints it, `lab down` takes it out again (no root, no lab:
the control plane's kubeconfig is written by hand here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.lab import lab
from cli.lab.plan import make_plan
from pkapi import kubeconfig


def test_merge_print_and_forget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make_plan("demo", 2, 3, state_root=str(tmp_path / "state"), run_root=str(tmp_path / "run"))
    user_cfg = tmp_path / "home" / ".kube" / "config"
    monkeypatch.setenv("KUBECONFIG", str(user_cfg))
    kubeconfig.save(user_cfg, kubeconfig.build("kind-other", "https://127.0.0.1:9443", b"OTHER"))
    with pytest.raises(lab.LabError, match="has not written"):
        lab.lab_kubeconfig(plan)
    written = kubeconfig.build("pocketkube", f"https://{plan.https_server}", b"CA", grpc_server=plan.server,
                               user="admin", user_entry={"client-certificate-data": "Y2VydA=="})
    kubeconfig.save(Path(plan.controlplane_dir) / "kubeconfig.yaml", written)
    mine = lab.lab_kubeconfig(plan)
    assert mine["current-context"] == "pocketkube-demo"
    assert mine["users"] == [{"name": "pocketkube-demo", "user": {"client-certificate-data": "Y2VydA=="}}]
    assert lab.merge_kubeconfig(plan) == str(user_cfg)
    cfg = kubeconfig.load(user_cfg)
    assert [c["name"] for c in cfg["contexts"]] == ["kind-other", "pocketkube-demo"]
    assert cfg["current-context"] == "pocketkube-demo"
    cluster = kubeconfig.current_cluster(cfg)
    assert cluster is not None and cluster["server"] == "https://10.231.2.1:6443"
    assert kubeconfig.grpc_server_of(cluster) == "10.231.2.1:6444"
    lab._forget_kubeconfig(plan)
    cfg = kubeconfig.load(user_cfg)
    assert [c["name"] for c in cfg["contexts"]] == ["kind-other"] and cfg["current-context"] == ""
