"""lab.json records (cli/lab/state.py): files only, in a temporary root."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from cli.lab import state


def record(root: Path, name: str = "x") -> state.LabRecord:
    return state.LabRecord(name=name, index=2, nodes=3, preset="lab", service_cidr="10.96.0.0/16",
                           lb_pool="10.231.2.192/27", etcd_client_port=1, etcd_peer_port=2,
                           state_root=str(root), run_root=str(root / "run"), created=0.0)


def test_a_record_round_trips(tmp_path: Path) -> None:
    rec = record(tmp_path)
    state.save(rec)
    assert state.load("x", str(tmp_path)) == rec


def test_a_record_of_another_pkctl_version_is_read_for_its_index(tmp_path: Path) -> None:
    path = tmp_path / "other" / "lab.json"
    path.parent.mkdir()
    path.write_text(json.dumps({**asdict(record(tmp_path, "other")), "a_field_of_a_later_version": 3}))
    [rec] = state.all_labs(str(tmp_path))
    assert (rec.name, rec.index) == ("other", 2)
