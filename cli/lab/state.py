"""A lab's persistent record: <state_root>/<name>/lab.json, written before
anything of the lab is created (so `down` can remove a half-built lab) and
removed last by `down`. The plan (every name and address) is recomputed from
it with plan.make_plan, so the record stays small.

Single writer: one pkctl process changes a lab at a time (writes are atomic
renames, so a concurrent `status` never reads half a file). Choosing a new
lab's index and writing its record happen under `locked()`, an exclusive
flock on the state root directory itself (no lock file to leave behind),
so two `pkctl lab up` started at the same moment never pick one index.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator

from cli.lab.plan import DEFAULT_RUN_ROOT, DEFAULT_STATE_ROOT, LabPlan, make_plan

STATE_FILE = "lab.json"
ENV_STATE_ROOT = "PK_LAB_STATE_ROOT"
ENV_RUN_ROOT = "PK_LAB_RUN_ROOT"


def state_root() -> str:
    return os.environ.get(ENV_STATE_ROOT) or DEFAULT_STATE_ROOT


def run_root() -> str:
    return os.environ.get(ENV_RUN_ROOT) or DEFAULT_RUN_ROOT


@contextlib.contextmanager
def locked(root: str | None = None) -> Iterator[None]:
    """Hold the labs' lock (see module docstring) for the block."""
    base = root or state_root()
    os.makedirs(base, exist_ok=True)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass
class LabRecord:
    name: str
    index: int
    nodes: int
    preset: str
    service_cidr: str
    lb_pool: str
    etcd_client_port: int
    etcd_peer_port: int
    state_root: str
    run_root: str
    created: float
    # An HA lab: how many control planes (and etcd members), and each
    # member's (client, peer) loopback ports; a lab of one uses the two above.
    control_planes: int = 1
    etcd_ports: list[list[int]] = field(default_factory=list)

    def member_ports(self, index: int) -> tuple[int, int]:
        """(client, peer) port of etcd member index (0-based)."""
        if self.control_planes == 1:
            return self.etcd_client_port, self.etcd_peer_port
        client, peer = self.etcd_ports[index]
        return client, peer

    def plan(self) -> LabPlan:
        return make_plan(
            self.name,
            self.index,
            nodes=self.nodes,
            preset=self.preset,
            service_cidr=self.service_cidr,
            lb_pool=self.lb_pool,
            state_root=self.state_root,
            run_root=self.run_root,
            control_planes=self.control_planes,
        )


def record_path(name: str, root: str | None = None) -> Path:
    return Path(root or state_root()) / name / STATE_FILE


def load(name: str, root: str | None = None) -> LabRecord | None:
    path = record_path(name, root)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise RuntimeError(f"cannot read {path}: {err}") from None
    # a record written by another version of pkctl may carry fields this one
    # does not know: they are not needed to see which index the lab holds
    known = {f.name for f in fields(LabRecord)}
    return LabRecord(**{k: v for k, v in data.items() if k in known})


def save(rec: LabRecord) -> None:
    path = record_path(rec.name, rec.state_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(rec), indent=2) + "\n")
    tmp.replace(path)


def remove(rec: LabRecord) -> None:
    try:
        record_path(rec.name, rec.state_root).unlink()
    except FileNotFoundError:
        pass


def all_labs(root: str | None = None) -> list[LabRecord]:
    base = Path(root or state_root())
    out: list[LabRecord] = []
    if not base.is_dir():
        return out
    for child in sorted(base.iterdir()):
        rec = load(child.name, str(base))
        if rec is not None:
            out.append(rec)
    return out
