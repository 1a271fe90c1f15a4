"""The lab's process records (cli/lab/procs.py): detached start, PID files
that survive PID reuse, stopping a process with its descendants; and the
mountinfo parsing of cli/lab/mounts.py. Uses only `sleep`/`sh` children
that each test starts and ends itself."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from cli.lab import mounts, procs


@pytest.fixture
def pidfile(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "p.pid"
    yield str(path)
    p = procs.read(str(path))
    if p is not None:  # never leave a child behind, even when a test fails
        procs.kill_all([p, *procs.descendants(p)])


def test_start_records_a_detached_process(tmp_path: Path, pidfile: str) -> None:
    log = tmp_path / "x.log"
    p = procs.start(["sh", "-c", "echo hello; exec sleep 30"], str(log), pidfile)
    assert procs.alive(pidfile) and procs.read(pidfile).pid == p.pid  # type: ignore[union-attr]
    assert p.pid == psutil.Process(p.pid).pid and psutil.Process(p.pid).status() != psutil.STATUS_ZOMBIE
    # its own session: no signal to our process group reaches it
    assert os.getsid(p.pid) == p.pid != os.getsid(0)
    deadline = time.monotonic() + 5
    while "hello" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "starting: sh -c" in log.read_text() and "hello" in log.read_text()
    assert procs.stop(pidfile, grace=2)
    assert not procs.alive(pidfile) and not Path(pidfile).exists()
    assert procs.stop(pidfile) is False  # nothing running: says so, no error


def test_a_recycled_pid_is_never_ours(pidfile: str) -> None:
    me = psutil.Process()
    # a record naming a live process with another start time: not ours
    Path(pidfile).write_text(f"{me.pid} {me.create_time() - 100}\n")
    assert procs.read(pidfile) is None
    assert procs.stop(pidfile, hard=True) is False
    assert me.is_running()
    Path(pidfile).write_text("garbage")
    assert procs.read(pidfile) is None


def test_stop_ends_the_descendants_too(tmp_path: Path, pidfile: str) -> None:
    p = procs.start(["sh", "-c", "sleep 30 & sleep 30 & wait"], str(tmp_path / "l"), pidfile)
    deadline = time.monotonic() + 5
    while len(procs.descendants(p)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    kids = procs.descendants(p)
    assert len(kids) == 2
    assert procs.stop(pidfile, hard=True)
    assert not any(procs.is_live(k) for k in kids) and not procs.is_live(p)


def test_graceful_stop_escalates_to_sigkill(tmp_path: Path, pidfile: str) -> None:
    # ignores SIGTERM: stop() must fall back to SIGKILL after the grace period
    p = procs.start(["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"], str(tmp_path / "l"), pidfile)
    time.sleep(0.2)
    assert procs.stop(pidfile, grace=0.5)
    assert not procs.is_live(p)


def test_mountinfo_paths() -> None:
    assert mounts._unescape(r"/a\040b/c\134d") == "/a b/c\\d"
    assert mounts._unescape("/plain") == "/plain"
    assert mounts.mounts_under("/nonexistent-pocketkube-prefix") == []
    root_mounts = mounts.mounts_under("/")
    assert "/" in root_mounts and root_mounts[-1] == "/"  # deepest first, / last


def test_safe_rmtree(tmp_path: Path) -> None:
    d = tmp_path / "x" / "y"
    d.mkdir(parents=True)
    (d / "f").write_text("1")
    mounts.safe_rmtree(str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
    mounts.safe_rmtree(str(tmp_path / "x"))  # gone already: fine


def test_a_stopped_child_is_reaped(tmp_path: Path, pidfile: str) -> None:
    """A child this process started and stopped is collected, not left a
    zombie whose Popen is finalized later with "subprocess N is still
    running" (seen at the end of test runs)."""
    for i in range(6):
        p = procs.start(["sh", "-c", "echo hello; exec sleep 30"], str(tmp_path / f"l{i}"), pidfile)
        assert procs.stop(pidfile, hard=i % 3 == 0, grace=2)
        assert [x for x in procs._started if x.pid == p.pid] == []
        with pytest.raises(ChildProcessError):
            os.waitpid(p.pid, os.WNOHANG)
